//! Example quality plugin.
//!
//! - Minutiae records (ISO/IEC 19794-2:2005, ANSI INCITS 378-2004): the score is the first view's finger quality
//!   byte (0..=100) from the record header; warnings `few-minutiae` (fewer than 12), `position-mismatch` (the
//!   record names another finger than the capture), `unreadable-record` (header too short or wrong magic, score 0).
//! - Finger images: not assessed by this example: score 50 and a warning `image-not-assessed`.
//! - Face: `face-format-mismatch` (bytes do not start like the declared format, score 0), `face-small` (under
//!   8 KiB, score 30), otherwise 70.
//! - Enrolments with fewer than two fingers: `enrol-few-fingers`.

wit_bindgen::generate!({
    world: "quality-plugin",
    path: "../../wit",
});

use exports::hotspot::plugin::quality::{Guest, QualityInput};
use hotspot::plugin::types::{
    Face, FaceFormat, Finger, FingerFormat, FingerScore, Purpose, QualityReport, QualityWarning,
};

/// Fewer minutiae than this earn a warning.
const MIN_MINUTIAE: u8 = 12;
/// A face photo smaller than this earns a warning.
const MIN_FACE_BYTES: usize = 8 * 1024;

struct Plugin;

impl Guest for Plugin {
    fn assess(input: QualityInput) -> Result<QualityReport, String> {
        let mut warnings = Vec::new();
        let fingers = input
            .fingers
            .iter()
            .map(|f| FingerScore {
                position: f.position,
                score: finger_score(f, &mut warnings),
            })
            .collect();
        let face = input.face.as_ref().map(|f| face_score(f, &mut warnings));
        if matches!(input.purpose, Purpose::Enrol) && input.fingers.len() < 2 {
            warnings.push(QualityWarning {
                code: "enrol-few-fingers".into(),
                position: None,
                message: format!(
                    "enrolment with {} finger(s): capture at least two",
                    input.fingers.len()
                ),
            });
        }
        Ok(QualityReport {
            fingers,
            face,
            warnings,
        })
    }
}

fn warn(warnings: &mut Vec<QualityWarning>, code: &str, position: Option<u8>, message: String) {
    warnings.push(QualityWarning {
        code: code.into(),
        position,
        message,
    });
}

fn finger_score(f: &Finger, warnings: &mut Vec<QualityWarning>) -> u8 {
    let view_at = match f.format {
        FingerFormat::Iso19794 => Some(24),
        // ANSI 378-2004: a 2-byte record length, or 0 followed by a 4-byte one.
        FingerFormat::Ansi378 => match f.data.get(8..10) {
            Some([0, 0]) => Some(30),
            Some(_) => Some(26),
            None => None,
        },
        FingerFormat::Wsq | FingerFormat::Png | FingerFormat::Tiff => {
            warn(
                warnings,
                "image-not-assessed",
                Some(f.position),
                format!(
                    "finger {}: images are not assessed by this plugin",
                    f.position
                ),
            );
            return 50;
        }
    };
    let header = view_at
        .filter(|_| f.data.starts_with(b"FMR\0"))
        .and_then(|at| f.data.get(at..at + 4));
    let Some(&[record_position, _impression, quality, minutiae]) = header else {
        warn(
            warnings,
            "unreadable-record",
            Some(f.position),
            format!("finger {}: not a readable minutiae record", f.position),
        );
        return 0;
    };
    if record_position != f.position {
        warn(
            warnings,
            "position-mismatch",
            Some(f.position),
            format!(
                "finger {}: the record says finger {record_position}",
                f.position
            ),
        );
    }
    if minutiae < MIN_MINUTIAE {
        warn(
            warnings,
            "few-minutiae",
            Some(f.position),
            format!(
                "finger {}: {minutiae} minutiae, at least {MIN_MINUTIAE} wanted",
                f.position
            ),
        );
    }
    quality.min(100)
}

fn face_score(face: &Face, warnings: &mut Vec<QualityWarning>) -> u8 {
    let magic_ok = match face.format {
        FaceFormat::Jpeg => face.data.starts_with(&[0xFF, 0xD8, 0xFF]),
        FaceFormat::Png => face.data.starts_with(b"\x89PNG\r\n\x1a\n"),
    };
    if !magic_ok {
        warn(
            warnings,
            "face-format-mismatch",
            None,
            "face: the bytes are not of the declared image format".into(),
        );
        0
    } else if face.data.len() < MIN_FACE_BYTES {
        warn(
            warnings,
            "face-small",
            None,
            format!("face: only {} bytes, retake closer", face.data.len()),
        );
        30
    } else {
        70
    }
}

export!(Plugin);
