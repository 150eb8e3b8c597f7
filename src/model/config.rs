//! Encoder hyperparameters, stored as a Hugging Face BERT `config.json`.

use serde::{Deserialize, Serialize};

/// Shape of a BERT encoder. Field names match Hugging Face `BertConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub hidden_dropout_prob: f32,
    #[serde(default)]
    pub attention_probs_dropout_prob: f32,
    #[serde(default)]
    pub pad_token_id: u32,
}

fn default_type_vocab_size() -> usize {
    2
}

fn default_layer_norm_eps() -> f64 {
    1e-12
}

impl EncoderConfig {
    pub fn head_size(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}
