//! Loss terms of the joint objective.

use candle_core::{Device, Result, Tensor};

use crate::model::TextClassifier;

/// Mean cross-entropy of `logits [N, C]` against class indices `targets`.
pub fn cross_entropy(logits: &Tensor, targets: &[u32]) -> Result<Tensor> {
    let targets = Tensor::new(targets, logits.device())?;
    candle_nn::loss::cross_entropy(logits, &targets)
}

/// Positions of the seq2seq targets in a padded batch: for each
/// segment-1 token at position `p + 1`, the flattened row `b·L + p` of the
/// state that predicts it, and the token id.
pub fn seq2seq_targets(sequences: &[&[u32]], type_ids: &[Vec<u32>], length: usize) -> (Vec<u32>, Vec<u32>) {
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for (b, (ids, segments)) in sequences.iter().zip(type_ids).enumerate() {
        for p in 1..ids.len() {
            if segments[p] == 1 {
                rows.push((b * length + p - 1) as u32);
                targets.push(ids[p]);
            }
        }
    }
    (rows, targets)
}

/// UniLM seq2seq loss: mean cross-entropy of every description token (and
/// the closing `[SEP]`) predicted through the LM head from the hidden state
/// one position earlier.
pub fn seq2seq_loss(
    model: &TextClassifier,
    hidden: &Tensor,
    rows: &[u32],
    targets: &[u32],
    device: &Device,
) -> Result<Tensor> {
    let (batch, length, size) = hidden.dims3()?;
    let flat = hidden.reshape((batch * length, size))?;
    let rows = Tensor::new(rows, device)?;
    let states = flat.index_select(&rows, 0)?;
    cross_entropy(&model.lm_logits(&states)?, targets)
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

    #[test]
    fn seq2seq_targets_shift_by_one() {
        // [CLS] x [SEP] d1 d2 [SEP] and a shorter second example, padded to 6.
        let first: &[u32] = &[2, 10, 3, 20, 21, 3];
        let second: &[u32] = &[2, 11, 3, 22, 3];
        let types = vec![vec![0, 0, 0, 1, 1, 1], vec![0, 0, 0, 1, 1]];
        let (rows, targets) = seq2seq_targets(&[first, second], &types, 6);
        assert_eq!(rows, vec![2, 3, 4, 8, 9]);
        assert_eq!(targets, vec![20, 21, 3, 22, 3]);
    }
}
