//! Model folders in the Hugging Face layout: `config.json` of a BERT model,
//! weights in `model.safetensors` or `pytorch_model.bin`, and the tokenizer
//! in `tokenizer.json` or `vocab.txt` with `tokenizer_config.json`.
//!
//! Tensor names are read with or without the `bert.` prefix that
//! `BertFor*` models put on the encoder, and old checkpoints' LayerNorm
//! `gamma`/`beta` names are read as `weight`/`bias`. Inside labelaug
//! parameters carry no prefix, and [`hf_tensor_name`] gives the name a
//! `BertForSequenceClassification` checkpoint uses.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde_json::Value;

use super::config::EncoderConfig;
use crate::text::{BertOptions, TextError, TextTokenizer};

pub const CONFIG_FILE: &str = "config.json";
pub const SAFETENSORS_FILE: &str = "model.safetensors";
pub const PYTORCH_FILE: &str = "pytorch_model.bin";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const VOCAB_FILE: &str = "vocab.txt";
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";
/// labelaug's record of how it trained a model.
pub const TRAINING_FILE: &str = "training.json";

/// Prefix of the encoder's tensors in `BertFor*` checkpoints.
const ENCODER_PREFIX: &str = "bert.";

#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("{path} does not exist")]
    Missing { path: PathBuf },
    #[error("failed to read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "{path}: model_type {model_type:?} is not supported; labelaug loads BERT-architecture checkpoints (model_type \"bert\")"
    )]
    UnsupportedModelType { path: PathBuf, model_type: String },
    #[error("{path}: architecture {name:?} is not a BERT architecture")]
    UnsupportedArchitecture { path: PathBuf, name: String },
    #[error("{path}: {field} {value} is not supported; labelaug supports {expected}")]
    UnsupportedSetting {
        path: PathBuf,
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{dir} has neither {SAFETENSORS_FILE} nor {PYTORCH_FILE}")]
    NoWeights { dir: PathBuf },
    #[error("model weights in {path}: {source}")]
    Weights { path: PathBuf, source: candle_core::Error },
    #[error("{dir} has neither {TOKENIZER_FILE} nor {VOCAB_FILE}")]
    NoTokenizer { dir: PathBuf },
    #[error("{path} has {tokens} tokens, more than the vocab_size {vocab_size} of config.json")]
    VocabularyTooLarge {
        path: PathBuf,
        tokens: usize,
        vocab_size: usize,
    },
    #[error(transparent)]
    Tokenizer(#[from] TextError),
}

/// Model settings read from `config.json`.
#[derive(Debug, Clone)]
pub struct FolderConfig {
    pub encoder: EncoderConfig,
    /// Class names in index order, from `id2label`, or `None` without one.
    pub labels: Option<Vec<String>>,
    /// Maximum input length labelaug trained the model with. Only folders
    /// that labelaug wrote (with `training.json`) carry it, since older
    /// transformers versions wrote a generation `max_length` of 20 into
    /// every `config.json`.
    pub max_length: Option<usize>,
}

/// Reads and checks `config.json`.
pub fn read_config(dir: &Path) -> Result<FolderConfig, FolderError> {
    let path = dir.join(CONFIG_FILE);
    let value: Value = read_json(&path)?;
    let invalid = |message: String| FolderError::Invalid {
        path: path.clone(),
        message,
    };
    let model_type = value.get("model_type").and_then(Value::as_str).unwrap_or_default();
    if model_type != "bert" {
        return Err(FolderError::UnsupportedModelType {
            path: path.clone(),
            model_type: model_type.to_string(),
        });
    }
    if let Some(architectures) = value.get("architectures").and_then(Value::as_array) {
        for name in architectures {
            let name = name.as_str().unwrap_or_default();
            if !name.starts_with("Bert") {
                return Err(FolderError::UnsupportedArchitecture {
                    path: path.clone(),
                    name: name.to_string(),
                });
            }
        }
    }
    check_setting(&value, &path, "hidden_act", "gelu", "the exact (erf) GELU, \"gelu\"")?;
    check_setting(&value, &path, "position_embedding_type", "absolute", "\"absolute\" positions")?;

    let encoder: EncoderConfig = serde_json::from_value(value.clone()).map_err(|e| invalid(e.to_string()))?;
    if encoder.num_attention_heads == 0 || encoder.hidden_size % encoder.num_attention_heads != 0 {
        return Err(invalid(format!(
            "hidden_size {} is not a multiple of num_attention_heads {}",
            encoder.hidden_size, encoder.num_attention_heads
        )));
    }
    check_sizes(&encoder).map_err(invalid)?;
    let labels = match value.get("id2label") {
        Some(Value::Object(map)) if !map.is_empty() => {
            let mut names = vec![None; map.len()];
            for (key, name) in map {
                let index = key
                    .parse::<usize>()
                    .ok()
                    .filter(|index| *index < names.len())
                    .ok_or_else(|| invalid(format!("id2label key {key:?} is not an index below {}", map.len())))?;
                let name = name
                    .as_str()
                    .ok_or_else(|| invalid(format!("id2label[{key}] is not a string")))?;
                if names[index].replace(name.to_string()).is_some() {
                    return Err(invalid(format!("id2label gives index {index} twice (key {key:?})")));
                }
            }
            Some(names.into_iter().flatten().collect())
        }
        _ => None,
    };
    let max_length = value
        .get("max_length")
        .and_then(Value::as_u64)
        .filter(|length| *length >= 3 && dir.join(TRAINING_FILE).is_file())
        .map(|length| length as usize);
    Ok(FolderConfig {
        encoder,
        labels,
        max_length,
    })
}

/// Rejects shapes outside what BERT-architecture checkpoints use, before
/// anything is allocated for them.
fn check_sizes(encoder: &EncoderConfig) -> Result<(), String> {
    let limits = [
        ("vocab_size", encoder.vocab_size, 1, 1_000_000),
        ("hidden_size", encoder.hidden_size, 1, 8192),
        ("num_hidden_layers", encoder.num_hidden_layers, 1, 96),
        ("intermediate_size", encoder.intermediate_size, 1, 65_536),
        ("max_position_embeddings", encoder.max_position_embeddings, 2, 65_536),
        ("type_vocab_size", encoder.type_vocab_size, 1, 16),
    ];
    for (field, value, low, high) in limits {
        if !(low..=high).contains(&value) {
            return Err(format!("{field} {value} is outside {low} to {high}"));
        }
    }
    Ok(())
}

fn check_setting(
    value: &Value,
    path: &Path,
    field: &'static str,
    supported: &str,
    expected: &'static str,
) -> Result<(), FolderError> {
    match value.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(text)) if text == supported => Ok(()),
        Some(other) => Err(FolderError::UnsupportedSetting {
            path: path.to_path_buf(),
            field,
            value: other.to_string(),
            expected,
        }),
    }
}

/// Loads the tokenizer: `tokenizer.json` where there is one, else
/// `vocab.txt` with the options of `tokenizer_config.json`.
pub fn read_tokenizer(dir: &Path, vocab_size: usize) -> Result<TextTokenizer, FolderError> {
    let json = dir.join(TOKENIZER_FILE);
    let vocab = dir.join(VOCAB_FILE);
    let (tokenizer, path) = if json.is_file() {
        (TextTokenizer::from_file(&json)?, json)
    } else if vocab.is_file() {
        let options = read_tokenizer_options(dir)?;
        (TextTokenizer::from_vocab(&vocab, options)?, vocab)
    } else {
        return Err(FolderError::NoTokenizer { dir: dir.to_path_buf() });
    };
    if tokenizer.vocab_size() > vocab_size {
        return Err(FolderError::VocabularyTooLarge {
            path,
            tokens: tokenizer.vocab_size(),
            vocab_size,
        });
    }
    Ok(tokenizer)
}

/// `do_lower_case`, `strip_accents` and `tokenize_chinese_chars` of
/// `tokenizer_config.json`, with BERT's defaults where absent.
fn read_tokenizer_options(dir: &Path) -> Result<BertOptions, FolderError> {
    let path = dir.join(TOKENIZER_CONFIG_FILE);
    let defaults = BertOptions::default();
    if !path.is_file() {
        return Ok(defaults);
    }
    let value: Value = read_json(&path)?;
    Ok(BertOptions {
        lowercase: value
            .get("do_lower_case")
            .and_then(Value::as_bool)
            .unwrap_or(defaults.lowercase),
        strip_accents: value.get("strip_accents").and_then(Value::as_bool),
        split_chinese: value
            .get("tokenize_chinese_chars")
            .and_then(Value::as_bool)
            .unwrap_or(defaults.split_chinese),
    })
}

/// `model_max_length` of `tokenizer_config.json`, when it is a real limit.
pub fn tokenizer_max_length(dir: &Path) -> Option<usize> {
    let value: Value = read_json(&dir.join(TOKENIZER_CONFIG_FILE)).ok()?;
    value
        .get("model_max_length")
        .and_then(Value::as_u64)
        .filter(|length| *length <= 1_000_000)
        .map(|length| length as usize)
}

/// Weights of a folder under labelaug's names, and the file they came from.
pub struct Weights {
    pub tensors: HashMap<String, Tensor>,
    pub path: PathBuf,
}

/// Loads the weights under labelaug's parameter names (no `bert.` prefix,
/// `weight`/`bias` for LayerNorm), dropping buffers such as `position_ids`.
pub fn read_weights(dir: &Path, device: &Device) -> Result<Weights, FolderError> {
    let safetensors = dir.join(SAFETENSORS_FILE);
    let pytorch = dir.join(PYTORCH_FILE);
    let (tensors, path) = if safetensors.is_file() {
        let tensors = candle_core::safetensors::load(&safetensors, device);
        (tensors.map(|map| map.into_iter().collect::<Vec<_>>()), safetensors)
    } else if pytorch.is_file() {
        (candle_core::pickle::read_all(&pytorch), pytorch)
    } else {
        return Err(FolderError::NoWeights { dir: dir.to_path_buf() });
    };
    let tensors = tensors.map_err(|source| FolderError::Weights {
        path: path.clone(),
        source,
    })?;
    let mut named = HashMap::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        if let Some(name) = internal_name(&name) {
            let tensor = tensor.to_device(device).map_err(|source| FolderError::Weights {
                path: path.clone(),
                source,
            })?;
            named.insert(name, tensor);
        }
    }
    Ok(Weights { tensors: named, path })
}

/// labelaug's name for a checkpoint tensor, `None` for buffers.
fn internal_name(name: &str) -> Option<String> {
    let name = name.strip_prefix(ENCODER_PREFIX).unwrap_or(name);
    if name.ends_with("position_ids") || name.ends_with("token_type_ids") {
        return None;
    }
    let renamed = if let Some(stem) = name.strip_suffix(".gamma") {
        format!("{stem}.weight")
    } else if let Some(stem) = name.strip_suffix(".beta") {
        format!("{stem}.bias")
    } else {
        name.to_string()
    };
    Some(renamed)
}

/// File of an exported folder that a labelaug parameter belongs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportedFile {
    /// `model.safetensors`: encoder, pooler and classifier.
    Model,
    /// The auxiliary heads' file (the LM head of the seq2seq and MLM tasks).
    Auxiliary,
}

/// Returns the name a `BertForSequenceClassification` checkpoint gives a labelaug
/// parameter, and the file it belongs in.
pub fn hf_tensor_name(name: &str) -> (ExportedFile, String) {
    if name.starts_with("classifier.") {
        (ExportedFile::Model, name.to_string())
    } else if name.starts_with("cls.") {
        (ExportedFile::Auxiliary, name.to_string())
    } else {
        (ExportedFile::Model, format!("{ENCODER_PREFIX}{name}"))
    }
}

fn read_json<T: for<'de> serde::Deserialize<'de>>(path: &Path) -> Result<T, FolderError> {
    let bytes = fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => FolderError::Missing {
            path: path.to_path_buf(),
        },
        _ => FolderError::Read {
            path: path.to_path_buf(),
            source,
        },
    })?;
    serde_json::from_slice(&bytes).map_err(|e| FolderError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_names_map_to_parameters() {
        assert_eq!(
            internal_name("bert.encoder.layer.0.attention.self.query.weight").as_deref(),
            Some("encoder.layer.0.attention.self.query.weight")
        );
        assert_eq!(
            internal_name("embeddings.LayerNorm.gamma").as_deref(),
            Some("embeddings.LayerNorm.weight")
        );
        assert_eq!(
            internal_name("bert.encoder.layer.3.output.LayerNorm.beta").as_deref(),
            Some("encoder.layer.3.output.LayerNorm.bias")
        );
        assert_eq!(internal_name("classifier.weight").as_deref(), Some("classifier.weight"));
        assert_eq!(internal_name("bert.embeddings.position_ids"), None);
    }

    #[test]
    fn exported_names_follow_sequence_classification() {
        assert_eq!(
            hf_tensor_name("pooler.dense.weight"),
            (ExportedFile::Model, "bert.pooler.dense.weight".to_string())
        );
        assert_eq!(
            hf_tensor_name("classifier.bias"),
            (ExportedFile::Model, "classifier.bias".to_string())
        );
        assert_eq!(
            hf_tensor_name("cls.predictions.bias"),
            (ExportedFile::Auxiliary, "cls.predictions.bias".to_string())
        );
        for name in ["embeddings.word_embeddings.weight", "classifier.weight", "cls.predictions.transform.dense.bias"] {
            let (_, exported) = hf_tensor_name(name);
            assert_eq!(internal_name(&exported).as_deref(), Some(name));
        }
    }

    fn write_config(dir: &Path, extra: Value) {
        let mut config = serde_json::json!({
            "model_type": "bert",
            "vocab_size": 30,
            "hidden_size": 8,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 16,
            "max_position_embeddings": 32,
        });
        if let (Some(target), Value::Object(extra)) = (config.as_object_mut(), extra) {
            target.extend(extra);
        }
        fs::write(dir.join(CONFIG_FILE), config.to_string()).unwrap();
    }

    #[test]
    fn other_model_types_and_settings_are_named() {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), serde_json::json!({"model_type": "roberta"}));
        let error = read_config(dir.path()).unwrap_err().to_string();
        assert!(error.contains("\"roberta\""), "{error}");
        assert!(error.contains("config.json"), "{error}");

        write_config(dir.path(), serde_json::json!({"architectures": ["GPT2LMHeadModel"]}));
        let error = read_config(dir.path()).unwrap_err().to_string();
        assert!(error.contains("GPT2LMHeadModel"), "{error}");

        write_config(dir.path(), serde_json::json!({"hidden_act": "relu"}));
        let error = read_config(dir.path()).unwrap_err().to_string();
        assert!(error.contains("hidden_act \"relu\""), "{error}");

        write_config(dir.path(), serde_json::json!({"position_embedding_type": "relative_key"}));
        let error = read_config(dir.path()).unwrap_err().to_string();
        assert!(error.contains("relative_key"), "{error}");
    }

    #[test]
    fn id2label_gives_names_in_index_order() {
        let dir = tempfile::tempdir().unwrap();
        write_config(
            dir.path(),
            serde_json::json!({"id2label": {"1": "b", "0": "a", "2": "c"}, "max_length": 24}),
        );
        let config = read_config(dir.path()).unwrap();
        assert_eq!(config.labels, Some(vec!["a".to_string(), "b".to_string(), "c".to_string()]));
        // Without training.json the max_length is transformers' generation setting.
        assert_eq!(config.max_length, None);
        fs::write(dir.path().join(TRAINING_FILE), "{}").unwrap();
        assert_eq!(read_config(dir.path()).unwrap().max_length, Some(24));

        write_config(dir.path(), serde_json::json!({"id2label": {"0": "a", "5": "b"}}));
        let error = read_config(dir.path()).unwrap_err().to_string();
        assert!(error.contains("\"5\""), "{error}");

        write_config(dir.path(), serde_json::json!({"id2label": {"0": "a", "00": "b"}}));
        let error = read_config(dir.path()).unwrap_err().to_string();
        assert!(error.contains("twice"), "{error}");
    }

    #[test]
    fn oversized_shapes_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), serde_json::json!({"vocab_size": 1_000_000_000u64}));
        let error = read_config(dir.path()).unwrap_err().to_string();
        assert!(error.contains("vocab_size 1000000000"), "{error}");
    }

    #[test]
    fn missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let error = read_config(dir.path()).unwrap_err().to_string();
        assert!(error.contains("config.json"), "{error}");
        assert!(error.contains("does not exist"), "{error}");
        let error = read_weights(dir.path(), &Device::Cpu).err().unwrap().to_string();
        assert!(error.contains("model.safetensors"), "{error}");
        assert!(error.contains("pytorch_model.bin"), "{error}");
        let error = read_tokenizer(dir.path(), 100).err().unwrap().to_string();
        assert!(error.contains("vocab.txt"), "{error}");
    }

    #[test]
    fn vocab_txt_follows_tokenizer_config() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cafe", "café", "银", "行"];
        fs::write(dir.path().join(VOCAB_FILE), tokens.join("\n")).unwrap();
        let tokenizer = read_tokenizer(dir.path(), 30).unwrap();
        assert_eq!(tokenizer.tokens("CAFÉ 银行").unwrap(), vec!["cafe", "银", "行"]);
        assert_eq!(tokenizer.special().cls, 2);

        fs::write(
            dir.path().join(TOKENIZER_CONFIG_FILE),
            r#"{"do_lower_case": false, "strip_accents": false}"#,
        )
        .unwrap();
        let cased = read_tokenizer(dir.path(), 30).unwrap();
        assert_eq!(cased.tokens("café").unwrap(), vec!["café"]);
        assert_eq!(cased.tokens("Cafe").unwrap(), vec!["[UNK]"]);

        let error = read_tokenizer(dir.path(), 5).err().unwrap().to_string();
        assert!(error.contains("9 tokens"), "{error}");
        assert!(error.contains("vocab_size 5"), "{error}");
    }
}
