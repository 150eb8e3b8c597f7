//! Padded input tensors for a batch of token sequences.

use candle_core::{DType, Device, Result, Tensor};

use super::mask::{attention_bias, padding_mask, seq2seq_mask};

/// Token ids, segment ids and attention bias of one batch, padded on the
/// right to its longest sequence.
pub struct InputBatch {
    pub ids: Tensor,
    pub type_ids: Tensor,
    pub bias: Tensor,
    /// Padded length of every sequence.
    pub length: usize,
}

impl InputBatch {
    /// `[CLS] x [SEP]` sequences under the padding mask.
    pub fn texts(
        sequences: &[&[u32]],
        pad_id: u32,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let length = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
        let lengths: Vec<usize> = sequences.iter().map(|s| s.len()).collect();
        let zeros: Vec<Vec<u32>> = sequences.iter().map(|s| vec![0; s.len()]).collect();
        let mask = padding_mask(&lengths, length);
        Self::build(sequences, &zeros, &mask, pad_id, length, dtype, device)
    }

    /// `[CLS] x [SEP] d [SEP]` sequences under the UniLM seq2seq mask.
    pub fn seq2seq(
        sequences: &[&[u32]],
        type_ids: &[Vec<u32>],
        pad_id: u32,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let length = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
        let mask = seq2seq_mask(type_ids, length);
        Self::build(sequences, type_ids, &mask, pad_id, length, dtype, device)
    }

    fn build(
        sequences: &[&[u32]],
        type_ids: &[Vec<u32>],
        mask: &[Vec<Vec<bool>>],
        pad_id: u32,
        length: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let batch = sequences.len();
        let mut ids = Vec::with_capacity(batch * length);
        let mut types = Vec::with_capacity(batch * length);
        for (sequence, segments) in sequences.iter().zip(type_ids) {
            ids.extend_from_slice(sequence);
            ids.extend(std::iter::repeat_n(pad_id, length - sequence.len()));
            types.extend_from_slice(segments);
            types.extend(std::iter::repeat_n(0, length - segments.len()));
        }
        Ok(Self {
            ids: Tensor::from_vec(ids, (batch, length), device)?,
            type_ids: Tensor::from_vec(types, (batch, length), device)?,
            bias: attention_bias(mask, dtype, device)?,
            length,
        })
    }
}
