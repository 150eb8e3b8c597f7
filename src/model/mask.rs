//! Self-attention masks, per example: `M[q][k] = 1` where query `q` may
//! attend to key `k`, turned into an additive bias of shape `[B, 1, L, L]`.

use candle_core::{DType, Device, Result, Tensor};

/// Bias added to the attention scores of masked pairs. A large finite value
/// rather than `-inf`, so that no softmax row can turn into NaN.
pub const MASKED_BIAS: f32 = -1e4;

/// Padding mask: every query sees every non-padding key.
pub fn padding_mask(lengths: &[usize], max_length: usize) -> Vec<Vec<Vec<bool>>> {
    lengths
        .iter()
        .map(|&length| {
            let row: Vec<bool> = (0..max_length).map(|k| k < length).collect();
            vec![row; max_length]
        })
        .collect()
}

/// UniLM seq2seq mask for `[CLS] x [SEP] d [SEP]` inputs: every query sees
/// the non-padding keys of segment 0, and a segment-1 query also sees the
/// segment-1 keys at or before its own position. A segment-0 query never
/// sees segment 1, so `[CLS]` carries nothing of the description.
///
/// `type_ids[b]` holds the segment of each real token; positions past its
/// length are padding.
pub fn seq2seq_mask(type_ids: &[Vec<u32>], max_length: usize) -> Vec<Vec<Vec<bool>>> {
    type_ids
        .iter()
        .map(|segments| {
            let length = segments.len();
            (0..max_length)
                .map(|q| {
                    let query_segment = segments.get(q).copied().unwrap_or(0);
                    (0..max_length)
                        .map(|k| {
                            if k >= length {
                                return false;
                            }
                            match segments[k] {
                                0 => true,
                                _ => query_segment == 1 && k <= q,
                            }
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// Turns a boolean mask `[B][L][L]` into the additive bias `[B, 1, L, L]`.
pub fn attention_bias(
    mask: &[Vec<Vec<bool>>],
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let batch = mask.len();
    let length = mask.first().map_or(0, Vec::len);
    let values: Vec<f32> = mask
        .iter()
        .flat_map(|rows| rows.iter().flat_map(|row| row.iter()))
        .map(|&allowed| if allowed { 0.0 } else { MASKED_BIAS })
        .collect();
    Tensor::from_vec(values, (batch, 1, length, length), device)?.to_dtype(dtype)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_mask_hides_padding_keys() {
        let mask = padding_mask(&[2, 3], 3);
        assert_eq!(mask[0][0], vec![true, true, false]);
        assert_eq!(mask[0][2], vec![true, true, false]);
        assert_eq!(mask[1][1], vec![true, true, true]);
    }

    #[test]
    fn segment_zero_never_sees_segment_one() {
        // [CLS] x [SEP] d1 d2 [SEP] PAD
        let segments = vec![vec![0, 0, 0, 1, 1, 1]];
        let mask = seq2seq_mask(&segments, 7);
        for q in 0..3 {
            for k in 3..7 {
                assert!(!mask[0][q][k], "query {q} sees key {k}");
            }
            for k in 0..3 {
                assert!(mask[0][q][k]);
            }
        }
    }

    #[test]
    fn segment_one_sees_only_earlier_description_tokens() {
        let segments = vec![vec![0, 0, 0, 1, 1, 1]];
        let mask = seq2seq_mask(&segments, 7);
        assert_eq!(
            mask[0][3],
            vec![true, true, true, true, false, false, false]
        );
        assert_eq!(mask[0][5], vec![true, true, true, true, true, true, false]);
        // A padding query still sees segment 0, so its softmax row is finite.
        assert_eq!(
            mask[0][6],
            vec![true, true, true, false, false, false, false]
        );
    }

    #[test]
    fn bias_is_zero_where_allowed() {
        let mask = padding_mask(&[1], 2);
        let bias = attention_bias(&mask, DType::F32, &Device::Cpu).unwrap();
        assert_eq!(bias.dims(), &[1, 1, 2, 2]);
        let values = bias.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(values, vec![0.0, MASKED_BIAS, 0.0, MASKED_BIAS]);
    }
}
