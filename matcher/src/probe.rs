//! From a station capture to a probe, and from search candidates to a decision.
//!
//! Shared by the gateway (local answer against the watchlist) and the central reference (answer against the full
//! gallery), so both decide by the same rule:
//! - fingers in a template format (ISO/IEC 19794-2, ANSI INCITS 378) are parsed, fingers sent as images (WSQ, PNG,
//!   TIFF) are decoded and their minutiae extracted ([`crate::extract`]); a record or image that does not decode
//!   makes the whole capture `rejected`, with the field, the finger and the decoder's error in the reason;
//! - a finger with fewer than [`MIN_MINUTIAE`] minutiae (a blank or smudged image) cannot be compared: it is
//!   noted; so is a face that fails its quality checks (no face, too small, too blurred: the note says which, so
//!   the officer can retake it) or that arrives when the box has no face models; a face photo that does not decode
//!   makes the capture `rejected`, as a finger does; a capture with nothing comparable is `inconclusive`, with the
//!   notes as its reason;
//! - fingers and face are searched separately (the face search exact over int8 embeddings; the finger search needs
//!   nothing of the face, so a caller may run it while the face is analysed: [`probe_fingers`], [`search_fingers`]
//!   and [`probe_face`], then [`decide_with`]); every subject
//!   among either search's best is then scored on both (the missing side computed for it), and the two calibrated
//!   false match rates are fused per subject ([`crate::face::fuse`], Fisher's method). The best fused FMR decides:
//!   `hit` at or below [`thresholds`]' hit FMR (the fingerprint [`hit_threshold`] for the watchlist's size),
//!   `inconclusive` up to ten times that, or when face and fingers clearly disagree, else `no_hit`. Candidates
//!   carry fused scores (`-10 log10(FMR)`, the fingerprint scale).

use hotspot_device_protocols::image::decode_finger_image;
use hotspot_device_protocols::station::{Capture, Decision, Finger, FingerFormat, ResultCandidate};
use hotspot_device_protocols::template::{MinutiaeRecord, parse_ansi378, parse_iso19794_2};

use crate::extract::extract;
use crate::face::{
    DecisionThresholds, Embedding, FaceDecision, FaceEngine, FaceError, FaceIndex, fuse,
};
use crate::{FingerprintIndex, Template, calibration, hit_threshold};

/// Candidates returned with a result.
pub const MAX_CANDIDATES: usize = 5;
/// A finger needs this many minutiae to be compared.
pub const MIN_MINUTIAE: usize = 4;

/// Candidates taken from each modality's search before fusion.
const CANDIDATES_PER_MODALITY: usize = 2 * MAX_CANDIDATES;
/// The inconclusive band: fused FMRs up to this many times the hit FMR are sent for review, not cleared.
pub const REVIEW_FACTOR: f64 = 10.0;

/// A capture made ready for search.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    /// Comparable fingers: `(position, template)`.
    pub fingers: Vec<(u8, Template)>,
    /// The face's embedding, when the capture has a face that passed its quality checks.
    pub face: Option<FaceProbe>,
    /// Why the capture's face could not be compared (quality or missing models), for the officer.
    pub face_problem: Option<String>,
    /// What could not be compared, one note each.
    pub notes: Vec<String>,
}

/// A compared face.
#[derive(Debug, Clone)]
pub struct FaceProbe {
    /// Its embedding.
    pub embedding: Embedding,
    /// The detector's score of the face used.
    pub detection_score: f32,
    /// Blur of the aligned face (0 sharp .. 1 flat).
    pub blur: f32,
}

/// What a capture is searched against.
#[derive(Debug, Clone, Copy)]
pub struct Gallery<'a> {
    /// Fingerprints.
    pub fingers: &'a FingerprintIndex,
    /// Face embeddings (may be empty).
    pub faces: &'a FaceIndex,
}

impl Gallery<'_> {
    /// Subjects searched: the larger of the two indexes (every face subject normally has fingers too).
    pub fn subjects(&self) -> usize {
        self.fingers.len().max(self.faces.subjects())
    }
}

/// Hit and review FMRs for a gallery of `subjects`: the hit FMR is the fingerprint [`hit_threshold`]'s, the review
/// FMR [`REVIEW_FACTOR`] times it.
pub fn thresholds(subjects: usize) -> DecisionThresholds {
    let hit_fmr = calibration::fmr_of(hit_threshold(subjects));
    DecisionThresholds {
        hit_fmr,
        review_fmr: (hit_fmr * REVIEW_FACTOR).min(1.0),
    }
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

/// Parses or extracts the capture's fingers and analyses its face with `faces` (`None`: no face models on this
/// box). `Err` names the field (and finger) whose data is malformed. CPU-heavy (extraction, face networks): call
/// it on a blocking thread. The same as [`probe_fingers`] then [`probe_face`], for a caller that does not overlap
/// the face's analysis with the finger search.
pub fn probe_from_capture(capture: &Capture, faces: Option<&FaceEngine>) -> Result<Probe, String> {
    let mut probe = probe_fingers(capture)?;
    probe.add_face(probe_face(capture, faces)?);
    Ok(probe)
}

/// The capture's fingers made ready for search (parsed, or extracted from their images), without its face: what
/// [`search_fingers`] needs, so that the finger search can start while [`probe_face`] runs. `Err` names the
/// field and finger whose data is malformed.
pub fn probe_fingers(capture: &Capture) -> Result<Probe, String> {
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
    Ok(probe)
}

/// The face side of a probe ([`probe_face`]), to be added to the fingers' with [`Probe::add_face`].
#[derive(Debug, Clone, Default)]
pub struct FacePart {
    face: Option<FaceProbe>,
    problem: Option<String>,
    notes: Vec<String>,
}

impl FacePart {
    /// Whether the capture's face can be compared (it passed its quality checks).
    pub fn is_comparable(&self) -> bool {
        self.face.is_some()
    }
}

/// Analyses the capture's face with `faces` (`None`: no face models on this box); a capture without a face gives
/// an empty part. A photo that does not decode is `Err` (the capture is rejected, as for a malformed finger); a
/// face that fails its quality checks, or no models, is a note. CPU-heavy (the face networks, about 60 ms here).
pub fn probe_face(capture: &Capture, faces: Option<&FaceEngine>) -> Result<FacePart, String> {
    let mut part = FacePart::default();
    let Some(face) = &capture.face else {
        return Ok(part);
    };
    let problem = match faces {
        None => Some("face matching is not installed on this box (no face models)".to_owned()),
        Some(engine) => match engine.analyze(&face.data) {
            Ok(a) => {
                part.notes
                    .extend(a.notes.iter().map(|n| format!("face: {n}")));
                part.face = Some(FaceProbe {
                    embedding: a.embedding,
                    detection_score: a.detection_score,
                    blur: a.blur,
                });
                None
            }
            Err(FaceError::Image(e)) => return Err(format!("field `face.data`: {e}")),
            Err(e @ (FaceError::Quality(_) | FaceError::Model(_))) => Some(e.to_string()),
        },
    };
    if let Some(problem) = problem {
        part.notes.push(format!("face: {problem}"));
        part.problem = Some(problem);
    }
    Ok(part)
}

impl Probe {
    /// Adds the face side ([`probe_face`]) to a probe made by [`probe_fingers`]; its notes come after the
    /// fingers'.
    pub fn add_face(&mut self, part: FacePart) {
        self.face = part.face;
        self.face_problem = part.problem;
        self.notes.extend(part.notes);
    }
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

/// The finger search's best subjects for a probe's fingers ([`search_fingers`]), before the face is known.
#[derive(Debug, Clone, Default)]
pub struct FingerCandidates(pub(crate) Vec<crate::Candidate>);

/// Searches `gallery`'s fingerprints with `fingers` (a probe's, [`probe_fingers`]): the 1:N search, nearly all of
/// a decision's time with a large watchlist. It does not need the face, so it can run while the face is analysed;
/// [`decide_with`] then completes the decision. Empty when either side has no fingers.
pub fn search_fingers(gallery: Gallery<'_>, fingers: &[(u8, Template)]) -> FingerCandidates {
    FingerCandidates(gallery.fingers.search(fingers, CANDIDATES_PER_MODALITY))
}

/// Searches `gallery` with `probe` and decides (see the [module docs](self)).
pub fn decide(gallery: Gallery<'_>, probe: &Probe) -> Outcome {
    decide_with(gallery, probe, search_fingers(gallery, &probe.fingers))
}

/// As [`decide`], with the finger search already done: `found` must be [`search_fingers`] of the same gallery and
/// `probe.fingers`. The face search, the face candidates' finger scores and the fusion are what is left (a few
/// milliseconds). The outcome is the same as [`decide`]'s.
pub fn decide_with(gallery: Gallery<'_>, probe: &Probe, found: FingerCandidates) -> Outcome {
    let face = probe.face.as_ref().filter(|_| !gallery.faces.is_empty());
    let fingers = !probe.fingers.is_empty() && !gallery.fingers.is_empty();
    if probe.fingers.is_empty() && probe.face.is_none() {
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
    if gallery.fingers.is_empty() && gallery.faces.is_empty() {
        return Outcome {
            decision: Decision::Inconclusive,
            candidates: Vec::new(),
            reason: Some("no watchlist installed yet".to_owned()),
        };
    }
    let mut notes = probe.notes.clone();
    if probe.face.is_some() && gallery.faces.is_empty() {
        notes.push("face: the watchlist holds no faces".to_owned());
    }
    if !probe.fingers.is_empty() && gallery.fingers.is_empty() {
        notes.push("fingers: the watchlist holds no fingerprints".to_owned());
    }
    if face.is_none() && !fingers {
        return Outcome {
            decision: Decision::Inconclusive,
            candidates: Vec::new(),
            reason: Some(notes.join("; ")),
        };
    }
    let face_best: Vec<(String, f32)> = face
        .map(|f| gallery.faces.search(&f.embedding, CANDIDATES_PER_MODALITY))
        .unwrap_or_default();
    let finger_scores: Vec<(String, f32)> = if fingers {
        // The face search's candidates are scored on their fingers too.
        let include: Vec<String> = face_best.iter().map(|(id, _)| id.clone()).collect();
        let FingerCandidates(mut best) = found;
        gallery
            .fingers
            .add_included(&probe.fingers, &mut best, &include);
        best.into_iter().map(|c| (c.subject_id, c.score)).collect()
    } else {
        Vec::new()
    };
    let mut ids: Vec<&String> = face_best.iter().map(|(id, _)| id).collect();
    for (id, _) in &finger_scores {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let limits = thresholds(gallery.subjects());
    let mut fused: Vec<(f64, String, crate::face::Fusion)> = ids
        .into_iter()
        .map(|id| {
            let cosine = face.and_then(|f| {
                face_best
                    .iter()
                    .find(|(s, _)| s == id)
                    .map(|(_, c)| *c)
                    .or_else(|| gallery.faces.cosine_for(id, &f.embedding))
            });
            // A subject absent from the finger scores had nothing comparable on its fingers: no evidence.
            let finger = finger_scores
                .iter()
                .find(|(s, _)| s == id)
                .map(|(_, score)| *score)
                .filter(|_| fingers);
            let f = fuse(cosine, finger, &limits);
            (f.fmr, id.clone(), f)
        })
        .collect();
    fused.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let top = fused.first().map(|(_, _, f)| f.clone());
    let candidates: Vec<ResultCandidate> = fused
        .into_iter()
        .filter(|(_, _, f)| f.score > 0.0)
        .take(MAX_CANDIDATES)
        .map(|(_, subject_id, f)| ResultCandidate {
            subject_id,
            score: f.score,
        })
        .collect();
    let decision = match top.as_ref().map(|f| f.decision) {
        Some(FaceDecision::Hit) => Decision::Hit,
        Some(FaceDecision::Inconclusive) => Decision::Inconclusive,
        Some(FaceDecision::NoHit) | None => Decision::NoHit,
    };
    if let Some(why) = top
        .and_then(|f| f.reason)
        .filter(|_| decision != Decision::NoHit)
    {
        notes.insert(0, why);
    }
    Outcome {
        decision,
        candidates,
        reason: (!notes.is_empty()).then(|| notes.join("; ")),
    }
}
