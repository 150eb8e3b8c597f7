//! AdamW with decoupled weight decay, per-variable decay switch and
//! global-norm gradient clipping. Its moments are plain tensors owned here,
//! unlike candle's AdamW, whose state is private.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

struct Slot {
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

/// Whether weight decay applies to a parameter: not to biases and
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
