//! The training loop: tokenizer, encoding, model, joint loss, AdamW with a
//! linear schedule and clipping, evaluation after each epoch, and the best
//! epoch's weights saved as the model.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tracing::info;

use super::checkpoint::{self, Checkpoint, CheckpointError, RngState, TrainingState};
use super::dataset::{TrainingData, load_training_data};
use super::metrics::{accuracy, macro_f1};
use super::objective::{Example, LossContext, Origin, TOTAL, joint_loss, training_input};
use super::teacher::{TeacherError, teacher_logits as model_teacher_logits};
use super::optim::AdamW;
use super::progress::{Evaluation, Progress, ProgressSink};
use super::schedule::LinearSchedule;
use super::spec::{EncoderSpec, TrainingSpec};
use super::tasks::{ActiveTasks, model_teacher as model_teacher_setting};
use crate::data::{DataError, LabelMap, RawRecord};
use crate::model::folder::{self, FolderError};
use crate::model::{
    ArtifactError, EncoderConfig, ForwardMode, InputBatch, ModelArtifact, ModelMetadata, ModelParts,
    ParamStore, TextClassifier,
};
use crate::text::{TextError, TextTokenizer, encode_pair, encode_text};

/// Records per forward pass during evaluation.
pub(crate) const EVAL_BATCH_SIZE: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Text(#[from] TextError),
    #[error("tensor computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error(transparent)]
    Folder(#[from] FolderError),
    #[error(transparent)]
    Teacher(#[from] TeacherError),
    #[error("the job was cancelled")]
    Cancelled,
    #[error("the job was suspended for a server shutdown")]
    Suspended,
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("loss became {value} at step {step}; lower the learning rate")]
    NonFiniteLoss { step: u64, value: f64 },
}

/// Requests to a running job, checked before every step.
#[derive(Debug, Default)]
pub struct JobControl {
    /// Stop and publish nothing.
    pub cancel: AtomicBool,
    /// Write a checkpoint and stop, to continue after a restart.
    pub suspend: AtomicBool,
}

/// Identity, output folder, device and controls of one training run.
pub struct TrainContext<'a> {
    pub job_id: &'a str,
    pub model_id: &'a str,
    /// Folder the finished model is written to; must not exist yet.
    pub model_dir: PathBuf,
    pub device: &'a Device,
    pub control: &'a JobControl,
    pub progress: &'a dyn ProgressSink,
    /// Folder of the job's checkpoints; a checkpoint found there is resumed.
    pub checkpoint_dir: PathBuf,
    /// Time between two checkpoints inside an epoch; one is also written
    /// after every epoch.
    pub checkpoint_interval: Duration,
}

pub struct TrainOutcome {
    pub evaluations: Vec<Evaluation>,
    pub best: Option<Evaluation>,
    pub num_labels: usize,
}

/// Runs a whole job and writes the model.
pub fn train(spec: &TrainingSpec, context: &TrainContext<'_>) -> Result<TrainOutcome, TrainError> {
    let data = load_training_data(&spec.data)?;
    let hyper = &spec.hyperparameters;
    let started = Instant::now();
    let encoder = prepare_encoder(spec, &data, context.device)?;
    let tokenizer = encoder.tokenizer;

    let tasks = ActiveTasks::build(&spec.tasks).map_err(|reason| TrainError::Tensor(candle_core::Error::Msg(reason)))?;
    let with_description = tasks.needs_description_segment();
    let examples = encode_examples(&data.train, &data.labels, &tokenizer, spec, with_description)?;
    let descriptions = encode_descriptions(&data.labels, &tokenizer, spec, with_description, examples.len())?;
    // Every encoded record in index order, for teacher logits.
    let all: Vec<&Example> = examples
        .iter()
        .chain(descriptions.iter().map(|(record, _)| record))
        .chain(descriptions.iter().map(|(_, partner)| partner))
        .collect();
    let mut pool: Vec<&Example> = examples.iter().collect();
    if tasks.adds_description_records() {
        pool.extend(descriptions.iter().map(|(record, _)| record));
    }
    let eval = encode_eval(&data.eval, &data.labels, &tokenizer, hyper.max_length)?;

    let config = encoder.config;
    let dtype = DType::F32;
    let mut params = encoder.params;
    let model = TextClassifier::new(&mut params, &config, data.labels.len(), tasks.needs_lm_head())?;
    if let EncoderSpec::Pretrained(pretrained) = &spec.encoder {
        // Only heads may be missing: an encoder tensor that is not in the
        // checkpoint means its names are not BERT's.
        let head = |name: &&String| ["classifier.", "pooler.", "cls."].iter().any(|p| name.starts_with(p));
        let missing: Vec<&String> = params.initialised().iter().filter(|name| !head(name)).collect();
        if let Some(first) = missing.first() {
            return Err(TrainError::Folder(FolderError::Invalid {
                path: pretrained.dir.clone(),
                message: format!(
                    "the weights lack {first} and {} more encoder tensors; tensor names must be a BERT model's, \
                     with or without the bert. prefix",
                    missing.len() - 1
                ),
            }));
        }
        info!(
            checkpoint = %pretrained.source,
            initialised = ?params.initialised(),
            unused = ?params.unused(),
            "pretrained encoder loaded"
        );
    }
    let mut optimizer = AdamW::new(params.vars().iter(), hyper.weight_decay)?;
    let parameter_count: usize = params.vars().values().map(|v| v.elem_count()).sum();
    info!(
        parameters = parameter_count,
        train_records = examples.len(),
        eval_records = eval.len(),
        labels = data.labels.len(),
        "model initialised"
    );

    let steps_per_epoch = pool.len().div_ceil(hyper.batch_size) as u64;
    let total_steps = steps_per_epoch * hyper.epochs as u64;
    let schedule = LinearSchedule::new(hyper.learning_rate, hyper.warmup_ratio, total_steps);
    let special = tokenizer.special();
    let pad_id = special.pad;
    let model_teacher = match model_teacher_setting(&spec.tasks) {
        Some(teacher) if tasks.needs_model_teacher() => {
            // Raw texts in record index order: the training records, then
            // the descriptions as added records and as partners.
            let descriptions = data.labels.entries().iter().map(|e| e.description.as_str());
            let texts: Vec<&str> = data
                .train
                .iter()
                .map(|r| r.text.as_str())
                .chain(descriptions.clone())
                .chain(descriptions)
                .collect();
            Some(model_teacher_logits(
                &teacher.model_id,
                &teacher.dir,
                &texts,
                &data.labels,
                context.device,
            )?)
        }
        _ => None,
    };

    let mut run = RunState::fresh(hyper.seed);
    if let Some(saved) = checkpoint::load(&context.checkpoint_dir, context.device)? {
        run = RunState::resume(saved, &params, &mut optimizer).map_err(|message| {
            TrainError::Checkpoint(CheckpointError {
                path: context.checkpoint_dir.clone(),
                message,
            })
        })?;
        info!(
            completed_epochs = run.first_epoch - 1,
            batches_done = run.skip_batches,
            step = run.step,
            "resumed from checkpoint"
        );
        context.progress.on_resume(&run.evaluations);
    }
    let mut mode = ForwardMode::Train(run.dropout_rng.clone());

    let training_started = Instant::now();
    let steps_at_start = run.step;
    let mut last_checkpoint = Instant::now();
    for epoch in run.first_epoch..=hyper.epochs {
        let epoch_start = RngState::capture(&run.shuffle_rng);
        let mut order: Vec<usize> = (0..pool.len()).collect();
        order.shuffle(&mut run.shuffle_rng);
        let skip = if epoch == run.first_epoch { run.skip_batches } else { 0 };
        let batches = order.len().div_ceil(hyper.batch_size);
        let epoch_started = Instant::now();
        let mut epoch_samples = 0usize;
        let mut epoch_losses = LossMeans::default();
        for (batch_index, chunk) in order.chunks(hyper.batch_size).enumerate().skip(skip) {
            if context.control.cancel.load(Ordering::Relaxed) {
                return Err(TrainError::Cancelled);
            }
            if context.control.suspend.load(Ordering::Relaxed) {
                run.save(context, &params, &optimizer, &mode, epoch - 1, batch_index, &epoch_start)?;
                return Err(TrainError::Suspended);
            }
            let batch = assemble_batch(chunk, &pool, &descriptions, tasks.pairs_with_descriptions());
            let loss_context = LossContext {
                epoch_teacher: run.teacher.as_deref(),
                model_teacher: model_teacher.as_deref(),
                special,
                dtype,
                device: context.device,
                step_seed: step_seed(hyper.seed, run.step),
            };
            let losses = joint_loss(&model, &batch, &tasks, &loss_context, &mut mode)?;
            let grads = losses.total.backward()?;
            let norm = optimizer.gradient_norm(&grads)?;
            let scale = match hyper.max_grad_norm > 0.0 && norm > hyper.max_grad_norm {
                true => hyper.max_grad_norm / norm,
                false => 1.0,
            };
            optimizer.step(&grads, schedule.rate(run.step), scale)?;
            run.step += 1;
            epoch_samples += chunk.len();

            let total = scalar(&losses.total)?;
            if !total.is_finite() {
                return Err(TrainError::NonFiniteLoss {
                    step: run.step,
                    value: total,
                });
            }
            for (name, term) in &losses.terms {
                epoch_losses.add(name, scalar(term)?);
            }
            epoch_losses.add(TOTAL, total);
            let mean_step = training_started.elapsed().as_secs_f64() / (run.step - steps_at_start) as f64;
            context.progress.on_progress(&Progress {
                epoch,
                epochs: hyper.epochs,
                step: run.step,
                total_steps,
                losses: epoch_losses.means(),
                samples_per_second: epoch_samples as f64 / epoch_started.elapsed().as_secs_f64(),
                eta_seconds: Some(mean_step * (total_steps - run.step) as f64),
            });
            let more_in_epoch = batch_index + 1 < batches;
            if more_in_epoch && last_checkpoint.elapsed() >= context.checkpoint_interval {
                run.save(context, &params, &optimizer, &mode, epoch - 1, batch_index + 1, &epoch_start)?;
                last_checkpoint = Instant::now();
            }
        }
        info!(
            epoch,
            step = run.step,
            total_steps,
            seconds = epoch_started.elapsed().as_secs_f64(),
            samples_per_second = epoch_samples as f64 / epoch_started.elapsed().as_secs_f64(),
            "epoch finished"
        );
        if !eval.is_empty() {
            let evaluation = evaluate(&model, &eval, data.labels.len(), pad_id, context.device, epoch)?;
            info!(
                epoch,
                accuracy = evaluation.accuracy,
                macro_f1 = evaluation.macro_f1,
                loss = evaluation.loss,
                "evaluated"
            );
            context.progress.on_evaluation(&evaluation);
            run.evaluations.push(evaluation.clone());
            let improved = run
                .best
                .as_ref()
                .is_none_or(|(kept, _)| evaluation.accuracy > kept.accuracy);
            if improved {
                run.best = Some((evaluation, params.snapshot()?));
            }
        }
        if tasks.needs_epoch_teacher() && epoch < hyper.epochs {
            run.teacher = Some(teacher_logits(&model, &all, &tasks, pad_id, context.device)?);
        }
        let next_epoch_start = RngState::capture(&run.shuffle_rng);
        run.save(context, &params, &optimizer, &mode, epoch, 0, &next_epoch_start)?;
        last_checkpoint = Instant::now();
    }
    let evaluations = run.evaluations;
    let best = run.best;

    let best_evaluation = match best {
        Some((evaluation, snapshot)) => {
            params.restore(&snapshot)?;
            Some(evaluation)
        }
        None => None,
    };
    let metadata = ModelMetadata {
        model_id: context.model_id.to_string(),
        job_id: context.job_id.to_string(),
        tasks: spec.tasks.iter().map(|(task, setting)| (task.clone(), setting.weight)).collect(),
        best_epoch: best_evaluation.as_ref().map(|e| e.epoch),
        accuracy: best_evaluation.as_ref().map(|e| e.accuracy),
        macro_f1: best_evaluation.as_ref().map(|e| e.macro_f1),
        training: serde_json::json!({
            "encoder": spec.encoder,
            "hyperparameters": spec.hyperparameters,
            "train_file": spec.data.train.file_name,
            "eval_file": spec.data.eval.as_ref().map(|f| f.file_name.clone()),
            "train_records": examples.len(),
            "seconds": started.elapsed().as_secs_f64(),
        }),
    };
    let parts = ModelParts {
        config: &config,
        max_length: hyper.max_length,
        params: &params,
        tokenizer: &tokenizer,
        labels: &data.labels,
        metadata: &metadata,
    };
    ModelArtifact::save(&context.model_dir, &parts)?;
    Ok(TrainOutcome {
        evaluations,
        best: best_evaluation,
        num_labels: data.labels.len(),
    })
}

/// Seed of the random choices of one step, from the job's seed and the
/// step number, so that a resumed job draws what an uninterrupted one does.
fn step_seed(seed: u64, step: u64) -> u64 {
    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(step)
}

/// The tokenizer, shape and parameters a job starts from.
struct PreparedEncoder {
    tokenizer: TextTokenizer,
    config: EncoderConfig,
    params: ParamStore,
}

/// Builds a vocabulary and seeds the weights for an encoder trained from
/// scratch, or reads a pretrained checkpoint. The classifier head, and any
/// head the checkpoint lacks, is drawn from the job's seed.
fn prepare_encoder(spec: &TrainingSpec, data: &TrainingData, device: &Device) -> Result<PreparedEncoder, TrainError> {
    let hyper = &spec.hyperparameters;
    match &spec.encoder {
        EncoderSpec::Scratch(scratch) => {
            let started = Instant::now();
            let corpus = data
                .train
                .iter()
                .map(|r| r.text.as_str())
                .chain(data.labels.entries().iter().map(|e| e.description.as_str()));
            let tokenizer = TextTokenizer::train_wordpiece(corpus, scratch.vocab_size)?;
            info!(
                vocab_size = tokenizer.vocab_size(),
                seconds = started.elapsed().as_secs_f64(),
                "built WordPiece vocabulary"
            );
            let config = EncoderConfig {
                vocab_size: tokenizer.vocab_size(),
                hidden_size: scratch.hidden_size,
                num_hidden_layers: scratch.num_layers,
                num_attention_heads: scratch.num_heads,
                intermediate_size: scratch.intermediate_size,
                max_position_embeddings: hyper.max_length + hyper.max_description_length,
                type_vocab_size: 2,
                layer_norm_eps: 1e-12,
                hidden_dropout_prob: scratch.dropout,
                attention_probs_dropout_prob: scratch.dropout,
                pad_token_id: tokenizer.special().pad,
            };
            let params = ParamStore::seeded(hyper.seed, DType::F32, device);
            Ok(PreparedEncoder {
                tokenizer,
                config,
                params,
            })
        }
        EncoderSpec::Pretrained(pretrained) => {
            let config = folder::read_config(&pretrained.dir)?.encoder;
            let tokenizer = folder::read_tokenizer(&pretrained.dir, config.vocab_size)?;
            let mut tensors = folder::read_weights(&pretrained.dir, device)?.tensors;
            // A classifier in the checkpoint belongs to another label set.
            tensors.retain(|name, _| !name.starts_with("classifier."));
            let params = ParamStore::from_tensors(tensors, Some(hyper.seed), DType::F32, device)?;
            Ok(PreparedEncoder {
                tokenizer,
                config,
                params,
            })
        }
    }
}

/// Running means of the loss terms over the batches of an epoch; a term
/// counts only the batches that have it.
#[derive(Default)]
struct LossMeans {
    sums: BTreeMap<String, (f64, usize)>,
}

impl LossMeans {
    fn add(&mut self, name: &str, value: f64) {
        let entry = self.sums.entry(name.to_string()).or_default();
        entry.0 += value;
        entry.1 += 1;
    }

    fn means(&self) -> BTreeMap<String, f64> {
        self.sums
            .iter()
            .map(|(name, (sum, count))| (name.clone(), sum / *count as f64))
            .collect()
    }
}

/// Training progress that a checkpoint saves and restores.
struct RunState {
    first_epoch: u32,
    skip_batches: usize,
    step: u64,
    shuffle_rng: ChaCha8Rng,
    dropout_rng: ChaCha8Rng,
    evaluations: Vec<Evaluation>,
    best: Option<(Evaluation, BTreeMap<String, Tensor>)>,
    /// Logits of every record from the model at the end of the previous
    /// epoch, for self-distillation.
    teacher: Option<Vec<Vec<f32>>>,
}

impl RunState {
    fn fresh(seed: u64) -> Self {
        Self {
            first_epoch: 1,
            skip_batches: 0,
            step: 0,
            shuffle_rng: ChaCha8Rng::seed_from_u64(seed.wrapping_add(1)),
            dropout_rng: ChaCha8Rng::seed_from_u64(seed.wrapping_add(2)),
            evaluations: Vec::new(),
            best: None,
            teacher: None,
        }
    }

    /// Restores weights and optimiser state from `saved` and returns the
    /// position to continue from.
    fn resume(saved: Checkpoint, params: &ParamStore, optimizer: &mut AdamW) -> Result<Self, String> {
        let weights: BTreeMap<String, Tensor> = saved.weights.into_iter().collect();
        params.restore(&weights).map_err(|e| e.to_string())?;
        optimizer.restore(&saved.moments, saved.state.step).map_err(|e| e.to_string())?;
        let best = match (saved.state.best, saved.best_weights) {
            (Some(evaluation), Some(weights)) => Some((evaluation, weights.into_iter().collect())),
            (None, None) => None,
            _ => return Err("best evaluation and best weights do not match".to_string()),
        };
        Ok(Self {
            first_epoch: saved.state.completed_epochs + 1,
            skip_batches: saved.state.batches_done,
            step: saved.state.step,
            shuffle_rng: saved.state.shuffle_rng.restore()?,
            dropout_rng: saved.state.dropout_rng.restore()?,
            evaluations: saved.state.evaluations,
            best,
            teacher: match saved.teacher {
                Some(logits) => Some(logits.to_vec2::<f32>().map_err(|e| e.to_string())?),
                None => None,
            },
        })
    }

    /// Writes a checkpoint at `batches_done` batches into the epoch after
    /// `completed_epochs`, whose shuffling started from `epoch_start`.
    #[allow(clippy::too_many_arguments)]
    fn save(
        &self,
        context: &TrainContext<'_>,
        params: &ParamStore,
        optimizer: &AdamW,
        mode: &ForwardMode,
        completed_epochs: u32,
        batches_done: usize,
        epoch_start: &RngState,
    ) -> Result<(), TrainError> {
        let Some(dropout_rng) = mode.generator() else {
            return Err(TrainError::Tensor(candle_core::Error::Msg(
                "checkpoints are only written in training mode".to_string(),
            )));
        };
        let state = TrainingState {
            completed_epochs,
            batches_done,
            step: self.step,
            shuffle_rng: epoch_start.clone(),
            dropout_rng: RngState::capture(dropout_rng),
            evaluations: self.evaluations.clone(),
            best: self.best.as_ref().map(|(evaluation, _)| evaluation.clone()),
        };
        let weights = params
            .vars()
            .iter()
            .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
            .collect();
        let teacher = match &self.teacher {
            Some(rows) => {
                let classes = rows.first().map_or(0, Vec::len);
                let flat: Vec<f32> = rows.iter().flatten().copied().collect();
                Some(Tensor::from_vec(flat, (rows.len(), classes), &candle_core::Device::Cpu)?)
            }
            None => None,
        };
        let started = Instant::now();
        checkpoint::save(
            &context.checkpoint_dir,
            &state,
            &weights,
            &optimizer.moments(),
            self.best.as_ref().map(|(_, snapshot)| snapshot),
            teacher.as_ref(),
        )?;
        debug_assert_eq!(optimizer.steps(), self.step);
        info!(
            completed_epochs,
            batches_done,
            step = self.step,
            seconds = started.elapsed().as_secs_f64(),
            "checkpoint written"
        );
        Ok(())
    }
}

fn scalar(tensor: &Tensor) -> candle_core::Result<f64> {
    tensor.to_dtype(DType::F64)?.to_scalar::<f64>()
}

fn label_index(labels: &LabelMap, record: &RawRecord) -> Result<u32, TrainError> {
    labels
        .index_of(&record.label)
        .map(|index| index as u32)
        .ok_or_else(|| {
            TrainError::Tensor(candle_core::Error::Msg(format!(
                "label {} of line {} is not in the label map",
                record.label, record.line
            )))
        })
}

/// Encodes `text` for training: `[CLS] x [SEP]`, or with the label's
/// description as segment 1 when a task needs it.
fn encode_training_text(
    text: &[u32],
    description: &[u32],
    hyper: &super::spec::Hyperparameters,
    special: crate::text::SpecialIds,
    with_description: bool,
) -> (Vec<u32>, Vec<u32>) {
    match with_description {
        true => {
            let pair = encode_pair(text, description, hyper.max_length, hyper.max_description_length, special);
            (pair.ids, pair.type_ids)
        }
        false => {
            let encoded = encode_text(text, hyper.max_length, special);
            let type_ids = vec![0; encoded.ids.len()];
            (encoded.ids, type_ids)
        }
    }
}

fn encode_examples(
    records: &[RawRecord],
    labels: &LabelMap,
    tokenizer: &TextTokenizer,
    spec: &TrainingSpec,
    with_description: bool,
) -> Result<Vec<Example>, TrainError> {
    let descriptions = labels
        .entries()
        .iter()
        .map(|entry| tokenizer.tokenize(&entry.description))
        .collect::<Result<Vec<_>, _>>()?;
    records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            let label = label_index(labels, record)?;
            let text = tokenizer.tokenize(&record.text)?;
            let (ids, type_ids) = encode_training_text(
                &text,
                &descriptions[label as usize],
                &spec.hyperparameters,
                tokenizer.special(),
                with_description,
            );
            Ok(Example {
                ids,
                type_ids,
                label,
                origin: Origin::Text,
                index,
            })
        })
        .collect()
}

/// Encodes one record per label whose text is the label's description, as
/// an added record (first) and as a similarity partner (second). Their
/// indices start at `first_index`, after the training records.
fn encode_descriptions(
    labels: &LabelMap,
    tokenizer: &TextTokenizer,
    spec: &TrainingSpec,
    with_description: bool,
    first_index: usize,
) -> Result<Vec<(Example, Example)>, TrainError> {
    labels
        .entries()
        .iter()
        .enumerate()
        .map(|(label, entry)| {
            let description = tokenizer.tokenize(&entry.description)?;
            let (ids, type_ids) =
                encode_training_text(&description, &description, &spec.hyperparameters, tokenizer.special(), with_description);
            let record = Example {
                ids,
                type_ids,
                label: label as u32,
                origin: Origin::DescriptionRecord,
                index: first_index + label,
            };
            let partner = Example {
                origin: Origin::DescriptionPartner,
                index: first_index + labels.len() + label,
                ..record.clone()
            };
            Ok((record, partner))
        })
        .collect()
}

/// Collects the records of one batch: the chosen records, each followed by
/// its label's description when a similarity task pairs them.
fn assemble_batch<'a>(
    chunk: &[usize],
    pool: &[&'a Example],
    descriptions: &'a [(Example, Example)],
    pair: bool,
) -> Vec<&'a Example> {
    let mut batch = Vec::with_capacity(if pair { 2 * chunk.len() } else { chunk.len() });
    for &index in chunk {
        let record = pool[index];
        batch.push(record);
        if pair {
            batch.push(&descriptions[record.label as usize].1);
        }
    }
    batch
}

fn encode_eval(
    records: &[RawRecord],
    labels: &LabelMap,
    tokenizer: &TextTokenizer,
    max_length: usize,
) -> Result<Vec<(Vec<u32>, u32)>, TrainError> {
    records
        .iter()
        .map(|record| {
            let label = label_index(labels, record)?;
            let text = tokenizer.tokenize(&record.text)?;
            Ok((encode_text(&text, max_length, tokenizer.special()).ids, label))
        })
        .collect()
}

/// Logits of every record in `all` without dropout, in index order, under
/// the input layout the tasks train with.
fn teacher_logits(
    model: &TextClassifier,
    all: &[&Example],
    tasks: &ActiveTasks,
    pad_id: u32,
    device: &Device,
) -> Result<Vec<Vec<f32>>, TrainError> {
    let mut rows = Vec::with_capacity(all.len());
    for chunk in all.chunks(EVAL_BATCH_SIZE) {
        let input = training_input(chunk, tasks, pad_id, DType::F32, device)?;
        let output = model.forward(&input.ids, &input.type_ids, &input.bias, &mut ForwardMode::Eval)?;
        rows.extend(output.logits.to_dtype(DType::F32)?.to_vec2::<f32>()?);
    }
    Ok(rows)
}

/// Class logits `[B, C]` of `[CLS] x [SEP]` sequences, without dropout.
pub fn predict_logits(
    model: &TextClassifier,
    sequences: &[&[u32]],
    pad_id: u32,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let batch = InputBatch::texts(sequences, pad_id, DType::F32, device)?;
    let output = model.forward(&batch.ids, &batch.type_ids, &batch.bias, &mut ForwardMode::Eval)?;
    Ok(output.logits)
}

fn evaluate(
    model: &TextClassifier,
    eval: &[(Vec<u32>, u32)],
    num_labels: usize,
    pad_id: u32,
    device: &Device,
    epoch: u32,
) -> Result<Evaluation, TrainError> {
    let mut gold = Vec::with_capacity(eval.len());
    let mut predicted = Vec::with_capacity(eval.len());
    let mut loss_sum = 0.0;
    for chunk in eval.chunks(EVAL_BATCH_SIZE) {
        let sequences: Vec<&[u32]> = chunk.iter().map(|(ids, _)| ids.as_slice()).collect();
        let labels: Vec<u32> = chunk.iter().map(|(_, label)| *label).collect();
        let logits = predict_logits(model, &sequences, pad_id, device)?;
        let loss = super::loss::cross_entropy(&logits, &labels)?;
        loss_sum += scalar(&loss)? * chunk.len() as f64;
        let argmax = logits.argmax(1)?.to_vec1::<u32>()?;
        gold.extend(labels.iter().map(|&l| l as usize));
        predicted.extend(argmax.iter().map(|&p| p as usize));
    }
    Ok(Evaluation {
        epoch,
        accuracy: accuracy(&gold, &predicted),
        macro_f1: macro_f1(&gold, &predicted, num_labels),
        loss: loss_sum / eval.len() as f64,
        records: eval.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(label: u32, origin: Origin) -> Example {
        Example {
            ids: vec![2, 10 + label, 3],
            type_ids: vec![0; 3],
            label,
            origin,
            index: 0,
        }
    }

    #[test]
    fn paired_batches_keep_each_record_before_its_description() {
        let texts: Vec<Example> = (0..6).map(|i| example(i % 3, Origin::Text)).collect();
        let descriptions: Vec<(Example, Example)> = (0..3)
            .map(|label| (example(label, Origin::DescriptionRecord), example(label, Origin::DescriptionPartner)))
            .collect();
        let pool: Vec<&Example> = texts.iter().chain(descriptions.iter().map(|(r, _)| r)).collect();
        let mut order: Vec<usize> = (0..pool.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(4));
        for chunk in order.chunks(4) {
            let batch = assemble_batch(chunk, &pool, &descriptions, true);
            assert_eq!(batch.len(), 2 * chunk.len());
            for (k, pair) in batch.chunks(2).enumerate() {
                assert!(std::ptr::eq(pair[0], pool[chunk[k]]), "records keep their shuffled order");
                assert_eq!(pair[1].origin, Origin::DescriptionPartner);
                assert_eq!(pair[1].label, pair[0].label, "partner has the record's label");
            }
        }
        let unpaired = assemble_batch(&[0, 7], &pool, &descriptions, false);
        assert_eq!(unpaired.len(), 2);
        assert_eq!(unpaired[1].origin, Origin::DescriptionRecord);
    }
}
