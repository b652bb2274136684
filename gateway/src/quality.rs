//! The enrolment quality gate: before an enrolment is stored and forwarded, every finger must be good enough to
//! be worth contributing, and the officer learns at once, while the traveller is still at the desk, which finger
//! to recapture.
//!
//! Rule (per finger): the finger's template (sent as a template, or extracted from the image by the matcher) must
//! hold at least [`MIN_ENROL_MINUTIAE`] minutiae; a finger the matcher could not turn into a template cannot be
//! assessed and is refused with that reason. 12 minutiae is the usual lower bound for a usable rolled or flat
//! impression (ANSI/NIST and FBI practice quote 12 as the minimum for a reliable comparison).
//!
//! Rule (face, when present): the face must pass the face matcher's quality checks (a face found, at least 20
//! pixels between the eyes, blur at most 0.6; see `docs/face.md`); otherwise the sentence names the problem and
//! asks for a retake. On a box without face models the face cannot be assessed and the enrolment is refused with
//! that reason, rather than forwarding a photo nobody checked.

use hotspot_device_protocols::station::Capture;
use hotspot_matcher::probe::Probe;

/// Fewest minutiae an enrolled finger may have.
pub const MIN_ENROL_MINUTIAE: usize = 12;

/// `Ok` when every finger passes; else one sentence per failing finger, naming it and what to do.
pub fn enrolment_gate(capture: &Capture, probe: &Probe) -> Result<(), String> {
    let mut problems = Vec::new();
    for f in &capture.fingers {
        match probe.fingers.iter().find(|(p, _)| *p == f.position) {
            Some((_, t)) if t.minutiae.len() >= MIN_ENROL_MINUTIAE => {}
            Some((_, t)) => problems.push(format!(
                "finger {}: {} minutiae, at least {MIN_ENROL_MINUTIAE} needed; recapture finger {}",
                f.position,
                t.minutiae.len(),
                f.position
            )),
            None => problems.push(format!(
                "finger {}: quality of the {} image could not be assessed; recapture finger {} or send a template",
                f.position,
                f.format.as_str(),
                f.position
            )),
        }
    }
    if capture.face.is_some()
        && let Some(problem) = &probe.face_problem
    {
        problems.push(format!("face: {problem}; retake the face photo"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "enrolment below the quality gate: {}",
            problems.join("; ")
        ))
    }
}
