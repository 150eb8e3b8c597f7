//! Loss terms of the joint objective.

use candle_core::{Result, Tensor};

/// Mean cross-entropy of `logits [N, C]` against class indices `targets`.
pub fn cross_entropy(logits: &Tensor, targets: &[u32]) -> Result<Tensor> {
    let targets = Tensor::new(targets, logits.device())?;
    candle_nn::loss::cross_entropy(logits, &targets)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn cross_entropy_matches_hand_computation() {
        // Row 0: logits (0, ln 3) -> p(class 1) = 3/4, loss -ln(3/4).
        // Row 1: logits (0, 0) -> p(class 0) = 1/2, loss ln 2.
        let logits = Tensor::new(&[[0.0f64, 3f64.ln()], [0.0, 0.0]], &Device::Cpu).unwrap();
        let loss = cross_entropy(&logits, &[1, 0]).unwrap().to_scalar::<f64>().unwrap();
        let expected = (-(0.75f64).ln() + 2f64.ln()) / 2.0;
        assert!((loss - expected).abs() < 1e-12, "{loss} vs {expected}");
    }
}
