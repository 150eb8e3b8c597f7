use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use candle_core::{D, DType, Device};
use tracing::info;

use crate::jobs::{JobsError, Store};
use crate::model::{ArtifactError, ModelArtifact};
use crate::text::{TextError, encode_text};
use crate::train::predict_logits;

/// Default maximum texts in one Classify request, so that one call cannot
/// hold a serving thread for long.
pub const MAX_TEXTS: usize = 256;
/// Default maximum UTF-8 bytes of one text; longer texts are rejected rather
/// than tokenized, since only the first `max_length` tokens are used anyway.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Size limits of Classify requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassifyLimits {
    pub max_texts: usize,
    pub max_text_bytes: usize,
}

impl Default for ClassifyLimits {
    fn default() -> Self {
        Self {
            max_texts: MAX_TEXTS,
            max_text_bytes: MAX_TEXT_BYTES,
        }
    }
}
/// Texts per forward pass.
const CLASSIFY_BATCH: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("model {0} not found")]
    ModelNotFound(String),
    #[error("{field}: {reason}")]
    InvalidRequest { field: String, reason: String },
    #[error(transparent)]
    Store(#[from] JobsError),
    #[error("failed to load model {model_id}: {source}")]
    Load {
        model_id: String,
        source: ArtifactError,
    },
    #[error(transparent)]
    Text(#[from] TextError),
    #[error("model computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
}

#[derive(Debug, Clone, PartialEq)]
pub struct LabelScore {
    pub label: String,
    pub description: String,
    pub probability: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    pub labels: Vec<LabelScore>,
    pub truncated: bool,
}

#[derive(Debug, Clone)]
pub struct ClassifyOutput {
    pub results: Vec<Classification>,
    pub tokenize_ms: f64,
    pub compute_ms: f64,
}

/// Trained models by id, loaded from the store on first use.
pub struct ModelRegistry {
    store: Arc<Store>,
    device: Device,
    cache: Mutex<HashMap<String, Arc<ModelArtifact>>>,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    limits: ClassifyLimits,
}

impl ModelRegistry {
    pub fn new(store: Arc<Store>, device: Device, limits: ClassifyLimits) -> Self {
        Self {
            store,
            device,
            cache: Mutex::new(HashMap::new()),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            limits,
        }
    }

    /// Returns the model `model_id`, loading it if it is not cached.
    pub fn model(&self, model_id: &str) -> Result<Arc<ModelArtifact>, ServeError> {
        if let Some(model) = self.lock().get(model_id) {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(model.clone());
        }
        self.cache_misses.fetch_add(1, Ordering::Relaxed);
        let row = self
            .store
            .model(model_id)?
            .ok_or_else(|| ServeError::ModelNotFound(model_id.to_string()))?;
        let started = Instant::now();
        let artifact = ModelArtifact::load(&row.path, &self.device).map_err(|source| ServeError::Load {
            model_id: model_id.to_string(),
            source,
        })?;
        info!(model_id, seconds = started.elapsed().as_secs_f64(), "model loaded");
        let artifact = Arc::new(artifact);
        self.lock().insert(model_id.to_string(), artifact.clone());
        Ok(artifact)
    }

    /// Lookups served from the cache and lookups that loaded a model.
    pub fn cache_counts(&self) -> (u64, u64) {
        (self.cache_hits.load(Ordering::Relaxed), self.cache_misses.load(Ordering::Relaxed))
    }

    /// Drops a model from the cache, so that its files can be deleted.
    pub fn evict(&self, model_id: &str) {
        self.lock().remove(model_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ModelArtifact>>> {
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Classifies `texts`, returning the `top_k` most probable labels of
    /// each. A text longer than the model's maximum length is truncated, or
    /// rejected when `error_on_truncation` is set.
    pub fn classify(
        &self,
        model_id: &str,
        texts: &[String],
        top_k: usize,
        error_on_truncation: bool,
    ) -> Result<ClassifyOutput, ServeError> {
        validate_texts(texts, self.limits)?;
        let artifact = self.model(model_id)?;
        let special = artifact.tokenizer.special();

        let tokenize_started = Instant::now();
        let encoded = texts
            .iter()
            .map(|text| Ok(encode_text(&artifact.tokenizer.tokenize(text)?, artifact.max_length, special)))
            .collect::<Result<Vec<_>, TextError>>()?;
        let tokenize_ms = tokenize_started.elapsed().as_secs_f64() * 1000.0;
        if error_on_truncation {
            if let Some(index) = encoded.iter().position(|e| e.truncated) {
                return Err(ServeError::InvalidRequest {
                    field: format!("texts[{index}]"),
                    reason: format!(
                        "the text is longer than the model's maximum of {} tokens and error_on_truncation is set",
                        artifact.max_length
                    ),
                });
            }
        }

        let compute_started = Instant::now();
        let top_k = top_k.clamp(1, artifact.labels.len());
        let mut results = Vec::with_capacity(texts.len());
        for chunk in encoded.chunks(CLASSIFY_BATCH) {
            let sequences: Vec<&[u32]> = chunk.iter().map(|e| e.ids.as_slice()).collect();
            let logits = predict_logits(&artifact.model, &sequences, special.pad, &self.device)?;
            let probabilities = candle_nn::ops::softmax(&logits.to_dtype(DType::F64)?, D::Minus1)?.to_vec2::<f64>()?;
            for (row, text) in probabilities.iter().zip(chunk) {
                let mut ranked: Vec<(usize, f64)> = row.iter().copied().enumerate().collect();
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                let labels = ranked
                    .into_iter()
                    .take(top_k)
                    .filter_map(|(index, probability)| {
                        artifact.labels.entry(index).map(|entry| LabelScore {
                            label: entry.value.clone(),
                            description: entry.description.clone(),
                            probability,
                        })
                    })
                    .collect();
                results.push(Classification {
                    labels,
                    truncated: text.truncated,
                });
            }
        }
        Ok(ClassifyOutput {
            results,
            tokenize_ms,
            compute_ms: compute_started.elapsed().as_secs_f64() * 1000.0,
        })
    }
}

fn validate_texts(texts: &[String], limits: ClassifyLimits) -> Result<(), ServeError> {
    if texts.is_empty() {
        return Err(ServeError::InvalidRequest {
            field: "texts".to_string(),
            reason: "at least one text is required".to_string(),
        });
    }
    if texts.len() > limits.max_texts {
        return Err(ServeError::InvalidRequest {
            field: "texts".to_string(),
            reason: format!("{} texts exceed the maximum of {} per request", texts.len(), limits.max_texts),
        });
    }
    for (index, text) in texts.iter().enumerate() {
        if text.len() > limits.max_text_bytes {
            return Err(ServeError::InvalidRequest {
                field: format!("texts[{index}]"),
                reason: format!("{} bytes exceed the maximum of {}", text.len(), limits.max_text_bytes),
            });
        }
        if text.trim().is_empty() {
            return Err(ServeError::InvalidRequest {
                field: format!("texts[{index}]"),
                reason: "text is empty or only whitespace".to_string(),
            });
        }
    }
    Ok(())
}
