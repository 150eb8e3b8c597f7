//! The joint loss `L = L_cls + Σ_k w_k · L_k` over one batch, from a single
//! forward pass.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Result, Tensor};

use super::loss::cross_entropy;
use super::tasks::{ActiveTasks, TaskBatch};
use crate::model::{ForwardMode, InputBatch, TextClassifier};
use crate::text::SpecialIds;

/// Name of the classification term in the reported losses.
pub const CLASSIFICATION: &str = "classification";
/// Name of the weighted sum in the reported losses.
pub const TOTAL: &str = "total";

/// Source of a training record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A record of the training file.
    Text,
    /// A label description added by the `description_records` task.
    DescriptionRecord,
    /// A label description paired with the record before it, for the
    /// similarity tasks.
    DescriptionPartner,
}

/// One encoded training record.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// `[CLS] x [SEP]`, or `[CLS] x [SEP] d [SEP]` under a description segment.
    pub ids: Vec<u32>,
    /// Segment of each token (all 0 without a description part).
    pub type_ids: Vec<u32>,
    /// Dense label index.
    pub label: u32,
    pub origin: Origin,
    /// Position among all of a job's encoded records, the key of its
    /// teacher logits.
    pub index: usize,
}

/// The weighted total and each unweighted term by name; a task with
/// nothing in the batch has no term.
pub struct LossTerms {
    pub total: Tensor,
    pub terms: BTreeMap<String, Tensor>,
}

/// Builds the input batch of `examples` in the layout the tasks train with:
/// under the UniLM mask when a task needs the description segment, else
/// under the padding mask.
pub fn training_input(
    examples: &[&Example],
    tasks: &ActiveTasks,
    pad_id: u32,
    dtype: DType,
    device: &Device,
) -> Result<InputBatch> {
    let sequences: Vec<&[u32]> = examples.iter().map(|e| e.ids.as_slice()).collect();
    match tasks.needs_description_segment() {
        true => {
            let type_ids: Vec<Vec<u32>> = examples.iter().map(|e| e.type_ids.clone()).collect();
            InputBatch::seq2seq(&sequences, &type_ids, pad_id, dtype, device)
        }
        false => InputBatch::texts(&sequences, pad_id, dtype, device),
    }
}

/// Inputs of a batch loss besides the model, the records and the tasks.
pub struct LossContext<'a> {
    /// Logits of the model at the end of the previous epoch, by
    /// [`Example::index`].
    pub epoch_teacher: Option<&'a [Vec<f32>]>,
    /// Logits of a finished teacher model, by [`Example::index`].
    pub model_teacher: Option<&'a [Vec<f32>]>,
    pub special: SpecialIds,
    pub dtype: DType,
    pub device: &'a Device,
    /// Seed of the step's random choices, such as the tokens MLM masks.
    pub step_seed: u64,
}

/// Computes the joint loss of `examples` under `tasks`. Classification
/// covers every record except those a task added for its own term.
pub fn joint_loss(
    model: &TextClassifier,
    examples: &[&Example],
    tasks: &ActiveTasks,
    context: &LossContext<'_>,
    mode: &mut ForwardMode,
) -> Result<LossTerms> {
    let device = context.device;
    let input = training_input(examples, tasks, context.special.pad, context.dtype, device)?;
    let output = model.forward(&input.ids, &input.type_ids, &input.bias, mode)?;

    let rows: Vec<u32> = (0..examples.len() as u32)
        .filter(|&i| examples[i as usize].origin != Origin::DescriptionRecord)
        .collect();
    let labels: Vec<u32> = rows.iter().map(|&i| examples[i as usize].label).collect();
    let classification = match rows.len() == examples.len() {
        true => cross_entropy(&output.logits, &labels)?,
        false if rows.is_empty() => Tensor::zeros((), output.logits.dtype(), device)?,
        false => {
            let index = Tensor::new(rows.as_slice(), device)?;
            cross_entropy(&output.logits.index_select(&index, 0)?, &labels)?
        }
    };
    let mut total = classification.clone();
    let mut terms = BTreeMap::new();
    terms.insert(CLASSIFICATION.to_string(), classification);
    let batch = TaskBatch {
        model,
        examples,
        input: &input,
        output: &output,
        epoch_teacher: context.epoch_teacher,
        model_teacher: context.model_teacher,
        special: context.special,
        step_seed: context.step_seed,
        train: mode.is_train(),
        device,
    };
    for (task, weight) in &tasks.tasks {
        if let Some(loss) = task.loss(&batch)? {
            total = (total + (&loss * *weight)?)?;
            terms.insert(task.name().to_string(), loss);
        }
    }
    Ok(LossTerms { total, terms })
}
