//! Compact, versioned binary form of a [`Template`], used to store and ship watchlist templates.
//!
//! # Format (version 1, big-endian)
//! `"HST"` | version `u8` = 1 | count `u16` (<= 255) | `count` x 8 bytes:
//! x `u16` (quarter pixels) | y `u16` (quarter pixels) | angle `u16` (2 pi / 65536 radians) | kind `u8`
//! (0 other, 1 ridge ending, 2 bifurcation) | quality `u8`.
//!
//! Encoding quantises (x and y to 0.25 px, angles to 0.0055 degrees) and saturates: coordinates are clamped to
//! 0..=16383.75 px (NaN becomes 0), angles are wrapped into [0, 2 pi), and only the first [`MAX_MINUTIAE`] minutiae
//! are written. Decoding is bounded: input above [`MAX_ENCODED_BYTES`] is refused before reading, and the length
//! must be exactly `6 + 8 * count`.

use std::f32::consts::TAU;

use crate::template::{MAX_MINUTIAE, Minutia, MinutiaKind, Template};

/// Format identifier.
pub const MAGIC: &[u8; 3] = b"HST";
/// Version written by [`Template::encode`].
pub const VERSION: u8 = 1;
/// Header bytes (magic, version, count).
pub const HEADER_BYTES: usize = 6;
/// Bytes per minutia.
pub const MINUTIA_BYTES: usize = 8;
/// Largest valid encoding.
pub const MAX_ENCODED_BYTES: usize = HEADER_BYTES + MINUTIA_BYTES * MAX_MINUTIAE;

const COORDINATE_STEPS_PER_PIXEL: f32 = 4.0;
const ANGLE_STEPS: f32 = 65536.0;

/// A template encoding could not be decoded. Offsets are from the start of the encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateDecodeError {
    /// Input larger than any valid encoding; refused before reading.
    #[error("template encoding is {len} bytes, above the limit of {max}")]
    TooLarge {
        /// Bytes given.
        len: usize,
        /// [`MAX_ENCODED_BYTES`].
        max: usize,
    },
    /// Input shorter than the 6-byte header.
    #[error("template encoding is {len} bytes, shorter than its {HEADER_BYTES}-byte header")]
    TooShort {
        /// Bytes given.
        len: usize,
    },
    /// Bytes 0..3 are not `"HST"`.
    #[error("format identifier at offset 0 is {found:02x?}, expected \"HST\"")]
    BadMagic {
        /// The first three bytes.
        found: [u8; 3],
    },
    /// Byte 3 is not a known version.
    #[error("version at offset 3 is {found}, expected {VERSION}")]
    UnsupportedVersion {
        /// The version byte.
        found: u8,
    },
    /// The count at offset 4 exceeds [`MAX_MINUTIAE`].
    #[error("minutia count at offset 4 is {count}, above the maximum {MAX_MINUTIAE}")]
    TooManyMinutiae {
        /// Declared count.
        count: usize,
    },
    /// The length is not `6 + 8 * count`.
    #[error(
        "minutia count at offset 4 ({count}) needs {expected} bytes but the encoding has {actual}"
    )]
    Length {
        /// Declared count.
        count: usize,
        /// Length the count implies.
        expected: usize,
        /// Length given.
        actual: usize,
    },
    /// A kind byte is not 0, 1 or 2.
    #[error("minutia {index}: kind at offset {offset} is {value}, expected 0..=2")]
    InvalidKind {
        /// Minutia index.
        index: usize,
        /// Offset of the kind byte.
        offset: usize,
        /// The kind byte.
        value: u8,
    },
}

impl Template {
    /// Encodes to the compact binary form (see the [module docs](crate::codec) for layout and quantisation).
    pub fn encode(&self) -> Vec<u8> {
        let minutiae = &self.minutiae[..self.minutiae.len().min(MAX_MINUTIAE)];
        let mut out = Vec::with_capacity(HEADER_BYTES + MINUTIA_BYTES * minutiae.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        // minutiae.len() <= 255.
        out.extend_from_slice(
            &u16::try_from(minutiae.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        for m in minutiae {
            out.extend_from_slice(&quantise_coordinate(m.x).to_be_bytes());
            out.extend_from_slice(&quantise_coordinate(m.y).to_be_bytes());
            out.extend_from_slice(&quantise_angle(m.angle).to_be_bytes());
            out.push(kind_code(m.kind));
            out.push(m.quality);
        }
        out
    }

    /// Decodes the compact binary form, refusing anything malformed with a typed error.
    pub fn decode(bytes: &[u8]) -> Result<Template, TemplateDecodeError> {
        let count = check_header(bytes)?;
        let mut minutiae = Vec::with_capacity(count);
        for (index, chunk) in bytes[HEADER_BYTES..]
            .chunks_exact(MINUTIA_BYTES)
            .enumerate()
        {
            let word = |at: usize| u16::from_be_bytes([chunk[at], chunk[at + 1]]);
            let kind = kind_from_code(chunk[6]).ok_or(TemplateDecodeError::InvalidKind {
                index,
                offset: HEADER_BYTES + index * MINUTIA_BYTES + 6,
                value: chunk[6],
            })?;
            minutiae.push(Minutia {
                x: f32::from(word(0)) / COORDINATE_STEPS_PER_PIXEL,
                y: f32::from(word(2)) / COORDINATE_STEPS_PER_PIXEL,
                angle: f32::from(word(4)) * TAU / ANGLE_STEPS,
                kind,
                quality: chunk[7],
            });
        }
        Ok(Template { minutiae })
    }
}

/// Validates size, magic, version, count and exact length; returns the count.
fn check_header(bytes: &[u8]) -> Result<usize, TemplateDecodeError> {
    let len = bytes.len();
    if len > MAX_ENCODED_BYTES {
        return Err(TemplateDecodeError::TooLarge {
            len,
            max: MAX_ENCODED_BYTES,
        });
    }
    let Some(&[m0, m1, m2, version, c0, c1]) = bytes.first_chunk::<HEADER_BYTES>() else {
        return Err(TemplateDecodeError::TooShort { len });
    };
    if &[m0, m1, m2] != MAGIC {
        return Err(TemplateDecodeError::BadMagic {
            found: [m0, m1, m2],
        });
    }
    if version != VERSION {
        return Err(TemplateDecodeError::UnsupportedVersion { found: version });
    }
    let count = usize::from(u16::from_be_bytes([c0, c1]));
    if count > MAX_MINUTIAE {
        return Err(TemplateDecodeError::TooManyMinutiae { count });
    }
    let expected = HEADER_BYTES + MINUTIA_BYTES * count;
    if len != expected {
        return Err(TemplateDecodeError::Length {
            count,
            expected,
            actual: len,
        });
    }
    Ok(count)
}

/// Quarter pixels, rounded and clamped to the `u16` range (the `as` cast saturates and maps NaN to 0).
fn quantise_coordinate(value: f32) -> u16 {
    (value * COORDINATE_STEPS_PER_PIXEL).round() as u16
}

/// Steps of 2 pi / 65536, after wrapping into [0, 2 pi); NaN maps to 0.
fn quantise_angle(angle: f32) -> u16 {
    let steps = (angle.rem_euclid(TAU) * ANGLE_STEPS / TAU).round() as u32;
    (steps % 65536) as u16
}

fn kind_code(kind: MinutiaKind) -> u8 {
    match kind {
        MinutiaKind::Other => 0,
        MinutiaKind::RidgeEnding => 1,
        MinutiaKind::Bifurcation => 2,
    }
}

fn kind_from_code(code: u8) -> Option<MinutiaKind> {
    match code {
        0 => Some(MinutiaKind::Other),
        1 => Some(MinutiaKind::RidgeEnding),
        2 => Some(MinutiaKind::Bifurcation),
        _ => None,
    }
}
