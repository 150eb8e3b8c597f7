//! `seq2seq`: UniLM-style generation of the label description. Input
//! `[CLS] x [SEP] d [SEP]` with segment 1 for `d [SEP]`; each segment-1
//! token is predicted through the LM head from the state one position
//! earlier. Segment 0 never sees segment 1, so one forward pass serves this
//! loss and classification.

use std::collections::BTreeMap;

use candle_core::{Result, Tensor};

use super::{Task, TaskBatch, check_options};
use crate::train::loss::cross_entropy;

pub fn build(options: &BTreeMap<String, f64>) -> std::result::Result<Box<dyn Task>, String> {
    check_options(options, &[])?;
    Ok(Box::new(Seq2seq))
}

struct Seq2seq;

/// Positions of the seq2seq targets in a padded batch: for each segment-1
/// token at position `p + 1`, the flattened row `b·L + p` of the state that
/// predicts it, and the token id.
pub fn seq2seq_targets(sequences: &[&[u32]], type_ids: &[&[u32]], length: usize) -> (Vec<u32>, Vec<u32>) {
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

impl Task for Seq2seq {
    fn name(&self) -> &'static str {
        "seq2seq"
    }

    fn needs_description_segment(&self) -> bool {
        true
    }

    fn needs_lm_head(&self) -> bool {
        true
    }

    fn loss(&self, batch: &TaskBatch<'_>) -> Result<Option<Tensor>> {
        let sequences: Vec<&[u32]> = batch.examples.iter().map(|e| e.ids.as_slice()).collect();
        let type_ids: Vec<&[u32]> = batch.examples.iter().map(|e| e.type_ids.as_slice()).collect();
        let (rows, targets) = seq2seq_targets(&sequences, &type_ids, batch.input.length);
        if rows.is_empty() {
            candle_core::bail!("the seq2seq task needs inputs with a description segment");
        }
        let hidden = &batch.output.hidden;
        let (size_b, length, size) = hidden.dims3()?;
        let flat = hidden.reshape((size_b * length, size))?;
        let rows = Tensor::new(rows.as_slice(), batch.device)?;
        let states = flat.index_select(&rows, 0)?;
        cross_entropy(&batch.model.lm_logits(&states)?, &targets).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_shift_by_one() {
        // [CLS] x [SEP] d1 d2 [SEP] and a shorter second example, padded to 6.
        let first: &[u32] = &[2, 10, 3, 20, 21, 3];
        let second: &[u32] = &[2, 11, 3, 22, 3];
        let types: [&[u32]; 2] = [&[0, 0, 0, 1, 1, 1], &[0, 0, 0, 1, 1]];
        let (rows, targets) = seq2seq_targets(&[first, second], &types, 6);
        assert_eq!(rows, vec![2, 3, 4, 8, 9]);
        assert_eq!(targets, vec![20, 21, 3, 22, 3]);
    }
}
