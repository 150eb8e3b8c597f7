//! Property tests: the loaders and request validation never panic, and
//! records written by standard JSON and CSV writers read back unchanged.
//! The strategies below are the corpus; failures print a minimal case.

use std::io::Write;

use labelaug::data::{FieldMapping, Format, LabelMap, check_syntax, read_records};
use labelaug::train::spec::{Hyperparameters, ScratchEncoder};
use labelaug::train::tasks::build_task;
use proptest::prelude::*;

const FORMATS: [Format; 4] = [Format::Jsonl, Format::Clue, Format::Csv, Format::Tsv];

fn write_file(dir: &tempfile::TempDir, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.path().join("data");
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(bytes).unwrap();
    path
}

/// Text made of characters that stress line splitting and quoting.
fn tricky_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "a", "卡", "银行", "😀", ",", "\"", "\t", "\r", "\n", "\r\n", "\u{2028}", "\u{2029}", "\u{feff}", " ", "é", "\u{0301}",
        "\\", "{", "}",
    ]);
    prop::collection::vec(pieces, 1..20)
        .prop_map(|parts| parts.concat())
        .prop_filter("text must not be blank", |text| !text.trim().is_empty())
}

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..1000).prop_map(|n| n.to_string()),
        "[a-z_]{1,12}".prop_map(|s| s),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn loaders_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(&dir, &bytes);
        for format in FORMATS {
            let _ = check_syntax(&path, "data", format);
            let _ = read_records(&path, "data", format, &FieldMapping::defaults_for(format));
        }
    }

    #[test]
    fn jsonl_records_round_trip(records in prop::collection::vec((tricky_text(), label()), 1..20)) {
        let dir = tempfile::tempdir().unwrap();
        let mut content = String::new();
        for (text, label) in &records {
            let value = serde_json::json!({"text": text, "label": label});
            content.push_str(&value.to_string());
            content.push('\n');
        }
        let path = write_file(&dir, content.as_bytes());
        let read = read_records(&path, "data.jsonl", Format::Jsonl, &FieldMapping::defaults_for(Format::Jsonl)).unwrap();
        prop_assert_eq!(read.len(), records.len());
        for (record, (text, label)) in read.iter().zip(&records) {
            prop_assert_eq!(&record.text, text);
            prop_assert_eq!(&record.label, label.trim());
        }
    }

    #[test]
    fn csv_records_round_trip(records in prop::collection::vec((tricky_text(), label()), 1..20)) {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(["text", "label"]).unwrap();
        for (text, label) in &records {
            writer.write_record([text, label]).unwrap();
        }
        let bytes = writer.into_inner().unwrap();
        let path = write_file(&dir, &bytes);
        match read_records(&path, "data.csv", Format::Csv, &FieldMapping::defaults_for(Format::Csv)) {
            Ok(read) => {
                prop_assert_eq!(read.len(), records.len());
                for (record, (text, label)) in read.iter().zip(&records) {
                    prop_assert_eq!(&record.text, text);
                    prop_assert_eq!(&record.label, label.trim());
                }
            }
            // A text that starts with a BOM on the first line is the one
            // input the CSV reader reads differently, as the BOM is removed.
            Err(error) => prop_assert!(records[0].0.starts_with('\u{feff}'), "{}", error),
        }
    }

    #[test]
    fn label_map_is_dense_and_sorted(labels in prop::collection::btree_set(0u32..500, 2..30)) {
        let records: Vec<_> = labels
            .iter()
            .enumerate()
            .map(|(line, label)| labelaug::data::RawRecord {
                text: "x".to_string(),
                label: label.to_string(),
                description: None,
                line: line + 1,
            })
            .collect();
        let map = LabelMap::build(&records, None).unwrap();
        prop_assert_eq!(map.len(), labels.len());
        for (index, label) in labels.iter().enumerate() {
            prop_assert_eq!(map.index_of(&label.to_string()), Some(index));
        }
    }

    #[test]
    fn hyperparameter_validation_accepts_only_documented_ranges(
        epochs in any::<u32>(),
        batch_size in any::<usize>(),
        learning_rate in any::<f64>(),
        warmup_ratio in any::<f64>(),
        max_length in any::<usize>(),
    ) {
        let hyper = Hyperparameters {
            epochs,
            batch_size,
            learning_rate,
            warmup_ratio,
            max_length,
            ..Hyperparameters::default()
        };
        if hyper.validate().is_ok() {
            prop_assert!((1..=1000).contains(&epochs));
            prop_assert!((1..=4096).contains(&batch_size));
            prop_assert!(learning_rate > 0.0 && learning_rate <= 1.0);
            prop_assert!((0.0..1.0).contains(&warmup_ratio));
            prop_assert!((3..=512).contains(&max_length));
        }
    }

    #[test]
    fn encoder_validation_never_accepts_indivisible_heads(hidden in 0usize..3000, heads in 0usize..64) {
        let encoder = ScratchEncoder { hidden_size: hidden, num_heads: heads, ..ScratchEncoder::default() };
        if encoder.validate().is_ok() {
            prop_assert!(heads > 0 && hidden % heads == 0);
        }
    }

    #[test]
    fn task_names_build_or_list_known_tasks(
        name in "\\PC{0,20}",
        options in prop::collection::btree_map("[a-z]{1,8}", any::<f64>(), 0..3),
    ) {
        match build_task(&name, &options) {
            Ok(task) => prop_assert_eq!(task.name(), name.as_str()),
            Err(message) => prop_assert!(message.contains("seq2seq") || message.contains("option")),
        }
    }
}
