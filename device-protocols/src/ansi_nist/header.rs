//! Type-1 (transaction information) record: the content list, version, text encoding and the header fields.

use super::record::{decode_text, parse_number};
use super::{AnsiNistError, Field, RS, Record, TaggedRecord, Transaction, US, Warning};

/// Versions (1.002) this reader knows.
const KNOWN_VERSIONS: &[&str] = &["0200", "0201", "0300", "0400", "0500", "0501", "0502"];

/// How the text of a transaction is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// ASCII, or 8-bit Latin-1 (ISO 8859-1): each byte is one character (the default).
    Latin1,
    /// UTF-8, declared in 1.015 (DCS) by character set index `004` or name `UTF-8`.
    Utf8,
}

/// One entry of the content list (1.003): a record's type and IDC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentEntry {
    /// Record type.
    pub record_type: u8,
    /// IDC as written (usually two digits).
    pub idc: String,
}

/// The typed Type-1 record. Fields absent from the record are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// 1.002 VER, e.g. `0400`.
    pub version: String,
    /// 1.003 CNT, without the leading Type-1 entry.
    pub content: Vec<ContentEntry>,
    /// 1.004 TOT, type of transaction.
    pub transaction_type: Option<String>,
    /// 1.005 DAT, `YYYYMMDD`.
    pub date: Option<String>,
    /// 1.006 PRY, priority.
    pub priority: Option<String>,
    /// 1.007 DAI, destination agency.
    pub destination: Option<String>,
    /// 1.008 ORI, originating agency.
    pub originator: Option<String>,
    /// 1.009 TCN, transaction control number.
    pub control_number: Option<String>,
    /// 1.010 TCR, transaction control reference.
    pub control_reference: Option<String>,
    /// 1.011 NSR, native scanning resolution in pixels per mm (`19.69` = 500 ppi; `00.00` = none).
    pub native_resolution: Option<String>,
    /// 1.012 NTR, nominal transmitting resolution in pixels per mm.
    pub nominal_resolution: Option<String>,
    /// 1.013 DOM, domain name (first item).
    pub domain: Option<String>,
    /// 1.014 GMT, `YYYYMMDDhhmmssZ`.
    pub gmt: Option<String>,
    /// Text encoding from 1.015 DCS.
    pub text_encoding: TextEncoding,
}

impl Header {
    /// Reads the typed header from a transaction's first record.
    pub fn from_transaction(tx: &Transaction) -> Result<Self, AnsiNistError> {
        let record = match tx.records.first() {
            Some(Record::Tagged(r)) if r.record_type == 1 => r,
            Some(other) => {
                return Err(AnsiNistError::WrongRecordType {
                    record: 0,
                    record_type: other.record_type(),
                    expected: "Type-1",
                });
            }
            None => {
                return Err(AnsiNistError::BadContentList {
                    offset: None,
                    reason: "the transaction has no records".into(),
                });
            }
        };
        Self::from_record(record)
    }

    /// Reads the typed header from a Type-1 record.
    pub fn from_record(record: &TaggedRecord) -> Result<Self, AnsiNistError> {
        let (_, content) = read_content_list(record)?;
        let text_encoding = text_encoding(record);
        let text = |n| record.field(n).map(|f| f.text(text_encoding).into_owned());
        let version = text(2).ok_or(AnsiNistError::MissingField {
            record: 0,
            record_type: 1,
            field: "1.002 VER".into(),
        })?;
        Ok(Self {
            version,
            content,
            transaction_type: text(4),
            date: text(5),
            priority: text(6),
            destination: text(7),
            originator: text(8),
            control_number: text(9),
            control_reference: text(10),
            native_resolution: text(11),
            nominal_resolution: text(12),
            domain: record.field(13).and_then(|f| {
                f.subfields().first().and_then(|s| {
                    s.first()
                        .map(|d| decode_text(d, text_encoding).into_owned())
                })
            }),
            gmt: text(14),
            text_encoding,
        })
    }

    /// Native scanning resolution (1.011) in pixels per inch, if given and non-zero.
    pub fn native_ppi(&self) -> Option<u32> {
        self.native_resolution.as_deref().and_then(ppmm_to_ppi)
    }

    /// Nominal transmitting resolution (1.012) in pixels per inch, if given and non-zero.
    pub fn nominal_ppi(&self) -> Option<u32> {
        self.nominal_resolution.as_deref().and_then(ppmm_to_ppi)
    }

    /// Writes the header as a Type-1 record (canonical tags, LEN computed by [`super::encode`]). The content list
    /// is written from [`Header::content`]; 1.015 (DCS) is written only for UTF-8, as `004 US UTF-8`.
    pub fn to_record(&self) -> TaggedRecord {
        let mut r = TaggedRecord::new(1);
        r.push(2, self.version.as_bytes());
        r.push(3, content_list_value(&self.content));
        let optional = [
            (4, &self.transaction_type),
            (5, &self.date),
            (6, &self.priority),
            (7, &self.destination),
            (8, &self.originator),
            (9, &self.control_number),
            (10, &self.control_reference),
            (11, &self.native_resolution),
            (12, &self.nominal_resolution),
            (13, &self.domain),
            (14, &self.gmt),
        ];
        for (number, value) in optional {
            if let Some(v) = value {
                r.push(number, v.as_bytes());
            }
        }
        if self.text_encoding == TextEncoding::Utf8 {
            r.push(15, [b"004".as_slice(), &[US], b"UTF-8"].concat());
        }
        r
    }
}

/// Pixels per mm as written (`19.69`) to pixels per inch, rounded; `None` for zero or non-numbers.
fn ppmm_to_ppi(text: &str) -> Option<u32> {
    let ppmm: f64 = text.trim().parse().ok()?;
    let ppi = (ppmm * 25.4).round();
    (1.0..=100_000.0).contains(&ppi).then_some(ppi as u32)
}

/// The value of a content list naming `entries` after the Type-1 record.
pub(crate) fn content_list_value(entries: &[ContentEntry]) -> Vec<u8> {
    let mut out = format!("1{}{}", char::from(US), entries.len()).into_bytes();
    for e in entries {
        out.push(RS);
        out.extend_from_slice(e.record_type.to_string().as_bytes());
        out.push(US);
        out.extend_from_slice(e.idc.as_bytes());
    }
    out
}

/// Reads 1.003: the count it declares and the entries it lists after the Type-1 one.
pub(crate) fn read_content_list(
    type1: &TaggedRecord,
) -> Result<(usize, Vec<ContentEntry>), AnsiNistError> {
    let field = type1.field(3).ok_or(AnsiNistError::BadContentList {
        offset: None,
        reason: "field 1.003 is missing".into(),
    })?;
    let value_at = value_offset(type1, field);
    let offset = Some(value_at);
    let bad = |reason: String| AnsiNistError::BadContentList { offset, reason };
    let subfields = field.subfields();
    let (first, rest) = subfields.split_first().ok_or_else(|| bad("empty".into()))?;
    let declared = match first.as_slice() {
        [one, count] if parse_number(one) == Some(1) => parse_number(count)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| bad("the record count is not a number".into()))?,
        _ => return Err(bad("the first subfield must be `1 US count`".into())),
    };
    if rest.len().max(declared) > super::MAX_RECORDS {
        return Err(AnsiNistError::TooManyRecords {
            offset: value_at,
            count: rest.len().max(declared),
            max: super::MAX_RECORDS,
        });
    }
    let entries = rest
        .iter()
        .enumerate()
        .map(|(i, items)| match items.as_slice() {
            [rt, idc] => parse_number(rt)
                .and_then(|n| u8::try_from(n).ok())
                .filter(|n| (1..=99).contains(n))
                .map(|record_type| ContentEntry {
                    record_type,
                    idc: String::from_utf8_lossy(idc).into_owned(),
                })
                .ok_or_else(|| {
                    bad(format!(
                        "entry {} has record type {:?}",
                        i + 1,
                        String::from_utf8_lossy(rt)
                    ))
                }),
            _ => Err(bad(format!("entry {} is not `type US IDC`", i + 1))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((declared, entries))
}

/// Offset of `field`'s value from the start of the record (Type-1 starts the transaction, so also absolute).
fn value_offset(record: &TaggedRecord, field: &Field) -> usize {
    let mut offset = 0;
    for f in &record.fields {
        if std::ptr::eq(f, field) {
            return offset + f.tag.text.len() + 1;
        }
        offset += f.tag.text.len() + 1 + f.value.len() + 1;
    }
    offset
}

/// Warns about a version outside 0200-0502.
pub(crate) fn check_version(type1: &TaggedRecord, warnings: &mut Vec<Warning>) {
    let version = type1
        .field(2)
        .map(|f| String::from_utf8_lossy(&f.value).into_owned())
        .unwrap_or_default();
    if !KNOWN_VERSIONS.contains(&version.trim()) {
        warnings.push(Warning::UnknownVersion { version });
    }
}

/// The text encoding 1.015 (DCS) declares.
pub(crate) fn text_encoding(type1: &TaggedRecord) -> TextEncoding {
    let utf8 = type1.field(15).is_some_and(|f| {
        f.subfields().iter().any(|items| {
            let index = items.first().and_then(|i| parse_number(i));
            let name = items
                .get(1)
                .map(|n| String::from_utf8_lossy(n).to_ascii_uppercase());
            index == Some(4) || name.as_deref() == Some("UTF-8")
        })
    });
    if utf8 {
        TextEncoding::Utf8
    } else {
        TextEncoding::Latin1
    }
}
