//! Errors and warnings of the ANSI/NIST-ITL reader, writer and typed views. Record indexes count from 0 (the
//! Type-1 record); offsets are bytes from the start of the transaction.

use std::fmt;

/// A transaction could not be read, written or interpreted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnsiNistError {
    /// Input above [`super::MAX_TRANSACTION_BYTES`]; refused before parsing.
    #[error("transaction is {len} bytes, above the limit of {max}")]
    TooLarge {
        /// Bytes given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The content list declares more records than [`super::MAX_RECORDS`].
    #[error(
        "content list (1.003) at offset {offset} lists {count} records, above the limit of {max}"
    )]
    TooManyRecords {
        /// Offset of the content list value.
        offset: usize,
        /// Records listed.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The input ends inside a record, or a record's length runs past the end.
    #[error(
        "record {record} (Type-{record_type}) at offset {offset}: {what} needs {needed} bytes, {available} remain"
    )]
    Truncated {
        /// Record index.
        record: usize,
        /// Its type.
        record_type: u8,
        /// Offset of the record (or of the part being read).
        offset: usize,
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// A record's length field is missing, not a number or too small.
    #[error("record {record} (Type-{record_type}) at offset {offset}: bad length field: {reason}")]
    BadLength {
        /// Record index.
        record: usize,
        /// Its type.
        record_type: u8,
        /// Offset of the record.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// Bytes that should be a tag `T.NNN:` are not one.
    #[error("record {record} at offset {offset}: expected a field tag `T.NNN:`, found {found:?}")]
    BadTag {
        /// Record index.
        record: usize,
        /// Offset of the bad tag.
        offset: usize,
        /// Up to 16 bytes found there (lossy text).
        found: String,
    },
    /// A tag names another record type than the record it is in.
    #[error(
        "record {record} (Type-{record_type}) at offset {offset}: tag {tag} belongs to another record type"
    )]
    ForeignTag {
        /// Record index.
        record: usize,
        /// The record's type.
        record_type: u8,
        /// Offset of the tag.
        offset: usize,
        /// The tag.
        tag: String,
    },
    /// A record's first tag is not field 1 of the type the content list gives.
    #[error(
        "record {record} at offset {offset}: content list says Type-{listed}, record starts with tag {found}"
    )]
    RecordTypeMismatch {
        /// Record index.
        record: usize,
        /// Offset of the record.
        offset: usize,
        /// Type listed in 1.003.
        listed: u8,
        /// The first tag found.
        found: String,
    },
    /// A field other than the image field appears twice in one record.
    #[error("record {record} at offset {offset}: field {tag} appears more than once")]
    RepeatedField {
        /// Record index.
        record: usize,
        /// Offset of the repeated tag.
        offset: usize,
        /// The tag.
        tag: String,
    },
    /// A tagged record's last byte (by its LEN) is not FS.
    #[error(
        "record {record} (Type-{record_type}): byte at offset {offset} should end the record with FS, found {found:#04x}"
    )]
    MissingRecordSeparator {
        /// Record index.
        record: usize,
        /// Its type.
        record_type: u8,
        /// Offset of the byte.
        offset: usize,
        /// The byte found.
        found: u8,
    },
    /// The Type-1 content list (1.003) is missing or malformed.
    #[error("content list (1.003){at}: {reason}", at = offset.map(|o| format!(" at offset {o}")).unwrap_or_default())]
    BadContentList {
        /// Offset of the field value, when known.
        offset: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// A mandatory field is absent.
    #[error("record {record} (Type-{record_type}): mandatory field {field} is missing")]
    MissingField {
        /// Record index.
        record: usize,
        /// Its type.
        record_type: u8,
        /// The field (number and mnemonic).
        field: String,
    },
    /// A field's value cannot be interpreted.
    #[error("record {record}: field {tag}: {reason}")]
    BadValue {
        /// Record index.
        record: usize,
        /// The tag.
        tag: String,
        /// What is wrong.
        reason: String,
    },
    /// A record is not of a type the typed view handles.
    #[error("record {record} is Type-{record_type}, expected {expected}")]
    WrongRecordType {
        /// Record index.
        record: usize,
        /// Its type.
        record_type: u8,
        /// Which types the view takes.
        expected: &'static str,
    },
    /// The transaction cannot be written as it stands.
    #[error("cannot write record {record}: {reason}")]
    Unwritable {
        /// Record index.
        record: usize,
        /// What is wrong.
        reason: String,
    },
}

/// A quirk that was tolerated while reading; the transaction is usable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// A `.999` tag appears more than once in a record; the earlier occurrences held short text and the last one
    /// is taken as the image.
    RepeatedImageTag {
        /// Record index.
        record: usize,
        /// The tag.
        tag: String,
        /// How many times it appears.
        occurrences: usize,
    },
    /// The record's HLL/VLL disagree with the size inside the image data.
    ImageSizeMismatch {
        /// Record index.
        record: usize,
        /// Its type.
        record_type: u8,
        /// Width x height the record declares.
        declared: (u32, u32),
        /// Width x height inside the image.
        actual: (u32, u32),
    },
    /// 1.003's first subfield counts a different number of records than it lists.
    ContentCountMismatch {
        /// The count given.
        declared: usize,
        /// Entries listed (these are read).
        listed: usize,
    },
    /// 1.002 is not a version this reader knows (0200-0502).
    UnknownVersion {
        /// The version text.
        version: String,
    },
    /// A record's IDC differs from the one 1.003 lists for it.
    IdcMismatch {
        /// Record index.
        record: usize,
        /// IDC in the content list.
        listed: String,
        /// IDC in the record (`None` if absent).
        found: Option<u8>,
    },
    /// Bytes after the last record (dropped).
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
        /// How many.
        len: usize,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RepeatedImageTag {
                record,
                tag,
                occurrences,
            } => write!(
                f,
                "record {record}: image tag {tag} appears {occurrences} times; the last one is the image"
            ),
            Self::ImageSizeMismatch {
                record,
                record_type,
                declared,
                actual,
            } => write!(
                f,
                "record {record} (Type-{record_type}): header says {}x{} but the image is {}x{}",
                declared.0, declared.1, actual.0, actual.1
            ),
            Self::ContentCountMismatch { declared, listed } => write!(
                f,
                "content list (1.003) counts {declared} records but lists {listed}"
            ),
            Self::UnknownVersion { version } => write!(f, "unknown version (1.002) {version:?}"),
            Self::IdcMismatch {
                record,
                listed,
                found,
            } => write!(
                f,
                "record {record}: IDC {found:?} differs from {listed:?} in the content list"
            ),
            Self::TrailingBytes { offset, len } => {
                write!(
                    f,
                    "{len} bytes after the last record at offset {offset} were ignored"
                )
            }
        }
    }
}
