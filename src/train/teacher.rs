//! The teacher of the `distill` task: a finished model whose class logits
//! on every training record, computed once with its own tokenizer on the
//! raw texts, become soft targets. Its label set must be the job's, and its
//! columns are reordered to the job's label order.

use std::path::Path;

use candle_core::Device;
use tracing::info;

use super::trainer::{EVAL_BATCH_SIZE, predict_logits};
use crate::data::LabelMap;
use crate::model::{ArtifactError, ModelArtifact};
use crate::text::{TextError, encode_text};

#[derive(Debug, thiserror::Error)]
pub enum TeacherError {
    #[error("teacher model {model_id}: {source}")]
    Load { model_id: String, source: ArtifactError },
    #[error(
        "teacher model {model_id} has {teacher_count} labels and the training data {student_count}; \
         label {label:?} is in {present_in} only; distill needs the same label set"
    )]
    LabelSet {
        model_id: String,
        teacher_count: usize,
        student_count: usize,
        label: String,
        present_in: &'static str,
    },
    #[error("teacher model {model_id}: {source}")]
    Text { model_id: String, source: TextError },
    #[error("teacher model {model_id}: {source}")]
    Tensor { model_id: String, source: candle_core::Error },
}

/// Returns, for each of the job's labels, its column in the teacher's logits.
pub fn align_labels(model_id: &str, teacher: &LabelMap, student: &LabelMap) -> Result<Vec<usize>, TeacherError> {
    let mismatch = |label: &str, present_in| TeacherError::LabelSet {
        model_id: model_id.to_string(),
        teacher_count: teacher.len(),
        student_count: student.len(),
        label: label.to_string(),
        present_in,
    };
    let columns = student
        .entries()
        .iter()
        .map(|entry| teacher.index_of(&entry.value).ok_or_else(|| mismatch(&entry.value, "the training data")))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(extra) = teacher.entries().iter().find(|entry| student.index_of(&entry.value).is_none()) {
        return Err(mismatch(&extra.value, "the teacher"));
    }
    Ok(columns)
}

/// Checks a teacher folder's label set against the job's without loading
/// its weights.
pub fn check_teacher_labels(model_id: &str, dir: &Path, student: &LabelMap) -> Result<(), TeacherError> {
    let labels = ModelArtifact::read_labels(dir).map_err(|source| TeacherError::Load {
        model_id: model_id.to_string(),
        source,
    })?;
    align_labels(model_id, &labels, student).map(|_| ())
}

/// Computes the teacher's logits on `texts`, columns in the job's label order.
pub fn teacher_logits(
    model_id: &str,
    dir: &Path,
    texts: &[&str],
    student: &LabelMap,
    device: &Device,
) -> Result<Vec<Vec<f32>>, TeacherError> {
    let artifact = ModelArtifact::load(dir, device).map_err(|source| TeacherError::Load {
        model_id: model_id.to_string(),
        source,
    })?;
    let columns = align_labels(model_id, &artifact.labels, student)?;
    let text_error = |source| TeacherError::Text {
        model_id: model_id.to_string(),
        source,
    };
    let tensor_error = |source| TeacherError::Tensor {
        model_id: model_id.to_string(),
        source,
    };
    let special = artifact.tokenizer.special();
    let mut rows = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(EVAL_BATCH_SIZE) {
        let encoded = chunk
            .iter()
            .map(|text| {
                let ids = artifact.tokenizer.tokenize(text)?;
                Ok(encode_text(&ids, artifact.max_length, special).ids)
            })
            .collect::<Result<Vec<_>, TextError>>()
            .map_err(text_error)?;
        let sequences: Vec<&[u32]> = encoded.iter().map(Vec::as_slice).collect();
        let logits = predict_logits(&artifact.model, &sequences, special.pad, device)
            .and_then(|logits| logits.to_vec2::<f32>())
            .map_err(tensor_error)?;
        rows.extend(logits.into_iter().map(|row| columns.iter().map(|&c| row[c]).collect::<Vec<f32>>()));
    }
    info!(teacher = model_id, records = rows.len(), "teacher logits computed");
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::LabelEntry;

    fn labels(values: &[&str]) -> LabelMap {
        LabelMap::from_entries(
            values
                .iter()
                .map(|v| LabelEntry {
                    value: v.to_string(),
                    description: v.to_string(),
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn columns_follow_the_student_order() {
        let columns = align_labels("m", &labels(&["b", "a", "c"]), &labels(&["a", "b", "c"])).unwrap();
        assert_eq!(columns, vec![1, 0, 2]);
    }

    #[test]
    fn different_label_sets_are_named() {
        let error = align_labels("m", &labels(&["a", "b"]), &labels(&["a", "b", "c"])).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("\"c\""), "{message}");
        assert!(message.contains("the training data"), "{message}");
        assert!(message.contains("2 labels"), "{message}");
        assert!(message.contains("3"), "{message}");
        let error = align_labels("m", &labels(&["a", "b", "x"]), &labels(&["a", "b"])).unwrap_err();
        assert!(error.to_string().contains("\"x\" is in the teacher only"), "{error}");
    }
}
