//! Encoder input layouts built from token ids.

use super::SpecialIds;

/// `[CLS] x [SEP]`, cut to the maximum length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedText {
    pub ids: Vec<u32>,
    /// True when tokens of `x` were dropped to fit `max_length`.
    pub truncated: bool,
}

/// `[CLS] x [SEP] d [SEP]` with segment ids 0 for `[CLS] x [SEP]` and 1 for
/// `d [SEP]`, the input of the UniLM seq2seq task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPair {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
}

/// Lays out `[CLS] text [SEP]` in at most `max_length` tokens (at least 2).
pub fn encode_text(text_ids: &[u32], max_length: usize, special: SpecialIds) -> EncodedText {
    let room = max_length.saturating_sub(2);
    let kept = text_ids.len().min(room);
    let mut ids = Vec::with_capacity(kept + 2);
    ids.push(special.cls);
    ids.extend_from_slice(&text_ids[..kept]);
    ids.push(special.sep);
    EncodedText {
        ids,
        truncated: kept < text_ids.len(),
    }
}

/// Lays out `[CLS] text [SEP] description [SEP]`: the text part in at most
/// `max_length` tokens, the description part in at most
/// `max_description_length` tokens (its `[SEP]` included, at least 1).
pub fn encode_pair(
    text_ids: &[u32],
    description_ids: &[u32],
    max_length: usize,
    max_description_length: usize,
    special: SpecialIds,
) -> EncodedPair {
    let text = encode_text(text_ids, max_length, special);
    let room = max_description_length.saturating_sub(1);
    let kept = description_ids.len().min(room);
    let mut ids = text.ids;
    let mut type_ids = vec![0; ids.len()];
    ids.extend_from_slice(&description_ids[..kept]);
    ids.push(special.sep);
    type_ids.resize(ids.len(), 1);
    EncodedPair { ids, type_ids }
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
    fn text_fits_without_truncation() {
        let encoded = encode_text(&[10, 11], 4, SPECIAL);
        assert_eq!(encoded.ids, vec![2, 10, 11, 3]);
        assert!(!encoded.truncated);
    }

    #[test]
    fn long_text_is_truncated() {
        let encoded = encode_text(&[10, 11, 12], 4, SPECIAL);
        assert_eq!(encoded.ids, vec![2, 10, 11, 3]);
        assert!(encoded.truncated);
    }

    #[test]
    fn pair_has_segments_and_truncated_description() {
        let pair = encode_pair(&[10, 11, 12], &[20, 21, 22], 4, 3, SPECIAL);
        assert_eq!(pair.ids, vec![2, 10, 11, 3, 20, 21, 3]);
        assert_eq!(pair.type_ids, vec![0, 0, 0, 0, 1, 1, 1]);
    }
}
