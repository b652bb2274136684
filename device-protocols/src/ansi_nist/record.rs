//! The syntactic model: a transaction as records, tagged records as fields, everything kept as read.

use std::borrow::Cow;

use super::{AnsiNistError, RS, TextEncoding, US};

/// A whole transaction: the Type-1 record first, then the records its content list names, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// All records; `records[0]` is the Type-1 record.
    pub records: Vec<Record>,
}

/// One logical record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A tagged-field record (types 1, 2, 9-99).
    Tagged(TaggedRecord),
    /// A binary record (types 3-8), kept as its bytes.
    Binary(BinaryRecord),
}

impl Record {
    /// The record type (1-99).
    pub fn record_type(&self) -> u8 {
        match self {
            Self::Tagged(r) => r.record_type,
            Self::Binary(r) => r.record_type,
        }
    }

    /// The image designation character (IDC): field `.002` or binary byte 4. `None` if absent or not a number.
    pub fn idc(&self) -> Option<u8> {
        match self {
            Self::Tagged(r) => r
                .field(2)
                .and_then(|f| f.number())
                .and_then(|n| u8::try_from(n).ok()),
            Self::Binary(r) => r.bytes.get(4).copied(),
        }
    }

    /// The tagged record, if this is one.
    pub fn as_tagged(&self) -> Option<&TaggedRecord> {
        match self {
            Self::Tagged(r) => Some(r),
            Self::Binary(_) => None,
        }
    }
}

/// A tagged-field record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedRecord {
    /// Record type (from the content list; every tag repeats it).
    pub record_type: u8,
    /// Fields in file order, `.001` (LEN) first.
    pub fields: Vec<Field>,
}

impl TaggedRecord {
    /// A record with just a placeholder LEN field; [`super::encode`] computes the length.
    pub fn new(record_type: u8) -> Self {
        Self {
            record_type,
            fields: vec![Field::new(record_type, 1, "0")],
        }
    }

    /// The first field with this number.
    pub fn field(&self, number: u16) -> Option<&Field> {
        self.fields.iter().find(|f| f.tag.field == number)
    }

    /// The image data field: the last `.999` field (earlier ones are the repeated-tag quirk; see the module doc).
    pub fn image_field(&self) -> Option<&Field> {
        self.fields.iter().rev().find(|f| f.tag.field == 999)
    }

    /// Appends a field with a canonical tag (`T.NNN`).
    pub fn push(&mut self, number: u16, value: impl Into<Vec<u8>>) {
        self.fields
            .push(Field::new(self.record_type, number, value));
    }
}

/// A binary record (types 3-8): its bytes, starting with the 4-byte length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryRecord {
    /// Record type (from the content list; binary records do not carry it).
    pub record_type: u8,
    /// The whole record.
    pub bytes: Vec<u8>,
}

/// A field tag `T.NNN` with the text it was written as (`1.01` and `1.001` both name field 1 of Type-1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// Record type in the tag.
    pub record_type: u8,
    /// Field number.
    pub field: u16,
    /// The tag as written (ASCII digits and one dot).
    pub text: String,
}

impl Tag {
    /// The canonical tag `T.NNN`.
    pub fn new(record_type: u8, field: u16) -> Self {
        Self {
            record_type,
            field,
            text: format!("{record_type}.{field:03}"),
        }
    }

    /// Parses a tag: 1-2 digits, a dot, 1-4 digits (field number at most 999). `None` otherwise.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let dot = bytes.iter().position(|&b| b == b'.')?;
        let (rt, field) = (&bytes[..dot], &bytes[dot + 1..]);
        let digits = |s: &[u8], max_len| {
            !s.is_empty() && s.len() <= max_len && s.iter().all(u8::is_ascii_digit)
        };
        if !digits(rt, 2) || !digits(field, 4) {
            return None;
        }
        let text = std::str::from_utf8(bytes).ok()?;
        let record_type = std::str::from_utf8(rt).ok()?.parse().ok()?;
        let field: u16 = std::str::from_utf8(field).ok()?.parse().ok()?;
        (field <= 999).then(|| Self {
            record_type,
            field,
            text: text.to_owned(),
        })
    }
}

/// One field: its tag and the raw bytes between `:` and the closing GS/FS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The tag.
    pub tag: Tag,
    /// The value bytes, separators RS/US included.
    pub value: Vec<u8>,
}

impl Field {
    /// A field with a canonical tag.
    pub fn new(record_type: u8, number: u16, value: impl Into<Vec<u8>>) -> Self {
        Self {
            tag: Tag::new(record_type, number),
            value: value.into(),
        }
    }

    /// The value decoded as text (see [`TextEncoding`]); invalid UTF-8 in a UTF-8 transaction is replaced.
    pub fn text(&self, encoding: TextEncoding) -> Cow<'_, str> {
        decode_text(&self.value, encoding)
    }

    /// Subfields (split on RS), each split into information items (on US).
    pub fn subfields(&self) -> Vec<Vec<&[u8]>> {
        self.value
            .split(|&b| b == RS)
            .map(|s| s.split(|&b| b == US).collect())
            .collect()
    }

    /// The value as an unsigned decimal number (surrounding spaces allowed), if it is one.
    pub fn number(&self) -> Option<u64> {
        parse_number(&self.value)
    }

    /// The error for a value this field cannot hold.
    pub(crate) fn bad_value(&self, record: usize, reason: impl Into<String>) -> AnsiNistError {
        AnsiNistError::BadValue {
            record,
            tag: self.tag.text.clone(),
            reason: reason.into(),
        }
    }
}

/// Decodes text bytes: UTF-8 (lossy) or Latin-1 (every byte one character).
pub(crate) fn decode_text(bytes: &[u8], encoding: TextEncoding) -> Cow<'_, str> {
    match encoding {
        TextEncoding::Utf8 => String::from_utf8_lossy(bytes),
        TextEncoding::Latin1 => match std::str::from_utf8(bytes) {
            Ok(s) if s.is_ascii() => Cow::Borrowed(s),
            _ => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
        },
    }
}

/// Parses an unsigned decimal (at most 18 digits; spaces around allowed).
pub(crate) fn parse_number(bytes: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(bytes).ok()?.trim();
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
