//! A model folder in the Hugging Face `BertForSequenceClassification`
//! layout. It has `config.json` (with `id2label`, `label2id` and
//! `max_length`) and `model.safetensors` (encoder, pooler and classifier).
//! The tokenizer is in `tokenizer.json`, `vocab.txt`, `tokenizer_config.json`
//! and `special_tokens_map.json`. Beside them are labelaug's own
//! `labels.json` (the label map with descriptions), `training.json` (how the
//! model was trained) and `auxiliary_heads.safetensors` (the LM head, when
//! training had one). transformers loads the folder as it is, and labelaug
//! loads it and any other BERT classifier folder.
//!
//! A model is written into a temporary sibling folder that is renamed into
//! place, so a crash never leaves a half-written model behind.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::classifier::TextClassifier;
use super::config::EncoderConfig;
use super::folder::{
    self, CONFIG_FILE, ExportedFile, FolderError, SAFETENSORS_FILE, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE,
    VOCAB_FILE,
};
use super::params::ParamStore;
use crate::data::{LabelEntry, LabelMap};
use crate::text::TextTokenizer;

const LABELS_FILE: &str = "labels.json";
const METADATA_FILE: &str = folder::TRAINING_FILE;
const AUXILIARY_FILE: &str = "auxiliary_heads.safetensors";
const SPECIAL_TOKENS_FILE: &str = "special_tokens_map.json";

/// Maximum input length of a model loaded without a `max_length`, when its
/// position table is longer.
const DEFAULT_MAX_LENGTH: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("failed to write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("invalid {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("model weights in {path}: {source}")]
    Weights { path: PathBuf, source: candle_core::Error },
    #[error(transparent)]
    Folder(#[from] FolderError),
    #[error(transparent)]
    Tokenizer(#[from] crate::text::TextError),
}

/// `config.json`: a Hugging Face `BertConfig` for sequence classification,
/// plus the maximum input length the model was trained with.
#[derive(Debug, Clone, Serialize)]
struct ConfigFile {
    model_type: String,
    architectures: Vec<String>,
    problem_type: String,
    hidden_act: String,
    position_embedding_type: String,
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
    /// `None` for a folder that labelaug did not train.
    pub metadata: Option<ModelMetadata>,
    pub max_length: usize,
}

/// Contents of a model folder, for writing one.
pub struct ModelParts<'a> {
    pub config: &'a EncoderConfig,
    pub max_length: usize,
    pub params: &'a ParamStore,
    pub tokenizer: &'a TextTokenizer,
    pub labels: &'a LabelMap,
    pub metadata: &'a ModelMetadata,
}

impl ModelArtifact {
    /// Writes a model folder at `dir` (which must not exist yet). A failed
    /// write leaves neither `dir` nor its staging folder behind.
    pub fn save(dir: &Path, parts: &ModelParts<'_>) -> Result<(), ArtifactError> {
        let staging = staging_path(dir);
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(write_error(&staging))?;
        }
        fs::create_dir_all(&staging).map_err(write_error(&staging))?;
        let written = Self::write_parts(&staging, parts).and_then(|()| fs::rename(&staging, dir).map_err(write_error(dir)));
        if written.is_err() {
            let _ = fs::remove_dir_all(&staging);
        }
        written
    }

    fn write_parts(staging: &Path, parts: &ModelParts<'_>) -> Result<(), ArtifactError> {
        let labels = parts.labels;
        let config_file = ConfigFile {
            model_type: "bert".to_string(),
            architectures: vec!["BertForSequenceClassification".to_string()],
            problem_type: "single_label_classification".to_string(),
            hidden_act: "gelu".to_string(),
            position_embedding_type: "absolute".to_string(),
            encoder: parts.config.clone(),
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
            max_length: parts.max_length,
        };
        write_json(&staging.join(CONFIG_FILE), &config_file)?;
        write_json(&staging.join(LABELS_FILE), labels)?;
        write_json(&staging.join(METADATA_FILE), parts.metadata)?;
        save_weights(staging, parts.params)?;
        save_tokenizer(staging, parts.tokenizer, parts.max_length)
    }

    /// Loads a model folder: one written by [`ModelArtifact::save`], or a
    /// Hugging Face BERT classifier with `id2label` in its `config.json`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ArtifactError> {
        let config = folder::read_config(dir)?;
        let labels = labels_of(dir, &config)?;
        let metadata = read_optional_json::<ModelMetadata>(&dir.join(METADATA_FILE))?;
        let tokenizer = folder::read_tokenizer(dir, config.encoder.vocab_size)?;
        let weights = folder::read_weights(dir, device)?;
        let weights_path = weights.path;
        let weights_error = |source| ArtifactError::Weights {
            path: weights_path.clone(),
            source,
        };
        let mut params = ParamStore::from_tensors(weights.tensors, None, DType::F32, device).map_err(weights_error)?;
        let model =
            TextClassifier::new(&mut params, &config.encoder, labels.len(), false).map_err(weights_error)?;
        let positions = config.encoder.max_position_embeddings;
        let max_length = config
            .max_length
            .or_else(|| folder::tokenizer_max_length(dir))
            .unwrap_or(DEFAULT_MAX_LENGTH)
            .min(positions);
        Ok(Self {
            model,
            tokenizer,
            labels,
            metadata,
            max_length,
        })
    }
}

impl ModelArtifact {
    /// Reads a model folder's labels without its weights.
    pub fn read_labels(dir: &Path) -> Result<LabelMap, ArtifactError> {
        labels_of(dir, &folder::read_config(dir)?)
    }
}

/// `labels.json` when the folder has one, else the names of `id2label`.
fn labels_of(dir: &Path, config: &folder::FolderConfig) -> Result<LabelMap, ArtifactError> {
    match read_optional_json::<LabelMap>(&dir.join(LABELS_FILE))? {
        Some(labels) => Ok(labels),
        None => labels_from_names(dir, config.labels.as_deref()),
    }
}

/// Builds a label map from `id2label` names. Each name is its own description,
/// with `_` read as a space.
fn labels_from_names(dir: &Path, names: Option<&[String]>) -> Result<LabelMap, ArtifactError> {
    let path = dir.join(CONFIG_FILE);
    let names = names.ok_or_else(|| ArtifactError::Invalid {
        path: path.clone(),
        message: "id2label is missing: the folder is not a sequence classifier".to_string(),
    })?;
    let entries = names
        .iter()
        .map(|name| LabelEntry {
            value: name.clone(),
            description: name.replace('_', " "),
        })
        .collect();
    LabelMap::from_entries(entries).map_err(|e| ArtifactError::Invalid {
        path,
        message: format!("id2label: {e}"),
    })
}

/// Writes `model.safetensors` under Hugging Face names, and the auxiliary
/// heads beside it when there are any.
fn save_weights(dir: &Path, params: &ParamStore) -> Result<(), ArtifactError> {
    let mut model = HashMap::new();
    let mut auxiliary = HashMap::new();
    let weights = dir.join(SAFETENSORS_FILE);
    let weights_error = |source| ArtifactError::Weights {
        path: weights.clone(),
        source,
    };
    for (name, var) in params.vars() {
        let tensor: Tensor = var.as_tensor().to_dtype(DType::F32).map_err(weights_error)?;
        match folder::hf_tensor_name(name) {
            (ExportedFile::Model, exported) => model.insert(exported, tensor),
            (ExportedFile::Auxiliary, exported) => auxiliary.insert(exported, tensor),
        };
    }
    candle_core::safetensors::save(&model, &weights).map_err(weights_error)?;
    if !auxiliary.is_empty() {
        let path = dir.join(AUXILIARY_FILE);
        candle_core::safetensors::save(&auxiliary, &path)
            .map_err(|source| ArtifactError::Weights { path, source })?;
    }
    Ok(())
}

/// Writes the tokenizer as `tokenizer.json` and in the files of a slow BERT
/// tokenizer (`vocab.txt`, `tokenizer_config.json`, `special_tokens_map.json`).
fn save_tokenizer(dir: &Path, tokenizer: &TextTokenizer, max_length: usize) -> Result<(), ArtifactError> {
    tokenizer.save(&dir.join(TOKENIZER_FILE))?;
    let vocab_path = dir.join(VOCAB_FILE);
    let mut vocab = tokenizer.vocabulary().join("\n");
    vocab.push('\n');
    fs::write(&vocab_path, vocab).map_err(write_error(&vocab_path))?;
    let options = tokenizer.bert_options();
    let special = serde_json::json!({
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
    });
    let mut config = special.clone();
    if let Some(map) = config.as_object_mut() {
        map.insert("tokenizer_class".into(), "BertTokenizer".into());
        map.insert("do_lower_case".into(), options.lowercase.into());
        map.insert("strip_accents".into(), options.strip_accents.into());
        map.insert("tokenize_chinese_chars".into(), options.split_chinese.into());
        map.insert("model_max_length".into(), max_length.into());
    }
    write_json(&dir.join(TOKENIZER_CONFIG_FILE), &config)?;
    write_json(&dir.join(SPECIAL_TOKENS_FILE), &special)
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> ArtifactError {
    let path = path.to_path_buf();
    move |source| ArtifactError::Write { path, source }
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

/// Reads a JSON file that a folder may lack.
fn read_optional_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, ArtifactError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ArtifactError::Folder(FolderError::Read {
                path: path.to_path_buf(),
                source,
            }));
        }
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| ArtifactError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
