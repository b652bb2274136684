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
    /// The version field (offset 4) is not `" 20\0"`.
    #[error("version at offset 4 is {found:02x?}, expected \" 20\\0\" (2005 / 2004 edition)")]
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
