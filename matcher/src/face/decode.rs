//! Photo bytes (JPEG or PNG) to an upright RGB image, bounded.
//!
//! Station photos come from phones and webcams: JPEG is the norm, some carry an EXIF orientation (the camera was
//! held sideways), which is applied so the detector sees an upright face. Decoding is bounded (pixel count and
//! allocation), so hostile bytes give an error, not an exhausted box.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

use super::FaceError;

/// Largest accepted side, in pixels (a 40-megapixel photo is 7728 px wide).
pub const MAX_SIDE: u32 = 8192;
/// Smallest accepted side: below this no face can meet the size check anyway.
pub const MIN_SIDE: u32 = 32;
/// Decoder allocation cap.
const MAX_ALLOC: u64 = 512 * 1024 * 1024;

/// Decodes JPEG or PNG bytes into an upright 8-bit RGB image.
pub fn decode_photo(bytes: &[u8]) -> Result<RgbImage, FaceError> {
    let format = image::guess_format(bytes)
        .map_err(|_| FaceError::Image("not a JPEG or PNG image".into()))?;
    if !matches!(format, ImageFormat::Jpeg | ImageFormat::Png) {
        return Err(FaceError::Image(format!(
            "{format:?} photos are not accepted (JPEG or PNG only)"
        )));
    }
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        // The decoder would fill the missing part with grey and give a face that was never captured whole.
        return Err(FaceError::Image(
            "the JPEG is truncated (no end-of-image marker after its last scan): send the photo again".into(),
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(image_error)?;
    let orientation = decoder.orientation().map_err(image_error)?;
    let mut picture = DynamicImage::from_decoder(decoder).map_err(image_error)?;
    picture.apply_orientation(orientation);
    let (w, h) = (picture.width(), picture.height());
    if w < MIN_SIDE || h < MIN_SIDE {
        return Err(FaceError::Image(format!(
            "photo is {w}x{h} pixels, at least {MIN_SIDE}x{MIN_SIDE} needed"
        )));
    }
    Ok(picture.into_rgb8())
}

/// Whether a JPEG's last scan is followed by its end-of-image marker. Scan data never holds `FF D9` (a data `FF`
/// is always followed by `00`), so an `FF D9` after the last start-of-scan (`FF DA`) means the file is whole; bytes
/// some cameras append after it are allowed.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_scan {
        Some(at) => bytes[at..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
    }
}

fn image_error(e: image::ImageError) -> FaceError {
    FaceError::Image(format!("cannot decode the photo: {e}"))
}
