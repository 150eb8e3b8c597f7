//! Loading of labelled text-classification data.
//!
//! Supported layouts:
//!
//! - JSON Lines ([`Format::Jsonl`]): one JSON object per line, text in `text`, label in `label`.
//! - CLUE ([`Format::Clue`]): JSON Lines with the CLUE field names, text in `sentence`, label in
//!   `label` and the label description in `label_des` (IFLYTEK) or `label_desc` (TNEWS).
//! - CSV ([`Format::Csv`]): RFC 4180 with a header row, so quoted fields may contain commas,
//!   doubled quotes and line breaks.
//! - TSV ([`Format::Tsv`]): tab-separated with a header row and no quoting, so quote characters
//!   are part of the value.
//!
//! Readers load the whole file into memory. They accept a UTF-8 byte order mark and CRLF line
//! ends, skip blank lines, and reject every bad record with a [`DataError`] that names the file,
//! the 1-based line where the record starts, the field and the bad value. Labels keep their
//! original value as text (JSON `10` and `"10"` both become `"10"`), and [`LabelMap`] maps them
//! to dense class indices.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

mod delimited;
mod jsonl;
mod labels;

pub use labels::{LabelEntry, LabelMap, check_eval_labels};

/// Maximum number of characters of a bad value that an error message shows.
const MAX_SHOWN_CHARS: usize = 60;

/// Maximum number of header column names that a missing-field error lists.
const MAX_SHOWN_COLUMNS: usize = 20;

/// Description field names of the CLUE layout, in the order they are tried.
const CLUE_DESCRIPTION_FIELDS: [&str; 2] = ["label_des", "label_desc"];

/// Description field name for the non-CLUE formats in [`read_label_descriptions`].
const DEFAULT_DESCRIPTION_FIELD: &str = "description";

/// File layout of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jsonl,
    Clue,
    Csv,
    Tsv,
}

impl Format {
    /// Names accepted by [`Format::from_str`], as shown in its error message.
    pub const ACCEPTED_NAMES: &'static str = "jsonl, json, clue, csv, tsv";

    /// Returns the canonical lower-case name of the format.
    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Clue => "clue",
            Format::Csv => "csv",
            Format::Tsv => "tsv",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = DataError;

    /// Parses a format name case-insensitively. `json` is an alias of `jsonl`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().as_str() {
            "jsonl" | "json" => Ok(Format::Jsonl),
            "clue" => Ok(Format::Clue),
            "csv" => Ok(Format::Csv),
            "tsv" => Ok(Format::Tsv),
            _ => Err(DataError::UnknownFormat {
                value: shorten(name),
            }),
        }
    }
}

/// Names of the fields (JSON keys or CSV/TSV header columns) that hold a record's parts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldMapping {
    pub text: String,
    pub label: String,
    /// Per-record label description. `None` reads no description, except in the CLUE format,
    /// where each record's `label_des` is used or, where that key is absent, its `label_desc`.
    pub description: Option<String>,
}

impl FieldMapping {
    /// Returns the default field names of `format`.
    pub fn defaults_for(format: Format) -> FieldMapping {
        let text = match format {
            Format::Clue => "sentence",
            Format::Jsonl | Format::Csv | Format::Tsv => "text",
        };
        FieldMapping {
            text: text.to_string(),
            label: "label".to_string(),
            description: None,
        }
    }

    /// Replaces empty or whitespace-only field names with the defaults of `format`. An empty
    /// description name becomes `None`.
    pub fn resolved(self, format: Format) -> FieldMapping {
        let defaults = FieldMapping::defaults_for(format);
        let text = non_blank(self.text).unwrap_or(defaults.text);
        let label = non_blank(self.label).unwrap_or(defaults.label);
        let description = self.description.and_then(non_blank);
        FieldMapping {
            text,
            label,
            description,
        }
    }
}

fn non_blank(name: String) -> Option<String> {
    if name.trim().is_empty() {
        None
    } else {
        Some(name)
    }
}

/// One labelled example as read from a file, before labels are mapped to class indices.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRecord {
    /// Text as written in the file (not trimmed, never blank).
    pub text: String,
    /// Original label value as canonical text: integers in decimal, strings trimmed.
    pub label: String,
    /// Trimmed label description from the record's description field, or `None` when absent or blank.
    pub description: Option<String>,
    /// 1-based line number where the record starts.
    pub line: usize,
}

/// Source of a record's label description.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DescriptionSource {
    None,
    /// A named field that every record must have.
    Field(String),
    /// The CLUE keys `label_des` or `label_desc`, whichever a record has.
    Clue,
}

impl DescriptionSource {
    fn new(format: Format, field: Option<&str>) -> DescriptionSource {
        match (field, format) {
            (Some(name), _) => DescriptionSource::Field(name.to_string()),
            (None, Format::Clue) => DescriptionSource::Clue,
            (None, _) => DescriptionSource::None,
        }
    }
}

/// Error raised while reading a data file or building a label map.
///
/// Messages start with `FILE line N:` where a file and line apply, and show bad values
/// shortened to at most 60 characters.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(
        "unknown data format {value:?}; accepted values are {}",
        Format::ACCEPTED_NAMES
    )]
    UnknownFormat { value: String },

    #[error("{file}: failed to read file: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{file} line {line}: invalid UTF-8; the file must be encoded as UTF-8")]
    InvalidUtf8 { file: String, line: usize },

    #[error("{file} line {line}: invalid JSON at column {column}: {message}")]
    InvalidJson {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{file} line {line}: expected a JSON object, found {value}")]
    NotAnObject {
        file: String,
        line: usize,
        value: String,
    },

    #[error("{file} line {line}: invalid CSV: {message}")]
    InvalidCsv {
        file: String,
        line: usize,
        message: String,
    },

    #[error("{file}: missing header row; the first row must name the columns")]
    MissingHeader { file: String },

    #[error("{file} line {line}: column {field:?} appears more than once in the header")]
    DuplicateColumn {
        file: String,
        line: usize,
        field: String,
    },

    #[error("{file} line {line}: row has {found} columns but the header has {expected}")]
    ColumnCount {
        file: String,
        line: usize,
        expected: usize,
        found: usize,
    },

    #[error(
        "{file} line {line}: field {field:?} is missing{}",
        missing_field_hint(columns)
    )]
    MissingField {
        file: String,
        line: usize,
        field: String,
        /// Header column names, for CSV and TSV files.
        columns: Option<Vec<String>>,
    },

    #[error("{file} line {line}: field {field:?} is empty")]
    EmptyField {
        file: String,
        line: usize,
        field: String,
    },

    #[error("{file} line {line}: field {field:?} must be a string, found {value}")]
    NotAString {
        file: String,
        line: usize,
        field: String,
        value: String,
    },

    #[error("{file} line {line}: label {value} is not an integer or a string (field {field:?})")]
    InvalidLabel {
        file: String,
        line: usize,
        field: String,
        value: String,
    },

    #[error("{file}: no records found; the file must contain at least one record")]
    NoRecords { file: String },

    #[error(
        "{file} line {line}: label {label:?} has description {second:?}, \
         but line {first_line} gives it {first:?}"
    )]
    DuplicateDescription {
        file: String,
        line: usize,
        label: String,
        first: String,
        second: String,
        first_line: usize,
    },

    #[error(
        "line {line}: label {label:?} has description {second:?}, \
         but line {first_line} gives it {first:?}"
    )]
    ConflictingDescription {
        line: usize,
        label: String,
        first: String,
        second: String,
        first_line: usize,
    },

    #[error("found {count} distinct label(s); a classifier needs at least 2")]
    TooFewLabels { count: usize },

    #[error("label {value:?} appears more than once in the label list")]
    DuplicateLabel { value: String },

    #[error(
        "{file} line {line}: label {value:?} is not among the training labels; \
         {count} record(s) in this file have labels that training did not see"
    )]
    UnknownLabels {
        file: String,
        line: usize,
        value: String,
        count: usize,
    },
}

fn missing_field_hint(columns: &Option<Vec<String>>) -> String {
    let Some(names) = columns else {
        return String::new();
    };
    let mut shown: Vec<String> = names
        .iter()
        .take(MAX_SHOWN_COLUMNS)
        .map(|name| format!("{:?}", shorten(name)))
        .collect();
    if names.len() > MAX_SHOWN_COLUMNS {
        shown.push("…".to_string());
    }
    format!(" from the header (columns: {})", shown.join(", "))
}

impl DataError {
    /// Returns the 1-based line the error refers to, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            DataError::InvalidUtf8 { line, .. }
            | DataError::InvalidJson { line, .. }
            | DataError::NotAnObject { line, .. }
            | DataError::InvalidCsv { line, .. }
            | DataError::DuplicateColumn { line, .. }
            | DataError::ColumnCount { line, .. }
            | DataError::MissingField { line, .. }
            | DataError::EmptyField { line, .. }
            | DataError::NotAString { line, .. }
            | DataError::InvalidLabel { line, .. }
            | DataError::DuplicateDescription { line, .. }
            | DataError::ConflictingDescription { line, .. }
            | DataError::UnknownLabels { line, .. } => Some(*line),
            DataError::UnknownFormat { .. }
            | DataError::Io { .. }
            | DataError::MissingHeader { .. }
            | DataError::NoRecords { .. }
            | DataError::TooFewLabels { .. }
            | DataError::DuplicateLabel { .. } => None,
        }
    }

    /// Returns the field (JSON key or column name) the error refers to, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            DataError::DuplicateColumn { field, .. }
            | DataError::MissingField { field, .. }
            | DataError::EmptyField { field, .. }
            | DataError::NotAString { field, .. }
            | DataError::InvalidLabel { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// Reads every record of a data file.
///
/// `file_name` is the name shown in errors. Empty names in `fields` select the defaults of
/// `format` (see [`FieldMapping::resolved`]). A file without records is an error.
pub fn read_records(
    path: &Path,
    file_name: &str,
    format: Format,
    fields: &FieldMapping,
) -> Result<Vec<RawRecord>, DataError> {
    let bytes = read_file(path, file_name)?;
    let fields = fields.clone().resolved(format);
    let records = match format {
        Format::Jsonl | Format::Clue => jsonl::read_records(&bytes, file_name, format, &fields)?,
        Format::Csv | Format::Tsv => delimited::read_records(&bytes, file_name, format, &fields)?,
    };
    if records.is_empty() {
        return Err(DataError::NoRecords {
            file: file_name.to_string(),
        });
    }
    tracing::debug!(file = file_name, records = records.len(), "read data file");
    Ok(records)
}

/// Checks the syntax of an uploaded file before its field mapping is known and returns its
/// record count.
///
/// Every non-blank line of a JSON Lines or CLUE file must be a JSON object. A CSV or TSV file
/// must have a header row, and every row must have as many columns as the header. A file
/// without records is an error.
pub fn check_syntax(path: &Path, file_name: &str, format: Format) -> Result<usize, DataError> {
    let bytes = read_file(path, file_name)?;
    let count = match format {
        Format::Jsonl | Format::Clue => jsonl::count_objects(&bytes, file_name)?,
        Format::Csv | Format::Tsv => delimited::count_rows(&bytes, file_name, format)?,
    };
    if count == 0 {
        return Err(DataError::NoRecords {
            file: file_name.to_string(),
        });
    }
    Ok(count)
}

/// Reads a file of per-label descriptions into a map from canonical label value to description.
///
/// An empty `label_field` selects `label`. An empty `description_field` selects `label_des`
/// or `label_desc` for [`Format::Clue`] and `description` for the other formats. Every record
/// needs a non-blank description. A label may repeat only with the same description.
pub fn read_label_descriptions(
    path: &Path,
    file_name: &str,
    format: Format,
    label_field: &str,
    description_field: &str,
) -> Result<BTreeMap<String, String>, DataError> {
    let bytes = read_file(path, file_name)?;
    let label_field = match label_field.trim() {
        "" => "label",
        _ => label_field,
    };
    let source = match (description_field.trim(), format) {
        ("", Format::Clue) => DescriptionSource::Clue,
        ("", _) => DescriptionSource::Field(DEFAULT_DESCRIPTION_FIELD.to_string()),
        _ => DescriptionSource::Field(description_field.to_string()),
    };
    let pairs = match format {
        Format::Jsonl | Format::Clue => {
            jsonl::read_description_pairs(&bytes, file_name, label_field, &source)?
        }
        Format::Csv | Format::Tsv => {
            delimited::read_description_pairs(&bytes, file_name, format, label_field, &source)?
        }
    };
    if pairs.is_empty() {
        return Err(DataError::NoRecords {
            file: file_name.to_string(),
        });
    }
    collect_descriptions(pairs, file_name)
}

/// Label and description read from one line of a description file.
struct DescriptionPair {
    label: String,
    description: String,
    line: usize,
}

fn collect_descriptions(
    pairs: Vec<DescriptionPair>,
    file_name: &str,
) -> Result<BTreeMap<String, String>, DataError> {
    let mut first_seen: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for pair in pairs {
        if let Some((first, first_line)) = first_seen.get(&pair.label) {
            if *first != pair.description {
                return Err(DataError::DuplicateDescription {
                    file: file_name.to_string(),
                    line: pair.line,
                    label: shorten(&pair.label),
                    first: shorten(first),
                    second: shorten(&pair.description),
                    first_line: *first_line,
                });
            }
            continue;
        }
        first_seen.insert(pair.label, (pair.description, pair.line));
    }
    let map = first_seen
        .into_iter()
        .map(|(label, (description, _))| (label, description))
        .collect();
    Ok(map)
}

/// Reads a whole file and drops a leading UTF-8 byte order mark.
fn read_file(path: &Path, file_name: &str) -> Result<Vec<u8>, DataError> {
    let mut bytes = std::fs::read(path).map_err(|source| DataError::Io {
        file: file_name.to_string(),
        source,
    })?;
    if bytes.starts_with(UTF8_BOM) {
        bytes.drain(..UTF8_BOM.len());
    }
    Ok(bytes)
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Cuts `value` to at most [`MAX_SHOWN_CHARS`] characters, marking a cut with `…`.
fn shorten(value: &str) -> String {
    match value.char_indices().nth(MAX_SHOWN_CHARS) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    pub(super) fn write_temp(content: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(content).unwrap();
        file.flush().unwrap();
        file
    }

    #[test]
    fn format_parses_names_case_insensitively() {
        let cases = [
            ("jsonl", Format::Jsonl),
            ("JSON", Format::Jsonl),
            ("Clue", Format::Clue),
            ("CSV", Format::Csv),
            ("tsv", Format::Tsv),
        ];
        for (name, expected) in cases {
            assert_eq!(name.parse::<Format>().unwrap(), expected, "{name}");
        }
    }

    #[test]
    fn format_error_lists_accepted_names() {
        let message = "xml".parse::<Format>().unwrap_err().to_string();
        assert!(message.contains("\"xml\""), "{message}");
        assert!(message.contains("jsonl, json, clue, csv, tsv"), "{message}");
    }

    #[test]
    fn format_as_str_round_trips() {
        for format in [Format::Jsonl, Format::Clue, Format::Csv, Format::Tsv] {
            assert_eq!(format.as_str().parse::<Format>().unwrap(), format);
        }
    }

    #[test]
    fn field_defaults_per_format() {
        let clue = FieldMapping::defaults_for(Format::Clue);
        assert_eq!(clue.text, "sentence");
        assert_eq!(clue.label, "label");
        assert_eq!(clue.description, None);
        for format in [Format::Jsonl, Format::Csv, Format::Tsv] {
            let defaults = FieldMapping::defaults_for(format);
            assert_eq!(defaults.text, "text");
            assert_eq!(defaults.label, "label");
            assert_eq!(defaults.description, None);
        }
    }

    #[test]
    fn resolved_fills_empty_names() {
        let empty = FieldMapping {
            text: String::new(),
            label: " ".to_string(),
            description: Some(String::new()),
        };
        assert_eq!(
            empty.resolved(Format::Clue),
            FieldMapping::defaults_for(Format::Clue)
        );

        let custom = FieldMapping {
            text: "query".to_string(),
            label: "intent".to_string(),
            description: Some("intent_name".to_string()),
        };
        assert_eq!(custom.clone().resolved(Format::Csv), custom);
    }

    #[test]
    fn shorten_cuts_on_char_boundaries() {
        let chinese = "社".repeat(100);
        let short = shorten(&chinese);
        assert_eq!(short.chars().count(), MAX_SHOWN_CHARS + 1);
        assert!(short.ends_with('…'));
        assert_eq!(shorten("short"), "short");
        assert_eq!(shorten(&"a".repeat(60)), "a".repeat(60));
    }

    #[test]
    fn missing_file_names_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.json");
        let fields = FieldMapping::defaults_for(Format::Jsonl);
        let error = read_records(&path, "train.json", Format::Jsonl, &fields).unwrap_err();
        assert!(matches!(error, DataError::Io { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with("train.json: failed to read file"),
            "{error}"
        );
        assert_eq!(error.line(), None);
    }

    #[test]
    fn empty_file_has_no_records() {
        let fields = FieldMapping::defaults_for(Format::Jsonl);
        for format in [Format::Jsonl, Format::Clue] {
            let file = write_temp(b"\n  \n");
            let error = read_records(file.path(), "train.json", format, &fields).unwrap_err();
            assert!(matches!(error, DataError::NoRecords { .. }), "{error:?}");
            let error = check_syntax(file.path(), "train.json", format).unwrap_err();
            assert!(matches!(error, DataError::NoRecords { .. }), "{error:?}");
        }
        let file = write_temp(b"text,label\n");
        let error = check_syntax(file.path(), "train.csv", Format::Csv).unwrap_err();
        assert_eq!(
            error.to_string(),
            "train.csv: no records found; the file must contain at least one record"
        );
    }

    #[test]
    fn descriptions_from_jsonl_file() {
        let file = write_temp(
            "{\"label\": \"100\", \"label_desc\": \"news_story\"}\n\
             {\"label\": 101, \"label_desc\": \"news_culture\"}\n\
             {\"label\": 100, \"label_desc\": \"news_story\"}\n"
                .as_bytes(),
        );
        let map =
            read_label_descriptions(file.path(), "labels.json", Format::Clue, "label", "").unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map["100"], "news_story");
        assert_eq!(map["101"], "news_culture");
    }

    #[test]
    fn descriptions_conflict_names_both() {
        let file = write_temp(
            "{\"label\": \"7\", \"description\": \"sports\"}\n\
             {\"label\": 7, \"description\": \"finance\"}\n"
                .as_bytes(),
        );
        let error =
            read_label_descriptions(file.path(), "labels.json", Format::Jsonl, "", "").unwrap_err();
        assert_eq!(error.line(), Some(2));
        assert_eq!(
            error.to_string(),
            "labels.json line 2: label \"7\" has description \"finance\", but line 1 gives it \"sports\""
        );
    }

    #[test]
    fn descriptions_from_csv_file() {
        let file =
            write_temp(b"intent,name\ncard_arrival,Card arrival\nexchange_rate,Exchange rate\n");
        let map = read_label_descriptions(file.path(), "labels.csv", Format::Csv, "intent", "name")
            .unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map["card_arrival"], "Card arrival");
    }

    #[test]
    fn descriptions_require_description_field() {
        let file = write_temp(b"{\"label\": 1, \"name\": \"x\"}\n");
        let error =
            read_label_descriptions(file.path(), "labels.json", Format::Jsonl, "label", "desc")
                .unwrap_err();
        assert_eq!(
            error.to_string(),
            "labels.json line 1: field \"desc\" is missing"
        );
        assert_eq!(error.field(), Some("desc"));
    }

    #[test]
    fn tnews_label_file_reads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tnews/labels.json");
        let map =
            read_label_descriptions(Path::new(path), "labels.json", Format::Clue, "label", "")
                .unwrap();
        assert_eq!(map.len(), 15);
        assert_eq!(map["100"], "news_story");
        assert_eq!(map["116"], "news_game");
        assert!(!map.contains_key("105"));
        assert!(!map.contains_key("111"));
    }
}
