//! What a training job trains: data, encoder, tasks and hyperparameters,
//! with defaults and validation. Stored as JSON with the job.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::tasks::{ActiveTasks, TaskSetting, build_task};
use crate::data::{FieldMapping, Format};
use crate::model::folder;

/// A request field that failed validation, with the offending value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field} = {value}: {reason}")]
pub struct InvalidField {
    pub field: String,
    pub value: String,
    pub reason: String,
}

impl InvalidField {
    pub fn new(field: &str, value: impl fmt::Display, reason: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// An uploaded file as the trainer reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetFile {
    pub dataset_id: String,
    pub path: PathBuf,
    pub file_name: String,
    pub format: Format,
}

/// A per-label description file and its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DescriptionFile {
    pub file: DatasetFile,
    pub label_field: String,
    pub description_field: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    pub train: DatasetFile,
    pub eval: Option<DatasetFile>,
    pub fields: FieldMapping,
    pub descriptions: Option<DescriptionFile>,
}

/// A BERT-style encoder trained from scratch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScratchEncoder {
    pub num_layers: usize,
    pub hidden_size: usize,
    pub num_heads: usize,
    pub intermediate_size: usize,
    /// Maximum size of the WordPiece vocabulary built from the training data.
    pub vocab_size: usize,
    pub dropout: f32,
}

impl Default for ScratchEncoder {
    fn default() -> Self {
        Self {
            num_layers: 2,
            hidden_size: 128,
            num_heads: 2,
            intermediate_size: 512,
            vocab_size: 8000,
            dropout: 0.1,
        }
    }
}

impl ScratchEncoder {
    pub fn validate(&self) -> Result<(), InvalidField> {
        let field = |name: &str| format!("encoder.scratch.{name}");
        if !(1..=24).contains(&self.num_layers) {
            return Err(InvalidField::new(&field("num_layers"), self.num_layers, "must be 1 to 24"));
        }
        if !(8..=2048).contains(&self.hidden_size) {
            return Err(InvalidField::new(&field("hidden_size"), self.hidden_size, "must be 8 to 2048"));
        }
        if self.num_heads == 0 || self.hidden_size % self.num_heads != 0 {
            return Err(InvalidField::new(
                &field("num_heads"),
                self.num_heads,
                format!("must divide the hidden size {}", self.hidden_size),
            ));
        }
        if !(8..=16384).contains(&self.intermediate_size) {
            return Err(InvalidField::new(
                &field("intermediate_size"),
                self.intermediate_size,
                "must be 8 to 16384",
            ));
        }
        if !(100..=250_000).contains(&self.vocab_size) {
            return Err(InvalidField::new(&field("vocab_size"), self.vocab_size, "must be 100 to 250000"));
        }
        if !(0.0..0.9).contains(&self.dropout) {
            return Err(InvalidField::new(&field("dropout"), self.dropout, "must be at least 0 and below 0.9"));
        }
        Ok(())
    }
}

/// A pretrained checkpoint folder in the Hugging Face layout, already
/// resolved on the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainedEncoder {
    /// The folder the weights, configuration and tokenizer are read from.
    pub dir: PathBuf,
    /// What the request named: the path or `checkpoint:<id>`.
    pub source: String,
}

impl PretrainedEncoder {
    /// Reads the folder's configuration and tokenizer, and checks that the
    /// inputs `hyper` describes fit the encoder's position table (with a
    /// description segment when a task adds one).
    pub fn check(&self, hyper: &Hyperparameters, with_description: bool) -> Result<(), InvalidField> {
        let field = "encoder.pretrained";
        let config = folder::read_config(&self.dir).map_err(|e| InvalidField::new(field, &self.source, e.to_string()))?;
        folder::read_tokenizer(&self.dir, config.encoder.vocab_size)
            .map_err(|e| InvalidField::new(field, &self.source, e.to_string()))?;
        if with_description && config.encoder.type_vocab_size < 2 {
            return Err(InvalidField::new(
                field,
                &self.source,
                format!(
                    "type_vocab_size {} in config.json has no segment 1 for the label description that seq2seq needs",
                    config.encoder.type_vocab_size
                ),
            ));
        }
        let positions = config.encoder.max_position_embeddings;
        let mut needed = hyper.max_length;
        let mut name = "hyperparameters.max_length";
        if with_description {
            needed += hyper.max_description_length;
            name = "hyperparameters.max_length + max_description_length";
        }
        if needed > positions {
            return Err(InvalidField::new(
                name,
                needed,
                format!("must be at most the checkpoint's {positions} positions (max_position_embeddings)"),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EncoderSpec {
    Scratch(ScratchEncoder),
    Pretrained(PretrainedEncoder),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hyperparameters {
    pub epochs: u32,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Fraction of all steps over which the learning rate rises linearly.
    pub warmup_ratio: f64,
    /// Decoupled AdamW weight decay; biases and LayerNorm are not decayed.
    pub weight_decay: f64,
    /// Maximum global gradient norm; 0 disables clipping.
    pub max_grad_norm: f64,
    /// Maximum tokens of a text, `[CLS]` and `[SEP]` included.
    pub max_length: usize,
    /// Maximum tokens of a label description, its `[SEP]` included.
    pub max_description_length: usize,
    pub seed: u64,
}

impl Default for Hyperparameters {
    fn default() -> Self {
        Self {
            epochs: 5,
            batch_size: 32,
            learning_rate: 5e-4,
            warmup_ratio: 0.1,
            weight_decay: 0.01,
            max_grad_norm: 1.0,
            max_length: 128,
            max_description_length: 16,
            seed: 42,
        }
    }
}

impl Hyperparameters {
    pub fn validate(&self) -> Result<(), InvalidField> {
        let field = |name: &str| format!("hyperparameters.{name}");
        if !(1..=1000).contains(&self.epochs) {
            return Err(InvalidField::new(&field("epochs"), self.epochs, "must be 1 to 1000"));
        }
        if !(1..=4096).contains(&self.batch_size) {
            return Err(InvalidField::new(&field("batch_size"), self.batch_size, "must be 1 to 4096"));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return Err(InvalidField::new(
                &field("learning_rate"),
                self.learning_rate,
                "must be above 0 and at most 1",
            ));
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return Err(InvalidField::new(
                &field("warmup_ratio"),
                self.warmup_ratio,
                "must be at least 0 and below 1",
            ));
        }
        if !(0.0..1.0).contains(&self.weight_decay) {
            return Err(InvalidField::new(
                &field("weight_decay"),
                self.weight_decay,
                "must be at least 0 and below 1",
            ));
        }
        if !(self.max_grad_norm >= 0.0 && self.max_grad_norm.is_finite()) {
            return Err(InvalidField::new(
                &field("max_grad_norm"),
                self.max_grad_norm,
                "must be a finite number, at least 0",
            ));
        }
        if !(3..=512).contains(&self.max_length) {
            return Err(InvalidField::new(&field("max_length"), self.max_length, "must be 3 to 512"));
        }
        if !(2..=128).contains(&self.max_description_length) {
            return Err(InvalidField::new(
                &field("max_description_length"),
                self.max_description_length,
                "must be 2 to 128",
            ));
        }
        Ok(())
    }
}

/// Everything a worker needs to run one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSpec {
    pub data: DataSpec,
    pub encoder: EncoderSpec,
    /// Auxiliary tasks by name with their weights and options;
    /// classification is always on.
    pub tasks: BTreeMap<String, TaskSetting>,
    pub hyperparameters: Hyperparameters,
}

impl TrainingSpec {
    pub fn validate(&self) -> Result<(), InvalidField> {
        match &self.encoder {
            EncoderSpec::Scratch(scratch) => scratch.validate()?,
            EncoderSpec::Pretrained(_) => {}
        }
        validate_tasks(&self.tasks)?;
        self.hyperparameters.validate()?;
        if let EncoderSpec::Pretrained(pretrained) = &self.encoder {
            let with_description = ActiveTasks::build(&self.tasks).is_ok_and(|tasks| tasks.needs_description_segment());
            pretrained.check(&self.hyperparameters, with_description)?;
        }
        Ok(())
    }

    pub fn task_weight(&self, task: &str) -> Option<f64> {
        self.tasks.get(task).map(|setting| setting.weight)
    }
}

/// Checks each task's name, weight and options.
pub fn validate_tasks(tasks: &BTreeMap<String, TaskSetting>) -> Result<(), InvalidField> {
    for (task, setting) in tasks {
        let weight = setting.weight;
        if !(weight.is_finite() && weight > 0.0 && weight <= 100.0) {
            return Err(InvalidField::new(
                &format!("tasks[{task}].weight"),
                weight,
                "must be above 0 and at most 100",
            ));
        }
        let built = match build_task(task, &setting.options) {
            Ok(built) => built,
            Err(reason) => {
                let options: Vec<String> = setting.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
                return Err(InvalidField::new(&format!("tasks[{task}]"), options.join(":"), reason));
            }
        };
        let field = format!("tasks[{task}].teacher_model_id");
        match (&setting.teacher, built.needs_model_teacher()) {
            (None, true) => return Err(InvalidField::new(&field, "\"\"", "is required: the id of a finished model")),
            (Some(teacher), false) => {
                return Err(InvalidField::new(&field, &teacher.model_id, "only the distill task takes a teacher"));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Hyperparameters::default().validate(), Ok(()));
        assert_eq!(ScratchEncoder::default().validate(), Ok(()));
    }

    #[test]
    fn out_of_range_value_names_field() {
        let bad = Hyperparameters {
            learning_rate: -1.0,
            ..Hyperparameters::default()
        };
        let error = bad.validate().unwrap_err();
        assert_eq!(error.field, "hyperparameters.learning_rate");
        assert_eq!(error.value, "-1");
        let heads = ScratchEncoder {
            num_heads: 3,
            ..ScratchEncoder::default()
        };
        assert_eq!(heads.validate().unwrap_err().field, "encoder.scratch.num_heads");
    }

    #[test]
    fn unknown_task_option_names_the_task() {
        let mut spec_tasks = BTreeMap::new();
        spec_tasks.insert(
            "similarity".to_string(),
            TaskSetting {
                weight: 1.0,
                options: BTreeMap::from([("temperature".to_string(), 2.0)]),
                teacher: None,
            },
        );
        let error = validate_tasks(&spec_tasks).unwrap_err();
        assert_eq!(error.field, "tasks[similarity]");
        assert!(error.reason.contains("scale"), "{}", error.reason);
    }

    #[test]
    fn only_distill_takes_a_teacher() {
        let setting = |teacher: Option<&str>| TaskSetting {
            weight: 1.0,
            options: BTreeMap::new(),
            teacher: teacher.map(|id| crate::train::tasks::TeacherModel {
                model_id: id.to_string(),
                dir: PathBuf::from("/models").join(id),
            }),
        };
        let without = BTreeMap::from([("distill".to_string(), setting(None))]);
        let error = validate_tasks(&without).unwrap_err();
        assert_eq!(error.field, "tasks[distill].teacher_model_id");
        let with = BTreeMap::from([("distill".to_string(), setting(Some("model-a")))]);
        assert_eq!(validate_tasks(&with), Ok(()));
        let misplaced = BTreeMap::from([("seq2seq".to_string(), setting(Some("model-a")))]);
        let error = validate_tasks(&misplaced).unwrap_err();
        assert_eq!(error.field, "tasks[seq2seq].teacher_model_id");
        assert_eq!(error.value, "model-a");
    }
}
