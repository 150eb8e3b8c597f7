//! Auxiliary tasks of the joint loss. Each task turns a batch and the
//! encoder's outputs into one named loss term, and may ask for a batch
//! layout (a description segment), for extra records, or for each record to
//! be followed by a record of its label's description.
//!
//! A new task is one file with a type implementing [`Task`] and one line in
//! [`REGISTRY`].

mod description_records;
mod distill;
mod mlm;
mod seq2seq;
mod similarity;

use std::collections::BTreeMap;

use candle_core::{Device, Result, Tensor};
use serde::{Deserialize, Serialize};

use crate::model::{ClassifierOutput, InputBatch, TextClassifier};
use crate::text::SpecialIds;

use super::objective::Example;

/// Weight and options of one task in a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSetting {
    pub weight: f64,
    /// Named numeric options, such as the similarity `scale`.
    #[serde(default)]
    pub options: BTreeMap<String, f64>,
    /// The finished model a `distill` task learns from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<TeacherModel>,
}

/// A finished model used as a teacher, with its folder on the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeacherModel {
    pub model_id: String,
    pub dir: std::path::PathBuf,
}

/// One training batch and the forward pass over it.
pub struct TaskBatch<'a> {
    pub model: &'a TextClassifier,
    pub examples: &'a [&'a Example],
    pub input: &'a InputBatch,
    pub output: &'a ClassifierOutput,
    /// Logits of the model at the end of the previous epoch for every
    /// record by [`Example::index`], from the second epoch on.
    pub epoch_teacher: Option<&'a [Vec<f32>]>,
    /// Logits of a finished teacher model for every record by
    /// [`Example::index`], when a task asked for one.
    pub model_teacher: Option<&'a [Vec<f32>]>,
    pub special: SpecialIds,
    /// Seed of the step's random choices.
    pub step_seed: u64,
    /// True in training (dropout on), false in evaluation and checks.
    pub train: bool,
    pub device: &'a Device,
}

pub trait Task: Send + Sync {
    fn name(&self) -> &'static str;

    /// Returns true when inputs must carry the label description as
    /// segment 1 under the UniLM mask.
    fn needs_description_segment(&self) -> bool {
        false
    }

    /// Returns true when each epoch adds one record (description, label)
    /// per label.
    fn adds_description_records(&self) -> bool {
        false
    }

    /// Returns true when each record must be followed in its batch by a
    /// record of its label's description, so that records `2k` and `2k + 1`
    /// are partners.
    fn pairs_with_descriptions(&self) -> bool {
        false
    }

    /// Returns true when the task uses the LM head.
    fn needs_lm_head(&self) -> bool {
        false
    }

    /// Returns true when the task uses teacher logits from the model as it
    /// was at the end of the previous epoch.
    fn needs_epoch_teacher(&self) -> bool {
        false
    }

    /// Returns true when the task uses teacher logits from a finished model.
    fn needs_model_teacher(&self) -> bool {
        false
    }

    /// Computes the task's unweighted loss on the batch, or returns `None`
    /// when the batch contains nothing for this task.
    fn loss(&self, batch: &TaskBatch<'_>) -> Result<Option<Tensor>>;
}

/// Builds a task from its options; the error names the bad option.
type Constructor = fn(&BTreeMap<String, f64>) -> std::result::Result<Box<dyn Task>, String>;

/// Every task by name.
pub const REGISTRY: &[(&str, Constructor)] = &[
    ("seq2seq", seq2seq::build),
    ("similarity", similarity::build_plain),
    ("similarity_masked", similarity::build_masked),
    ("description_records", description_records::build),
    ("mlm", mlm::build),
    ("self_distill", distill::build_epoch),
    ("distill", distill::build_model),
];

/// Names of the registered tasks, for error messages.
pub fn task_names() -> Vec<&'static str> {
    REGISTRY.iter().map(|(name, _)| *name).collect()
}

/// Builds the task `name`, or returns why it cannot be built.
pub fn build_task(name: &str, options: &BTreeMap<String, f64>) -> std::result::Result<Box<dyn Task>, String> {
    match REGISTRY.iter().find(|(known, _)| *known == name) {
        Some((_, constructor)) => constructor(options),
        None => Err(format!("unknown task; known tasks: {}", task_names().join(", "))),
    }
}

/// Rejects options a task does not know.
pub(crate) fn check_options(options: &BTreeMap<String, f64>, known: &[&str]) -> std::result::Result<(), String> {
    for name in options.keys() {
        if !known.contains(&name.as_str()) {
            let accepted = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            return Err(format!("unknown option {name:?}; accepted options: {accepted}"));
        }
    }
    Ok(())
}

/// A job's tasks, built once, with their weights.
pub struct ActiveTasks {
    pub tasks: Vec<(Box<dyn Task>, f64)>,
}

impl ActiveTasks {
    pub fn build(settings: &BTreeMap<String, TaskSetting>) -> std::result::Result<Self, String> {
        let tasks = settings
            .iter()
            .map(|(name, setting)| Ok((build_task(name, &setting.options)?, setting.weight)))
            .collect::<std::result::Result<Vec<_>, String>>()?;
        Ok(Self { tasks })
    }

    fn any(&self, predicate: impl Fn(&dyn Task) -> bool) -> bool {
        self.tasks.iter().any(|(task, _)| predicate(task.as_ref()))
    }

    pub fn needs_description_segment(&self) -> bool {
        self.any(|t| t.needs_description_segment())
    }

    pub fn adds_description_records(&self) -> bool {
        self.any(|t| t.adds_description_records())
    }

    pub fn pairs_with_descriptions(&self) -> bool {
        self.any(|t| t.pairs_with_descriptions())
    }

    pub fn needs_lm_head(&self) -> bool {
        self.any(|t| t.needs_lm_head())
    }

    pub fn needs_epoch_teacher(&self) -> bool {
        self.any(|t| t.needs_epoch_teacher())
    }

    pub fn needs_model_teacher(&self) -> bool {
        self.any(|t| t.needs_model_teacher())
    }
}

/// Returns the teacher model of a job's `distill` task, if it has one.
pub fn model_teacher(settings: &BTreeMap<String, TaskSetting>) -> Option<&TeacherModel> {
    settings.values().find_map(|setting| setting.teacher.as_ref())
}
