//! The classifier: encoder, pooler (`tanh(W h_[CLS] + b)`), a linear
//! classification head, and the LM head of the seq2seq task (dense, GELU,
//! LayerNorm, decoder tied to the word embeddings, own bias).

use candle_core::{Result, Tensor};

use super::config::EncoderConfig;
use super::encoder::Encoder;
use super::layers::{ForwardMode, LayerNorm, Linear};
use super::params::{Init, ParamStore};

struct LmHead {
    transform: Linear,
    norm: LayerNorm,
    bias: Tensor,
}

impl LmHead {
    fn new(params: &mut ParamStore, config: &EncoderConfig) -> Result<Self> {
        let hidden = config.hidden_size;
        Ok(Self {
            transform: Linear::new(params, "cls.predictions.transform.dense", hidden, hidden)?,
            norm: LayerNorm::new(
                params,
                "cls.predictions.transform.LayerNorm",
                hidden,
                config.layer_norm_eps,
            )?,
            bias: params.get("cls.predictions.bias", &[config.vocab_size], Init::Zeros)?,
        })
    }

    fn forward(&self, hidden: &Tensor, word_embeddings: &Tensor) -> Result<Tensor> {
        let transformed = self.norm.forward(&self.transform.forward(hidden)?.gelu_erf()?)?;
        transformed
            .matmul(&word_embeddings.t()?)?
            .broadcast_add(&self.bias)
    }
}

/// Encoder states and class logits of one forward pass.
pub struct ClassifierOutput {
    /// Final hidden states `[B, L, H]`.
    pub hidden: Tensor,
    /// Pooled `[CLS]` states `[B, H]`, before dropout.
    pub pooled: Tensor,
    /// Class logits `[B, C]` from the pooled `[CLS]` state.
    pub logits: Tensor,
}

pub struct TextClassifier {
    encoder: Encoder,
    pooler: Linear,
    classifier: Linear,
    lm_head: Option<LmHead>,
    classifier_dropout: f32,
}

impl TextClassifier {
    /// Builds the model on `params`; the LM head only when a task needs it.
    pub fn new(
        params: &mut ParamStore,
        config: &EncoderConfig,
        num_labels: usize,
        with_lm_head: bool,
    ) -> Result<Self> {
        let encoder = Encoder::new(params, config)?;
        let hidden = config.hidden_size;
        let pooler = Linear::new(params, "pooler.dense", hidden, hidden)?;
        let classifier = Linear::new(params, "classifier", hidden, num_labels)?;
        let lm_head = match with_lm_head {
            true => Some(LmHead::new(params, config)?),
            false => None,
        };
        Ok(Self {
            encoder,
            pooler,
            classifier,
            lm_head,
            classifier_dropout: config.hidden_dropout_prob,
        })
    }

    pub fn config(&self) -> &EncoderConfig {
        self.encoder.config()
    }

    pub fn forward(
        &self,
        ids: &Tensor,
        type_ids: &Tensor,
        bias: &Tensor,
        mode: &mut ForwardMode,
    ) -> Result<ClassifierOutput> {
        let hidden = self.encoder.forward(ids, type_ids, bias, mode)?;
        let cls = hidden.narrow(1, 0, 1)?.squeeze(1)?;
        let pooled = self.pooler.forward(&cls)?.tanh()?;
        let dropped = mode.dropout(&pooled, self.classifier_dropout)?;
        let logits = self.classifier.forward(&dropped)?;
        Ok(ClassifierOutput { hidden, pooled, logits })
    }

    /// Vocabulary logits `[N, V]` for hidden states `[N, H]`.
    pub fn lm_logits(&self, hidden: &Tensor) -> Result<Tensor> {
        match &self.lm_head {
            Some(head) => head.forward(hidden, self.encoder.word_embeddings()),
            None => candle_core::bail!("the model was built without an LM head"),
        }
    }
}
