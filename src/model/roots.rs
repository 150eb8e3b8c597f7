//! The server folders that requests may name model files in
//! (`serve --model-root`). A path is resolved with symbolic links and `..`
//! followed before it is compared, so no name leads out of a root.
//!
//! NOTE: the check runs when a request arrives. A training job reads the
//! folder when it starts, so a file replaced in between (for example by a
//! link out of the root) is read as it is then, and a resumed job reads the
//! folder again.

use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error(
        "{path}: the server reads model folders only under --model-root and has none; \
         start it with --model-root DIR, or send the folder with upload-checkpoint"
    )]
    NoRoots { path: String },
    #[error("{path} is outside the server's model roots ({roots})")]
    Outside { path: String, roots: String },
    #[error("{path}: {file} leads outside the server's model roots")]
    FileOutside { path: String, file: String },
    #[error("{path} is not a folder")]
    NotFolder { path: String },
    #[error("failed to read {path}: {source}")]
    Unreadable { path: String, source: std::io::Error },
}

/// Canonical model root folders.
#[derive(Debug, Clone, Default)]
pub struct ModelRoots {
    roots: Vec<PathBuf>,
}

impl ModelRoots {
    /// Resolves each root. A root that does not exist is an error.
    pub fn new(roots: &[PathBuf]) -> Result<Self, RootError> {
        let roots = roots
            .iter()
            .map(|root| canonical(root))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { roots })
    }

    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// Resolves `path` to a folder inside a root whose files (followed
    /// through links) all stay inside that root.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, RootError> {
        if self.roots.is_empty() {
            return Err(RootError::NoRoots { path: path.to_string() });
        }
        let resolved = match fs::canonicalize(path) {
            Ok(resolved) => resolved,
            // A missing folder is reported as missing only when its nearest
            // existing ancestor lies inside a root, so a request learns
            // nothing about what exists elsewhere.
            Err(source) if self.ancestor_inside(path) => {
                return Err(RootError::Unreadable {
                    path: path.to_string(),
                    source,
                });
            }
            Err(_) => return Err(self.outside(path)),
        };
        let Some(root) = self.roots.iter().find(|root| resolved.starts_with(root)) else {
            return Err(self.outside(path));
        };
        if !resolved.is_dir() {
            return Err(RootError::NotFolder { path: path.to_string() });
        }
        let unreadable = |source| RootError::Unreadable {
            path: path.to_string(),
            source,
        };
        for entry in fs::read_dir(&resolved).map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            let target = match fs::canonicalize(entry.path()) {
                Ok(target) => target,
                // A dangling link reads nothing.
                Err(_) => continue,
            };
            if !target.starts_with(root) {
                return Err(RootError::FileOutside {
                    path: path.to_string(),
                    file: entry.file_name().to_string_lossy().into_owned(),
                });
            }
        }
        Ok(resolved)
    }

    fn outside(&self, path: &str) -> RootError {
        RootError::Outside {
            path: path.to_string(),
            roots: self
                .roots
                .iter()
                .map(|root| root.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// Returns true when the nearest existing ancestor of `path`, with its
    /// links followed, lies inside a root.
    fn ancestor_inside(&self, path: &str) -> bool {
        Path::new(path)
            .ancestors()
            .skip(1)
            .find_map(|ancestor| fs::canonicalize(ancestor).ok())
            .is_some_and(|ancestor| self.roots.iter().any(|root| ancestor.starts_with(root)))
    }
}

fn canonical(path: &Path) -> Result<PathBuf, RootError> {
    fs::canonicalize(path).map_err(|source| RootError::Unreadable {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_only_inside_roots() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("models");
        let model = root.join("bert");
        let outside = base.path().join("secret");
        fs::create_dir_all(&model).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(model.join("config.json"), "{}").unwrap();
        fs::write(outside.join("key.pem"), "x").unwrap();
        let roots = ModelRoots::new(std::slice::from_ref(&root)).unwrap();

        let resolved = roots.resolve(model.to_str().unwrap()).unwrap();
        assert_eq!(resolved, fs::canonicalize(&model).unwrap());

        let dotted = format!("{}/../../secret", model.display());
        assert!(matches!(roots.resolve(&dotted), Err(RootError::Outside { .. })));
        assert!(matches!(
            roots.resolve(outside.to_str().unwrap()),
            Err(RootError::Outside { .. })
        ));

        let linked_folder = root.join("link");
        std::os::unix::fs::symlink(&outside, &linked_folder).unwrap();
        assert!(matches!(
            roots.resolve(linked_folder.to_str().unwrap()),
            Err(RootError::Outside { .. })
        ));

        std::os::unix::fs::symlink(outside.join("key.pem"), model.join("vocab.txt")).unwrap();
        let error = roots.resolve(model.to_str().unwrap()).unwrap_err();
        assert!(error.to_string().contains("vocab.txt"), "{error}");

        let missing = root.join("absent");
        assert!(matches!(
            roots.resolve(missing.to_str().unwrap()),
            Err(RootError::Unreadable { .. })
        ));
        let missing_outside = base.path().join("absent");
        assert!(matches!(
            roots.resolve(missing_outside.to_str().unwrap()),
            Err(RootError::Outside { .. })
        ));
        // Through a link out of the root, a missing name is not reported
        // as missing.
        let through_link = root.join("link").join("absent");
        assert!(matches!(
            roots.resolve(through_link.to_str().unwrap()),
            Err(RootError::Outside { .. })
        ));

        let none = ModelRoots::default();
        assert!(matches!(none.resolve(root.to_str().unwrap()), Err(RootError::NoRoots { .. })));
    }
}
