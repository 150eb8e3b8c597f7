//! The joint loss `L = L_cls + Σ_k w_k · L_k` over one batch, from a single
//! forward pass.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Result, Tensor};

use super::loss::{cross_entropy, seq2seq_loss, seq2seq_targets};
use super::spec::TaskKind;
use crate::model::{ForwardMode, InputBatch, TextClassifier};

/// Name of the classification term in the reported losses.
pub const CLASSIFICATION: &str = "classification";
/// Name of the weighted sum in the reported losses.
pub const TOTAL: &str = "total";

/// One encoded training record.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// `[CLS] x [SEP]`, or `[CLS] x [SEP] d [SEP]` when the seq2seq task is on.
    pub ids: Vec<u32>,
    /// Segment of each token (all 0 without a description part).
    pub type_ids: Vec<u32>,
    /// Dense label index.
    pub label: u32,
}

/// The weighted total and each unweighted term by name.
pub struct LossTerms {
    pub total: Tensor,
    pub terms: BTreeMap<String, Tensor>,
}

/// Computes the joint loss of `examples` under `tasks`.
pub fn joint_loss(
    model: &TextClassifier,
    examples: &[&Example],
    tasks: &BTreeMap<TaskKind, f64>,
    pad_id: u32,
    dtype: DType,
    device: &Device,
    mode: &mut ForwardMode,
) -> Result<LossTerms> {
    let sequences: Vec<&[u32]> = examples.iter().map(|e| e.ids.as_slice()).collect();
    let type_ids: Vec<Vec<u32>> = examples.iter().map(|e| e.type_ids.clone()).collect();
    let labels: Vec<u32> = examples.iter().map(|e| e.label).collect();
    let seq2seq = tasks.get(&TaskKind::Seq2seq).copied();
    let batch = match seq2seq {
        Some(_) => InputBatch::seq2seq(&sequences, &type_ids, pad_id, dtype, device)?,
        None => InputBatch::texts(&sequences, pad_id, dtype, device)?,
    };
    let output = model.forward(&batch.ids, &batch.type_ids, &batch.bias, mode)?;

    let classification = cross_entropy(&output.logits, &labels)?;
    let mut total = classification.clone();
    let mut terms = BTreeMap::new();
    terms.insert(CLASSIFICATION.to_string(), classification);
    if let Some(weight) = seq2seq {
        let (rows, targets) = seq2seq_targets(&sequences, &type_ids, batch.length);
        let loss = seq2seq_loss(model, &output.hidden, &rows, &targets, device)?;
        total = (total + (&loss * weight)?)?;
        terms.insert(TaskKind::Seq2seq.name().to_string(), loss);
    }
    Ok(LossTerms { total, terms })
}
