//! `similarity` and `similarity_masked`: each record is followed in its
//! batch by a record of its label's description (partners `2k` and
//! `2k + 1`). The pooled vectors are normalised, `S = scale · e eᵀ`, the
//! diagonal is masked, and each row's target is its partner: an in-batch
//! contrastive loss. The masked variant also removes from each row the
//! other records of the same class, which the plain variant pushes apart.

use std::collections::BTreeMap;

use candle_core::{D, Result, Tensor};

use super::{Task, TaskBatch, check_options};
use crate::model::mask::MASKED_BIAS;
use crate::train::loss::cross_entropy;

/// Default temperature-like scale of the cosine similarities.
const DEFAULT_SCALE: f64 = 20.0;

pub fn build_plain(options: &BTreeMap<String, f64>) -> std::result::Result<Box<dyn Task>, String> {
    build(options, false)
}

pub fn build_masked(options: &BTreeMap<String, f64>) -> std::result::Result<Box<dyn Task>, String> {
    build(options, true)
}

fn build(options: &BTreeMap<String, f64>, masked: bool) -> std::result::Result<Box<dyn Task>, String> {
    check_options(options, &["scale"])?;
    let scale = options.get("scale").copied().unwrap_or(DEFAULT_SCALE);
    if !(scale.is_finite() && scale > 0.0 && scale <= 1000.0) {
        return Err(format!("option scale = {scale}: must be above 0 and at most 1000"));
    }
    Ok(Box::new(Similarity { scale, masked }))
}

struct Similarity {
    scale: f64,
    masked: bool,
}

/// Additive mask of the similarity matrix: the diagonal, and with
/// `same_class` every other entry of the row's class except its partner.
pub fn similarity_mask(labels: &[u32], same_class: bool) -> Vec<f32> {
    let n = labels.len();
    let mut mask = vec![0.0f32; n * n];
    for i in 0..n {
        let partner = i ^ 1;
        for j in 0..n {
            let hidden = j == i || (same_class && j != partner && labels[j] == labels[i]);
            if hidden {
                mask[i * n + j] = MASKED_BIAS;
            }
        }
    }
    mask
}

impl Task for Similarity {
    fn name(&self) -> &'static str {
        if self.masked { "similarity_masked" } else { "similarity" }
    }

    fn pairs_with_descriptions(&self) -> bool {
        true
    }

    fn loss(&self, batch: &TaskBatch<'_>) -> Result<Option<Tensor>> {
        let labels: Vec<u32> = batch.examples.iter().map(|e| e.label).collect();
        contrastive_loss(&batch.output.pooled, &labels, self.scale, self.masked).map(Some)
    }
}

/// In-batch contrastive loss of partners `2k` and `2k + 1` over the pooled
/// vectors `[N, H]`.
pub fn contrastive_loss(pooled: &Tensor, labels: &[u32], scale: f64, same_class: bool) -> Result<Tensor> {
    let n = labels.len();
    if n < 2 || n % 2 != 0 {
        candle_core::bail!("the similarity task needs a batch of record and description pairs, got {n} records");
    }
    let norm = pooled.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
    let normalized = pooled.broadcast_div(&(norm + 1e-12)?)?;
    let scores = (normalized.matmul(&normalized.t()?)? * scale)?;
    let mask = Tensor::from_vec(similarity_mask(labels, same_class), (n, n), pooled.device())?.to_dtype(scores.dtype())?;
    let targets: Vec<u32> = (0..n as u32).map(|i| i ^ 1).collect();
    cross_entropy(&(scores + mask)?, &targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_mask_hides_only_the_diagonal() {
        let mask = similarity_mask(&[0, 0, 0, 0], false);
        for i in 0..4 {
            for j in 0..4 {
                assert_eq!(mask[i * 4 + j] != 0.0, i == j, "({i}, {j})");
            }
        }
    }

    #[test]
    fn masked_variant_hides_exactly_same_class_non_partners() {
        // Pairs (0, 1) and (2, 3) share class 5; pair (4, 5) is class 7.
        let labels = [5, 5, 5, 5, 7, 7];
        let mask = similarity_mask(&labels, true);
        let hidden = |i: usize, j: usize| mask[i * 6 + j] != 0.0;
        assert!(hidden(0, 0));
        assert!(!hidden(0, 1), "the partner stays");
        assert!(hidden(0, 2), "same class, not the partner");
        assert!(hidden(0, 3), "same class, not the partner");
        assert!(!hidden(0, 4), "other classes stay");
        assert!(!hidden(0, 5), "other classes stay");
        assert!(!hidden(4, 5));
        assert!(hidden(4, 4));
        assert!(!hidden(4, 0));
    }

    #[test]
    fn loss_matches_hand_computation() {
        // Pairs (0, 1) and (2, 3) point the same way within a pair and are
        // orthogonal across pairs. With scale 1 each row scores its partner
        // 1 and the other pair 0, so the loss is ln((e + 2) / e).
        let pooled = Tensor::new(&[[2.0f64, 0.0], [1.0, 0.0], [0.0, 3.0], [0.0, 1.0]], &candle_core::Device::Cpu).unwrap();
        let loss = contrastive_loss(&pooled, &[0, 0, 1, 1], 1.0, false).unwrap().to_scalar::<f64>().unwrap();
        let e = std::f64::consts::E;
        assert!((loss - ((e + 2.0) / e).ln()).abs() < 1e-9, "{loss}");
        // Masked, with one class for all four: each row keeps only its
        // partner, so the loss is 0.
        let masked = contrastive_loss(&pooled, &[0, 0, 0, 0], 1.0, true).unwrap().to_scalar::<f64>().unwrap();
        assert!(masked.abs() < 1e-9, "{masked}");
        assert!(contrastive_loss(&pooled.narrow(0, 0, 3).unwrap(), &[0, 0, 1], 1.0, false).is_err());
    }

    #[test]
    fn scale_option_is_checked() {
        assert!(build(&BTreeMap::from([("scale".to_string(), -1.0)]), false).is_err());
        assert!(build(&BTreeMap::from([("temperature".to_string(), 1.0)]), false).is_err());
        assert!(build(&BTreeMap::new(), true).is_ok());
    }
}
