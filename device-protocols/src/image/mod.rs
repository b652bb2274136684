//! Finger and face image decoding and encoding: WSQ (via `wsq-codec`), PNG, TIFF and JPEG (via `image`), always
//! to or from 8-bit grey-scale [`GrayImage`]s.
//!
//! # What it is for
//! Stations and ANSI/NIST-ITL transactions carry finger images as WSQ (the FBI's wavelet codec, IAFIS-IC-0110 v3.1),
//! PNG or TIFF, and faces as JPEG or PNG. The matcher and the INT-I writer need pixels, dimensions and resolution.
//!
//! # Limits
//! Encoded input above [`MAX_ENCODED_BYTES`] (16 MiB) is refused before a byte is read, and an image whose header
//! declares more than [`MAX_DIMENSION`] pixels on either side is refused from its header, before the pixel buffer
//! is allocated (WSQ: frame header via [`wsq_codec::read_info`]; PNG/TIFF/JPEG: decoder limits).
//!
//! # Resolution
//! [`GrayImage::ppi`] is what the encoded stream itself says, and only where the format carries it: WSQ reports the
//! `PPI` of its NISTCOM comment when present (writers often put `-1` or omit it; then `None`). PNG and TIFF report
//! `None`: the `image` crate does not expose their density tags, and TIFF's default of 72 dpi would be wrong anyway.
//! The resolution in the enclosing record (ANSI/NIST Type-4 ISR, Type-13/14/15 SLC/THPS/TVPS) always wins over the
//! stream's: callers replace `ppi` with the record's value ("take resolution from the record, not the WSQ comment").
//!
//! # Known quirks
//! - NBIS-written WSQ streams may declare a size different from the enclosing ANSI/NIST record's HLL/VLL; the
//!   stream's own frame header is what [`decode_wsq`] trusts (the ANSI/NIST reader reports the disagreement).
//! - Colour PNG/JPEG input is converted to luminance; the reference PNGs of the WSQ test set are R=G=B.

use ::image as img;
use std::io::Cursor;

use crate::station::FingerFormat;

#[cfg(test)]
mod tests;

/// Largest encoded image accepted by every decoder here, checked before parsing.
pub const MAX_ENCODED_BYTES: usize = 16 * 1024 * 1024;
/// Largest width or height accepted, checked from the header before pixels are allocated.
pub const MAX_DIMENSION: u32 = 4096;

/// An 8-bit grey-scale image, row-major, 0 = black.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrayImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Resolution in pixels per inch, when known (see the module doc for who is trusted).
    pub ppi: Option<u32>,
    /// `width * height` pixels.
    pub pixels: Vec<u8>,
}

/// Encoded image formats this module can recognise from their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageKind {
    /// WSQ (`FF A0 FF A8` / `FF A0 FF A4` ...: start-of-image `FF A0`).
    Wsq,
    /// PNG.
    Png,
    /// JPEG / JFIF (`FF D8`).
    Jpeg,
    /// JPEG 2000 (codestream or JP2 box).
    Jpeg2000,
    /// TIFF (`II*\0` or `MM\0*`).
    Tiff,
}

impl ImageKind {
    /// Recognises an encoded image by its signature.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        const JP2_BOX: &[u8] = &[0, 0, 0, 0x0c, b'j', b'P', b' ', b' '];
        match bytes {
            [0xff, 0xa0, ..] => Some(Self::Wsq),
            [0x89, b'P', b'N', b'G', ..] => Some(Self::Png),
            [0xff, 0xd8, ..] => Some(Self::Jpeg),
            [0xff, 0x4f, 0xff, 0x51, ..] => Some(Self::Jpeg2000),
            [b'I', b'I', 42, 0, ..] | [b'M', b'M', 0, 42, ..] => Some(Self::Tiff),
            _ if bytes.starts_with(JP2_BOX) => Some(Self::Jpeg2000),
            _ => None,
        }
    }

    /// Short name used in errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wsq => "WSQ",
            Self::Png => "PNG",
            Self::Jpeg => "JPEG",
            Self::Jpeg2000 => "JPEG 2000",
            Self::Tiff => "TIFF",
        }
    }
}

/// An image could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// Encoded input above [`MAX_ENCODED_BYTES`]; refused before parsing.
    #[error("{format} image is {len} bytes, above the limit of {max} bytes")]
    TooLarge {
        /// Format being decoded.
        format: &'static str,
        /// Bytes given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The header declares a width or height above [`MAX_DIMENSION`] (or zero).
    #[error("{format} header declares {width}x{height} pixels; each side must be 1..={max}")]
    BadDimensions {
        /// Format being decoded.
        format: &'static str,
        /// Declared width.
        width: u64,
        /// Declared height.
        height: u64,
        /// The limit per side.
        max: u32,
    },
    /// The bytes do not start with the format's signature (offset 0).
    #[error("{format} image: signature at offset 0 is {found:02x?}, not a {format} stream")]
    BadSignature {
        /// Format expected.
        format: &'static str,
        /// Up to the first four bytes.
        found: Vec<u8>,
    },
    /// The codec refused the stream; `reason` is the codec's own message.
    #[error("{format} image is corrupt: {reason}")]
    Corrupt {
        /// Format being decoded.
        format: &'static str,
        /// What the codec said.
        reason: String,
    },
    /// This finger format is a minutiae template, not an image.
    #[error("finger format {0} is not an image format")]
    NotAnImage(&'static str),
    /// A [`GrayImage`] whose pixel buffer does not hold `width * height` bytes.
    #[error("image of {width}x{height} needs {expected} pixels but has {actual}")]
    PixelCount {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// `width * height`.
        expected: usize,
        /// Buffer length.
        actual: usize,
    },
    /// The encoder refused the image; `reason` is the codec's own message.
    #[error("cannot encode {format}: {reason}")]
    Encode {
        /// Format being written.
        format: &'static str,
        /// What the codec said.
        reason: String,
    },
}

/// Decodes a WSQ stream. `ppi` comes from its NISTCOM comment if it has one (a hint; see the module doc).
pub fn decode_wsq(bytes: &[u8]) -> Result<GrayImage, ImageError> {
    const FORMAT: &str = "WSQ";
    check_len(FORMAT, bytes)?;
    if ImageKind::sniff(bytes) != Some(ImageKind::Wsq) {
        return Err(bad_signature(FORMAT, bytes));
    }
    let corrupt = |e: wsq_codec::DecodeError| ImageError::Corrupt {
        format: FORMAT,
        reason: e.to_string(),
    };
    let info = wsq_codec::read_info(bytes).map_err(corrupt)?;
    check_dimensions(FORMAT, info.width as u64, info.height as u64)?;
    let max_pixels = (MAX_DIMENSION as usize) * (MAX_DIMENSION as usize);
    let options = wsq_codec::DecodeOptions::default().with_max_pixels(Some(max_pixels));
    let decoded = wsq_codec::decode_with(bytes, &options).map_err(corrupt)?;
    let (width, height) = dims_u32(FORMAT, decoded.width, decoded.height)?;
    Ok(GrayImage {
        width,
        height,
        ppi: decoded.ppi.filter(|&p| p > 0),
        pixels: decoded.pixels,
    })
}

/// Encodes `image` as WSQ at `bitrate` bits per pixel (0.75 is the usual 15:1 for 500 ppi fingers). The image's
/// `ppi`, if any, is written in the NISTCOM comment. Both sides must be 81..=[`MAX_DIMENSION`] (WSQ's minimum).
pub fn encode_wsq(image: &GrayImage, bitrate: f32) -> Result<Vec<u8>, ImageError> {
    const FORMAT: &str = "WSQ";
    check_image(FORMAT, image)?;
    let options = wsq_codec::EncodeOptions::default()
        .with_bitrate(bitrate)
        .with_ppi(image.ppi.filter(|&p| p > 0));
    wsq_codec::encode(
        &image.pixels,
        image.width as usize,
        image.height as usize,
        &options,
    )
    .map_err(|e| ImageError::Encode {
        format: FORMAT,
        reason: e.to_string(),
    })
}

/// Decodes a station finger image (WSQ, PNG or TIFF) to 8-bit grey. Templates are refused with
/// [`ImageError::NotAnImage`].
pub fn decode_finger_image(format: FingerFormat, bytes: &[u8]) -> Result<GrayImage, ImageError> {
    match format {
        FingerFormat::Wsq => decode_wsq(bytes),
        FingerFormat::Png => decode_with_image_crate(img::ImageFormat::Png, "PNG", bytes),
        FingerFormat::Tiff => decode_with_image_crate(img::ImageFormat::Tiff, "TIFF", bytes),
        FingerFormat::Iso19794_2 | FingerFormat::Ansi378 => {
            Err(ImageError::NotAnImage(format.as_str()))
        }
    }
}

/// Decodes a PNG, JPEG or TIFF image (recognised by its signature) to 8-bit grey (colour becomes luminance).
pub fn decode_gray(bytes: &[u8]) -> Result<GrayImage, ImageError> {
    match ImageKind::sniff(bytes) {
        Some(ImageKind::Wsq) => decode_wsq(bytes),
        Some(ImageKind::Png) => decode_with_image_crate(img::ImageFormat::Png, "PNG", bytes),
        Some(ImageKind::Jpeg) => decode_with_image_crate(img::ImageFormat::Jpeg, "JPEG", bytes),
        Some(ImageKind::Tiff) => decode_with_image_crate(img::ImageFormat::Tiff, "TIFF", bytes),
        Some(ImageKind::Jpeg2000) | None => Err(bad_signature("PNG/JPEG/TIFF/WSQ", bytes)),
    }
}

/// Encodes `image` as an 8-bit grey PNG (lossless; no density chunk is written).
pub fn encode_png(image: &GrayImage) -> Result<Vec<u8>, ImageError> {
    const FORMAT: &str = "PNG";
    check_image(FORMAT, image)?;
    let mut out = Vec::new();
    let encoder = img::codecs::png::PngEncoder::new(&mut out);
    img::ImageEncoder::write_image(
        encoder,
        &image.pixels,
        image.width,
        image.height,
        img::ExtendedColorType::L8,
    )
    .map_err(|e| ImageError::Encode {
        format: FORMAT,
        reason: e.to_string(),
    })?;
    Ok(out)
}

/// Reads the width and height an encoded WSQ, PNG, JPEG or TIFF image declares, without decoding its pixels.
/// `None` for JPEG 2000, unrecognised bytes or a header that cannot be read.
pub fn encoded_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() > MAX_ENCODED_BYTES {
        return None;
    }
    let format = match ImageKind::sniff(bytes)? {
        ImageKind::Wsq => {
            let info = wsq_codec::read_info(bytes).ok()?;
            return Some((
                u32::try_from(info.width).ok()?,
                u32::try_from(info.height).ok()?,
            ));
        }
        ImageKind::Png => img::ImageFormat::Png,
        ImageKind::Jpeg => img::ImageFormat::Jpeg,
        ImageKind::Tiff => img::ImageFormat::Tiff,
        ImageKind::Jpeg2000 => return None,
    };
    img::ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .ok()
}

fn decode_with_image_crate(
    format: img::ImageFormat,
    name: &'static str,
    bytes: &[u8],
) -> Result<GrayImage, ImageError> {
    check_len(name, bytes)?;
    let expected = match format {
        img::ImageFormat::Png => ImageKind::Png,
        img::ImageFormat::Jpeg => ImageKind::Jpeg,
        _ => ImageKind::Tiff,
    };
    if ImageKind::sniff(bytes) != Some(expected) {
        return Err(bad_signature(name, bytes));
    }
    let corrupt = |e: img::ImageError| ImageError::Corrupt {
        format: name,
        reason: e.to_string(),
    };
    let (width, height) = img::ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(corrupt)?;
    check_dimensions(name, u64::from(width), u64::from(height))?;
    let mut reader = img::ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = img::Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    let luma = reader.decode().map_err(corrupt)?.into_luma8();
    let (width, height) = luma.dimensions();
    Ok(GrayImage {
        width,
        height,
        ppi: None,
        pixels: luma.into_raw(),
    })
}

fn check_len(format: &'static str, bytes: &[u8]) -> Result<(), ImageError> {
    if bytes.len() > MAX_ENCODED_BYTES {
        return Err(ImageError::TooLarge {
            format,
            len: bytes.len(),
            max: MAX_ENCODED_BYTES,
        });
    }
    Ok(())
}

fn check_dimensions(format: &'static str, width: u64, height: u64) -> Result<(), ImageError> {
    let max = u64::from(MAX_DIMENSION);
    if width == 0 || height == 0 || width > max || height > max {
        return Err(ImageError::BadDimensions {
            format,
            width,
            height,
            max: MAX_DIMENSION,
        });
    }
    Ok(())
}

fn dims_u32(format: &'static str, width: usize, height: usize) -> Result<(u32, u32), ImageError> {
    check_dimensions(format, width as u64, height as u64)?;
    // Both are <= MAX_DIMENSION now.
    Ok((width as u32, height as u32))
}

fn check_image(format: &'static str, image: &GrayImage) -> Result<(), ImageError> {
    check_dimensions(format, u64::from(image.width), u64::from(image.height))?;
    let expected = image.width as usize * image.height as usize;
    if image.pixels.len() != expected {
        return Err(ImageError::PixelCount {
            width: image.width,
            height: image.height,
            expected,
            actual: image.pixels.len(),
        });
    }
    Ok(())
}

fn bad_signature(format: &'static str, bytes: &[u8]) -> ImageError {
    ImageError::BadSignature {
        format,
        found: bytes.iter().take(4).copied().collect(),
    }
}
