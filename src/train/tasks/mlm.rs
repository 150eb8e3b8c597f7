//! `mlm`: the masked-language-model loss on the training texts. In a copy
//! of each text's `[CLS] x [SEP]`, a fraction of the tokens of `x` (15% by
//! default) is chosen. Of those, 80% become `[MASK]`, 10% a random token and
//! 10% stay. A second forward pass over the copies predicts the original
//! tokens at the chosen positions through the LM head. The choice comes
//! from a generator seeded by the job's seed and the step, so a resumed job
//! masks as an uninterrupted one does.

use std::collections::BTreeMap;

use candle_core::{DType, Result, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Task, TaskBatch, check_options};
use crate::model::{ForwardMode, InputBatch};
use crate::text::SpecialIds;
use crate::train::loss::cross_entropy;
use crate::train::objective::Origin;

const DEFAULT_RATE: f64 = 0.15;
/// Offsets the step seed, so that masking and dropout draw apart.
const DROPOUT_STREAM: u64 = 0x6d6c_6d5f_6472_6f70;

pub fn build(options: &BTreeMap<String, f64>) -> std::result::Result<Box<dyn Task>, String> {
    check_options(options, &["rate"])?;
    let rate = options.get("rate").copied().unwrap_or(DEFAULT_RATE);
    if !(rate > 0.0 && rate <= 0.5) {
        return Err(format!("option rate = {rate}: must be above 0 and at most 0.5"));
    }
    Ok(Box::new(MaskedLanguageModel { rate }))
}

struct MaskedLanguageModel {
    rate: f64,
}

/// Masked copies of a batch of `[CLS] x [SEP]` sequences and what to
/// predict: for each chosen token, its flattened row `b·L + p` in the padded
/// batch and its original id.
#[derive(Debug, PartialEq)]
pub struct MaskedTexts {
    pub sequences: Vec<Vec<u32>>,
    pub rows: Vec<u32>,
    pub targets: Vec<u32>,
}

/// Chooses each token of `x` with probability `rate` and replaces it by
/// `[MASK]` (80%), a random non-special token (10%) or itself (10%).
/// `[CLS]`, `[SEP]`, `[PAD]`, `[UNK]` and `[MASK]` are never chosen.
pub fn mask_tokens(
    sequences: &[&[u32]],
    rate: f64,
    special: SpecialIds,
    vocab_size: u32,
    rng: &mut ChaCha8Rng,
) -> MaskedTexts {
    let reserved = [special.pad, special.unk, special.cls, special.sep, special.mask];
    let length = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut masked = MaskedTexts {
        sequences: Vec::with_capacity(sequences.len()),
        rows: Vec::new(),
        targets: Vec::new(),
    };
    for (b, sequence) in sequences.iter().enumerate() {
        let mut copy = sequence.to_vec();
        for (p, token) in copy.iter_mut().enumerate() {
            let original = *token;
            if reserved.contains(&original) || rng.random::<f64>() >= rate {
                continue;
            }
            masked.rows.push((b * length + p) as u32);
            masked.targets.push(original);
            let action = rng.random::<f64>();
            if action < 0.8 {
                *token = special.mask;
            } else if action < 0.9 {
                *token = random_token(rng, vocab_size, &reserved);
            }
        }
        masked.sequences.push(copy);
    }
    masked
}

fn random_token(rng: &mut ChaCha8Rng, vocab_size: u32, reserved: &[u32]) -> u32 {
    loop {
        let token = rng.random_range(0..vocab_size);
        if !reserved.contains(&token) {
            return token;
        }
    }
}

impl Task for MaskedLanguageModel {
    fn name(&self) -> &'static str {
        "mlm"
    }

    fn needs_lm_head(&self) -> bool {
        true
    }

    fn loss(&self, batch: &TaskBatch<'_>) -> Result<Option<Tensor>> {
        // The text part of each training record: segment 0.
        let texts: Vec<&[u32]> = batch
            .examples
            .iter()
            .filter(|e| e.origin == Origin::Text)
            .map(|e| {
                let text_length = e.type_ids.iter().take_while(|&&t| t == 0).count();
                &e.ids[..text_length]
            })
            .collect();
        if texts.is_empty() {
            return Ok(None);
        }

        let mut rng = ChaCha8Rng::seed_from_u64(batch.step_seed);
        let vocab_size = batch.model.config().vocab_size as u32;
        let masked = mask_tokens(&texts, self.rate, batch.special, vocab_size, &mut rng);
        if masked.rows.is_empty() {
            return Ok(None);
        }

        let sequences: Vec<&[u32]> = masked.sequences.iter().map(Vec::as_slice).collect();
        let dtype: DType = batch.output.hidden.dtype();
        let input = InputBatch::texts(&sequences, batch.special.pad, dtype, batch.device)?;
        let mut mode = match batch.train {
            true => ForwardMode::train(batch.step_seed ^ DROPOUT_STREAM),
            false => ForwardMode::Eval,
        };
        let output = batch.model.forward(&input.ids, &input.type_ids, &input.bias, &mut mode)?;
        let (size_b, length, size) = output.hidden.dims3()?;
        let flat = output.hidden.reshape((size_b * length, size))?;
        let rows = Tensor::new(masked.rows.as_slice(), batch.device)?;
        let states = flat.index_select(&rows, 0)?;
        cross_entropy(&batch.model.lm_logits(&states)?, &masked.targets).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECIAL: SpecialIds = SpecialIds {
        pad: 0,
        unk: 1,
        cls: 2,
        sep: 3,
        mask: 4,
    };

    #[test]
    fn masking_follows_80_10_10_rule() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let text: Vec<u32> = std::iter::once(2).chain((0..2000).map(|i| 10 + i % 90)).chain([1, 3]).collect();
        let masked = mask_tokens(&[text.as_slice(), &[2, 11, 3]], 0.15, SPECIAL, 100, &mut rng);
        let chosen = masked.rows.len() as f64;
        let candidates = 2001.0;
        assert!((chosen / candidates - 0.15).abs() < 0.025, "chose {chosen} of {candidates}");
        let length = text.len();
        let (mut as_mask, mut kept, mut random) = (0.0, 0.0, 0.0);
        for (&row, &target) in masked.rows.iter().zip(&masked.targets) {
            let (b, p) = (row as usize / length, row as usize % length);
            let original = [text.as_slice(), &[2, 11, 3]][b][p];
            assert_eq!(target, original);
            assert!(![0, 1, 2, 3, 4].contains(&original), "special token {original} chosen");
            let now = masked.sequences[b][p];
            if now == SPECIAL.mask {
                as_mask += 1.0;
            } else if now == original {
                kept += 1.0;
            } else {
                assert!(now >= 5, "random token {now}");
                assert!(now < 100, "random token {now}");
                random += 1.0;
            }
        }
        assert!((as_mask / chosen - 0.8).abs() < 0.06, "{as_mask} of {chosen} masked");
        assert!((kept / chosen - 0.1).abs() < 0.05, "{kept} of {chosen} kept");
        assert!((random / chosen - 0.1).abs() < 0.05, "{random} of {chosen} random");
        // Unchosen positions are untouched.
        for (p, (&now, &before)) in masked.sequences[0].iter().zip(&text).enumerate() {
            if !masked.rows.contains(&(p as u32)) {
                assert_eq!(now, before);
            }
        }
    }

    #[test]
    fn same_seed_masks_the_same_tokens() {
        let text: Vec<u32> = (10..60).collect();
        let first = mask_tokens(&[&text], 0.3, SPECIAL, 100, &mut ChaCha8Rng::seed_from_u64(4));
        let second = mask_tokens(&[&text], 0.3, SPECIAL, 100, &mut ChaCha8Rng::seed_from_u64(4));
        assert_eq!(first, second);
        let other = mask_tokens(&[&text], 0.3, SPECIAL, 100, &mut ChaCha8Rng::seed_from_u64(5));
        assert_ne!(first, other);
    }

    #[test]
    fn rate_option_is_checked() {
        assert!(build(&BTreeMap::from([("rate".to_string(), 0.0)])).is_err());
        assert!(build(&BTreeMap::from([("rate".to_string(), 0.6)])).is_err());
        assert!(build(&BTreeMap::from([("rate".to_string(), 0.2)])).is_ok());
    }
}
