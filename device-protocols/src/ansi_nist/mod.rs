//! ANSI/NIST-ITL 1-2011 (Update 2015) transactions in the traditional encoding: read and write, byte-exact.
//!
//! # What it is for
//! Live-scan stations, card scanners and AFIS systems exchange ANSI/NIST-ITL transactions (EBTS, INT-I ...). The
//! gateway accepts one as a station payload (it starts with `1.001:`; see [`looks_like_transaction`]) and turns it
//! into the station protocol's capture parts with [`capture_parts`].
//!
//! # Format
//! A transaction is a Type-1 record followed by the records its field 1.003 (CNT) lists as `type US IDC`
//! subfields. Tagged records (types 1, 2, 9-99) are fields `T.NNN:value` separated by GS (0x1D), ending in FS
//! (0x1C); inside a value RS (0x1E) separates subfields and US (0x1F) information items. Every tagged record
//! starts with field `.001` (LEN): the record's length in bytes. The image field `.999` (types 10, 13-17, 20, 21,
//! 99; the binary data of Type-16) holds raw bytes that may contain separators, so records are always cut by LEN,
//! never by scanning for separators; `.999` runs to the record's final FS. Binary records (types 3-8) start with a
//! 4-byte big-endian length and a fixed binary header (Type-4: LEN 4, IDC 1, IMP 1, FGP 6, ISR 1, HLL 2, VLL 2,
//! GCA 1, then the image). Versions 0200-0400 (with 2-digit tags like `1.01:`) and 0500-0502 are read alike.
//!
//! # Model
//! [`Transaction`] keeps every record as read: tagged records as their fields in order, with each tag's original
//! text and each value's raw bytes; binary records as their bytes. [`encode`] writes that back, so parsing then
//! encoding a valid file gives the same bytes. Text is decoded only on demand ([`Field::text`]): as UTF-8 when
//! field 1.015 (DCS) declares it, otherwise as Latin-1, which maps every byte and so loses nothing. Typed views
//! of record types 1, 2, 4, 9, 10, 13, 14 and 15 are in [`Header`], [`FingerImage`], [`FaceImage`] and
//! [`Minutiae`]; every other type stays an opaque record.
//!
//! # Limits
//! Input above [`MAX_TRANSACTION_BYTES`] and content lists of more than [`MAX_RECORDS`] records are refused before
//! any record is read. Every length is bounds-checked; errors ([`AnsiNistError`]) name the record (its index in
//! the transaction, 0 = Type-1), the tag and the byte offset from the start of the transaction.
//!
//! # Known quirks (and what each sample of the shared test set gives)
//! - A `.999` tag repeated with short text values before the binary one (`14.999:011011 GS 14.999:4732 GS
//!   14.999:<WSQ>`), written by NBIS's test generator: read as separate fields; the last one is the image; a
//!   [`Warning::RepeatedImageTag`] is returned. `nbis/valid1.11.an2` (the file known for "repeating a tag") gives it
//!   for 10.999, 14.999, 15.999 and 16.999; `valid1.5`, `valid1.6`, `valid1.7` and `valid1.16` give it too.
//! - Header sizes that disagree with the image: the Type-4/10/13/14/15 HLL/VLL is compared with the size inside
//!   a WSQ, JPEG or PNG image and a [`Warning::ImageSizeMismatch`] returned; the image's own size wins.
//!   `nbis/valid1.8.an2` gives it for its three Type-14 records (headers 1800x1000, 1800x1000, 1800x900; the WSQ
//!   images are 1600x976, 1600x976, 1600x800).
//! - Any other tag repeated within one record is refused with [`AnsiNistError::RepeatedField`]: the values
//!   conflict and nothing says which is meant. `libbiomeval/type9-13.an2k` (the negative case) repeats 2.034 and
//!   fails there (it also has a `13.005` tag inside its Type-9 record, which alone would give
//!   [`AnsiNistError::ForeignTag`]).
//! - A content list whose count disagrees with the entries listed, a version outside 0200-0502, an IDC differing
//!   from the one listed in 1.003, bytes after the last record (dropped): warnings ([`Warning`]).
//!   `jnbis/rec01_rec02_rec16.nst.an2` declares version `0` ([`Warning::UnknownVersion`]);
//!   `libbiomeval/type9-15.an2k` lists its Type-9 as IDC 03 while the record says 01 ([`Warning::IdcMismatch`]).
//! - Type-9 standard minutiae locations of 13 digits (`XXXXXYYYYYTTT`, `nbis/valid1.15.an2`) are read as
//!   5 + 5 + 3 digits.
//!
//! Every file of the shared set but `type9-13.an2k` re-encodes byte for byte, the quirky ones included; the files
//! not named above read without warnings.

mod capture;
mod error;
mod header;
mod images;
mod minutiae;
mod quirks;
mod reader;
mod record;
mod station;
mod writer;

#[cfg(test)]
mod tests_props;
#[cfg(test)]
mod tests_samples;

pub use capture::{CaptureParts, capture_parts};
pub use error::{AnsiNistError, Warning};
pub use header::{ContentEntry, Header, TextEncoding};
pub use images::{Compression, FaceImage, FingerImage, Scale};
pub use minutiae::{IncitsMinutia, IncitsMinutiae, Minutiae, StandardMinutia, StandardMinutiae};
pub use reader::parse;
pub use record::{BinaryRecord, Field, Record, Tag, TaggedRecord, Transaction};
pub use station::{CAPTURE_ID_NAMESPACE, capture_from_transaction, is_transaction};
pub use writer::encode;

/// Largest transaction accepted, checked before parsing.
pub const MAX_TRANSACTION_BYTES: usize = 64 * 1024 * 1024;
/// Most records (besides Type-1) a content list may declare.
pub const MAX_RECORDS: usize = 1000;

/// File separator: ends a record.
pub const FS: u8 = 0x1c;
/// Group separator: ends a field.
pub const GS: u8 = 0x1d;
/// Record separator: separates subfields.
pub const RS: u8 = 0x1e;
/// Unit separator: separates information items.
pub const US: u8 = 0x1f;

/// Whether a payload looks like a traditional-encoding transaction: it starts with the Type-1 LEN tag (`1.001:`,
/// or `1.01:` as versions before 0300 wrote it).
pub fn looks_like_transaction(payload: &[u8]) -> bool {
    payload.starts_with(b"1.001:") || payload.starts_with(b"1.01:")
}
