//! AdamW with decoupled weight decay, per-variable decay switch and
//! global-norm gradient clipping. Its moments are plain tensors owned here,
//! unlike candle's AdamW, whose state is private.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

struct Slot {
    name: String,
    var: Var,
    first_moment: Tensor,
    second_moment: Tensor,
    decay: bool,
}

pub struct AdamW {
    slots: Vec<Slot>,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    step: u64,
}

/// Returns whether weight decay applies to a parameter: not to biases and
/// LayerNorm scales, as in BERT's original recipe.
pub fn decays(name: &str) -> bool {
    !(name.ends_with(".bias") || name.contains("LayerNorm") || name == "cls.predictions.bias")
}

impl AdamW {
    /// `vars` pairs each variable with its name.
    pub fn new<'a>(
        vars: impl IntoIterator<Item = (&'a String, &'a Var)>,
        weight_decay: f64,
    ) -> Result<Self> {
        let slots = vars
            .into_iter()
            .map(|(name, var)| {
                Ok(Slot {
                    first_moment: var.as_tensor().zeros_like()?,
                    second_moment: var.as_tensor().zeros_like()?,
                    decay: decays(name),
                    name: name.clone(),
                    var: var.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            slots,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-6,
            weight_decay,
            step: 0,
        })
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Returns the moment estimates as `m.<name>` and `v.<name>` tensors.
    pub fn moments(&self) -> HashMap<String, Tensor> {
        let mut moments = HashMap::with_capacity(2 * self.slots.len());
        for slot in &self.slots {
            moments.insert(format!("m.{}", slot.name), slot.first_moment.clone());
            moments.insert(format!("v.{}", slot.name), slot.second_moment.clone());
        }
        moments
    }

    /// Restores the moments saved by [`AdamW::moments`] after `steps` steps.
    pub fn restore(&mut self, moments: &HashMap<String, Tensor>, steps: u64) -> Result<()> {
        for slot in &mut self.slots {
            for (prefix, target) in [("m", &mut slot.first_moment), ("v", &mut slot.second_moment)] {
                let key = format!("{prefix}.{}", slot.name);
                let Some(saved) = moments.get(&key) else {
                    candle_core::bail!("optimiser state has no {key}");
                };
                if saved.dims() != target.dims() {
                    candle_core::bail!("optimiser state {key} has shape {:?}, expected {:?}", saved.dims(), target.dims());
                }
                *target = saved.to_dtype(target.dtype())?.to_device(target.device())?;
            }
        }
        self.step = steps;
        Ok(())
    }

    /// Global L2 norm of the gradients of all variables.
    pub fn gradient_norm(&self, grads: &GradStore) -> Result<f64> {
        let mut squares = Vec::with_capacity(self.slots.len());
        for slot in &self.slots {
            if let Some(grad) = grads.get(slot.var.as_tensor()) {
                squares.push(grad.sqr()?.sum_all()?.to_dtype(candle_core::DType::F64)?);
            }
        }
        if squares.is_empty() {
            return Ok(0.0);
        }
        let total = Tensor::stack(&squares, 0)?.sum_all()?.to_scalar::<f64>()?;
        Ok(total.sqrt())
    }

    /// Applies one update at learning rate `lr`. Gradients are scaled by
    /// `grad_scale` first (the clipping factor, 1 for none). Variables
    /// without a gradient are left unchanged.
    pub fn step(&mut self, grads: &GradStore, lr: f64, grad_scale: f64) -> Result<()> {
        self.step += 1;
        let correction1 = 1.0 - self.beta1.powi(self.step as i32);
        let correction2 = 1.0 - self.beta2.powi(self.step as i32);
        for slot in &mut self.slots {
            let Some(grad) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            let grad = grad.affine(grad_scale, 0.0)?;
            let first = ((&slot.first_moment * self.beta1)? + (&grad * (1.0 - self.beta1))?)?;
            let second = ((&slot.second_moment * self.beta2)? + (grad.sqr()? * (1.0 - self.beta2))?)?;
            let update = (&first / correction1)?
                .div(&((&second / correction2)?.sqrt()? + self.eps)?)?;
            let theta = slot.var.as_tensor();
            let decayed = match slot.decay {
                true => (theta * (1.0 - lr * self.weight_decay))?,
                false => theta.clone(),
            };
            slot.var.set(&(decayed - (update * lr)?)?)?;
            slot.first_moment = first;
            slot.second_moment = second;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;

    #[test]
    fn first_step_moves_by_learning_rate() {
        // With bias correction, Adam's first update is lr · g / (|g| + eps),
        // about lr in each coordinate's gradient direction.
        let var = Var::from_tensor(&Tensor::new(&[1.0f64, -2.0], &Device::Cpu).unwrap()).unwrap();
        let name = "w.weight".to_string();
        let loss = (var.as_tensor() * 3.0).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let mut optimizer = AdamW::new([(&name, &var)], 0.0).unwrap();
        optimizer.step(&grads, 0.1, 1.0).unwrap();
        let values = var.as_tensor().to_vec1::<f64>().unwrap();
        assert!((values[0] - 0.9).abs() < 1e-6, "{values:?}");
        assert!((values[1] + 2.1).abs() < 1e-6, "{values:?}");
    }

    #[test]
    fn restored_moments_continue_identically() {
        let name = "w.weight".to_string();
        let start = Tensor::new(&[1.0f64, -2.0], &Device::Cpu).unwrap();
        let gradient_step = |var: &Var, optimizer: &mut AdamW| {
            let loss = (var.as_tensor().sqr().unwrap() * 3.0).unwrap().sum_all().unwrap();
            optimizer.step(&loss.backward().unwrap(), 0.1, 1.0).unwrap();
        };
        let var = Var::from_tensor(&start).unwrap();
        let mut optimizer = AdamW::new([(&name, &var)], 0.01).unwrap();
        gradient_step(&var, &mut optimizer);
        let moments = optimizer.moments();
        let saved = var.as_tensor().copy().unwrap();
        gradient_step(&var, &mut optimizer);

        let resumed = Var::from_tensor(&saved).unwrap();
        let mut restored = AdamW::new([(&name, &resumed)], 0.01).unwrap();
        restored.restore(&moments, optimizer.steps() - 1).unwrap();
        gradient_step(&resumed, &mut restored);
        assert_eq!(
            var.as_tensor().to_vec1::<f64>().unwrap(),
            resumed.as_tensor().to_vec1::<f64>().unwrap()
        );
    }

    #[test]
    fn weight_decay_skips_bias_and_layer_norm() {
        assert!(decays("encoder.layer.0.attention.self.query.weight"));
        assert!(!decays("encoder.layer.0.attention.self.query.bias"));
        assert!(!decays("embeddings.LayerNorm.weight"));
        assert!(!decays("cls.predictions.bias"));
    }

    #[test]
    fn gradient_norm_is_global() {
        let a = Var::zeros(2, DType::F64, &Device::Cpu).unwrap();
        let b = Var::zeros(1, DType::F64, &Device::Cpu).unwrap();
        let loss = ((a.as_tensor() * 3.0).unwrap().sum_all().unwrap()
            + (b.as_tensor() * 4.0).unwrap().sum_all().unwrap())
        .unwrap();
        let grads = loss.backward().unwrap();
        let (na, nb) = ("a".to_string(), "b".to_string());
        let optimizer = AdamW::new([(&na, &a), (&nb, &b)], 0.0).unwrap();
        // sqrt(3² + 3² + 4²)
        let norm = optimizer.gradient_norm(&grads).unwrap();
        assert!((norm - 34f64.sqrt()).abs() < 1e-12, "{norm}");
    }
}
