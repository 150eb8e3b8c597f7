//! BERT encoder: token, position and segment embeddings, then layers of
//! multi-head self-attention under a per-example mask and a GELU
//! feed-forward block, each followed by a residual connection and LayerNorm.

use candle_core::{D, Result, Tensor};

use super::config::EncoderConfig;
use super::layers::{ForwardMode, INIT_STDEV, LayerNorm, Linear};
use super::params::{Init, ParamStore};

struct Embeddings {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    norm: LayerNorm,
    dropout: f32,
}

impl Embeddings {
    fn new(params: &mut ParamStore, config: &EncoderConfig) -> Result<Self> {
        let hidden = config.hidden_size;
        let normal = Init::Normal(INIT_STDEV);
        Ok(Self {
            word: params.get(
                "embeddings.word_embeddings.weight",
                &[config.vocab_size, hidden],
                normal,
            )?,
            position: params.get(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, hidden],
                normal,
            )?,
            token_type: params.get(
                "embeddings.token_type_embeddings.weight",
                &[config.type_vocab_size, hidden],
                normal,
            )?,
            norm: LayerNorm::new(params, "embeddings.LayerNorm", hidden, config.layer_norm_eps)?,
            dropout: config.hidden_dropout_prob,
        })
    }

    fn forward(&self, ids: &Tensor, type_ids: &Tensor, mode: &mut ForwardMode) -> Result<Tensor> {
        let (batch, length) = ids.dims2()?;
        let hidden = self.word.dim(1)?;
        let words = self
            .word
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((batch, length, hidden))?;
        let types = self
            .token_type
            .index_select(&type_ids.flatten_all()?, 0)?
            .reshape((batch, length, hidden))?;
        let positions = self.position.narrow(0, 0, length)?.unsqueeze(0)?;
        let sum = words.add(&types)?.broadcast_add(&positions)?;
        mode.dropout(&self.norm.forward(&sum)?, self.dropout)
    }
}

struct SelfAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    norm: LayerNorm,
    heads: usize,
    head_size: usize,
    attention_dropout: f32,
    hidden_dropout: f32,
}

impl SelfAttention {
    fn new(params: &mut ParamStore, prefix: &str, config: &EncoderConfig) -> Result<Self> {
        let hidden = config.hidden_size;
        Ok(Self {
            query: Linear::new(params, &format!("{prefix}.self.query"), hidden, hidden)?,
            key: Linear::new(params, &format!("{prefix}.self.key"), hidden, hidden)?,
            value: Linear::new(params, &format!("{prefix}.self.value"), hidden, hidden)?,
            output: Linear::new(params, &format!("{prefix}.output.dense"), hidden, hidden)?,
            norm: LayerNorm::new(
                params,
                &format!("{prefix}.output.LayerNorm"),
                hidden,
                config.layer_norm_eps,
            )?,
            heads: config.num_attention_heads,
            head_size: config.head_size(),
            attention_dropout: config.attention_probs_dropout_prob,
            hidden_dropout: config.hidden_dropout_prob,
        })
    }

    /// `[B, L, H]` to `[B, heads, L, head_size]`.
    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (batch, length, _) = x.dims3()?;
        x.reshape((batch, length, self.heads, self.head_size))?
            .transpose(1, 2)?
            .contiguous()
    }

    fn forward(&self, x: &Tensor, bias: &Tensor, mode: &mut ForwardMode) -> Result<Tensor> {
        let (batch, length, hidden) = x.dims3()?;
        let query = self.split_heads(&self.query.forward(x)?)?;
        let key = self.split_heads(&self.key.forward(x)?)?;
        let value = self.split_heads(&self.value.forward(x)?)?;
        let scale = 1.0 / (self.head_size as f64).sqrt();
        let scores = query
            .matmul(&key.t()?)?
            .affine(scale, 0.0)?
            .broadcast_add(bias)?;
        let weights = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let weights = mode.dropout(&weights, self.attention_dropout)?;
        let context = weights
            .matmul(&value)?
            .transpose(1, 2)?
            .reshape((batch, length, hidden))?;
        let projected = mode.dropout(&self.output.forward(&context)?, self.hidden_dropout)?;
        self.norm.forward(&projected.add(x)?)
    }
}

struct Layer {
    attention: SelfAttention,
    intermediate: Linear,
    output: Linear,
    norm: LayerNorm,
    dropout: f32,
}

impl Layer {
    fn new(params: &mut ParamStore, index: usize, config: &EncoderConfig) -> Result<Self> {
        let prefix = format!("encoder.layer.{index}");
        let hidden = config.hidden_size;
        let inner = config.intermediate_size;
        Ok(Self {
            attention: SelfAttention::new(params, &format!("{prefix}.attention"), config)?,
            intermediate: Linear::new(params, &format!("{prefix}.intermediate.dense"), hidden, inner)?,
            output: Linear::new(params, &format!("{prefix}.output.dense"), inner, hidden)?,
            norm: LayerNorm::new(
                params,
                &format!("{prefix}.output.LayerNorm"),
                hidden,
                config.layer_norm_eps,
            )?,
            dropout: config.hidden_dropout_prob,
        })
    }

    fn forward(&self, x: &Tensor, bias: &Tensor, mode: &mut ForwardMode) -> Result<Tensor> {
        let attended = self.attention.forward(x, bias, mode)?;
        let inner = self.intermediate.forward(&attended)?.gelu_erf()?;
        let output = mode.dropout(&self.output.forward(&inner)?, self.dropout)?;
        self.norm.forward(&output.add(&attended)?)
    }
}

/// The encoder stack. `forward` returns the final hidden states `[B, L, H]`.
pub struct Encoder {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    config: EncoderConfig,
}

impl Encoder {
    pub fn new(params: &mut ParamStore, config: &EncoderConfig) -> Result<Self> {
        if config.hidden_size % config.num_attention_heads != 0 {
            candle_core::bail!(
                "hidden size {} is not a multiple of the {} attention heads",
                config.hidden_size,
                config.num_attention_heads
            );
        }
        let embeddings = Embeddings::new(params, config)?;
        let layers = (0..config.num_hidden_layers)
            .map(|index| Layer::new(params, index, config))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embeddings,
            layers,
            config: config.clone(),
        })
    }

    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// Returns the word embedding table, shared with the tied LM decoder.
    pub fn word_embeddings(&self) -> &Tensor {
        &self.embeddings.word
    }

    /// Encodes `ids` and `type_ids` (`[B, L]`, u32) under the additive
    /// attention bias `[B, 1, L, L]`.
    pub fn forward(
        &self,
        ids: &Tensor,
        type_ids: &Tensor,
        bias: &Tensor,
        mode: &mut ForwardMode,
    ) -> Result<Tensor> {
        let length = ids.dim(1)?;
        if length > self.config.max_position_embeddings {
            candle_core::bail!(
                "input of {length} tokens exceeds the encoder's {} positions",
                self.config.max_position_embeddings
            );
        }
        let mut hidden = self.embeddings.forward(ids, type_ids, mode)?;
        for layer in &self.layers {
            hidden = layer.forward(&hidden, bias, mode)?;
        }
        Ok(hidden)
    }
}
