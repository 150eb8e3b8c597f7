//! Training: job specification, data loading, the joint loss and its terms,
//! the optimiser and schedule, evaluation metrics and the training loop.

mod checkpoint;
mod dataset;
mod loss;
mod metrics;
mod objective;
mod optim;
mod progress;
mod schedule;
mod teacher;
pub mod spec;
pub mod tasks;
mod trainer;
#[cfg(test)]
mod gradient_tests;

pub use dataset::{TrainingData, load_training_data};
pub use objective::{CLASSIFICATION, Example, LossContext, LossTerms, Origin, TOTAL, joint_loss};
pub use teacher::{TeacherError, check_teacher_labels};
pub use progress::{Evaluation, Progress, ProgressSink};
pub use spec::{InvalidField, TrainingSpec};
pub use tasks::{TaskSetting, task_names};
pub use checkpoint::{CheckpointError, remove as remove_checkpoints};
pub use trainer::{JobControl, TrainContext, TrainError, TrainOutcome, predict_logits, train};
