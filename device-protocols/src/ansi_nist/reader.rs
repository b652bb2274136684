//! The reader: cuts a transaction into records by their lengths, and tagged records into fields.

use std::collections::HashMap;

use super::header::{self, ContentEntry};
use super::record::parse_number;
use super::{
    AnsiNistError, BinaryRecord, FS, Field, GS, MAX_TRANSACTION_BYTES, Record, Tag, TaggedRecord,
    Transaction, Warning, quirks,
};

/// Longest tag accepted (`TT.NNNN`) plus its colon.
const MAX_TAG_BYTES: usize = 8;
/// Longest LEN value accepted.
const MAX_LEN_DIGITS: usize = 12;
/// Longest text a repeated `.999` may hold for it to be read as a text field (see the module doc).
const MAX_INLINE_TEXT: usize = 64;

/// Parses a traditional-encoding transaction. Returns it with the quirks that were tolerated.
pub fn parse(bytes: &[u8]) -> Result<(Transaction, Vec<Warning>), AnsiNistError> {
    if bytes.len() > MAX_TRANSACTION_BYTES {
        return Err(AnsiNistError::TooLarge {
            len: bytes.len(),
            max: MAX_TRANSACTION_BYTES,
        });
    }
    let mut warnings = Vec::new();
    let (type1, mut pos) = read_tagged(bytes, 0, 0, 1, &mut warnings)?;
    let (declared, content) = header::read_content_list(&type1)?;
    if declared != content.len() {
        warnings.push(Warning::ContentCountMismatch {
            declared,
            listed: content.len(),
        });
    }
    header::check_version(&type1, &mut warnings);
    let mut records = vec![Record::Tagged(type1)];
    for (i, entry) in content.iter().enumerate() {
        let index = i + 1;
        let (record, len) = if is_binary_type(entry.record_type) {
            read_binary(bytes, pos, index, entry.record_type)?
        } else {
            let (r, len) = read_tagged(bytes, pos, index, entry.record_type, &mut warnings)?;
            (Record::Tagged(r), len)
        };
        check_idc(index, entry, &record, &mut warnings);
        records.push(record);
        pos += len;
    }
    if pos < bytes.len() {
        warnings.push(Warning::TrailingBytes {
            offset: pos,
            len: bytes.len() - pos,
        });
    }
    let transaction = Transaction { records };
    quirks::check_image_sizes(&transaction, &mut warnings);
    Ok((transaction, warnings))
}

/// Types 3-8 are binary records.
pub(crate) fn is_binary_type(record_type: u8) -> bool {
    (3..=8).contains(&record_type)
}

/// Size of the fixed binary header of each binary record type.
pub(crate) fn binary_header_len(record_type: u8) -> usize {
    match record_type {
        7 => 5,
        8 => 12,
        _ => 18,
    }
}

fn check_idc(index: usize, entry: &ContentEntry, record: &Record, warnings: &mut Vec<Warning>) {
    let found = record.idc();
    let listed = parse_number(entry.idc.as_bytes());
    if listed != found.map(u64::from) {
        warnings.push(Warning::IdcMismatch {
            record: index,
            listed: entry.idc.clone(),
            found,
        });
    }
}

fn read_binary(
    bytes: &[u8],
    start: usize,
    index: usize,
    record_type: u8,
) -> Result<(Record, usize), AnsiNistError> {
    let rest = bytes.get(start..).unwrap_or_default();
    let truncated = |what, needed| AnsiNistError::Truncated {
        record: index,
        record_type,
        offset: start,
        what,
        needed,
        available: rest.len(),
    };
    let len_bytes: [u8; 4] = rest
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| truncated("binary record length", 4))?;
    let len = u32::from_be_bytes(len_bytes) as usize;
    let min = binary_header_len(record_type);
    if len < min {
        return Err(AnsiNistError::BadLength {
            record: index,
            record_type,
            offset: start,
            reason: format!("{len} is less than the {min}-byte header"),
        });
    }
    let record = rest.get(..len).ok_or_else(|| truncated("record", len))?;
    Ok((
        Record::Binary(BinaryRecord {
            record_type,
            bytes: record.to_vec(),
        }),
        len,
    ))
}

fn read_tagged(
    bytes: &[u8],
    start: usize,
    index: usize,
    record_type: u8,
    warnings: &mut Vec<Warning>,
) -> Result<(TaggedRecord, usize), AnsiNistError> {
    let rest = bytes.get(start..).unwrap_or_default();
    let (tag, value_start) = read_tag(rest, start, index)?;
    if tag.field != 1 || tag.record_type != record_type {
        return Err(AnsiNistError::RecordTypeMismatch {
            record: index,
            offset: start,
            listed: record_type,
            found: tag.text,
        });
    }
    let len = read_len(rest, value_start, start, index, record_type)?;
    let last = len - 1;
    if rest[last] != FS {
        return Err(AnsiNistError::MissingRecordSeparator {
            record: index,
            record_type,
            offset: start + last,
            found: rest[last],
        });
    }
    let fields = split_fields(&rest[..last], start, index, record_type, warnings)?;
    Ok((
        TaggedRecord {
            record_type,
            fields,
        },
        len,
    ))
}

/// Reads `T.NNN:` at the start of `bytes`; returns the tag and the offset (in `bytes`) of its value.
fn read_tag(bytes: &[u8], base: usize, index: usize) -> Result<(Tag, usize), AnsiNistError> {
    let window = &bytes[..bytes.len().min(MAX_TAG_BYTES)];
    let bad = || AnsiNistError::BadTag {
        record: index,
        offset: base,
        found: String::from_utf8_lossy(&bytes[..bytes.len().min(16)]).into_owned(),
    };
    let colon = window.iter().position(|&b| b == b':').ok_or_else(bad)?;
    let tag = Tag::parse(&bytes[..colon]).ok_or_else(bad)?;
    Ok((tag, colon + 1))
}

/// Reads the LEN value starting at `value_start` and checks it against the bytes left.
fn read_len(
    rest: &[u8],
    value_start: usize,
    start: usize,
    index: usize,
    record_type: u8,
) -> Result<usize, AnsiNistError> {
    let bad = |reason: String| AnsiNistError::BadLength {
        record: index,
        record_type,
        offset: start,
        reason,
    };
    let window = &rest[value_start..rest.len().min(value_start + MAX_LEN_DIGITS + 1)];
    let end = window
        .iter()
        .position(|&b| b == GS || b == FS)
        .ok_or_else(|| bad("no separator after the length value".into()))?;
    let len = parse_number(&window[..end])
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            bad(format!(
                "{:?} is not a number",
                String::from_utf8_lossy(&window[..end])
            ))
        })?;
    if len < value_start + end + 1 {
        return Err(bad(format!(
            "{len} is shorter than the length field itself"
        )));
    }
    if len > rest.len() {
        return Err(AnsiNistError::Truncated {
            record: index,
            record_type,
            offset: start,
            what: "record",
            needed: len,
            available: rest.len(),
        });
    }
    Ok(len)
}

/// Splits a record body (without its final FS) into fields.
fn split_fields(
    body: &[u8],
    base: usize,
    index: usize,
    record_type: u8,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<Field>, AnsiNistError> {
    let mut fields = Vec::new();
    let mut seen: HashMap<u16, usize> = HashMap::new();
    let mut pos = 0;
    loop {
        let (tag, colon_end) = read_tag(&body[pos..], base + pos, index)?;
        if tag.record_type != record_type {
            return Err(AnsiNistError::ForeignTag {
                record: index,
                record_type,
                offset: base + pos,
                tag: tag.text,
            });
        }
        let value_start = pos + colon_end;
        let value_end = value_end(body, value_start, &tag, record_type);
        let count = seen.entry(tag.field).or_insert(0);
        *count += 1;
        if *count > 1 && tag.field != 999 {
            return Err(AnsiNistError::RepeatedField {
                record: index,
                offset: base + pos,
                tag: tag.text,
            });
        }
        fields.push(Field {
            tag,
            value: body[value_start..value_end].to_vec(),
        });
        if value_end >= body.len() {
            break;
        }
        pos = value_end + 1;
    }
    if let Some(&occurrences) = seen.get(&999).filter(|&&n| n > 1) {
        let tag = fields
            .iter()
            .rev()
            .find(|f| f.tag.field == 999)
            .map(|f| f.tag.text.clone());
        warnings.push(Warning::RepeatedImageTag {
            record: index,
            tag: tag.unwrap_or_default(),
            occurrences,
        });
    }
    Ok(fields)
}

/// Where a field's value ends: the next GS, except for the image field `.999`, which runs to the end of the
/// record unless it is the repeated-tag quirk (short text, GS, another tag of this record).
fn value_end(body: &[u8], value_start: usize, tag: &Tag, record_type: u8) -> usize {
    if tag.field == 999 {
        return inline_text_end(body, value_start, record_type).unwrap_or(body.len());
    }
    body[value_start..]
        .iter()
        .position(|&b| b == GS)
        .map_or(body.len(), |p| value_start + p)
}

/// If `body[value_start..]` is short printable text, then GS, then a tag of `record_type`, where that GS is.
pub(crate) fn inline_text_end(body: &[u8], value_start: usize, record_type: u8) -> Option<usize> {
    let rest = &body[value_start..];
    let gs = rest
        .iter()
        .take(MAX_INLINE_TEXT + 1)
        .position(|&b| b == GS)?;
    if !is_inline_text(&rest[..gs]) {
        return None;
    }
    let next = &rest[gs + 1..];
    let colon = next.iter().take(MAX_TAG_BYTES).position(|&b| b == b':')?;
    let tag = Tag::parse(&next[..colon])?;
    (tag.record_type == record_type).then_some(value_start + gs)
}

/// Short printable ASCII (what the earlier values of a repeated `.999` hold).
pub(crate) fn is_inline_text(value: &[u8]) -> bool {
    value.len() <= MAX_INLINE_TEXT && value.iter().all(|b| (0x20..=0x7e).contains(b))
}
