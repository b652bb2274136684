//! Fingerprint minutiae extraction, template comparison and 1:N watchlist search; face matching in [`face`]. No I/O,
//! no clock: callers time and read files. The algorithm, formats and measurements: `docs/matcher.md`.
//!
//! # Layout
//! - [`extract`]: minutiae from a grey-scale finger image (WSQ, PNG, TIFF decoded by `device-protocols`).
//! - [`template`]: the matcher's minutiae template (500 ppi, radians), from images or ISO/ANSI finger views, and
//!   out as ISO/IEC 19794-2; [`codec`]: its compact versioned binary form.
//! - [`compare`](mod@compare): one-to-one comparison (hashed edges, grown pairings, global alignment), built so
//!   that a probe prepared once is compared quickly with many candidates.
//! - [`calibration`]: raw scores to `-10 * log10(FMR)`, thresholds for a false match rate, multi-finger fusion.
//! - [`index`]: the immutable 1:N index, searched in parallel; fusion per subject and the hit threshold.
//! - [`probe`]: from a station capture to a probe, and from candidates to a decision.

mod align;
pub mod calibration;
pub mod codec;
pub mod compare;
mod edges;
pub mod extract;
mod grow;
mod table;
// face detection, alignment, embedding (see face/mod.rs)
pub mod face;
mod geometry;
pub mod index;
pub mod probe;
mod region;
pub mod template;

pub use calibration::threshold_for_fmr;
pub use codec::TemplateDecodeError;
pub use compare::{Matcher, PreparedTemplate, Scratch, compare};
pub use index::{
    Candidate, DECISION_FPIR, FingerprintIndex, HIT_THRESHOLD, Subject, hit_threshold,
};
pub use template::{Minutia, MinutiaKind, Template};

#[cfg(test)]
mod tests_calibration;
#[cfg(test)]
mod tests_codec;
#[cfg(test)]
mod tests_compare;
#[cfg(test)]
mod tests_extract;
#[cfg(test)]
mod tests_fvc;
#[cfg(test)]
mod tests_index;
#[cfg(test)]
mod tests_preselect;
#[cfg(test)]
mod tests_probe;
#[cfg(test)]
mod tests_support;
