//! A trained model on disk, in the Hugging Face layout: `config.json`,
//! `model.safetensors`, `tokenizer.json`, plus `labels.json` (the label map
//! with descriptions) and `training.json` (how the model was trained).
//!
//! A model is written into a temporary sibling folder that is renamed into
//! place, so a crash never leaves a half-written model behind.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use candle_core::Device;
use serde::{Deserialize, Serialize};

use super::classifier::TextClassifier;
use super::config::EncoderConfig;
use super::params::ParamStore;
use crate::data::LabelMap;
use crate::text::{TextError, TextTokenizer};

const CONFIG_FILE: &str = "config.json";
const WEIGHTS_FILE: &str = "model.safetensors";
const TOKENIZER_FILE: &str = "tokenizer.json";
const LABELS_FILE: &str = "labels.json";
const METADATA_FILE: &str = "training.json";

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("failed to write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("failed to read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("model weights in {path}: {source}")]
    Weights { path: PathBuf, source: candle_core::Error },
    #[error(transparent)]
    Tokenizer(#[from] TextError),
}

/// `config.json`: a Hugging Face `BertConfig` with the label names, plus the
/// maximum input length the model was trained with.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ConfigFile {
    model_type: String,
    architectures: Vec<String>,
    #[serde(flatten)]
    encoder: EncoderConfig,
    id2label: BTreeMap<String, String>,
    label2id: BTreeMap<String, usize>,
    /// Maximum tokens of a text, `[CLS]` and `[SEP]` included.
    max_length: usize,
}

/// Training record of a model, stored as `training.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelMetadata {
    pub model_id: String,
    pub job_id: String,
    /// Auxiliary tasks and their weights.
    pub tasks: BTreeMap<String, f64>,
    pub best_epoch: Option<u32>,
    pub accuracy: Option<f64>,
    pub macro_f1: Option<f64>,
    /// The training request's hyperparameters and data description, as JSON.
    pub training: serde_json::Value,
}

/// A model loaded for serving.
pub struct ModelArtifact {
    pub model: TextClassifier,
    pub tokenizer: TextTokenizer,
    pub labels: LabelMap,
    pub metadata: ModelMetadata,
    pub max_length: usize,
}

impl ModelArtifact {
    /// Writes a model folder at `dir` (which must not exist yet).
    pub fn save(
        dir: &Path,
        config: &EncoderConfig,
        max_length: usize,
        params: &ParamStore,
        tokenizer: &TextTokenizer,
        labels: &LabelMap,
        metadata: &ModelMetadata,
    ) -> Result<(), ArtifactError> {
        let staging = staging_path(dir);
        let write_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ArtifactError::Write { path, source }
        };
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(write_error(&staging))?;
        }
        fs::create_dir_all(&staging).map_err(write_error(&staging))?;

        let config_file = ConfigFile {
            model_type: "bert".to_string(),
            architectures: vec!["BertForSequenceClassification".to_string()],
            encoder: config.clone(),
            id2label: labels
                .entries()
                .iter()
                .enumerate()
                .map(|(index, entry)| (index.to_string(), entry.value.clone()))
                .collect(),
            label2id: labels
                .entries()
                .iter()
                .enumerate()
                .map(|(index, entry)| (entry.value.clone(), index))
                .collect(),
            max_length,
        };
        write_json(&staging.join(CONFIG_FILE), &config_file)?;
        write_json(&staging.join(LABELS_FILE), labels)?;
        write_json(&staging.join(METADATA_FILE), metadata)?;
        let weights = staging.join(WEIGHTS_FILE);
        params.save(&weights).map_err(|source| ArtifactError::Weights {
            path: weights.clone(),
            source,
        })?;
        tokenizer.save(&staging.join(TOKENIZER_FILE))?;
        fs::rename(&staging, dir).map_err(write_error(dir))
    }

    /// Loads a model folder written by [`ModelArtifact::save`].
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ArtifactError> {
        let config: ConfigFile = read_json(&dir.join(CONFIG_FILE))?;
        let labels: LabelMap = read_json(&dir.join(LABELS_FILE))?;
        let metadata: ModelMetadata = read_json(&dir.join(METADATA_FILE))?;
        let tokenizer = TextTokenizer::from_file(&dir.join(TOKENIZER_FILE))?;
        let weights = dir.join(WEIGHTS_FILE);
        let weights_error = |source| ArtifactError::Weights {
            path: weights.clone(),
            source,
        };
        let mut params = ParamStore::from_safetensors(&weights, device).map_err(weights_error)?;
        let model = TextClassifier::new(&mut params, &config.encoder, labels.len(), false)
            .map_err(weights_error)?;
        Ok(Self {
            model,
            tokenizer,
            labels,
            metadata,
            max_length: config.max_length,
        })
    }
}

fn staging_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dir.with_file_name(name)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ArtifactError> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| ArtifactError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    fs::write(path, text).map_err(|source| ArtifactError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ArtifactError> {
    let bytes = fs::read(path).map_err(|source| ArtifactError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ArtifactError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
