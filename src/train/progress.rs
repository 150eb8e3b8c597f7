//! Progress events a running job reports.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Training progress after a step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// 1-based epoch in progress.
    pub epoch: u32,
    pub epochs: u32,
    /// Steps done so far.
    pub step: u64,
    pub total_steps: u64,
    /// Mean of each loss term over the batches of the current epoch so far.
    pub losses: BTreeMap<String, f64>,
    /// Training records per second over the current epoch.
    pub samples_per_second: f64,
    /// Estimated seconds until training ends, from the mean step time.
    pub eta_seconds: Option<f64>,
}

/// Metrics on the evaluation set after an epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub epoch: u32,
    pub accuracy: f64,
    pub macro_f1: f64,
    /// Mean classification cross-entropy.
    pub loss: f64,
    pub records: u64,
}

/// Receives a job's events. Called on the training thread, so an
/// implementation must return quickly.
pub trait ProgressSink {
    fn on_progress(&self, progress: &Progress);
    fn on_evaluation(&self, evaluation: &Evaluation);
    /// Called when a job continues from a checkpoint, with the evaluations
    /// done before it; later evaluations follow through `on_evaluation`.
    fn on_resume(&self, evaluations: &[Evaluation]);
}
