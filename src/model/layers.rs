//! Building blocks: linear and layer-norm layers made only of candle ops
//! that have a backward pass, and seeded dropout.
//!
//! candle 0.11's fused `LayerNorm` and `softmax_last_dim` have no backward
//! pass: everything below them would get a zero gradient, so they are not
//! used anywhere in this module tree.

use candle_core::{D, Result, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::params::{Init, ParamStore};

/// Standard deviation of BERT's initial weights.
pub const INIT_STDEV: f64 = 0.02;

/// `y = x Wᵀ + b`, with `W` of shape `[out, in]` as in PyTorch.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    pub fn new(params: &mut ParamStore, name: &str, input: usize, output: usize) -> Result<Self> {
        let weight = params.get(
            &format!("{name}.weight"),
            &[output, input],
            Init::Normal(INIT_STDEV),
        )?;
        let bias = params.get(&format!("{name}.bias"), &[output], Init::Zeros)?;
        Ok(Self { weight, bias })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match x.dims() {
            [batch, length, input] => x
                .reshape((batch * length, *input))?
                .matmul(&self.weight.t()?)?
                .reshape((*batch, *length, ()))?,
            _ => x.matmul(&self.weight.t()?)?,
        };
        y.broadcast_add(&self.bias)
    }
}

/// Layer normalisation over the last dimension, built from primitive ops so
/// that gradients reach the input, the scale and the shift.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    pub fn new(params: &mut ParamStore, name: &str, size: usize, eps: f64) -> Result<Self> {
        let weight = params.get(&format!("{name}.weight"), &[size], Init::Ones)?;
        let bias = params.get(&format!("{name}.bias"), &[size], Init::Zeros)?;
        Ok(Self { weight, bias, eps })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let centered = x.broadcast_sub(&mean)?;
        let variance = centered.sqr()?.mean_keepdim(D::Minus1)?;
        let normalized = centered.broadcast_div(&(variance + self.eps)?.sqrt()?)?;
        normalized
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

/// Training or evaluation. Training carries the seeded generator that draws
/// dropout masks, so that a run is reproducible.
pub enum ForwardMode {
    Eval,
    Train(ChaCha8Rng),
}

impl ForwardMode {
    pub fn train(seed: u64) -> Self {
        Self::Train(ChaCha8Rng::seed_from_u64(seed))
    }

    pub fn is_train(&self) -> bool {
        matches!(self, Self::Train(_))
    }

    /// The dropout generator in training, for checkpoints.
    pub fn generator(&self) -> Option<&ChaCha8Rng> {
        match self {
            Self::Train(rng) => Some(rng),
            Self::Eval => None,
        }
    }

    /// Zeroes each element with probability `p` and scales the rest by
    /// `1 / (1 - p)` in training; the identity in evaluation.
    pub fn dropout(&mut self, x: &Tensor, p: f32) -> Result<Tensor> {
        let Self::Train(rng) = self else {
            return Ok(x.clone());
        };
        if p <= 0.0 {
            return Ok(x.clone());
        }
        let keep_scale = 1.0 / (1.0 - p);
        let mask: Vec<f32> = (0..x.elem_count())
            .map(|_| {
                if rng.random::<f32>() < p {
                    0.0
                } else {
                    keep_scale
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x.mul(&mask)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;

    #[test]
    fn layer_norm_matches_hand_computation() {
        let mut params = ParamStore::seeded(0, DType::F64, &Device::Cpu);
        let norm = LayerNorm::new(&mut params, "ln", 4, 0.0).unwrap();
        let x = Tensor::new(&[[1.0f64, 2.0, 3.0, 4.0]], &Device::Cpu).unwrap();
        let y = norm.forward(&x).unwrap().to_vec2::<f64>().unwrap();
        // mean 2.5, variance 1.25: (x - 2.5) / sqrt(1.25)
        let expected = [-1.341640786, -0.447213595, 0.447213595, 1.341640786];
        for (got, want) in y[0].iter().zip(expected) {
            assert!((got - want).abs() < 1e-8, "{got} vs {want}");
        }
    }

    #[test]
    fn dropout_is_identity_in_eval_and_seeded_in_training() {
        let x = Tensor::ones((4, 50), DType::F32, &Device::Cpu).unwrap();
        let eval = ForwardMode::Eval.dropout(&x, 0.5).unwrap();
        assert_eq!(eval.sum_all().unwrap().to_scalar::<f32>().unwrap(), 200.0);
        let a = ForwardMode::train(5).dropout(&x, 0.5).unwrap();
        let b = ForwardMode::train(5).dropout(&x, 0.5).unwrap();
        assert_eq!(a.to_vec2::<f32>().unwrap(), b.to_vec2::<f32>().unwrap());
        let zeros = a
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .filter(|v| **v == 0.0)
            .count();
        assert!((60..140).contains(&zeros), "{zeros} of 200 dropped");
    }
}
