//! Distillation: soft targets `p = softmax(z_teacher / T)` and the loss
//! `T² · KL(p ‖ softmax(z / T))` averaged over the batch.
//!
//! - `self_distill` takes the teacher logits from the model as it was at
//!   the end of the previous epoch. It is inactive in the first epoch,
//!   which has no teacher yet.
//! - `distill` takes them from a finished model named by the job, computed
//!   once at the start with that model's own tokenizer on the raw texts.

use std::collections::BTreeMap;

use candle_core::{D, Result, Tensor};

use super::{Task, TaskBatch, check_options};

/// Default distillation temperature.
const DEFAULT_TEMPERATURE: f64 = 2.0;

/// Source of the teacher logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Teacher {
    PreviousEpoch,
    FinishedModel,
}

pub fn build_epoch(options: &BTreeMap<String, f64>) -> std::result::Result<Box<dyn Task>, String> {
    build(options, Teacher::PreviousEpoch)
}

pub fn build_model(options: &BTreeMap<String, f64>) -> std::result::Result<Box<dyn Task>, String> {
    build(options, Teacher::FinishedModel)
}

fn build(options: &BTreeMap<String, f64>, teacher: Teacher) -> std::result::Result<Box<dyn Task>, String> {
    check_options(options, &["T"])?;
    let temperature = options.get("T").copied().unwrap_or(DEFAULT_TEMPERATURE);
    if !(temperature.is_finite() && temperature > 0.0 && temperature <= 100.0) {
        return Err(format!("option T = {temperature}: must be above 0 and at most 100"));
    }
    Ok(Box::new(Distill { temperature, teacher }))
}

struct Distill {
    temperature: f64,
    teacher: Teacher,
}

/// `T² · KL(softmax(teacher / T) ‖ softmax(student / T))`, averaged over rows.
pub fn distillation_loss(student: &Tensor, teacher: &Tensor, temperature: f64) -> Result<Tensor> {
    let teacher = teacher.detach();
    let log_p = candle_nn::ops::log_softmax(&(teacher / temperature)?, D::Minus1)?;
    let p = log_p.exp()?;
    let log_q = candle_nn::ops::log_softmax(&(student / temperature)?, D::Minus1)?;
    let rows = student.dim(0)? as f64;
    let kl = (p * (log_p - log_q)?)?.sum_all()?;
    kl * (temperature * temperature / rows)
}

impl Task for Distill {
    fn name(&self) -> &'static str {
        match self.teacher {
            Teacher::PreviousEpoch => "self_distill",
            Teacher::FinishedModel => "distill",
        }
    }

    fn needs_epoch_teacher(&self) -> bool {
        self.teacher == Teacher::PreviousEpoch
    }

    fn needs_model_teacher(&self) -> bool {
        self.teacher == Teacher::FinishedModel
    }

    fn loss(&self, batch: &TaskBatch<'_>) -> Result<Option<Tensor>> {
        let logits = match self.teacher {
            Teacher::PreviousEpoch => batch.epoch_teacher,
            Teacher::FinishedModel => batch.model_teacher,
        };
        let Some(teacher) = logits else {
            if self.teacher == Teacher::FinishedModel {
                candle_core::bail!("the distill task has no teacher logits");
            }
            return Ok(None);
        };
        let classes = batch.output.logits.dim(1)?;
        let mut values = Vec::with_capacity(batch.examples.len() * classes);
        for example in batch.examples {
            match teacher.get(example.index) {
                Some(row) if row.len() == classes => values.extend_from_slice(row),
                _ => candle_core::bail!("no teacher logits for record {}", example.index),
            }
        }
        let teacher = Tensor::from_vec(values, (batch.examples.len(), classes), batch.device)?
            .to_dtype(batch.output.logits.dtype())?;
        distillation_loss(&batch.output.logits, &teacher, self.temperature).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn loss_matches_hand_computation() {
        // Teacher logits (ln 3, 0) at T = 1 give p = (3/4, 1/4); student
        // logits (0, 0) give q = (1/2, 1/2).
        // KL = 3/4 ln(3/2) + 1/4 ln(1/2).
        let teacher = Tensor::new(&[[3f64.ln(), 0.0]], &Device::Cpu).unwrap();
        let student = Tensor::new(&[[0.0f64, 0.0]], &Device::Cpu).unwrap();
        let loss = distillation_loss(&student, &teacher, 1.0).unwrap().to_scalar::<f64>().unwrap();
        let expected = 0.75 * 1.5f64.ln() + 0.25 * 0.5f64.ln();
        assert!((loss - expected).abs() < 1e-12, "{loss} vs {expected}");
        // At T = 2 the logits halve and the loss is scaled by 4.
        let loss = distillation_loss(&student, &teacher, 2.0).unwrap().to_scalar::<f64>().unwrap();
        let p = [3f64.sqrt() / (3f64.sqrt() + 1.0), 1.0 / (3f64.sqrt() + 1.0)];
        let expected = 4.0 * (p[0] * (2.0 * p[0]).ln() + p[1] * (2.0 * p[1]).ln());
        assert!((loss - expected).abs() < 1e-12, "{loss} vs {expected}");
    }

    #[test]
    fn identical_logits_give_zero() {
        let logits = Tensor::new(&[[1.0f64, -2.0, 0.5], [0.0, 3.0, 1.0]], &Device::Cpu).unwrap();
        let loss = distillation_loss(&logits, &logits, 3.0).unwrap().to_scalar::<f64>().unwrap();
        assert!(loss.abs() < 1e-12, "{loss}");
    }

    #[test]
    fn temperature_option_is_checked() {
        assert!(build_epoch(&BTreeMap::from([("T".to_string(), 0.0)])).is_err());
        assert!(build_epoch(&BTreeMap::from([("T".to_string(), 3.0)])).is_ok());
        assert!(build_model(&BTreeMap::from([("t".to_string(), 3.0)])).is_err());
    }
}
