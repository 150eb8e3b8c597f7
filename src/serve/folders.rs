//! Model and checkpoint folders coming in and going out: registering a
//! Hugging Face classifier folder as a model, storing an uploaded
//! checkpoint, and listing a model's files for export.
//!
//! A registered folder is copied into the data dir, so that the model stays
//! servable when the original changes or goes. Its id derives from the
//! names and bytes of the files it copies, so registering the same folder
//! again (for example `serve --import` at every start) finds the model
//! already there.

use std::fs;
use std::path::{Path, PathBuf};

use candle_core::Device;
use sha2::{Digest, Sha256};
use tracing::info;

use crate::jobs::{JobsError, ModelRow, Store, now_ms};
use crate::model::folder::{self, FolderError};
use crate::model::{ArtifactError, ModelArtifact};

/// Maximum bytes of the name of a file inside a folder.
const MAX_FILE_NAME_BYTES: usize = 255;

#[derive(Debug, thiserror::Error)]
pub enum FolderTransferError {
    #[error("{path}: {source}")]
    Artifact { path: PathBuf, source: ArtifactError },
    #[error("{path}: {source}")]
    Checkpoint { path: PathBuf, source: FolderError },
    #[error("file name {name:?} {reason}")]
    FileName { name: String, reason: &'static str },
    #[error(transparent)]
    Store(#[from] JobsError),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> FolderTransferError {
    let path = path.to_path_buf();
    move |source| FolderTransferError::Store(JobsError::Io { path, source })
}

/// Checks that `name` names a file directly inside a folder.
pub fn check_file_name(name: &str) -> Result<(), FolderTransferError> {
    let reason = if name.is_empty() {
        Some("is empty")
    } else if name.len() > MAX_FILE_NAME_BYTES {
        Some("is longer than the maximum of 255 bytes")
    } else if name == "." || name == ".." {
        Some("is not a file name")
    } else if name.contains(['/', '\\', '\0']) {
        Some("must not contain '/', '\\' or NUL")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(FolderTransferError::FileName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Lists the regular files directly inside `dir`, hidden ones left out,
/// sorted by name.
pub fn folder_files(dir: &Path) -> Result<Vec<PathBuf>, FolderTransferError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if path.is_file() && !hidden {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Copies the files of `source` into a new folder `target`, through a
/// staging folder that is renamed into place or removed on failure.
fn copy_folder(source: &Path, target: &Path, staging: &Path) -> Result<(), FolderTransferError> {
    fs::create_dir_all(staging).map_err(io_error(staging))?;
    let copied = folder_files(source).and_then(|files| {
        for file in files {
            let Some(name) = file.file_name() else { continue };
            let copy = staging.join(name);
            fs::copy(&file, &copy).map_err(io_error(&copy))?;
        }
        fs::rename(staging, target).map_err(io_error(target))
    });
    if copied.is_err() {
        let _ = fs::remove_dir_all(staging);
    }
    copied
}

/// Hashes the names and bytes of every file that registration copies: the
/// identity of a registered model.
fn content_id(dir: &Path) -> Result<String, FolderTransferError> {
    let mut hasher = Sha256::new();
    for path in folder_files(dir)? {
        let mut file = fs::File::open(&path).map_err(io_error(&path))?;
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        std::io::copy(&mut file, &mut hasher).map_err(io_error(&path))?;
    }
    Ok(hex::encode(&hasher.finalize()[..16]))
}

/// A registered model and whether it was there before.
pub struct Registered {
    pub row: ModelRow,
    pub existed: bool,
}

/// Registers the BERT classifier folder `source` as a model: loads it to
/// check it, copies it into the data dir and records it.
pub fn register_model(store: &Store, source: &Path) -> Result<Registered, FolderTransferError> {
    let id = format!("model-hf-{}", content_id(source)?);
    if let Some(row) = store.model(&id)? {
        return Ok(Registered { row, existed: true });
    }
    let artifact = ModelArtifact::load(source, &Device::Cpu).map_err(|source_error| FolderTransferError::Artifact {
        path: source.to_path_buf(),
        source: source_error,
    })?;
    let target = store.model_path(&id);
    if target.exists() {
        // Left by a registration that stopped before recording the model.
        fs::remove_dir_all(&target).map_err(io_error(&target))?;
    }
    let staging = store.tmp_dir().join(format!("{id}-{}.partial", uuid::Uuid::new_v4().simple()));
    copy_folder(source, &target, &staging)?;
    let row = ModelRow {
        id: id.clone(),
        job_id: String::new(),
        path: target.clone(),
        created_at_ms: now_ms(),
        num_labels: artifact.labels.len(),
        accuracy: None,
        macro_f1: None,
        tasks: Default::default(),
        imported_from: Some(source.display().to_string()),
    };
    if let Err(error) = store.insert_model(&row) {
        let _ = fs::remove_dir_all(&target);
        return Err(error.into());
    }
    info!(model_id = %id, source = %source.display(), labels = row.num_labels, "model registered");
    Ok(Registered { row, existed: false })
}

/// Checks a received checkpoint folder the way a training job reads it
/// (configuration, tokenizer, weights) and moves it to its place.
pub fn accept_checkpoint(staging: &Path, target: &Path) -> Result<(), FolderTransferError> {
    let checkpoint_error = |source| FolderTransferError::Checkpoint {
        path: staging.to_path_buf(),
        source,
    };
    let config = folder::read_config(staging).map_err(checkpoint_error)?;
    folder::read_tokenizer(staging, config.encoder.vocab_size).map_err(checkpoint_error)?;
    folder::read_weights(staging, &Device::Cpu).map_err(checkpoint_error)?;
    fs::rename(staging, target).map_err(io_error(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_stay_inside_the_folder() {
        for name in ["config.json", "model.safetensors", "vocab.txt", "词表.txt"] {
            assert!(check_file_name(name).is_ok(), "{name}");
        }
        for name in ["", ".", "..", "../config.json", "a/b", "a\\b", "nul\0"] {
            let error = check_file_name(name).unwrap_err().to_string();
            assert!(error.contains("file name"), "{name}: {error}");
        }
        assert!(check_file_name(&"x".repeat(256)).is_err());
    }
}
