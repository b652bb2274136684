//! From a station capture to a probe, and from search candidates to a decision.
//!
//! Shared by the gateway (local answer against the watchlist) and the central reference (answer against the full
//! gallery), so both decide by the same rule:
//! - fingers in a template format (ISO/IEC 19794-2, ANSI INCITS 378) are parsed, fingers sent as images (WSQ, PNG,
//!   TIFF) are decoded and their minutiae extracted ([`crate::extract`]); a record or image that does not decode
//!   makes the whole capture `rejected`, with the field, the finger and the decoder's error in the reason;
//! - a finger with fewer than [`MIN_MINUTIAE`] minutiae (a blank or smudged image) cannot be compared: it is
//!   noted, as is the face (not compared by this matcher); a capture with nothing comparable is `inconclusive`,
//!   with the notes as its reason;
//! - otherwise the best candidate's fused score (calibrated whatever the number of fingers, see
//!   [`crate::index`]) decides: `hit` at or above [`hit_threshold`] for the watchlist's size, else `no_hit`.

use hotspot_device_protocols::image::decode_finger_image;
use hotspot_device_protocols::station::{Capture, Decision, Finger, FingerFormat, ResultCandidate};
use hotspot_device_protocols::template::{MinutiaeRecord, parse_ansi378, parse_iso19794_2};

use crate::extract::extract;
use crate::{FingerprintIndex, Template, hit_threshold};

/// Candidates returned with a result.
pub const MAX_CANDIDATES: usize = 5;
/// A finger needs this many minutiae to be compared.
pub const MIN_MINUTIAE: usize = 4;

/// A capture made ready for search.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    /// Comparable fingers: `(position, template)`.
    pub fingers: Vec<(u8, Template)>,
    /// What could not be compared, one note each.
    pub notes: Vec<String>,
}

/// The outcome of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The decision.
    pub decision: Decision,
    /// Ranked candidates.
    pub candidates: Vec<ResultCandidate>,
    /// Why, where useful.
    pub reason: Option<String>,
}

/// Parses or extracts the capture's fingers. `Err` names the field and finger whose data is malformed.
pub fn probe_from_capture(capture: &Capture) -> Result<Probe, String> {
    let mut probe = Probe::default();
    for (i, f) in capture.fingers.iter().enumerate() {
        let template = finger_template(f)
            .map_err(|e| format!("field `fingers[{i}].data` (finger {}): {e}", f.position))?;
        if template.minutiae.len() < MIN_MINUTIAE {
            probe.notes.push(format!(
                "finger {}: only {} minutiae found, too few to compare",
                f.position,
                template.minutiae.len()
            ));
            continue;
        }
        probe.fingers.push((f.position, template));
    }
    if capture.face.is_some() {
        probe
            .notes
            .push("face: face matching is not available yet".to_owned());
    }
    Ok(probe)
}

/// The template of one finger, from its record or its image.
fn finger_template(f: &Finger) -> Result<Template, String> {
    let record = match f.format {
        FingerFormat::Iso19794_2 => parse_iso19794_2(&f.data),
        FingerFormat::Ansi378 => parse_ansi378(&f.data),
        FingerFormat::Wsq | FingerFormat::Png | FingerFormat::Tiff => {
            let image = decode_finger_image(f.format, &f.data).map_err(|e| e.to_string())?;
            return extract(&image)
                .map_err(|e| format!("{} image cannot be processed: {e}", f.format.as_str()));
        }
    }
    .map_err(|e| e.to_string())?;
    template_of(&record)
}

fn template_of(record: &MinutiaeRecord) -> Result<Template, String> {
    let view = record
        .views
        .first()
        .ok_or_else(|| "the record holds no finger view".to_owned())?;
    Ok(Template::from_view(
        view,
        record.x_resolution_ppcm,
        record.y_resolution_ppcm,
    ))
}

/// Searches `index` with `probe` and decides.
pub fn decide(index: &FingerprintIndex, probe: &Probe) -> Outcome {
    if probe.fingers.is_empty() {
        return Outcome {
            decision: Decision::Inconclusive,
            candidates: Vec::new(),
            reason: Some(if probe.notes.is_empty() {
                "nothing comparable in the capture".to_owned()
            } else {
                probe.notes.join("; ")
            }),
        };
    }
    if index.is_empty() {
        return Outcome {
            decision: Decision::Inconclusive,
            candidates: Vec::new(),
            reason: Some("no watchlist installed yet".to_owned()),
        };
    }
    let candidates: Vec<ResultCandidate> = index
        .search(&probe.fingers, MAX_CANDIDATES)
        .into_iter()
        .map(|c| ResultCandidate {
            subject_id: c.subject_id,
            score: c.score,
        })
        .collect();
    let threshold = hit_threshold(index.len());
    let hit = candidates.first().is_some_and(|c| c.score >= threshold);
    Outcome {
        decision: if hit { Decision::Hit } else { Decision::NoHit },
        candidates,
        reason: (!probe.notes.is_empty()).then(|| probe.notes.join("; ")),
    }
}
