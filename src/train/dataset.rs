//! Loads and checks the data of a job: records, label map, evaluation set.

use crate::data::{self, DataError, LabelMap, RawRecord};

use super::spec::DataSpec;

pub struct TrainingData {
    pub train: Vec<RawRecord>,
    pub eval: Vec<RawRecord>,
    pub labels: LabelMap,
}

/// Reads the training, evaluation and description files of `spec` and
/// builds the label map. Every evaluation label must occur in training.
pub fn load_training_data(spec: &DataSpec) -> Result<TrainingData, DataError> {
    let fields = spec.fields.clone().resolved(spec.train.format);
    let train = data::read_records(&spec.train.path, &spec.train.file_name, spec.train.format, &fields)?;
    let descriptions = match &spec.descriptions {
        Some(file) => {
            let label_field = match file.label_field.is_empty() {
                true => fields.label.as_str(),
                false => file.label_field.as_str(),
            };
            Some(data::read_label_descriptions(
                &file.file.path,
                &file.file.file_name,
                file.file.format,
                label_field,
                &file.description_field,
            )?)
        }
        None => None,
    };
    let labels = LabelMap::build(&train, descriptions.as_ref())?;
    let eval = match &spec.eval {
        Some(file) => {
            let eval_fields = spec.fields.clone().resolved(file.format);
            let records = data::read_records(&file.path, &file.file_name, file.format, &eval_fields)?;
            data::check_eval_labels(&labels, &records, &file.file_name)?;
            records
        }
        None => Vec::new(),
    };
    Ok(TrainingData { train, eval, labels })
}
