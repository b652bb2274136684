//! Fingerprint template comparison and 1:N watchlist search. No I/O.
//!
//! # Layout
//! - [`template`]: the matcher's minutiae template (500 ppi, radians), built from a decoded ISO/ANSI finger view;
//!   [`codec`]: its compact versioned binary form.
//! - [`compare`](mod@compare): one-to-one comparison of prepared templates (local neighbourhoods, then global alignment).
//! - [`index`]: the immutable 1:N index, multi-finger fusion and the hit threshold.
//! - [`probe`]: from a station capture to a probe, and from candidates to a decision.

mod align;
pub mod codec;
pub mod compare;
mod geometry;
pub mod index;
mod local;
pub mod probe;
mod region;
pub mod template;

pub use codec::TemplateDecodeError;
pub use compare::{PreparedTemplate, compare};
pub use index::{Candidate, FingerprintIndex, HIT_THRESHOLD, Subject};
pub use template::{Minutia, MinutiaKind, Template};

#[cfg(test)]
mod tests_codec;
#[cfg(test)]
mod tests_compare;
#[cfg(test)]
mod tests_fvc;
#[cfg(test)]
mod tests_index;
#[cfg(test)]
mod tests_support;
