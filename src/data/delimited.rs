//! CSV and TSV reading.
//!
//! Both formats need a header row that names the columns. CSV follows RFC 4180: quoted fields
//! may contain commas, doubled quotes and line breaks. TSV has no quoting, so quote characters
//! are part of the value. Rows end with `\n`, `\r\n` or `\r`. Rows whose fields are all empty
//! or whitespace-only are skipped, and every other row must have the header's column count.

use super::{
    DataError, DescriptionPair, DescriptionSource, FieldMapping, Format, RawRecord, shorten,
};

/// One data row with its fields decoded as UTF-8.
struct Row {
    /// 1-based line where the row starts.
    line: usize,
    fields: Vec<String>,
}

/// A parsed file: trimmed header names and the non-blank data rows.
struct Table {
    header: Vec<String>,
    header_line: usize,
    rows: Vec<Row>,
}

/// Reads every record of a CSV or TSV file whose BOM has been removed.
pub(super) fn read_records(
    bytes: &[u8],
    file: &str,
    format: Format,
    fields: &FieldMapping,
) -> Result<Vec<RawRecord>, DataError> {
    let table = read_table(bytes, file, format)?;
    let text_column = table.column(&fields.text, file)?;
    let label_column = table.column(&fields.label, file)?;
    let description_column = match &fields.description {
        Some(name) => Some(table.column(name, file)?),
        None => None,
    };
    let mut records = Vec::with_capacity(table.rows.len());
    for row in &table.rows {
        let text = &row.fields[text_column];
        if text.trim().is_empty() {
            return Err(empty_field(&fields.text, file, row.line));
        }
        let record = RawRecord {
            text: text.clone(),
            label: label_value(row, label_column, &fields.label, file)?,
            description: description_column.and_then(|column| non_blank(&row.fields[column])),
            line: row.line,
        };
        records.push(record);
    }
    Ok(records)
}

/// Counts the data rows, checking the header and every row's column count.
pub(super) fn count_rows(bytes: &[u8], file: &str, format: Format) -> Result<usize, DataError> {
    Ok(read_table(bytes, file, format)?.rows.len())
}

/// Reads label and description from every row of a description file.
pub(super) fn read_description_pairs(
    bytes: &[u8],
    file: &str,
    format: Format,
    label_field: &str,
    source: &DescriptionSource,
) -> Result<Vec<DescriptionPair>, DataError> {
    let table = read_table(bytes, file, format)?;
    let label_column = table.column(label_field, file)?;
    let description_field = match source {
        DescriptionSource::Field(name) => name.as_str(),
        // The CLUE layout is JSON Lines only, so a CSV or TSV file always names the field.
        DescriptionSource::Clue | DescriptionSource::None => super::DEFAULT_DESCRIPTION_FIELD,
    };
    let description_column = table.column(description_field, file)?;
    let mut pairs = Vec::with_capacity(table.rows.len());
    for row in &table.rows {
        let label = label_value(row, label_column, label_field, file)?;
        let Some(description) = non_blank(&row.fields[description_column]) else {
            return Err(empty_field(description_field, file, row.line));
        };
        pairs.push(DescriptionPair {
            label,
            description,
            line: row.line,
        });
    }
    Ok(pairs)
}

impl Table {
    /// Returns the index of the header column named `name` (compared after trimming).
    fn column(&self, name: &str, file: &str) -> Result<usize, DataError> {
        let name = name.trim();
        let mut matches = self
            .header
            .iter()
            .enumerate()
            .filter(|(_, column)| *column == name);
        let Some((index, _)) = matches.next() else {
            return Err(DataError::MissingField {
                file: file.to_string(),
                line: self.header_line,
                field: name.to_string(),
                columns: Some(self.header.clone()),
            });
        };
        if matches.next().is_some() {
            return Err(DataError::DuplicateColumn {
                file: file.to_string(),
                line: self.header_line,
                field: name.to_string(),
            });
        }
        Ok(index)
    }
}

fn read_table(bytes: &[u8], file: &str, format: Format) -> Result<Table, DataError> {
    let (delimiter, quoting) = match format {
        Format::Tsv => (b'\t', false),
        Format::Csv | Format::Jsonl | Format::Clue => (b',', true),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .quoting(quoting)
        .from_reader(bytes);

    let mut header: Option<(Vec<String>, usize)> = None;
    let mut rows = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut lines = LineCounter::new(bytes);
    while read_row(&mut reader, &mut record, file)? {
        let line = lines.line_of(&record);
        let fields = decode_fields(&record, file, line)?;
        if fields.iter().all(|field| field.trim().is_empty()) {
            continue;
        }
        match &header {
            None => {
                let names = fields.iter().map(|name| name.trim().to_string()).collect();
                header = Some((names, line));
            }
            Some((names, _)) => {
                check_column_count(names.len(), fields.len(), file, line)?;
                rows.push(Row { line, fields });
            }
        }
    }
    let Some((header, header_line)) = header else {
        return Err(DataError::MissingHeader {
            file: file.to_string(),
        });
    };
    Ok(Table {
        header,
        header_line,
        rows,
    })
}

/// Reads the next row into `record`, or returns `false` at the end of the file.
fn read_row(
    reader: &mut csv::Reader<&[u8]>,
    record: &mut csv::ByteRecord,
    file: &str,
) -> Result<bool, DataError> {
    // Reading byte records in flexible mode from memory gives the csv crate nothing to fail on,
    // so this error path is defensive. Its line number is the csv crate's own.
    reader.read_byte_record(record).map_err(|error| {
        let line = error
            .position()
            .map_or(0, |position| position.line() as usize);
        DataError::InvalidCsv {
            file: file.to_string(),
            line,
            message: error.to_string(),
        }
    })
}

/// Finds the 1-based line where a record starts by counting `\n` bytes up to it.
///
/// The line numbers of the csv crate (1.4) lag by one after a `\r\n` row end, and its byte offset
/// can point at the previous row's `\n` or at skipped blank lines, so the counter first moves
/// past any line-end bytes. Offsets only grow, so each byte is counted once.
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    fn line_of(&mut self, record: &csv::ByteRecord) -> usize {
        let reported = record
            .position()
            .map_or(self.offset, |position| position.byte() as usize);
        let mut start = reported.clamp(self.offset, self.bytes.len());
        while matches!(self.bytes.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        self.line += self.bytes[self.offset..start]
            .iter()
            .filter(|byte| **byte == b'\n')
            .count();
        self.offset = start;
        self.line
    }
}

fn decode_fields(
    record: &csv::ByteRecord,
    file: &str,
    line: usize,
) -> Result<Vec<String>, DataError> {
    record
        .iter()
        .map(|field| {
            std::str::from_utf8(field)
                .map(str::to_string)
                .map_err(|_| DataError::InvalidUtf8 {
                    file: file.to_string(),
                    line,
                })
        })
        .collect()
}

fn check_column_count(
    expected: usize,
    found: usize,
    file: &str,
    line: usize,
) -> Result<(), DataError> {
    if expected == found {
        return Ok(());
    }
    Err(DataError::ColumnCount {
        file: file.to_string(),
        line,
        expected,
        found,
    })
}

/// Returns the trimmed label. A blank label is an error.
fn label_value(row: &Row, column: usize, field: &str, file: &str) -> Result<String, DataError> {
    non_blank(&row.fields[column]).ok_or_else(|| empty_field(field, file, row.line))
}

fn non_blank(value: &str) -> Option<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        None
    } else {
        Some(trimmed.to_string())
    }
}

fn empty_field(field: &str, file: &str, line: usize) -> DataError {
    DataError::EmptyField {
        file: file.to_string(),
        line,
        field: shorten(field),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::write_temp;
    use super::super::{check_syntax, read_records as read};
    use super::*;

    fn fields(text: &str, label: &str) -> FieldMapping {
        FieldMapping {
            text: text.to_string(),
            label: label.to_string(),
            description: None,
        }
    }

    fn read_csv(content: &str) -> Result<Vec<RawRecord>, DataError> {
        let file = write_temp(content.as_bytes());
        read(
            file.path(),
            "train.csv",
            Format::Csv,
            &fields("text", "category"),
        )
    }

    fn read_tsv(content: &str) -> Result<Vec<RawRecord>, DataError> {
        let file = write_temp(content.as_bytes());
        read(
            file.path(),
            "train.tsv",
            Format::Tsv,
            &fields("text", "category"),
        )
    }

    #[test]
    fn csv_reads_text_and_label() {
        let records =
            read_csv("text,category\nI am still waiting on my card?,card_arrival\n").unwrap();
        let expected = RawRecord {
            text: "I am still waiting on my card?".to_string(),
            label: "card_arrival".to_string(),
            description: None,
            line: 2,
        };
        assert_eq!(records, vec![expected]);
    }

    #[test]
    fn csv_quoted_fields_parsed() {
        let content = "text,category\n\
                       \"Where is it, and when?\",card_arrival\n\
                       \"She said \"\"hi\"\"\",greeting\n";
        let records = read_csv(content).unwrap();
        assert_eq!(records[0].text, "Where is it, and when?");
        assert_eq!(records[1].text, "She said \"hi\"");
        assert_eq!(records[1].line, 3);
    }

    #[test]
    fn csv_multiline_field_keeps_line_numbers() {
        let content = "text,category\r\n\
                       first,a\r\n\
                       \"\nline one\nline two\n\",b\r\n\
                       after,c\r\n\
                       \"x\r\ny\",d\r\n\
                       last,e\r\n";
        let records = read_csv(content).unwrap();
        let lines: Vec<usize> = records.iter().map(|record| record.line).collect();
        assert_eq!(lines, [2, 3, 7, 8, 10]);
        assert_eq!(records[1].text, "\nline one\nline two\n");
        assert_eq!(records[3].text, "x\r\ny");
    }

    #[test]
    fn csv_crlf_line_ends() {
        let records = read_csv("text,category\r\none,a\r\ntwo,b\r\n").unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].label, "a");
        assert_eq!(records[1].text, "two");
        assert_eq!(records[1].line, 3);
    }

    #[test]
    fn csv_byte_order_mark_skipped() {
        let records = read_csv("\u{FEFF}text,category\none,a\n").unwrap();
        assert_eq!(records[0].text, "one");
    }

    #[test]
    fn csv_empty_rows_skipped() {
        let content = "\ntext,category\n\none,a\n \n,\r\n\r\ntwo,b\n";
        let records = read_csv(content).unwrap();
        let lines: Vec<usize> = records.iter().map(|record| record.line).collect();
        assert_eq!(lines, [4, 8]);
        let file = write_temp(content.as_bytes());
        assert_eq!(
            check_syntax(file.path(), "train.csv", Format::Csv).unwrap(),
            2
        );
    }

    #[test]
    fn csv_header_columns_trimmed() {
        let records = read_csv("text , category\none,a\n").unwrap();
        assert_eq!(records[0].label, "a");
    }

    #[test]
    fn csv_missing_column_lists_header() {
        let error = read_csv("sentence,category\none,a\n").unwrap_err();
        assert_eq!(error.line(), Some(1));
        assert_eq!(error.field(), Some("text"));
        assert_eq!(
            error.to_string(),
            "train.csv line 1: field \"text\" is missing from the header (columns: \"sentence\", \"category\")"
        );
    }

    #[test]
    fn csv_duplicate_column_rejected() {
        let error = read_csv("text,category,text\none,a,b\n").unwrap_err();
        assert!(
            matches!(error, DataError::DuplicateColumn { .. }),
            "{error:?}"
        );
        assert_eq!(error.field(), Some("text"));
    }

    #[test]
    fn csv_wrong_column_count_rejected() {
        let error = read_csv("text,category\none,a\ntwo,b,extra\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "train.csv line 3: row has 3 columns but the header has 2"
        );
        let error = read_csv("text,category\none\n").unwrap_err();
        assert_eq!(error.line(), Some(2));
    }

    #[test]
    fn csv_blank_text_rejected() {
        let content = "text,category\none,a\n   ,b\n";
        let error = read_csv(content).unwrap_err();
        assert_eq!(
            error.to_string(),
            "train.csv line 3: field \"text\" is empty"
        );
        assert_eq!(error.field(), Some("text"));
    }

    #[test]
    fn csv_empty_label_rejected() {
        let error = read_csv("text,category\none,\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "train.csv line 2: field \"category\" is empty"
        );
    }

    #[test]
    fn csv_text_kept_label_trimmed() {
        let records = read_csv("text,category\n  padded text ,  10 \n").unwrap();
        assert_eq!(records[0].text, "  padded text ");
        assert_eq!(records[0].label, "10");
    }

    #[test]
    fn csv_description_column_read() {
        let file = write_temp(b"text,category,name\none,a,Alpha\ntwo,b,\n");
        let mapping = FieldMapping {
            description: Some("name".to_string()),
            ..fields("text", "category")
        };
        let records = read(file.path(), "train.csv", Format::Csv, &mapping).unwrap();
        assert_eq!(records[0].description.as_deref(), Some("Alpha"));
        assert_eq!(records[1].description, None);
    }

    #[test]
    fn csv_invalid_utf8_names_line() {
        let mut content = b"text,category\none,a\n".to_vec();
        content.extend_from_slice(&[0xFF, 0xFE]);
        content.extend_from_slice(b",b\n");
        let file = write_temp(&content);
        let error = read(
            file.path(),
            "train.csv",
            Format::Csv,
            &fields("text", "category"),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "train.csv line 3: invalid UTF-8; the file must be encoded as UTF-8"
        );
        let error = check_syntax(file.path(), "train.csv", Format::Csv).unwrap_err();
        assert_eq!(error.line(), Some(3));
    }

    #[test]
    fn csv_default_fields_used_when_empty() {
        let file = write_temp(b"text,label\none,a\n");
        let records = read(file.path(), "train.csv", Format::Csv, &fields("", "")).unwrap();
        assert_eq!(records[0].label, "a");
    }

    #[test]
    fn csv_without_header_rejected() {
        let file = write_temp(b"\n\r\n");
        let error = check_syntax(file.path(), "train.csv", Format::Csv).unwrap_err();
        assert_eq!(
            error.to_string(),
            "train.csv: missing header row; the first row must name the columns"
        );
    }

    #[test]
    fn tsv_quotes_are_literal() {
        let content = "text\tcategory\n\"quoted, with comma\"\ta\nsay \"hi\tb\n";
        let records = read_tsv(content).unwrap();
        assert_eq!(records[0].text, "\"quoted, with comma\"");
        assert_eq!(records[1].text, "say \"hi");
        assert_eq!(records[1].line, 3);
    }

    #[test]
    fn tsv_wrong_column_count_rejected() {
        let error = read_tsv("text\tcategory\none\ta\ttwo\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "train.tsv line 2: row has 3 columns but the header has 2"
        );
        let file = write_temp(b"text\tcategory\nno tab here\n");
        let error = check_syntax(file.path(), "train.tsv", Format::Tsv).unwrap_err();
        assert_eq!(error.line(), Some(2));
    }

    #[test]
    fn tsv_crlf_and_bom() {
        let records = read_tsv("\u{FEFF}text\tcategory\r\none\ta\r\ntwo\tb\r\n").unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].label, "b");
        assert_eq!(records[1].line, 3);
    }

    #[test]
    fn banking77_train_reads() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/banking77/train.csv"
        );
        let path = std::path::Path::new(path);
        let records = read(path, "train.csv", Format::Csv, &fields("text", "category")).unwrap();
        assert_eq!(records.len(), 10003);
        assert_eq!(check_syntax(path, "train.csv", Format::Csv).unwrap(), 10003);
        let multiline = records
            .iter()
            .filter(|record| record.text.contains('\n'))
            .count();
        assert_eq!(multiline, 10);
        assert!(records.iter().all(|record| !record.label.contains('\r')));
        assert_eq!(records[0].text, "I am still waiting on my card?");
        assert_eq!(records[0].line, 2);
        // The first text with line breaks spans lines 1292 to 1296.
        assert!(
            records[1290]
                .text
                .starts_with("\nI can't seem to be able to use my card\n")
        );
        assert_eq!(records[1290].line, 1292);
        assert_eq!(records[1291].line, 1297);
        let last = records.last().unwrap();
        assert_eq!(last.line, 10017);
        assert_eq!(last.label, "country_support");
        assert_eq!(last.text, "Which countries are represented?");
    }

    #[test]
    fn banking77_test_reads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/banking77/test.csv");
        let path = std::path::Path::new(path);
        let records = read(path, "test.csv", Format::Csv, &fields("text", "category")).unwrap();
        assert_eq!(records.len(), 3080);
        let multiline = records
            .iter()
            .filter(|record| record.text.contains('\n'))
            .count();
        assert_eq!(multiline, 3);
    }
}
