//! Mapping between original label values and dense class indices.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::{DataError, RawRecord, shorten};

/// One class: its original label value and the description used for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelEntry {
    pub value: String,
    pub description: String,
}

/// Classes in dense index order (0..n) with a lookup from label value to index.
///
/// Serialises as a JSON array of `{"value", "description"}` objects in index order, and
/// deserialisation applies the checks of [`LabelMap::from_entries`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Vec<LabelEntry>", try_from = "Vec<LabelEntry>")]
pub struct LabelMap {
    entries: Vec<LabelEntry>,
    index: HashMap<String, usize>,
}

/// First description that a label's records give, with its line.
type SeenDescription = Option<(String, usize)>;

impl LabelMap {
    /// Builds the label map of a training set.
    ///
    /// Labels get indices in numeric order when every value parses as an integer (TNEWS labels
    /// 100..116 without 105 and 111 become 0..14), otherwise in lexicographic order. A label's
    /// description is the first non-blank description of its records, else its entry in
    /// `descriptions`, else the value with `_` replaced by a space (`card_arrival` becomes
    /// `card arrival`). Two different record descriptions for one label and fewer than two
    /// labels are errors.
    pub fn build(
        records: &[RawRecord],
        descriptions: Option<&BTreeMap<String, String>>,
    ) -> Result<LabelMap, DataError> {
        let seen = collect_labels(records)?;
        let mut values: Vec<&String> = seen.keys().collect();
        sort_label_values(&mut values);
        let entries = values
            .into_iter()
            .map(|value| LabelEntry {
                value: value.clone(),
                description: describe(value, &seen[value], descriptions),
            })
            .collect();
        LabelMap::from_entries(entries)
    }

    /// Builds a label map from entries already in index order, as saved beside a model.
    ///
    /// Duplicate values and fewer than two entries are errors.
    pub fn from_entries(entries: Vec<LabelEntry>) -> Result<LabelMap, DataError> {
        if entries.len() < 2 {
            return Err(DataError::TooFewLabels {
                count: entries.len(),
            });
        }
        let mut index = HashMap::with_capacity(entries.len());
        for (position, entry) in entries.iter().enumerate() {
            if index.insert(entry.value.clone(), position).is_some() {
                return Err(DataError::DuplicateLabel {
                    value: shorten(&entry.value),
                });
            }
        }
        Ok(LabelMap { entries, index })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Returns the class index of an original label value.
    pub fn index_of(&self, value: &str) -> Option<usize> {
        self.index.get(value).copied()
    }

    pub fn entry(&self, index: usize) -> Option<&LabelEntry> {
        self.entries.get(index)
    }

    /// Returns the entries in index order.
    pub fn entries(&self) -> &[LabelEntry] {
        &self.entries
    }
}

impl From<LabelMap> for Vec<LabelEntry> {
    fn from(map: LabelMap) -> Self {
        map.entries
    }
}

impl TryFrom<Vec<LabelEntry>> for LabelMap {
    type Error = DataError;

    fn try_from(entries: Vec<LabelEntry>) -> Result<Self, Self::Error> {
        LabelMap::from_entries(entries)
    }
}

/// Collects the distinct labels and the first description of each, rejecting a label whose
/// records give two different descriptions.
fn collect_labels(records: &[RawRecord]) -> Result<BTreeMap<String, SeenDescription>, DataError> {
    let mut seen: BTreeMap<String, SeenDescription> = BTreeMap::new();
    for record in records {
        let seen_description = seen.entry(record.label.clone()).or_default();
        let Some(description) = &record.description else {
            continue;
        };
        match seen_description {
            None => *seen_description = Some((description.clone(), record.line)),
            Some((first, _)) if first == description => {}
            Some((first, first_line)) => {
                return Err(DataError::ConflictingDescription {
                    line: record.line,
                    label: shorten(&record.label),
                    first: shorten(first),
                    second: shorten(description),
                    first_line: *first_line,
                });
            }
        }
    }
    Ok(seen)
}

/// Sorts numerically when every value is an integer, else lexicographically.
fn sort_label_values(values: &mut [&String]) {
    let numbers: Option<Vec<i128>> = values.iter().map(|value| value.parse().ok()).collect();
    if numbers.is_some() {
        // Values such as "7" and "07" parse to the same number, so ties fall back to the text.
        values.sort_by_key(|value| (value.parse::<i128>().unwrap_or(0), value.as_str()));
    } else {
        values.sort();
    }
}

fn describe(
    value: &str,
    seen: &SeenDescription,
    descriptions: Option<&BTreeMap<String, String>>,
) -> String {
    if let Some((description, _)) = seen {
        return description.clone();
    }
    if let Some(description) = descriptions.and_then(|map| map.get(value)) {
        return description.clone();
    }
    value.replace('_', " ")
}

/// Checks that every evaluation record's label occurs in the training label map.
///
/// The error gives the number of records with unknown labels and the first one's value and line.
pub fn check_eval_labels(
    label_map: &LabelMap,
    eval: &[RawRecord],
    file_name: &str,
) -> Result<(), DataError> {
    let mut unknown = eval
        .iter()
        .filter(|record| label_map.index_of(&record.label).is_none());
    let Some(first) = unknown.next() else {
        return Ok(());
    };
    Err(DataError::UnknownLabels {
        file: file_name.to_string(),
        line: first.line,
        value: shorten(&first.label),
        count: 1 + unknown.count(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{FieldMapping, Format, read_label_descriptions, read_records};
    use super::*;
    use std::path::Path;

    fn record(label: &str, description: Option<&str>, line: usize) -> RawRecord {
        RawRecord {
            text: format!("text {line}"),
            label: label.to_string(),
            description: description.map(str::to_string),
            line,
        }
    }

    fn values(map: &LabelMap) -> Vec<&str> {
        map.entries()
            .iter()
            .map(|entry| entry.value.as_str())
            .collect()
    }

    fn data_path(relative: &str) -> String {
        format!("{}/tests/data/{relative}", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn integer_labels_sorted_numerically() {
        let records: Vec<RawRecord> = ["116", "100", "9", "104", "100"]
            .iter()
            .enumerate()
            .map(|(line, label)| record(label, None, line + 1))
            .collect();
        let map = LabelMap::build(&records, None).unwrap();
        assert_eq!(values(&map), ["9", "100", "104", "116"]);
        assert_eq!(map.index_of("9"), Some(0));
        assert_eq!(map.index_of("116"), Some(3));
        assert_eq!(map.index_of("105"), None);
    }

    #[test]
    fn negative_and_padded_integers_sorted() {
        let records = vec![
            record("10", None, 1),
            record("-2", None, 2),
            record("010", None, 3),
        ];
        let map = LabelMap::build(&records, None).unwrap();
        assert_eq!(values(&map), ["-2", "010", "10"]);
    }

    #[test]
    fn string_labels_sorted_lexicographically() {
        let records = vec![
            record("exchange_rate", None, 1),
            record("card_arrival", None, 2),
            record("10", None, 3),
        ];
        let map = LabelMap::build(&records, None).unwrap();
        assert_eq!(values(&map), ["10", "card_arrival", "exchange_rate"]);
    }

    #[test]
    fn description_falls_back_to_value() {
        let records = vec![
            record("card_arrival", None, 1),
            record("exchange_rate", None, 2),
        ];
        let map = LabelMap::build(&records, None).unwrap();
        assert_eq!(map.entry(0).unwrap().description, "card arrival");
        assert_eq!(map.entry(1).unwrap().description, "exchange rate");
    }

    #[test]
    fn record_description_beats_map() {
        let records = vec![
            record("1", None, 1),
            record("1", Some("sports"), 2),
            record("2", None, 3),
        ];
        let mut descriptions = BTreeMap::new();
        descriptions.insert("1".to_string(), "from file".to_string());
        descriptions.insert("2".to_string(), "finance".to_string());
        let map = LabelMap::build(&records, Some(&descriptions)).unwrap();
        assert_eq!(map.entry(0).unwrap().description, "sports");
        assert_eq!(map.entry(1).unwrap().description, "finance");
    }

    #[test]
    fn conflicting_record_descriptions_rejected() {
        let records = vec![
            record("1", Some("sports"), 4),
            record("2", None, 5),
            record("1", Some("finance"), 9),
        ];
        let error = LabelMap::build(&records, None).unwrap_err();
        assert_eq!(error.line(), Some(9));
        assert_eq!(
            error.to_string(),
            "line 9: label \"1\" has description \"finance\", but line 4 gives it \"sports\""
        );
    }

    #[test]
    fn single_label_rejected() {
        let records = vec![record("a", None, 1), record("a", None, 2)];
        let error = LabelMap::build(&records, None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "found 1 distinct label(s); a classifier needs at least 2"
        );
        assert!(matches!(
            LabelMap::build(&[], None),
            Err(DataError::TooFewLabels { count: 0 })
        ));
    }

    #[test]
    fn from_entries_rejects_duplicates() {
        let entry = |value: &str| LabelEntry {
            value: value.to_string(),
            description: value.to_string(),
        };
        let error = LabelMap::from_entries(vec![entry("a"), entry("b"), entry("a")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "label \"a\" appears more than once in the label list"
        );
        let map = LabelMap::from_entries(vec![entry("b"), entry("a")]).unwrap();
        assert_eq!(map.index_of("b"), Some(0));
        assert_eq!(map.len(), 2);
        assert!(!map.is_empty());
        assert!(map.entry(2).is_none());
    }

    #[test]
    fn serde_round_trip_as_array() {
        let records = vec![
            record("101", Some("culture"), 1),
            record("100", Some("story"), 2),
        ];
        let map = LabelMap::build(&records, None).unwrap();
        let json = serde_json::to_string(&map).unwrap();
        assert_eq!(
            json,
            r#"[{"value":"100","description":"story"},{"value":"101","description":"culture"}]"#
        );
        let loaded: LabelMap = serde_json::from_str(&json).unwrap();
        assert_eq!(loaded, map);
        assert_eq!(loaded.index_of("101"), Some(1));
    }

    #[test]
    fn deserialize_rejects_duplicates() {
        let json = r#"[{"value":"a","description":"x"},{"value":"a","description":"y"}]"#;
        let error = serde_json::from_str::<LabelMap>(json).unwrap_err();
        assert!(
            error.to_string().contains("appears more than once"),
            "{error}"
        );
    }

    #[test]
    fn eval_labels_all_known() {
        let train = vec![record("a", None, 1), record("b", None, 2)];
        let map = LabelMap::build(&train, None).unwrap();
        assert!(check_eval_labels(&map, &[record("b", None, 1)], "dev.json").is_ok());
    }

    #[test]
    fn eval_unknown_labels_counted() {
        let train = vec![record("a", None, 1), record("b", None, 2)];
        let map = LabelMap::build(&train, None).unwrap();
        let eval = vec![
            record("a", None, 1),
            record("z", None, 2),
            record("y", None, 3),
        ];
        let error = check_eval_labels(&map, &eval, "dev.json").unwrap_err();
        assert_eq!(error.line(), Some(2));
        assert_eq!(
            error.to_string(),
            "dev.json line 2: label \"z\" is not among the training labels; \
             2 record(s) in this file have labels that training did not see"
        );
    }

    #[test]
    fn iflytek_train_and_dev() {
        let fields = FieldMapping::defaults_for(Format::Clue);
        let train_path = data_path("iflytek/train.json");
        let train =
            read_records(Path::new(&train_path), "train.json", Format::Clue, &fields).unwrap();
        assert_eq!(train.len(), 3024);
        assert!(train.iter().any(|record| record.text.contains('\u{2028}')));
        assert_eq!(train[2312].line, 2313);
        assert!(train[2312].text.contains('\u{2028}'));

        let map = LabelMap::build(&train, None).unwrap();
        assert_eq!(map.len(), 119);
        assert_eq!(map.entry(0).unwrap().value, "0");
        assert_eq!(map.entry(118).unwrap().value, "118");
        assert_eq!(
            map.entry(map.index_of("10").unwrap()).unwrap().description,
            "社区服务"
        );

        let dev_path = data_path("iflytek/dev.json");
        let dev = read_records(Path::new(&dev_path), "dev.json", Format::Clue, &fields).unwrap();
        assert_eq!(dev.len(), 1373);
        check_eval_labels(&map, &dev, "dev.json").unwrap();
    }

    #[test]
    fn tnews_dense_indices() {
        let fields = FieldMapping::defaults_for(Format::Clue);
        let path = data_path("tnews/train.json");
        let train = read_records(Path::new(&path), "train.json", Format::Clue, &fields).unwrap();
        assert_eq!(train.len(), 1185);
        let map = LabelMap::build(&train, None).unwrap();
        assert_eq!(map.len(), 15);
        assert_eq!(map.index_of("100"), Some(0));
        assert_eq!(map.index_of("104"), Some(4));
        assert_eq!(map.index_of("105"), None);
        assert_eq!(map.index_of("106"), Some(5));
        assert_eq!(map.index_of("111"), None);
        assert_eq!(map.index_of("116"), Some(14));
        assert_eq!(map.entry(0).unwrap().description, "news_story");

        let dev_path = data_path("tnews/dev.json");
        let dev = read_records(Path::new(&dev_path), "dev.json", Format::Clue, &fields).unwrap();
        assert_eq!(dev.len(), 1098);
        check_eval_labels(&map, &dev, "dev.json").unwrap();
    }

    #[test]
    fn tnews_descriptions_from_label_file() {
        let fields = FieldMapping::defaults_for(Format::Jsonl);
        let fields = FieldMapping {
            text: "sentence".to_string(),
            ..fields
        };
        let path = data_path("tnews/train.json");
        let train = read_records(Path::new(&path), "train.json", Format::Jsonl, &fields).unwrap();
        assert!(train.iter().all(|record| record.description.is_none()));

        let labels_path = data_path("tnews/labels.json");
        let descriptions = read_label_descriptions(
            Path::new(&labels_path),
            "labels.json",
            Format::Jsonl,
            "label",
            "label_zh",
        )
        .unwrap();
        let map = LabelMap::build(&train, Some(&descriptions)).unwrap();
        assert_eq!(map.entry(0).unwrap().description, "故事");
        assert_eq!(map.entry(14).unwrap().description, "电竞");
    }

    #[test]
    fn banking77_labels_match_categories() {
        let fields = FieldMapping {
            text: "text".to_string(),
            label: "category".to_string(),
            description: None,
        };
        let train_path = data_path("banking77/train.csv");
        let train =
            read_records(Path::new(&train_path), "train.csv", Format::Csv, &fields).unwrap();
        let map = LabelMap::build(&train, None).unwrap();
        assert_eq!(map.len(), 77);
        let arrival = map.index_of("card_arrival").unwrap();
        assert_eq!(map.entry(arrival).unwrap().description, "card arrival");

        let categories_json =
            std::fs::read_to_string(data_path("banking77/categories.json")).unwrap();
        let mut categories: Vec<String> = serde_json::from_str(&categories_json).unwrap();
        categories.sort();
        assert_eq!(values(&map), categories);

        let test_path = data_path("banking77/test.csv");
        let test = read_records(Path::new(&test_path), "test.csv", Format::Csv, &fields).unwrap();
        check_eval_labels(&map, &test, "test.csv").unwrap();
    }
}
