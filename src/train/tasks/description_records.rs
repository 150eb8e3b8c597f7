//! `description_records`: every epoch adds one record (d(y), y) per label
//! to the training set. Its loss term is the cross-entropy on the
//! description records of the batch (none when the batch has none); the
//! classification term covers the other records, so the weight sets how
//! much the description records count.

use std::collections::BTreeMap;

use candle_core::{Result, Tensor};

use super::{Task, TaskBatch, check_options};
use crate::train::loss::cross_entropy;
use crate::train::objective::Origin;

pub fn build(options: &BTreeMap<String, f64>) -> std::result::Result<Box<dyn Task>, String> {
    check_options(options, &[])?;
    Ok(Box::new(DescriptionRecords))
}

struct DescriptionRecords;

impl Task for DescriptionRecords {
    fn name(&self) -> &'static str {
        "description_records"
    }

    fn adds_description_records(&self) -> bool {
        true
    }

    fn loss(&self, batch: &TaskBatch<'_>) -> Result<Option<Tensor>> {
        let rows: Vec<u32> = (0..batch.examples.len() as u32)
            .filter(|&i| batch.examples[i as usize].origin == Origin::DescriptionRecord)
            .collect();
        if rows.is_empty() {
            return Ok(None);
        }
        let labels: Vec<u32> = rows.iter().map(|&i| batch.examples[i as usize].label).collect();
        let index = Tensor::new(rows.as_slice(), batch.device)?;
        cross_entropy(&batch.output.logits.index_select(&index, 0)?, &labels).map(Some)
    }
}
