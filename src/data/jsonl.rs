//! JSON Lines reading, used for both the plain JSON Lines and the CLUE layouts.
//!
//! Lines are split on `\n` only, with a trailing `\r` removed, because CLUE texts contain
//! U+2028 (LINE SEPARATOR), which some line splitters treat as a line end. Lines that are
//! empty or whitespace-only are skipped. Every other line must be one JSON object.

use serde_json::{Map, Value};

use super::{
    CLUE_DESCRIPTION_FIELDS, DataError, DescriptionPair, DescriptionSource, FieldMapping, Format,
    RawRecord, shorten,
};

type Object = Map<String, Value>;

/// Reads every record of a JSON Lines file whose BOM has been removed.
pub(super) fn read_records(
    bytes: &[u8],
    file: &str,
    format: Format,
    fields: &FieldMapping,
) -> Result<Vec<RawRecord>, DataError> {
    let source = DescriptionSource::new(format, fields.description.as_deref());
    let mut records = Vec::new();
    for (line, raw) in numbered_lines(bytes) {
        let Some(object) = parse_object(raw, file, line)? else {
            continue;
        };
        let record = RawRecord {
            text: text_value(&object, &fields.text, file, line)?,
            label: label_value(&object, &fields.label, file, line)?,
            description: description_value(&object, &source, file, line)?,
            line,
        };
        records.push(record);
    }
    Ok(records)
}

/// Counts the objects in a JSON Lines file, failing on the first line that is not one.
pub(super) fn count_objects(bytes: &[u8], file: &str) -> Result<usize, DataError> {
    let mut count = 0;
    for (line, raw) in numbered_lines(bytes) {
        if parse_object(raw, file, line)?.is_some() {
            count += 1;
        }
    }
    Ok(count)
}

/// Reads label and description from every line of a description file.
pub(super) fn read_description_pairs(
    bytes: &[u8],
    file: &str,
    label_field: &str,
    source: &DescriptionSource,
) -> Result<Vec<DescriptionPair>, DataError> {
    let mut pairs = Vec::new();
    for (line, raw) in numbered_lines(bytes) {
        let Some(object) = parse_object(raw, file, line)? else {
            continue;
        };
        let label = label_value(&object, label_field, file, line)?;
        let Some(description) = description_value(&object, source, file, line)? else {
            return Err(missing_description(source, file, line));
        };
        pairs.push(DescriptionPair {
            label,
            description,
            line,
        });
    }
    Ok(pairs)
}

/// Splits on `\n` only, strips one trailing `\r` and pairs each line with its 1-based number.
fn numbered_lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    bytes
        .split(|byte| *byte == b'\n')
        .enumerate()
        .map(|(index, raw)| {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            (index + 1, raw)
        })
}

/// Parses one line into a JSON object, or returns `None` for a blank line.
fn parse_object(raw: &[u8], file: &str, line: usize) -> Result<Option<Object>, DataError> {
    let text = std::str::from_utf8(raw).map_err(|_| DataError::InvalidUtf8 {
        file: file.to_string(),
        line,
    })?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    let value: Value =
        serde_json::from_str(text).map_err(|error| invalid_json(&error, file, line))?;
    match value {
        Value::Object(object) => Ok(Some(object)),
        other => Err(DataError::NotAnObject {
            file: file.to_string(),
            line,
            value: shorten(&other.to_string()),
        }),
    }
}

/// Builds an error from serde_json's message without its own "at line 1 column N" suffix,
/// which would contradict the file line number.
fn invalid_json(error: &serde_json::Error, file: &str, line: usize) -> DataError {
    let full = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    DataError::InvalidJson {
        file: file.to_string(),
        line,
        column: error.column(),
        message,
    }
}

fn field_value<'a>(
    object: &'a Object,
    field: &str,
    file: &str,
    line: usize,
) -> Result<&'a Value, DataError> {
    object.get(field).ok_or_else(|| DataError::MissingField {
        file: file.to_string(),
        line,
        field: field.to_string(),
        columns: None,
    })
}

/// Returns the text as written. It must be a string that is not blank.
fn text_value(object: &Object, field: &str, file: &str, line: usize) -> Result<String, DataError> {
    let text = string_value(field_value(object, field, file, line)?, field, file, line)?;
    if text.trim().is_empty() {
        return Err(empty_field(field, file, line));
    }
    Ok(text.to_string())
}

/// Returns the label as canonical text: an integer in decimal or a trimmed, non-blank string.
fn label_value(object: &Object, field: &str, file: &str, line: usize) -> Result<String, DataError> {
    match field_value(object, field, file, line)? {
        Value::String(text) if text.trim().is_empty() => Err(empty_field(field, file, line)),
        Value::String(text) => Ok(text.trim().to_string()),
        Value::Number(number) if number.is_i64() || number.is_u64() => Ok(number.to_string()),
        other => Err(DataError::InvalidLabel {
            file: file.to_string(),
            line,
            field: field.to_string(),
            value: shorten(&other.to_string()),
        }),
    }
}

/// Returns the trimmed description, or `None` when the record has none.
///
/// A named description field must be present and contain a string. A blank string counts as
/// no description.
fn description_value(
    object: &Object,
    source: &DescriptionSource,
    file: &str,
    line: usize,
) -> Result<Option<String>, DataError> {
    let field = match source {
        DescriptionSource::None => return Ok(None),
        DescriptionSource::Field(name) => name.as_str(),
        DescriptionSource::Clue => {
            let found = CLUE_DESCRIPTION_FIELDS
                .iter()
                .find(|name| object.contains_key(**name));
            match found {
                Some(name) => name,
                None => return Ok(None),
            }
        }
    };
    let value = field_value(object, field, file, line)?;
    let description = string_value(value, field, file, line)?.trim();
    if description.is_empty() {
        return Ok(None);
    }
    Ok(Some(description.to_string()))
}

fn string_value<'a>(
    value: &'a Value,
    field: &str,
    file: &str,
    line: usize,
) -> Result<&'a str, DataError> {
    match value {
        Value::String(text) => Ok(text),
        other => Err(DataError::NotAString {
            file: file.to_string(),
            line,
            field: field.to_string(),
            value: shorten(&other.to_string()),
        }),
    }
}

fn empty_field(field: &str, file: &str, line: usize) -> DataError {
    DataError::EmptyField {
        file: file.to_string(),
        line,
        field: field.to_string(),
    }
}

fn missing_description(source: &DescriptionSource, file: &str, line: usize) -> DataError {
    let field = match source {
        DescriptionSource::Field(name) => name.clone(),
        DescriptionSource::Clue | DescriptionSource::None => CLUE_DESCRIPTION_FIELDS.join(" or "),
    };
    DataError::MissingField {
        file: file.to_string(),
        line,
        field,
        columns: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::write_temp;
    use super::super::{check_syntax, read_records as read};
    use super::*;

    const CLUE_LINE: &str =
        r#"{"label": 10, "label_des": "社区服务", "sentence": "行讯通是一款手机软件", "id": 0}"#;

    fn read_jsonl(content: &str) -> Result<Vec<RawRecord>, DataError> {
        let file = write_temp(content.as_bytes());
        read(
            file.path(),
            "train.json",
            Format::Jsonl,
            &FieldMapping::defaults_for(Format::Jsonl),
        )
    }

    fn read_clue(content: &str) -> Result<Vec<RawRecord>, DataError> {
        let file = write_temp(content.as_bytes());
        read(
            file.path(),
            "train.json",
            Format::Clue,
            &FieldMapping::defaults_for(Format::Clue),
        )
    }

    #[test]
    fn clue_record_reads_all_parts() {
        let records = read_clue(&format!("{CLUE_LINE}\n")).unwrap();
        let expected = RawRecord {
            text: "行讯通是一款手机软件".to_string(),
            label: "10".to_string(),
            description: Some("社区服务".to_string()),
            line: 1,
        };
        assert_eq!(records, vec![expected]);
    }

    #[test]
    fn clue_falls_back_to_label_desc() {
        let content = r#"{"label": 100, "label_desc": "news_story", "sentence": "标题"}"#;
        let records = read_clue(content).unwrap();
        assert_eq!(records[0].description.as_deref(), Some("news_story"));
        assert_eq!(records[0].label, "100");

        let without = r#"{"label": 100, "sentence": "标题"}"#;
        assert_eq!(read_clue(without).unwrap()[0].description, None);
    }

    #[test]
    fn line_separator_stays_inside_text() {
        let content = "{\"text\": \"first\u{2028}second\", \"label\": 1}\n\
                       {\"text\": \"next\", \"label\": 2}\n";
        let records = read_jsonl(content).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].text, "first\u{2028}second");
        assert_eq!(records[1].line, 2);
    }

    #[test]
    fn escaped_carriage_return_kept() {
        let content = "{\"text\": \"a\\r\\nb\\rc\", \"label\": 1}\n";
        let records = read_jsonl(content).unwrap();
        assert_eq!(records[0].text, "a\r\nb\rc");
    }

    #[test]
    fn crlf_line_ends_stripped() {
        let content = "{\"text\": \"one\", \"label\": \"a\"}\r\n\
                       {\"text\": \"two\", \"label\": \"b\"}\r\n";
        let records = read_jsonl(content).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].text, "one");
        assert_eq!(records[1].label, "b");
        assert_eq!(records[1].line, 2);
    }

    #[test]
    fn byte_order_mark_skipped() {
        let content = "\u{FEFF}{\"text\": \"one\", \"label\": 3}\n";
        let records = read_jsonl(content).unwrap();
        assert_eq!(records[0].text, "one");
        let file = write_temp(content.as_bytes());
        assert_eq!(
            check_syntax(file.path(), "train.json", Format::Jsonl).unwrap(),
            1
        );
    }

    #[test]
    fn blank_lines_skipped_and_counted() {
        let content =
            "\n{\"text\": \"one\", \"label\": 1}\n   \n\t\r\n{\"text\": \"two\", \"label\": 2}";
        let records = read_jsonl(content).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].line, 2);
        assert_eq!(records[1].line, 5);
    }

    #[test]
    fn labels_numbers_and_strings_canonical() {
        let content = "{\"text\": \"a\", \"label\": 10}\n\
                       {\"text\": \"b\", \"label\": \"10\"}\n\
                       {\"text\": \"c\", \"label\": \" card_arrival \"}\n\
                       {\"text\": \"d\", \"label\": -3}\n\
                       {\"text\": \"e\", \"label\": 18446744073709551615}\n";
        let labels: Vec<String> = read_jsonl(content)
            .unwrap()
            .into_iter()
            .map(|r| r.label)
            .collect();
        assert_eq!(
            labels,
            ["10", "10", "card_arrival", "-3", "18446744073709551615"]
        );
    }

    #[test]
    fn label_float_bool_null_rejected() {
        for value in ["10.5", "true", "null", "[1]", "{\"a\": 1}", "1e2"] {
            let content = format!(
                "{{\"text\": \"a\", \"label\": 1}}\n{{\"text\": \"b\", \"label\": {value}}}\n"
            );
            let error = read_jsonl(&content).unwrap_err();
            assert!(
                matches!(error, DataError::InvalidLabel { .. }),
                "{value}: {error:?}"
            );
            assert_eq!(error.line(), Some(2), "{value}");
            assert_eq!(error.field(), Some("label"), "{value}");
        }
        let error = read_jsonl("{\"text\": \"a\", \"label\": 10.5}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "train.json line 1: label 10.5 is not an integer or a string (field \"label\")"
        );
    }

    #[test]
    fn empty_label_rejected() {
        let error = read_jsonl("{\"text\": \"a\", \"label\": \"  \"}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "train.json line 1: field \"label\" is empty"
        );
    }

    #[test]
    fn invalid_json_names_line() {
        let content = "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\" 2}\n";
        let error = read_jsonl(content).unwrap_err();
        assert!(
            matches!(error, DataError::InvalidJson { line: 2, .. }),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.starts_with("train.json line 2: invalid JSON at column"),
            "{message}"
        );
        assert!(!message.contains("at line 1"), "{message}");
    }

    #[test]
    fn non_object_line_rejected() {
        let error = read_jsonl("[1, 2]\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "train.json line 1: expected a JSON object, found [1,2]"
        );
        let file = write_temp(b"{\"a\": 1}\n\"text\"\n");
        let error = check_syntax(file.path(), "up.json", Format::Jsonl).unwrap_err();
        assert_eq!(error.line(), Some(2));
    }

    #[test]
    fn missing_text_field_rejected() {
        let content = format!("{CLUE_LINE}\n{{\"label\": 1, \"text\": \"wrong key\"}}\n");
        let error = read_clue(&content).unwrap_err();
        assert_eq!(
            error.to_string(),
            "train.json line 2: field \"sentence\" is missing"
        );
        assert_eq!(error.field(), Some("sentence"));
        assert_eq!(error.line(), Some(2));
    }

    #[test]
    fn missing_label_field_rejected() {
        let error = read_jsonl("{\"text\": \"a\"}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "train.json line 1: field \"label\" is missing"
        );
    }

    #[test]
    fn blank_text_rejected_other_kept() {
        let error = read_jsonl("{\"text\": \" \\t \", \"label\": 1}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "train.json line 1: field \"text\" is empty"
        );
        let records = read_jsonl("{\"text\": \"  padded \", \"label\": 1}").unwrap();
        assert_eq!(records[0].text, "  padded ");
    }

    #[test]
    fn numeric_text_rejected() {
        let error = read_jsonl("{\"text\": 42, \"label\": 1}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "train.json line 1: field \"text\" must be a string, found 42"
        );
    }

    #[test]
    fn long_bad_value_shortened() {
        let long = format!("[\"{}\"]", "类".repeat(200));
        let error = read_jsonl(&format!("{{\"text\": {long}, \"label\": 1}}")).unwrap_err();
        let DataError::NotAString { value, .. } = &error else {
            panic!("unexpected error {error:?}");
        };
        assert_eq!(value.chars().count(), 61);
        assert!(value.ends_with('…'));
    }

    #[test]
    fn invalid_utf8_names_line() {
        let mut content = b"{\"text\": \"a\", \"label\": 1}\n{\"text\": \"".to_vec();
        content.extend_from_slice(&[0xE7, 0x94]);
        content.extend_from_slice(b"\", \"label\": 1}\n");
        let file = write_temp(&content);
        let fields = FieldMapping::defaults_for(Format::Jsonl);
        let error = read(file.path(), "train.json", Format::Jsonl, &fields).unwrap_err();
        assert_eq!(
            error.to_string(),
            "train.json line 2: invalid UTF-8; the file must be encoded as UTF-8"
        );
        let error = check_syntax(file.path(), "train.json", Format::Jsonl).unwrap_err();
        assert_eq!(error.line(), Some(2));
    }

    #[test]
    fn named_description_field_required() {
        let file = write_temp(b"{\"text\": \"a\", \"label\": 1, \"name\": \"one\"}\n{\"text\": \"b\", \"label\": 2}\n");
        let fields = FieldMapping {
            description: Some("name".to_string()),
            ..FieldMapping::defaults_for(Format::Jsonl)
        };
        let error = read(file.path(), "train.json", Format::Jsonl, &fields).unwrap_err();
        assert_eq!(
            error.to_string(),
            "train.json line 2: field \"name\" is missing"
        );
    }

    #[test]
    fn blank_description_is_none() {
        let file = write_temp(b"{\"text\": \"a\", \"label\": 1, \"name\": \" \"}\n");
        let fields = FieldMapping {
            description: Some("name".to_string()),
            ..FieldMapping::defaults_for(Format::Jsonl)
        };
        let records = read(file.path(), "train.json", Format::Jsonl, &fields).unwrap();
        assert_eq!(records[0].description, None);
    }

    #[test]
    fn check_syntax_counts_objects() {
        let file = write_temp(format!("{CLUE_LINE}\n\n{CLUE_LINE}\r\n{{}}\n").as_bytes());
        assert_eq!(
            check_syntax(file.path(), "train.json", Format::Clue).unwrap(),
            3
        );
    }
}
