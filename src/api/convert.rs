//! Proto messages to domain types and back. Every rejected field is named
//! with its value.

use std::collections::BTreeMap;

use tonic::Status;

use super::status::{invalid, root_error};
use crate::data::{FieldMapping, Format};
use crate::jobs::{DatasetRow, JobRecord, JobState, ModelRow, Store};
use crate::pb;
use crate::train::spec::{
    DataSpec, DatasetFile, DescriptionFile, EncoderSpec, Hyperparameters, PretrainedEncoder, ScratchEncoder,
    TrainingSpec,
};
use crate::model::ModelRoots;
use crate::train::tasks::TeacherModel;
use crate::train::{Evaluation, TaskSetting, task_names};

pub fn format_from_proto(value: i32, field: &str) -> Result<Format, Status> {
    match pb::DataFormat::try_from(value) {
        Ok(pb::DataFormat::Jsonl) => Ok(Format::Jsonl),
        Ok(pb::DataFormat::Clue) => Ok(Format::Clue),
        Ok(pb::DataFormat::Csv) => Ok(Format::Csv),
        Ok(pb::DataFormat::Tsv) => Ok(Format::Tsv),
        Ok(pb::DataFormat::Unspecified) | Err(_) => Err(invalid(field, value, "must be one of JSONL, CLUE, CSV, TSV")),
    }
}

fn dataset_file(store: &Store, id: &str, field: &str) -> Result<DatasetFile, Status> {
    let row: DatasetRow = store
        .dataset(id)
        .map_err(|e| super::status::jobs_error(&e))?
        .ok_or_else(|| Status::not_found(format!("{field}: dataset {id:?} not found; upload it with UploadDataset")))?;
    Ok(DatasetFile {
        dataset_id: row.id,
        path: row.path,
        file_name: row.file_name,
        format: row.format,
    })
}

fn scratch_encoder(request: Option<&pb::ScratchEncoder>) -> ScratchEncoder {
    let defaults = ScratchEncoder::default();
    let Some(request) = request else {
        return defaults;
    };
    let or = |value: u32, default: usize| if value == 0 { default } else { value as usize };
    let hidden_size = or(request.hidden_size, defaults.hidden_size);
    ScratchEncoder {
        num_layers: or(request.num_layers, defaults.num_layers),
        hidden_size,
        num_heads: or(request.num_heads, defaults.num_heads),
        intermediate_size: or(request.intermediate_size, 4 * hidden_size),
        vocab_size: or(request.vocab_size, defaults.vocab_size),
        dropout: request.dropout.unwrap_or(defaults.dropout),
    }
}

fn encoder(store: &Store, roots: &ModelRoots, request: Option<&pb::EncoderSpec>) -> Result<EncoderSpec, Status> {
    use pb::pretrained_encoder::Source;
    let pretrained = match request.and_then(|spec| spec.source.as_ref()) {
        None => return Ok(EncoderSpec::Scratch(ScratchEncoder::default())),
        Some(pb::encoder_spec::Source::Scratch(scratch)) => {
            return Ok(EncoderSpec::Scratch(scratch_encoder(Some(scratch))));
        }
        Some(pb::encoder_spec::Source::Pretrained(pretrained)) => pretrained,
    };
    match &pretrained.source {
        Some(Source::Path(path)) if !path.is_empty() => {
            let dir = roots.resolve(path).map_err(|e| root_error(&e))?;
            Ok(EncoderSpec::Pretrained(PretrainedEncoder {
                dir,
                source: path.clone(),
            }))
        }
        Some(Source::CheckpointId(id)) if !id.is_empty() => {
            let dir = store.pretrained_path(id);
            let well_formed = id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !well_formed || !dir.is_dir() {
                return Err(Status::not_found(format!(
                    "encoder.pretrained.checkpoint_id: checkpoint {id:?} not found; upload it with UploadCheckpoint"
                )));
            }
            Ok(EncoderSpec::Pretrained(PretrainedEncoder {
                dir,
                source: format!("checkpoint:{id}"),
            }))
        }
        _ => Err(invalid(
            "encoder.pretrained",
            "{}",
            "needs a path or a checkpoint_id",
        )),
    }
}

/// Converts a float32 to the float64 nearest its shortest decimal form, so
/// that a weight sent as 0.2 is stored and shown as 0.2.
fn decimal(value: f32) -> f64 {
    value.to_string().parse().unwrap_or(f64::from(value))
}

fn tasks(store: &Store, request: &[pb::TaskSpec]) -> Result<BTreeMap<String, TaskSetting>, Status> {
    let mut tasks = BTreeMap::new();
    for (index, task) in request.iter().enumerate() {
        let field = format!("tasks[{index}].name");
        if !task_names().contains(&task.name.as_str()) {
            let reason = format!("unknown task; known tasks: {}", task_names().join(", "));
            return Err(invalid(&field, &task.name, &reason));
        }
        let teacher = match task.teacher_model_id.as_str() {
            "" => None,
            model_id => {
                let row = store
                    .model(model_id)
                    .map_err(|e| super::status::jobs_error(&e))?
                    .ok_or_else(|| {
                        Status::not_found(format!("tasks[{index}].teacher_model_id: model {model_id:?} not found"))
                    })?;
                Some(TeacherModel {
                    model_id: row.id,
                    dir: row.path,
                })
            }
        };
        let setting = TaskSetting {
            weight: decimal(task.weight),
            options: task.options.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            teacher,
        };
        if tasks.insert(task.name.clone(), setting).is_some() {
            return Err(invalid(&field, &task.name, "task is given twice"));
        }
    }
    Ok(tasks)
}

fn hyperparameters(request: Option<&pb::Hyperparameters>) -> Hyperparameters {
    let defaults = Hyperparameters::default();
    let Some(request) = request else {
        return defaults;
    };
    Hyperparameters {
        epochs: request.epochs.unwrap_or(defaults.epochs),
        batch_size: request.batch_size.map_or(defaults.batch_size, |v| v as usize),
        learning_rate: request.learning_rate.unwrap_or(defaults.learning_rate),
        warmup_ratio: request.warmup_ratio.unwrap_or(defaults.warmup_ratio),
        weight_decay: request.weight_decay.unwrap_or(defaults.weight_decay),
        max_grad_norm: request.max_grad_norm.unwrap_or(defaults.max_grad_norm),
        max_length: request.max_length.map_or(defaults.max_length, |v| v as usize),
        max_description_length: request
            .max_description_length
            .map_or(defaults.max_description_length, |v| v as usize),
        seed: request.seed.unwrap_or(defaults.seed),
    }
}

/// Builds and validates the training specification of a request; the data
/// files themselves are checked by the caller.
pub fn training_spec(
    store: &Store,
    roots: &ModelRoots,
    request: &pb::StartTrainingRequest,
) -> Result<TrainingSpec, Status> {
    if request.train_dataset_id.is_empty() {
        return Err(invalid("train_dataset_id", "\"\"", "is required"));
    }
    let train = dataset_file(store, &request.train_dataset_id, "train_dataset_id")?;
    let eval = match request.eval_dataset_id.is_empty() {
        true => None,
        false => Some(dataset_file(store, &request.eval_dataset_id, "eval_dataset_id")?),
    };
    let fields = request.fields.clone().unwrap_or_default();
    let fields = FieldMapping {
        text: fields.text_field,
        label: fields.label_field,
        description: Some(fields.description_field).filter(|f| !f.is_empty()),
    };
    let descriptions = match &request.label_descriptions {
        Some(file) if !file.dataset_id.is_empty() => Some(DescriptionFile {
            file: dataset_file(store, &file.dataset_id, "label_descriptions.dataset_id")?,
            label_field: file.label_field.clone(),
            description_field: file.description_field.clone(),
        }),
        _ => None,
    };
    let spec = TrainingSpec {
        data: DataSpec {
            train,
            eval,
            fields,
            descriptions,
        },
        encoder: encoder(store, roots, request.encoder.as_ref())?,
        tasks: tasks(store, &request.tasks)?,
        hyperparameters: hyperparameters(request.hyperparameters.as_ref()),
    };
    spec.validate().map_err(|e| super::status::invalid_field(&e))?;
    Ok(spec)
}

fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// Converts the state filter of ListJobs. Unspecified means every state.
pub fn state_from_proto(value: i32) -> Result<Option<JobState>, Status> {
    match pb::JobState::try_from(value) {
        Ok(pb::JobState::Unspecified) => Ok(None),
        Ok(pb::JobState::Queued) => Ok(Some(JobState::Queued)),
        Ok(pb::JobState::Running) => Ok(Some(JobState::Running)),
        Ok(pb::JobState::Succeeded) => Ok(Some(JobState::Succeeded)),
        Ok(pb::JobState::Failed) => Ok(Some(JobState::Failed)),
        Ok(pb::JobState::Cancelled) => Ok(Some(JobState::Cancelled)),
        Err(_) => Err(invalid("state", value, "is not a job state")),
    }
}

pub fn model_to_proto(model: &ModelRow) -> pb::Model {
    pb::Model {
        model_id: model.id.clone(),
        job_id: model.job_id.clone(),
        created_at: Some(timestamp(model.created_at_ms)),
        accuracy: model.accuracy,
        macro_f1: model.macro_f1,
        num_labels: model.num_labels as u32,
        tasks: model.tasks.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        imported_from: model.imported_from.clone().unwrap_or_default(),
    }
}

fn state_to_proto(state: JobState) -> pb::JobState {
    match state {
        JobState::Queued => pb::JobState::Queued,
        JobState::Running => pb::JobState::Running,
        JobState::Succeeded => pb::JobState::Succeeded,
        JobState::Failed => pb::JobState::Failed,
        JobState::Cancelled => pb::JobState::Cancelled,
    }
}

/// Returns the evaluation with the highest accuracy, the earliest on a tie.
pub fn best_evaluation(evaluations: &[Evaluation]) -> Option<&Evaluation> {
    evaluations
        .iter()
        .fold(None, |best: Option<&Evaluation>, e| match best {
            Some(kept) if kept.accuracy >= e.accuracy => Some(kept),
            _ => Some(e),
        })
}

pub fn job_to_proto(job: &JobRecord) -> pb::Job {
    let progress = &job.progress;
    let percent = match (job.state, progress.total_steps) {
        (JobState::Succeeded, _) => 100.0,
        (_, 0) => 0.0,
        (_, total) => 100.0 * progress.step as f64 / total as f64,
    };
    pb::Job {
        job_id: job.id.clone(),
        state: state_to_proto(job.state) as i32,
        epoch: progress.epoch,
        epochs: job.spec.hyperparameters.epochs,
        step: progress.step,
        total_steps: progress.total_steps,
        progress_percent: percent,
        eta_seconds: match job.state {
            JobState::Running => progress.eta_seconds,
            _ => None,
        },
        losses: progress.losses.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        samples_per_second: progress.samples_per_second,
        evaluations: job
            .evaluations
            .iter()
            .map(|e| pb::EpochEvaluation {
                epoch: e.epoch,
                accuracy: e.accuracy,
                macro_f1: e.macro_f1,
                loss: e.loss,
                records: e.records,
            })
            .collect(),
        best_epoch: best_evaluation(&job.evaluations).map(|e| e.epoch),
        model_id: job.model_id.clone().unwrap_or_default(),
        error: job.error.clone().unwrap_or_default(),
        created_at: Some(timestamp(job.created_at_ms)),
        started_at: job.started_at_ms.map(timestamp),
        finished_at: job.finished_at_ms.map(timestamp),
    }
}
