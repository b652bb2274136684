//! Errors of the minutiae record reader and writer. Every read error names the field and the byte offset (from the
//! start of the record) where the problem was found; every write error names the field whose value cannot be written.

/// A minutiae record could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The input is larger than [`super::MAX_TEMPLATE_BYTES`]; refused before parsing.
    #[error("template is {len} bytes, above the limit of {max} bytes")]
    TooLarge {
        /// Bytes given.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The input ends inside a field.
    #[error("{field} at offset {offset} needs {needed} bytes but only {available} remain")]
    Truncated {
        /// Field being read.
        field: &'static str,
        /// Offset of the field.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left at that offset.
        available: usize,
    },
    /// The record does not start with `FMR\0`.
    #[error("format identifier at offset 0 is {found:02x?}, expected \"FMR\\0\"")]
    BadMagic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// The version field (offset 4) is not one the called reader knows: `" 20\0"` (ISO 2005 / ANSI 2004), `"030\0"`
    /// (ISO 2011 / ANSI 2009) or, for ANSI only, `"035\0"` (ANSI 378-2009/AM1-2010).
    #[error(
        "version at offset 4 is {found:02x?}, expected \" 20\\0\" (ISO 2005 / ANSI 2004), \"030\\0\" (ISO 2011 / ANSI 2009) or \"035\\0\" (ANSI 2009/AM1)"
    )]
    UnsupportedVersion {
        /// The four version bytes.
        found: [u8; 4],
    },
    /// The record length field disagrees with the input or is too small to hold a header.
    #[error(
        "record length at offset {offset} declares {declared} bytes but the input has {actual} (header needs {header})"
    )]
    RecordLength {
        /// Offset of the record length field.
        offset: usize,
        /// Declared record length.
        declared: usize,
        /// Input length.
        actual: usize,
        /// Size of the record header in this format.
        header: usize,
    },
    /// A minutia uses the reserved type code `0b11`.
    #[error("minutia {minutia} of view {view}: type at offset {offset} is the reserved code 3")]
    ReservedMinutiaType {
        /// View index (0-based, in record order).
        view: usize,
        /// Minutia index within the view.
        minutia: usize,
        /// Offset of the minutia's type/x field.
        offset: usize,
    },
    /// A finger position code above 10.
    #[error("view {view}: finger position {value} at offset {offset} is not 0..=10")]
    InvalidFingerPosition {
        /// View index (0-based).
        view: usize,
        /// Offset of the position byte.
        offset: usize,
        /// The position byte.
        value: u8,
    },
    /// An ANSI 378 angle is above 179 (2-degree units).
    #[error(
        "minutia {minutia} of view {view}: angle {value} at offset {offset} exceeds 179 (2-degree units)"
    )]
    AngleOutOfRange {
        /// View index (0-based).
        view: usize,
        /// Minutia index within the view.
        minutia: usize,
        /// Offset of the angle byte.
        offset: usize,
        /// The angle byte.
        value: u8,
    },
    /// A view's extended data area runs past the end of the record and is not the last view's.
    #[error(
        "view {view}: extended data length at offset {offset} declares {declared} bytes but only {available} remain"
    )]
    ExtendedDataOverrun {
        /// View index (0-based).
        view: usize,
        /// Offset of the extended data length field.
        offset: usize,
        /// Declared extended data length.
        declared: usize,
        /// Bytes left after the length field.
        available: usize,
    },
    /// An ISO 19794-2:2011 finger representation length is below the smallest representation or runs past the end of
    /// the record.
    #[error(
        "view {view}: representation length at offset {offset} declares {declared} bytes; it must be at least {min} and at most the {available} bytes left"
    )]
    RepresentationLength {
        /// View (representation) index, 0-based.
        view: usize,
        /// Offset of the representation length field.
        offset: usize,
        /// Declared representation length.
        declared: usize,
        /// Bytes left in the record at that offset.
        available: usize,
        /// Smallest possible representation.
        min: usize,
    },
    /// Bytes are left between the end of the last ISO 19794-2:2011 representation and the declared record end.
    #[error(
        "{len} bytes at offset {offset} after the last finger representation belong to no representation"
    )]
    TrailingData {
        /// Offset just after the last view.
        offset: usize,
        /// Bytes left over.
        len: usize,
    },
    /// A code field holds a value the standard does not define (e.g. a minutia field length other than 5 or 6).
    #[error("{field} at offset {offset} has the undefined value {value}")]
    InvalidCode {
        /// Field read.
        field: &'static str,
        /// Offset of the field.
        offset: usize,
        /// The value found.
        value: u8,
    },
    /// A count is above what this reader accepts.
    #[error("{field} at offset {offset} is {value}, above the limit of {max}")]
    CountOutOfRange {
        /// Field read.
        field: &'static str,
        /// Offset of the field.
        offset: usize,
        /// The count found.
        value: usize,
        /// The limit in force.
        max: usize,
    },
    /// A view of a 2011 / 2009 record declares an image size or resolution that differs from the first view's;
    /// [`super::MinutiaeRecord`] holds one geometry per record, so such a record cannot be represented.
    #[error(
        "view {view}: {field} at offset {offset} is {value}, but view 0 has {first} (one image geometry per record is supported)"
    )]
    ViewGeometryMismatch {
        /// View index (0-based).
        view: usize,
        /// Offset of the field.
        offset: usize,
        /// Field that differs.
        field: &'static str,
        /// This view's value.
        value: u16,
        /// The first view's value.
        first: u16,
    },
    /// A 2011 / 2009 record without finger views cannot be written: those editions keep the image size and
    /// resolution in each view, so they would be lost.
    #[error(
        "cannot write {format:?} without finger views (the image size and resolution live in each view)"
    )]
    EmptyRecord {
        /// Format asked for.
        format: super::TemplateFormat,
    },
    /// A value does not fit its field in the record being written.
    #[error("cannot write {field}: value {value} exceeds the maximum {max}")]
    ValueOutOfRange {
        /// Field being written (with its view / minutia index where it applies).
        field: String,
        /// The value.
        value: usize,
        /// The largest value the field holds.
        max: usize,
    },
}
