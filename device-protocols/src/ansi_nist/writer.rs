//! The writer: tagged records with their LEN computed, binary records as they are, and the content list check.

use super::header::{self, ContentEntry};
use super::reader::{binary_header_len, inline_text_end, is_binary_type, is_inline_text};
use super::record::parse_number;
use super::{
    AnsiNistError, BinaryRecord, FS, GS, Header, MAX_TRANSACTION_BYTES, Record, Tag, TaggedRecord,
    Transaction,
};

/// Writes a transaction. Each tagged record's LEN (`.001`) is kept as written if it is right and recomputed
/// otherwise, so a parsed transaction comes back byte for byte and a built one gets correct lengths.
///
/// Refused ([`AnsiNistError::Unwritable`]): a first record that is not Type-1, a content list (1.003) that does
/// not list the records that follow by type, a tag whose text does not match its numbers or record, a text value
/// holding GS, an image field that would read back differently, a binary record whose length word is wrong.
pub fn encode(tx: &Transaction) -> Result<Vec<u8>, AnsiNistError> {
    check_content_list(tx)?;
    let mut out = Vec::new();
    for (index, record) in tx.records.iter().enumerate() {
        match record {
            Record::Tagged(r) => write_tagged(&mut out, index, r)?,
            Record::Binary(r) => write_binary(&mut out, index, r)?,
        }
        if out.len() > MAX_TRANSACTION_BYTES {
            return Err(unwritable(
                index,
                format!("the transaction exceeds {MAX_TRANSACTION_BYTES} bytes"),
            ));
        }
    }
    Ok(out)
}

impl Transaction {
    /// A transaction of `header` then `records`; the header's content list is made from the records.
    pub fn build(header: &Header, records: Vec<Record>) -> Self {
        let mut all = Vec::with_capacity(records.len() + 1);
        all.push(Record::Tagged(header.to_record()));
        all.extend(records);
        let mut tx = Self { records: all };
        tx.refresh_content_list();
        tx
    }

    /// Rewrites 1.003 from the types and IDCs of the records after the Type-1 one (keeping its tag text).
    pub fn refresh_content_list(&mut self) {
        let entries: Vec<ContentEntry> = self.records.iter().skip(1).map(content_entry).collect();
        let value = header::content_list_value(&entries);
        if let Some(Record::Tagged(type1)) = self.records.first_mut() {
            match type1.fields.iter_mut().find(|f| f.tag.field == 3) {
                Some(field) => field.value = value,
                None => {
                    let at = type1.fields.len().min(2);
                    type1.fields.insert(at, super::Field::new(1, 3, value));
                }
            }
        }
    }
}

fn content_entry(record: &Record) -> ContentEntry {
    ContentEntry {
        record_type: record.record_type(),
        idc: format!("{:02}", record.idc().unwrap_or(0)),
    }
}

fn unwritable(record: usize, reason: String) -> AnsiNistError {
    AnsiNistError::Unwritable { record, reason }
}

fn check_content_list(tx: &Transaction) -> Result<(), AnsiNistError> {
    let type1 = match tx.records.first() {
        Some(Record::Tagged(r)) if r.record_type == 1 => r,
        _ => {
            return Err(unwritable(
                0,
                "the first record must be a tagged Type-1 record".into(),
            ));
        }
    };
    let (_, entries) = header::read_content_list(type1)?;
    let listed: Vec<u8> = entries.iter().map(|e| e.record_type).collect();
    let present: Vec<u8> = tx.records.iter().skip(1).map(Record::record_type).collect();
    if listed != present {
        return Err(unwritable(
            0,
            format!("1.003 lists record types {listed:?} but the records are {present:?}"),
        ));
    }
    for (i, record) in tx.records.iter().enumerate().skip(1) {
        let tagged = matches!(record, Record::Tagged(_));
        if tagged == is_binary_type(record.record_type()) {
            return Err(unwritable(
                i,
                format!(
                    "Type-{} cannot be a {} record",
                    record.record_type(),
                    if tagged { "tagged" } else { "binary" }
                ),
            ));
        }
    }
    Ok(())
}

fn write_binary(out: &mut Vec<u8>, index: usize, r: &BinaryRecord) -> Result<(), AnsiNistError> {
    let min = binary_header_len(r.record_type);
    let declared = r
        .bytes
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
    if r.bytes.len() < min || declared != Some(r.bytes.len()) {
        return Err(unwritable(
            index,
            format!(
                "binary record of {} bytes declares length {declared:?} (header {min} bytes)",
                r.bytes.len()
            ),
        ));
    }
    out.extend_from_slice(&r.bytes);
    Ok(())
}

fn write_tagged(out: &mut Vec<u8>, index: usize, r: &TaggedRecord) -> Result<(), AnsiNistError> {
    check_fields(index, r)?;
    let len_text = length_text(r);
    let last = r.fields.len() - 1;
    for (i, field) in r.fields.iter().enumerate() {
        out.extend_from_slice(field.tag.text.as_bytes());
        out.push(b':');
        out.extend_from_slice(if i == 0 { &len_text } else { &field.value });
        out.push(if i == last { FS } else { GS });
    }
    Ok(())
}

/// The LEN value: the stored one if it is right, else the decimal length.
fn length_text(r: &TaggedRecord) -> Vec<u8> {
    let without_len: usize = r
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| f.tag.text.len() + 2 + if i == 0 { 0 } else { f.value.len() })
        .sum();
    let stored = &r.fields[0].value;
    if parse_number(stored) == Some((without_len + stored.len()) as u64) {
        return stored.clone();
    }
    let mut digits = 1;
    loop {
        let text = (without_len + digits).to_string();
        if text.len() == digits {
            return text.into_bytes();
        }
        digits = text.len();
    }
}

fn check_fields(index: usize, r: &TaggedRecord) -> Result<(), AnsiNistError> {
    let bad = |reason: String| Err(unwritable(index, reason));
    match r.fields.first() {
        Some(f) if f.tag.field == 1 => {}
        _ => {
            return bad(format!(
                "Type-{} record must start with field .001",
                r.record_type
            ));
        }
    }
    let last = r.fields.len() - 1;
    for (i, f) in r.fields.iter().enumerate() {
        let parsed = Tag::parse(f.tag.text.as_bytes());
        let consistent =
            parsed.is_some_and(|t| t.record_type == f.tag.record_type && t.field == f.tag.field);
        if !consistent || f.tag.record_type != r.record_type {
            return bad(format!(
                "tag {:?} does not name field {} of Type-{}",
                f.tag.text, f.tag.field, r.record_type
            ));
        }
        let ok = match (f.tag.field, i == last) {
            (999, true) => inline_text_end(&f.value, 0, r.record_type).is_none(),
            (999, false) => is_inline_text(&f.value),
            _ => !f.value.contains(&GS),
        };
        if !ok {
            return bad(format!(
                "value of {} would not read back as written",
                f.tag.text
            ));
        }
    }
    Ok(())
}
