//! Training checkpoints: everything needed to continue a job exactly where
//! it stopped (weights, AdamW moments, generator states, position in the
//! epoch, evaluations and the best epoch's weights).
//!
//! A checkpoint is a folder written in full under a temporary name, synced
//! and renamed. The file `LATEST` then names it, and is itself replaced
//! through a synced temporary file and a rename. A crash at any point
//! leaves either the old or the new checkpoint readable.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::progress::Evaluation;

const LATEST: &str = "LATEST";
const STATE_FILE: &str = "state.json";
const WEIGHTS_FILE: &str = "weights.safetensors";
const MOMENTS_FILE: &str = "moments.safetensors";
const BEST_FILE: &str = "best.safetensors";
const TEACHER_FILE: &str = "teacher.safetensors";

#[derive(Debug, thiserror::Error)]
#[error("checkpoint {path}: {message}")]
pub struct CheckpointError {
    pub path: PathBuf,
    pub message: String,
}

fn error(path: &Path, message: impl ToString) -> CheckpointError {
    CheckpointError {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Position of a ChaCha generator: seed, stream and word position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngState {
    seed: [u8; 32],
    stream: u64,
    /// Decimal text, since JSON numbers cannot carry 128 bits.
    word_pos: String,
}

impl RngState {
    pub fn capture(rng: &ChaCha8Rng) -> Self {
        Self {
            seed: rng.get_seed(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos().to_string(),
        }
    }

    pub fn restore(&self) -> Result<ChaCha8Rng, String> {
        let word_pos: u128 = self
            .word_pos
            .parse()
            .map_err(|_| format!("invalid generator position {:?}", self.word_pos))?;
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(word_pos);
        Ok(rng)
    }
}

/// Scalar training state, stored as `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingState {
    /// Epochs finished, evaluation included.
    pub completed_epochs: u32,
    /// Batches done in the epoch after `completed_epochs`.
    pub batches_done: usize,
    /// Optimiser steps done.
    pub step: u64,
    /// Shuffling generator at the start of the epoch after `completed_epochs`.
    pub shuffle_rng: RngState,
    /// Dropout generator at the checkpoint.
    pub dropout_rng: RngState,
    pub evaluations: Vec<Evaluation>,
    /// The evaluation whose weights are in `best.safetensors`.
    pub best: Option<Evaluation>,
}

/// A checkpoint read back from disk.
pub struct Checkpoint {
    pub state: TrainingState,
    pub weights: HashMap<String, Tensor>,
    pub moments: HashMap<String, Tensor>,
    pub best_weights: Option<HashMap<String, Tensor>>,
    /// Self-distillation teacher logits `[records, classes]`.
    pub teacher: Option<Tensor>,
}

fn sync_file(path: &Path) -> Result<(), CheckpointError> {
    File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|e| error(path, format!("failed to sync: {e}")))
}

fn save_tensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<(), CheckpointError> {
    candle_core::safetensors::save(tensors, path).map_err(|e| error(path, format!("failed to write: {e}")))?;
    sync_file(path)
}

fn load_tensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>, CheckpointError> {
    candle_core::safetensors::load(path, device).map_err(|e| error(path, format!("failed to read: {e}")))
}

/// Writes a checkpoint under `root` and makes it the latest one.
pub fn save(
    root: &Path,
    state: &TrainingState,
    weights: &HashMap<String, Tensor>,
    moments: &HashMap<String, Tensor>,
    best_weights: Option<&BTreeMap<String, Tensor>>,
    teacher: Option<&Tensor>,
) -> Result<(), CheckpointError> {
    fs::create_dir_all(root).map_err(|e| error(root, format!("failed to create: {e}")))?;
    let name = format!("step-{}-batch-{}", state.step, state.batches_done);
    let staging = root.join(format!("{name}.partial"));
    let folder = root.join(&name);
    for stale in [&staging, &folder] {
        if stale.exists() {
            fs::remove_dir_all(stale).map_err(|e| error(stale, format!("failed to remove: {e}")))?;
        }
    }
    fs::create_dir(&staging).map_err(|e| error(&staging, format!("failed to create: {e}")))?;

    let state_path = staging.join(STATE_FILE);
    let json = serde_json::to_vec_pretty(state).map_err(|e| error(&state_path, e))?;
    fs::write(&state_path, json).map_err(|e| error(&state_path, format!("failed to write: {e}")))?;
    sync_file(&state_path)?;
    save_tensors(&staging.join(WEIGHTS_FILE), weights)?;
    save_tensors(&staging.join(MOMENTS_FILE), moments)?;
    if let Some(best) = best_weights {
        let best: HashMap<String, Tensor> = best.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        save_tensors(&staging.join(BEST_FILE), &best)?;
    }
    if let Some(teacher) = teacher {
        let tensors = HashMap::from([("teacher".to_string(), teacher.clone())]);
        save_tensors(&staging.join(TEACHER_FILE), &tensors)?;
    }
    sync_file(&staging)?;
    fs::rename(&staging, &folder).map_err(|e| error(&folder, format!("failed to rename: {e}")))?;

    let latest_tmp = root.join(format!("{LATEST}.tmp"));
    let mut file = File::create(&latest_tmp).map_err(|e| error(&latest_tmp, format!("failed to create: {e}")))?;
    file.write_all(name.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| error(&latest_tmp, format!("failed to write: {e}")))?;
    let latest = root.join(LATEST);
    fs::rename(&latest_tmp, &latest).map_err(|e| error(&latest, format!("failed to rename: {e}")))?;
    sync_file(root)?;

    remove_others(root, &name);
    Ok(())
}

/// Removes every checkpoint folder under `root` except `keep`.
fn remove_others(root: &Path, keep: &str) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && entry.file_name() != keep {
            if let Err(e) = fs::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), error = %e, "failed to remove an old checkpoint");
            }
        }
    }
}

/// Reads the latest checkpoint under `root`, or `None` when there is none.
pub fn load(root: &Path, device: &Device) -> Result<Option<Checkpoint>, CheckpointError> {
    let latest = root.join(LATEST);
    let name = match fs::read_to_string(&latest) {
        Ok(name) => name,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(error(&latest, format!("failed to read: {e}"))),
    };
    let folder = root.join(name.trim());
    let state_path = folder.join(STATE_FILE);
    let json = fs::read(&state_path).map_err(|e| error(&state_path, format!("failed to read: {e}")))?;
    let state: TrainingState = serde_json::from_slice(&json).map_err(|e| error(&state_path, e))?;
    let best_path = folder.join(BEST_FILE);
    let best_weights = match best_path.exists() {
        true => Some(load_tensors(&best_path, device)?),
        false => None,
    };
    let teacher_path = folder.join(TEACHER_FILE);
    let teacher = match teacher_path.exists() {
        true => {
            let mut tensors = load_tensors(&teacher_path, &Device::Cpu)?;
            Some(
                tensors
                    .remove("teacher")
                    .ok_or_else(|| error(&teacher_path, "no tensor named teacher"))?,
            )
        }
        false => None,
    };
    Ok(Some(Checkpoint {
        teacher,
        weights: load_tensors(&folder.join(WEIGHTS_FILE), device)?,
        moments: load_tensors(&folder.join(MOMENTS_FILE), device)?,
        best_weights,
        state,
    }))
}

/// Deletes every checkpoint of a job.
pub fn remove(root: &Path) {
    if let Err(e) = fs::remove_dir_all(root) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %root.display(), error = %e, "failed to remove checkpoints");
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;

    #[test]
    fn generator_state_round_trips() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let _: [u32; 5] = rng.random();
        let mut restored = RngState::capture(&rng).restore().unwrap();
        let expected: [u64; 4] = rng.random();
        let got: [u64; 4] = restored.random();
        assert_eq!(expected, got);
    }

    fn state(step: u64) -> TrainingState {
        let rng = ChaCha8Rng::seed_from_u64(1);
        TrainingState {
            completed_epochs: 1,
            batches_done: 2,
            step,
            shuffle_rng: RngState::capture(&rng),
            dropout_rng: RngState::capture(&rng),
            evaluations: Vec::new(),
            best: None,
        }
    }

    #[test]
    fn latest_checkpoint_loads_and_older_ones_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("job");
        let weights = HashMap::from([("w".to_string(), Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap())]);
        let moments = HashMap::from([("m.w".to_string(), Tensor::new(&[0.5f32, 0.1], &Device::Cpu).unwrap())]);
        assert!(load(&root, &Device::Cpu).unwrap().is_none());
        save(&root, &state(3), &weights, &moments, None, None).unwrap();
        save(&root, &state(4), &weights, &moments, None, None).unwrap();
        let loaded = load(&root, &Device::Cpu).unwrap().expect("a checkpoint");
        assert_eq!(loaded.state, state(4));
        assert_eq!(loaded.weights["w"].to_vec1::<f32>().unwrap(), vec![1.0, 2.0]);
        assert!(loaded.best_weights.is_none());
        let folders = fs::read_dir(&root).unwrap().filter(|e| e.as_ref().unwrap().path().is_dir()).count();
        assert_eq!(folders, 1);
    }

    #[test]
    fn corrupt_checkpoint_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("job");
        let weights = HashMap::from([("w".to_string(), Tensor::new(&[1f32], &Device::Cpu).unwrap())]);
        save(&root, &state(1), &weights, &weights, None, None).unwrap();
        let folder = root.join("step-1-batch-2");
        fs::write(folder.join(WEIGHTS_FILE), b"not safetensors").unwrap();
        let failure = load(&root, &Device::Cpu).err().expect("an error");
        assert!(failure.to_string().contains("weights.safetensors"), "{failure}");
    }
}
