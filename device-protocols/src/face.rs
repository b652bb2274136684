//! ISO/IEC 19794-5:2005 face image records: read and write, byte-exact.
//!
//! # What it is for
//! E-passport readers and some face capture stations hand over the face as a 19794-5 record (the format of the
//! ICAO LDS data group 2) instead of a bare JPEG. [`parse_face_record`] gets the image and its landmarks out;
//! [`FacialImage::station_face`] turns it into the station protocol's [`Face`].
//!
//! # Format (all integers big-endian)
//! - Header, 14 bytes: `"FAC\0"` | version `"010\0"` | record length `u32` | number of facial images `u16`.
//! - Per facial image, a block: block length `u32` (the whole block) | number of feature points `u16` | gender
//!   `u8` | eye colour `u8` | hair colour `u8` | property mask `u24` | expression `u16` | pose yaw, pitch, roll `u8`
//!   x3 | their uncertainties `u8` x3 (20 bytes); then per feature point 8 bytes: type `u8` | code `u8` (major
//!   point in the high nibble, minor in the low) | x `u16` | y `u16` | reserved `u16`; then the image
//!   information, 12 bytes: face image type `u8` | image data type `u8` (0 JPEG, 1 JPEG 2000) | width `u16` |
//!   height `u16` | colour space `u8` | source type `u8` | device type `u16` | quality `u16`; then the image data
//!   to the end of the block.
//!
//! # Limits and quirks
//! Input above [`MAX_FACE_RECORD_BYTES`] is refused before parsing. The declared record length must equal the
//! input length and every block must fit inside it; errors name the field and its byte offset. Every field is kept
//! as read (reserved bytes included), so [`encode_face_record`] gives back the same bytes. The width and height in
//! the image information are not checked against the JPEG inside (writers get this wrong; the image wins).

use crate::station::{Face, FaceFormat};

/// Largest record accepted, checked before parsing.
pub const MAX_FACE_RECORD_BYTES: usize = 16 * 1024 * 1024;

const MAGIC: &[u8; 4] = b"FAC\0";
const VERSION: &[u8; 4] = b"010\0";
const HEADER_BYTES: usize = 14;
const BLOCK_HEADER_BYTES: usize = 20;
const FEATURE_POINT_BYTES: usize = 8;
const IMAGE_INFO_BYTES: usize = 12;

/// A face record: one or more facial images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceRecord {
    /// The facial images in record order.
    pub images: Vec<FacialImage>,
}

/// Head pose in the 2005 encoding: 0 = unspecified, otherwise `1 + round(angle / 2)` for angles -180..=180.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pose {
    /// Yaw.
    pub yaw: u8,
    /// Pitch.
    pub pitch: u8,
    /// Roll.
    pub roll: u8,
    /// Yaw uncertainty.
    pub yaw_uncertainty: u8,
    /// Pitch uncertainty.
    pub pitch_uncertainty: u8,
    /// Roll uncertainty.
    pub roll_uncertainty: u8,
}

/// One landmark (MPEG-4 feature point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeaturePoint {
    /// Feature point type (1 = 2D MPEG-4 point).
    pub kind: u8,
    /// Major point code in the high nibble, minor in the low nibble (e.g. `0x36` = point 3.6, right eye centre).
    pub code: u8,
    /// Column in pixels.
    pub x: u16,
    /// Row in pixels.
    pub y: u16,
    /// Reserved (kept as read).
    pub reserved: u16,
}

impl FeaturePoint {
    /// MPEG-4 major point number.
    pub fn major(&self) -> u8 {
        self.code >> 4
    }
    /// MPEG-4 minor point number.
    pub fn minor(&self) -> u8 {
        self.code & 0x0f
    }
}

/// One facial image with its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FacialImage {
    /// Gender code (0 unspecified, 1 male, 2 female, 0xff unknown).
    pub gender: u8,
    /// Eye colour code.
    pub eye_colour: u8,
    /// Hair colour code.
    pub hair_colour: u8,
    /// Property mask (24 bits: glasses, moustache, ...).
    pub property_mask: u32,
    /// Expression code.
    pub expression: u16,
    /// Head pose.
    pub pose: Pose,
    /// Landmarks.
    pub feature_points: Vec<FeaturePoint>,
    /// Face image type (0 basic, 1 full frontal, 2 token frontal).
    pub face_image_type: u8,
    /// Image data type: 0 JPEG, 1 JPEG 2000.
    pub image_data_type: u8,
    /// Width in pixels as declared.
    pub width: u16,
    /// Height in pixels as declared.
    pub height: u16,
    /// Colour space code.
    pub colour_space: u8,
    /// Source type code.
    pub source_type: u8,
    /// Device type.
    pub device_type: u16,
    /// Quality.
    pub quality: u16,
    /// The encoded image.
    pub data: Vec<u8>,
}

impl FacialImage {
    /// The image as the station protocol's face, if its encoding is one the protocol carries (JPEG; a PNG is
    /// recognised by its signature though 19794-5:2005 has no code for it). JPEG 2000 gives `None`.
    pub fn station_face(&self) -> Option<Face> {
        let format = match crate::image::ImageKind::sniff(&self.data)? {
            crate::image::ImageKind::Jpeg => FaceFormat::Jpeg,
            crate::image::ImageKind::Png => FaceFormat::Png,
            _ => return None,
        };
        Some(Face {
            format,
            data: self.data.clone(),
        })
    }

    fn encoded_len(&self) -> usize {
        BLOCK_HEADER_BYTES
            + FEATURE_POINT_BYTES * self.feature_points.len()
            + IMAGE_INFO_BYTES
            + self.data.len()
    }
}

/// A face record could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FaceError {
    /// Input above [`MAX_FACE_RECORD_BYTES`]; refused before parsing.
    #[error("face record is {len} bytes, above the limit of {max}")]
    TooLarge {
        /// Bytes given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The input ends inside a field.
    #[error("{field} at offset {offset} needs {needed} bytes but only {available} remain")]
    Truncated {
        /// Field being read.
        field: &'static str,
        /// Its offset.
        offset: usize,
        /// Bytes needed.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// Not `"FAC\0"` at offset 0.
    #[error("format identifier at offset 0 is {0:02x?}, expected \"FAC\\0\"")]
    BadMagic([u8; 4]),
    /// Not version `"010\0"` at offset 4.
    #[error("version at offset 4 is {0:02x?}, expected \"010\\0\" (19794-5:2005)")]
    UnsupportedVersion([u8; 4]),
    /// The record length field (offset 8) disagrees with the input.
    #[error("record length at offset 8 declares {declared} bytes but the input has {actual}")]
    RecordLength {
        /// Declared.
        declared: usize,
        /// Input length.
        actual: usize,
    },
    /// A facial record block's length is too small for its contents or runs past the record.
    #[error(
        "facial image {index}: block length at offset {offset} declares {declared} bytes; {reason}"
    )]
    BlockLength {
        /// Image index (0-based).
        index: usize,
        /// Offset of the block length field.
        offset: usize,
        /// Declared block length.
        declared: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Bytes left after the last declared facial image.
    #[error("{0} bytes after the last facial image at offset {1}")]
    TrailingBytes(usize, usize),
    /// A value does not fit its field when writing.
    #[error("cannot write {field}: {value} exceeds {max}")]
    ValueOutOfRange {
        /// Field.
        field: &'static str,
        /// Value.
        value: usize,
        /// Maximum.
        max: usize,
    },
}

/// Reads a 19794-5:2005 face record.
pub fn parse_face_record(bytes: &[u8]) -> Result<FaceRecord, FaceError> {
    if bytes.len() > MAX_FACE_RECORD_BYTES {
        return Err(FaceError::TooLarge {
            len: bytes.len(),
            max: MAX_FACE_RECORD_BYTES,
        });
    }
    let mut cur = Reader { bytes, offset: 0 };
    let magic = cur.array::<4>("format identifier")?;
    if &magic != MAGIC {
        return Err(FaceError::BadMagic(magic));
    }
    let version = cur.array::<4>("version")?;
    if &version != VERSION {
        return Err(FaceError::UnsupportedVersion(version));
    }
    let declared = cur.u32("record length")? as usize;
    if declared != bytes.len() {
        return Err(FaceError::RecordLength {
            declared,
            actual: bytes.len(),
        });
    }
    let count = cur.u16("number of facial images")?;
    let mut images = Vec::new();
    for index in 0..usize::from(count) {
        images.push(read_block(&mut cur, index)?);
    }
    if cur.offset != bytes.len() {
        return Err(FaceError::TrailingBytes(
            bytes.len() - cur.offset,
            cur.offset,
        ));
    }
    Ok(FaceRecord { images })
}

fn read_block(cur: &mut Reader<'_>, index: usize) -> Result<FacialImage, FaceError> {
    let start = cur.offset;
    let declared = cur.u32("facial record block length")? as usize;
    let block_error = |reason| FaceError::BlockLength {
        index,
        offset: start,
        declared,
        reason,
    };
    if declared > cur.bytes.len() - start {
        return Err(block_error("it runs past the end of the record"));
    }
    let points = usize::from(cur.u16("number of feature points")?);
    let fixed = BLOCK_HEADER_BYTES + FEATURE_POINT_BYTES * points + IMAGE_INFO_BYTES;
    if declared < fixed {
        return Err(block_error(
            "too small for its header, feature points and image information",
        ));
    }
    let [gender, eye_colour, hair_colour] = cur.array::<3>("gender / eye colour / hair colour")?;
    let [m0, m1, m2] = cur.array::<3>("property mask")?;
    let expression = cur.u16("expression")?;
    let [
        yaw,
        pitch,
        roll,
        yaw_uncertainty,
        pitch_uncertainty,
        roll_uncertainty,
    ] = cur.array::<6>("pose angles")?;
    let mut feature_points = Vec::with_capacity(points);
    for _ in 0..points {
        let [kind, code] = cur.array::<2>("feature point type / code")?;
        feature_points.push(FeaturePoint {
            kind,
            code,
            x: cur.u16("feature point x")?,
            y: cur.u16("feature point y")?,
            reserved: cur.u16("feature point reserved")?,
        });
    }
    let [face_image_type, image_data_type] = cur.array::<2>("face image type / image data type")?;
    let width = cur.u16("image width")?;
    let height = cur.u16("image height")?;
    let [colour_space, source_type] = cur.array::<2>("colour space / source type")?;
    let device_type = cur.u16("device type")?;
    let quality = cur.u16("quality")?;
    let data = cur.take("image data", declared - fixed)?.to_vec();
    Ok(FacialImage {
        gender,
        eye_colour,
        hair_colour,
        property_mask: u32::from_be_bytes([0, m0, m1, m2]),
        expression,
        pose: Pose {
            yaw,
            pitch,
            roll,
            yaw_uncertainty,
            pitch_uncertainty,
            roll_uncertainty,
        },
        feature_points,
        face_image_type,
        image_data_type,
        width,
        height,
        colour_space,
        source_type,
        device_type,
        quality,
        data,
    })
}

/// Writes a 19794-5:2005 face record. Fails if a count, the property mask or the total length does not fit.
pub fn encode_face_record(record: &FaceRecord) -> Result<Vec<u8>, FaceError> {
    let count = fit(
        "number of facial images",
        record.images.len(),
        usize::from(u16::MAX),
    )?;
    let total = HEADER_BYTES
        + record
            .images
            .iter()
            .map(FacialImage::encoded_len)
            .sum::<usize>();
    let total = fit("record length", total, MAX_FACE_RECORD_BYTES)?;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(VERSION);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(count as u16).to_be_bytes());
    for image in &record.images {
        write_block(&mut out, image)?;
    }
    Ok(out)
}

fn write_block(out: &mut Vec<u8>, image: &FacialImage) -> Result<(), FaceError> {
    let points = fit(
        "number of feature points",
        image.feature_points.len(),
        usize::from(u16::MAX),
    )?;
    let mask = fit("property mask", image.property_mask as usize, 0x00ff_ffff)?;
    out.extend_from_slice(&(image.encoded_len() as u32).to_be_bytes());
    out.extend_from_slice(&(points as u16).to_be_bytes());
    out.extend_from_slice(&[image.gender, image.eye_colour, image.hair_colour]);
    out.extend_from_slice(&(mask as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&image.expression.to_be_bytes());
    let p = image.pose;
    out.extend_from_slice(&[
        p.yaw,
        p.pitch,
        p.roll,
        p.yaw_uncertainty,
        p.pitch_uncertainty,
        p.roll_uncertainty,
    ]);
    for fp in &image.feature_points {
        out.extend_from_slice(&[fp.kind, fp.code]);
        for v in [fp.x, fp.y, fp.reserved] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
    out.extend_from_slice(&[image.face_image_type, image.image_data_type]);
    out.extend_from_slice(&image.width.to_be_bytes());
    out.extend_from_slice(&image.height.to_be_bytes());
    out.extend_from_slice(&[image.colour_space, image.source_type]);
    out.extend_from_slice(&image.device_type.to_be_bytes());
    out.extend_from_slice(&image.quality.to_be_bytes());
    out.extend_from_slice(&image.data);
    Ok(())
}

fn fit(field: &'static str, value: usize, max: usize) -> Result<usize, FaceError> {
    if value > max {
        return Err(FaceError::ValueOutOfRange { field, value, max });
    }
    Ok(value)
}

/// Bounds-checked big-endian reader naming each field it reads.
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], FaceError> {
        let available = self.bytes.len().saturating_sub(self.offset);
        let slice = self
            .offset
            .checked_add(n)
            .and_then(|end| self.bytes.get(self.offset..end))
            .ok_or(FaceError::Truncated {
                field,
                offset: self.offset,
                needed: n,
                available,
            })?;
        self.offset += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], FaceError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, FaceError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, FaceError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Option<Vec<u8>> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data/templates/face01.iso2005"
        );
        match std::fs::read(path) {
            Ok(bytes) => Some(bytes),
            Err(_) => {
                eprintln!("skipping: ../shared/data not found");
                None
            }
        }
    }

    #[test]
    fn face01_decodes_and_re_encodes_byte_exact() {
        let Some(bytes) = sample() else { return };
        let record = parse_face_record(&bytes).unwrap();
        assert_eq!(record.images.len(), 1);
        let image = &record.images[0];
        assert_eq!(
            (image.width, image.height, image.image_data_type),
            (280, 320, 0)
        );
        assert_eq!(image.feature_points.len(), 4);
        assert!(
            image
                .feature_points
                .iter()
                .all(|p| p.kind == 1 && p.x < 280 && p.y < 320)
        );
        assert_eq!(
            crate::image::encoded_dimensions(&image.data),
            Some((280, 320))
        );
        let face = image.station_face().unwrap();
        assert_eq!(face.format, FaceFormat::Jpeg);
        assert_eq!(encode_face_record(&record).unwrap(), bytes);
    }

    #[test]
    fn errors_name_field_and_offset() {
        let Some(bytes) = sample() else { return };
        let err = parse_face_record(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(matches!(err, FaceError::RecordLength { .. }), "{err}");
        let mut bad = bytes.clone();
        bad[14..18].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = parse_face_record(&bad).unwrap_err();
        assert!(
            matches!(
                err,
                FaceError::BlockLength {
                    index: 0,
                    offset: 14,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("offset 14"));
        let err = parse_face_record(b"FAC\x00010\x00\x00\x00").unwrap_err();
        assert!(
            matches!(
                err,
                FaceError::Truncated {
                    field: "record length",
                    offset: 8,
                    ..
                }
            ),
            "{err}"
        );
        assert!(matches!(
            parse_face_record(b"FIR\x00010\x00"),
            Err(FaceError::BadMagic(_))
        ));
        assert!(matches!(
            parse_face_record(b"FAC\x00030\x00"),
            Err(FaceError::UnsupportedVersion(_))
        ));
    }

    #[test]
    fn oversized_input_is_refused_first() {
        let big = vec![0u8; MAX_FACE_RECORD_BYTES + 1];
        assert!(matches!(
            parse_face_record(&big),
            Err(FaceError::TooLarge { .. })
        ));
    }

    fn arb_image() -> impl Strategy<Value = FacialImage> {
        let points = proptest::collection::vec(
            (
                any::<u8>(),
                any::<u8>(),
                any::<u16>(),
                any::<u16>(),
                any::<u16>(),
            )
                .prop_map(|(kind, code, x, y, reserved)| FeaturePoint {
                    kind,
                    code,
                    x,
                    y,
                    reserved,
                }),
            0..6,
        );
        (
            (
                any::<[u8; 3]>(),
                0u32..0x0100_0000,
                any::<u16>(),
                any::<[u8; 6]>(),
            ),
            points,
            (any::<[u8; 4]>(), any::<[u16; 4]>()),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(
                |((g, property_mask, expression, pose), feature_points, (b, w), data)| {
                    FacialImage {
                        gender: g[0],
                        eye_colour: g[1],
                        hair_colour: g[2],
                        property_mask,
                        expression,
                        pose: Pose {
                            yaw: pose[0],
                            pitch: pose[1],
                            roll: pose[2],
                            yaw_uncertainty: pose[3],
                            pitch_uncertainty: pose[4],
                            roll_uncertainty: pose[5],
                        },
                        feature_points,
                        face_image_type: b[0],
                        image_data_type: b[1],
                        width: w[0],
                        height: w[1],
                        colour_space: b[2],
                        source_type: b[3],
                        device_type: w[2],
                        quality: w[3],
                        data,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn write_then_read_is_identity(images in proptest::collection::vec(arb_image(), 0..3)) {
            let record = FaceRecord { images };
            let bytes = encode_face_record(&record).unwrap();
            prop_assert_eq!(parse_face_record(&bytes).unwrap(), record);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_face_record(&bytes);
            let mut prefixed = b"FAC\x00010\x00".to_vec();
            prefixed.extend_from_slice(&bytes);
            let _ = parse_face_record(&prefixed);
        }
    }
}
