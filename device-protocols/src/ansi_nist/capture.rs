//! From a transaction to the station protocol's capture parts, for stations that publish raw ANSI/NIST-ITL.
//!
//! - Fingers from Type-4 and Type-14 images with a single finger position 1-10: WSQ and PNG are passed through,
//!   uncompressed 8-bit grey is encoded as PNG; other compressions (JPEG, JPEG 2000) and other positions (plain
//!   thumbs and slaps 11-15, EJI, palms) are skipped with a warning. Type-13 latents and Type-15 palms too.
//! - Minutiae from Type-9: the INCITS 378 block if present, else the standard minutiae when the image record with
//!   the same IDC gives the size and resolution they need; re-encoded as ISO/IEC 19794-2:2005.
//! - The station protocol holds one finger per position: when a position has both a Type-9 template and an
//!   image, the template is kept (the local matcher compares templates) and the image dropped with a warning.
//! - The face from the first Type-10 record whose IMT is `FACE` and whose data is JPEG or PNG.
//!
//! A record whose mandatory fields cannot be read is an error; anything readable but not carried is a warning.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use crate::image::{GrayImage, ImageKind, encode_png};
use crate::station::{Face, FaceFormat, Finger, FingerFormat, MAX_ITEM_BYTES};
use crate::template::encode_iso19794_2;

use super::{AnsiNistError, Compression, FaceImage, FingerImage, Header, Minutiae, Transaction};

/// What a transaction contributes to a station capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureParts {
    /// Fingers, one per position, sorted by position.
    pub fingers: Vec<Finger>,
    /// The face, if any.
    pub face: Option<Face>,
    /// 1.009 TCN, if present and not blank.
    pub transaction_control_number: Option<String>,
    /// Why records or parts of them were not used.
    pub warnings: Vec<String>,
}

/// Extracts fingers, minutiae templates and the face (see the module doc for the rules).
pub fn capture_parts(tx: &Transaction) -> Result<CaptureParts, AnsiNistError> {
    let header = Header::from_transaction(tx)?;
    let mut warnings = Vec::new();
    let mut images = BTreeMap::new();
    let mut templates = BTreeMap::new();
    let mut face = None;
    for (index, record) in tx.records.iter().enumerate().skip(1) {
        match record.record_type() {
            4 | 14 => {
                let image = FingerImage::from_record(&header, index, record)?;
                if let Some((position, finger)) = finger_from_image(index, &image, &mut warnings) {
                    insert_once(&mut images, position, finger, index, &mut warnings);
                }
            }
            9 => {
                let minutiae = Minutiae::from_record(&header, index, record)?;
                if let Some((position, finger)) =
                    template_from(tx, &header, index, &minutiae, &mut warnings)?
                {
                    insert_once(&mut templates, position, finger, index, &mut warnings);
                }
            }
            10 => {
                let image = FaceImage::from_record(&header, index, record)?;
                match (face.is_some(), face_from(index, &image, &mut warnings)) {
                    (false, found @ Some(_)) => face = found,
                    (true, Some(_)) => {
                        warnings.push(format!("record {index}: a second face image is ignored"))
                    }
                    _ => {}
                }
            }
            13 | 15 => warnings.push(format!(
                "record {index} (Type-{}): latent and palm records are not forwarded",
                record.record_type()
            )),
            _ => {}
        }
    }
    for (position, _) in images.iter().filter(|(p, _)| templates.contains_key(*p)) {
        warnings.push(format!(
            "finger {position}: the image is dropped in favour of the Type-9 template (one finger per position)"
        ));
    }
    images.retain(|p, _| !templates.contains_key(p));
    templates.extend(images);
    Ok(CaptureParts {
        fingers: templates.into_values().collect(),
        face,
        transaction_control_number: header.control_number.filter(|t| !t.trim().is_empty()),
        warnings,
    })
}

fn insert_once(
    map: &mut BTreeMap<u8, Finger>,
    position: u8,
    finger: Finger,
    index: usize,
    warnings: &mut Vec<String>,
) {
    match map.entry(position) {
        Entry::Occupied(_) => warnings.push(format!(
            "record {index}: finger {position} already taken by an earlier record; skipped"
        )),
        Entry::Vacant(slot) => {
            slot.insert(finger);
        }
    }
}

/// A single finger position 1-10, or a warning.
fn single_finger(
    index: usize,
    kind: &str,
    positions: &[u8],
    warnings: &mut Vec<String>,
) -> Option<u8> {
    match positions {
        [p] | [p, ..] if (1..=10).contains(p) => Some(*p),
        [p, ..] => {
            warnings.push(format!(
                "record {index} ({kind}): position {p} is not a single finger (1-10); skipped"
            ));
            None
        }
        [] => {
            warnings.push(format!(
                "record {index} ({kind}): no finger position; skipped"
            ));
            None
        }
    }
}

fn finger_from_image(
    index: usize,
    image: &FingerImage,
    warnings: &mut Vec<String>,
) -> Option<(u8, Finger)> {
    let kind = format!("Type-{}", image.record_type);
    let position = single_finger(index, &kind, &image.positions, warnings)?;
    if let Some(ppi) = image.ppi().filter(|p| !(490..=510).contains(p)) {
        warnings.push(format!(
            "record {index}: finger {position} is at {ppi} ppi; the station protocol assumes 500"
        ));
    }
    let (format, data) = match &image.compression {
        Compression::Wsq => (FingerFormat::Wsq, image.data.clone()),
        Compression::Png => (FingerFormat::Png, image.data.clone()),
        Compression::None => match raw_to_png(image) {
            Ok(png) => (FingerFormat::Png, png),
            Err(reason) => {
                warnings.push(format!(
                    "record {index}: finger {position}: {reason}; skipped"
                ));
                return None;
            }
        },
        other => {
            warnings.push(format!(
                "record {index}: finger {position} is compressed as {}, which the station protocol does not carry; skipped",
                other.code()
            ));
            return None;
        }
    };
    checked_item(index, position, format, data, warnings)
}

fn raw_to_png(image: &FingerImage) -> Result<Vec<u8>, String> {
    if image.bits_per_pixel != 8 {
        return Err(format!(
            "uncompressed image of {} bits per pixel",
            image.bits_per_pixel
        ));
    }
    let expected = image.width as usize * image.height as usize;
    if image.data.len() != expected {
        return Err(format!(
            "uncompressed {}x{} image has {} bytes, not {expected}",
            image.width,
            image.height,
            image.data.len()
        ));
    }
    let gray = GrayImage {
        width: image.width,
        height: image.height,
        ppi: image.ppi(),
        pixels: image.data.clone(),
    };
    encode_png(&gray).map_err(|e| e.to_string())
}

fn checked_item(
    index: usize,
    position: u8,
    format: FingerFormat,
    data: Vec<u8>,
    warnings: &mut Vec<String>,
) -> Option<(u8, Finger)> {
    if data.is_empty() || data.len() > MAX_ITEM_BYTES {
        warnings.push(format!(
            "record {index}: finger {position} is {} bytes, outside 1..={MAX_ITEM_BYTES}; skipped",
            data.len()
        ));
        return None;
    }
    Some((
        position,
        Finger {
            position,
            format,
            data,
        },
    ))
}

fn template_from(
    tx: &Transaction,
    header: &Header,
    index: usize,
    minutiae: &Minutiae,
    warnings: &mut Vec<String>,
) -> Result<Option<(u8, Finger)>, AnsiNistError> {
    let record = if let Some(incits) = &minutiae.incits {
        incits.to_iso(minutiae.impression).map_err(|e| match e {
            AnsiNistError::BadValue { tag, reason, .. } => AnsiNistError::BadValue {
                record: index,
                tag,
                reason,
            },
            other => other,
        })?
    } else if let Some(standard) = &minutiae.standard {
        let Some(image) = image_with_idc(tx, header, minutiae.idc) else {
            warnings.push(format!(
                "record {index}: standard minutiae need the image record with IDC {} for size and resolution; skipped",
                minutiae.idc
            ));
            return Ok(None);
        };
        let (Ok(width), Ok(height), Some(ppi)) = (
            u16::try_from(image.width),
            u16::try_from(image.height),
            image.ppi(),
        ) else {
            warnings.push(format!(
                "record {index}: the image with IDC {} has no usable size or resolution; skipped",
                minutiae.idc
            ));
            return Ok(None);
        };
        standard.to_iso(width, height, ppi, minutiae.impression)
    } else {
        warnings.push(format!(
            "record {index} (Type-9): no INCITS 378 block or standard minutiae; skipped"
        ));
        return Ok(None);
    };
    let positions: Vec<u8> = record.views.iter().map(|v| v.position).collect();
    let Some(position) = single_finger(index, "Type-9", &positions, warnings) else {
        return Ok(None);
    };
    match encode_iso19794_2(&record) {
        Ok(data) => Ok(checked_item(
            index,
            position,
            FingerFormat::Iso19794_2,
            data,
            warnings,
        )),
        Err(e) => {
            warnings.push(format!(
                "record {index}: minutiae cannot be written as ISO 19794-2: {e}; skipped"
            ));
            Ok(None)
        }
    }
}

/// The Type-4/13/14 image record with this IDC, for standard minutiae.
fn image_with_idc(tx: &Transaction, header: &Header, idc: u8) -> Option<FingerImage> {
    tx.records.iter().enumerate().skip(1).find_map(|(i, r)| {
        let candidate = matches!(r.record_type(), 4 | 13 | 14) && r.idc() == Some(idc);
        candidate
            .then(|| FingerImage::from_record(header, i, r).ok())
            .flatten()
    })
}

fn face_from(index: usize, image: &FaceImage, warnings: &mut Vec<String>) -> Option<Face> {
    if !image.is_face() {
        let imt = image.image_type.as_deref().unwrap_or_default();
        warnings.push(format!(
            "record {index}: Type-10 image of type {imt:?} is not a face; skipped"
        ));
        return None;
    }
    let format = match ImageKind::sniff(&image.data) {
        Some(ImageKind::Jpeg) => FaceFormat::Jpeg,
        Some(ImageKind::Png) => FaceFormat::Png,
        _ => {
            warnings.push(format!(
                "record {index}: face compressed as {} is neither JPEG nor PNG; skipped",
                image.compression.code()
            ));
            return None;
        }
    };
    if image.data.len() > MAX_ITEM_BYTES {
        warnings.push(format!(
            "record {index}: face of {} bytes exceeds {MAX_ITEM_BYTES}; skipped",
            image.data.len()
        ));
        return None;
    }
    Some(Face {
        format,
        data: image.data.clone(),
    })
}
