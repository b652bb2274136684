//! From a station capture to a probe, and from search candidates to a decision.
//!
//! Shared by the gateway (local answer against the watchlist) and the central reference (answer against the full
//! gallery), so both decide by the same rule:
//! - fingers in a template format (ISO/IEC 19794-2, ANSI INCITS 378) are parsed; a record that does not parse makes
//!   the whole capture `rejected`, with the finger and the parser's error in the reason;
//! - fingers sent as images (WSQ, PNG, TIFF) and the face cannot be compared by this matcher yet: they are noted;
//!   a capture with nothing comparable is `inconclusive`, with the notes as its reason;
//! - otherwise the best fused candidate at or above [`HIT_THRESHOLD`] makes a `hit`, else `no_hit`.

use hotspot_device_protocols::station::{Capture, Decision, FingerFormat, ResultCandidate};
use hotspot_device_protocols::template::{MinutiaeRecord, parse_ansi378, parse_iso19794_2};

use crate::{FingerprintIndex, HIT_THRESHOLD, Template};

/// Candidates returned with a result.
pub const MAX_CANDIDATES: usize = 5;

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

/// Parses the capture's templates. `Err` names the finger whose record is malformed.
pub fn probe_from_capture(capture: &Capture) -> Result<Probe, String> {
    let mut probe = Probe::default();
    for (i, f) in capture.fingers.iter().enumerate() {
        let record = match f.format {
            FingerFormat::Iso19794_2 => parse_iso19794_2(&f.data),
            FingerFormat::Ansi378 => parse_ansi378(&f.data),
            other => {
                probe.notes.push(format!(
                    "finger {}: {} images cannot be compared by this matcher yet",
                    f.position,
                    other.as_str()
                ));
                continue;
            }
        }
        .map_err(|e| format!("field `fingers[{i}].data` (finger {}): {e}", f.position))?;
        probe.fingers.push((f.position, template_of(&record, i)?));
    }
    if capture.face.is_some() {
        probe
            .notes
            .push("face: face matching is not available yet".to_owned());
    }
    Ok(probe)
}

fn template_of(record: &MinutiaeRecord, index: usize) -> Result<Template, String> {
    let view = record
        .views
        .first()
        .ok_or_else(|| format!("field `fingers[{index}].data`: the record holds no finger view"))?;
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
    let hit = candidates.first().is_some_and(|c| c.score >= HIT_THRESHOLD);
    Outcome {
        decision: if hit { Decision::Hit } else { Decision::NoHit },
        candidates,
        reason: (!probe.notes.is_empty()).then(|| probe.notes.join("; ")),
    }
}
