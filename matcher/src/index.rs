//! The 1:N index: subjects' prepared finger templates, immutable once built (the gateway builds a new index aside
//! and swaps whole `Arc`s, so searches never wait for a rebuild).
//!
//! # Search
//! The probe's fingers are prepared once ([`Matcher`]); subjects are scored in parallel on all cores (rayon), each
//! worker reusing one [`Scratch`].
//!
//! # Fusion rule
//! A subject's score for a probe fuses, over the probe's fingers that have a comparable finger in the subject
//! (same position, or position 0 = unknown on either side), that finger's best calibrated score against them
//! ([`calibration::best_of`], corrected for the number of fingers tried), by Fisher's method
//! ([`calibration::fuse`]). The fused score is on the same scale as one finger's: `-10 * log10(FMR)` of a whole
//! subject, whatever the number of fingers compared. Probe fingers without a comparable finger in the subject
//! give no evidence either way. Subjects scoring 0 are not returned; the rest are ranked best first (ties by
//! subject id).
//!
//! # Hit threshold
//! See [`HIT_THRESHOLD`] and [`hit_threshold`].

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::calibration::{self, threshold_for_fmr};
use crate::compare::{Matcher, PreparedTemplate, Scratch};
use crate::template::Template;

/// The lowest fused score that makes a hit: a subject FMR of 1e-4 (`-10 * log10(1e-4)`), for any number of
/// fingers, since fused scores are calibrated (see the [module docs](self)). With a large watchlist
/// [`hit_threshold`] raises it so that false hits stay rare per search.
pub const HIT_THRESHOLD: f32 = 40.0;

/// Share of searches of travellers not on the watchlist allowed to end in a (false) hit, used by
/// [`hit_threshold`] for watchlists large enough that [`HIT_THRESHOLD`] would allow more.
pub const DECISION_FPIR: f64 = 0.01;

/// The hit threshold for a watchlist of `subjects` subjects: a search compares the probe with every subject, so
/// its false positive identification rate is about `subjects * FMR`. The threshold is the score of FMR
/// `DECISION_FPIR / subjects`, and never below [`HIT_THRESHOLD`] (100 subjects or fewer use it as it is; 10 000
/// need 60, an FMR of 1e-6).
pub fn hit_threshold(subjects: usize) -> f32 {
    threshold_for_fmr(DECISION_FPIR / subjects.max(1) as f64).max(HIT_THRESHOLD)
}

/// A watchlist subject and their enrolled fingers.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    /// The subject's id.
    pub subject_id: String,
    /// `(finger position 0..=10, template)`; 0 = unknown position.
    pub fingers: Vec<(u8, Template)>,
}

/// A ranked search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The subject's id.
    pub subject_id: String,
    /// Fused calibrated score (see the [module docs](self)).
    pub score: f32,
}

#[derive(Debug, Clone)]
struct IndexedSubject {
    subject_id: String,
    fingers: Vec<(u8, PreparedTemplate)>,
}

/// An immutable 1:N index over prepared templates.
#[derive(Debug, Clone, Default)]
pub struct FingerprintIndex {
    subjects: Vec<IndexedSubject>,
}

impl FingerprintIndex {
    /// Prepares every subject's templates, in parallel (CPU-heavy for large lists: build off the serving thread).
    pub fn build(subjects: Vec<Subject>) -> Self {
        let subjects = subjects
            .into_par_iter()
            .map(|s| IndexedSubject {
                subject_id: s.subject_id,
                fingers: s
                    .fingers
                    .iter()
                    .map(|(pos, t)| (*pos, PreparedTemplate::new(t)))
                    .collect(),
            })
            .collect();
        Self { subjects }
    }

    /// Number of subjects.
    pub fn len(&self) -> usize {
        self.subjects.len()
    }

    /// Whether the index holds no subject.
    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty()
    }

    /// The best `max_candidates` subjects for `probe` (`(finger position, template)` pairs), best first.
    pub fn search(&self, probe: &[(u8, Template)], max_candidates: usize) -> Vec<Candidate> {
        if max_candidates == 0 || probe.is_empty() {
            return Vec::new();
        }
        let probe: Vec<(u8, Matcher)> = probe.iter().map(|(p, t)| (*p, Matcher::new(t))).collect();
        let mut scored: Vec<(f32, &IndexedSubject)> = self
            .subjects
            .par_iter()
            .map_init(
                || (Scratch::default(), Vec::new()),
                |(scratch, fingers), s| (subject_score(&probe, &s.fingers, scratch, fingers), s),
            )
            .filter(|(score, _)| *score > 0.0)
            .collect();
        scored.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| a.1.subject_id.cmp(&b.1.subject_id))
        });
        scored
            .into_iter()
            .take(max_candidates)
            .map(|(score, s)| Candidate {
                subject_id: s.subject_id.clone(),
                score,
            })
            .collect()
    }
}

impl FingerprintIndex {
    /// As [`FingerprintIndex::search`], and also the scores of the subjects named in `include` that are not among
    /// the best (score 0 for a subject with nothing comparable or not in the index), after the best. The fusion
    /// with faces uses it to score the face search's candidates on their fingers in the same pass.
    pub fn search_including(
        &self,
        probe: &[(u8, Template)],
        max_candidates: usize,
        include: &[String],
    ) -> Vec<Candidate> {
        let mut best = self.search(probe, max_candidates);
        let missing: Vec<&String> = include
            .iter()
            .filter(|id| !best.iter().any(|c| &c.subject_id == *id))
            .collect();
        if missing.is_empty() {
            return best;
        }
        let matchers: Vec<(u8, Matcher)> =
            probe.iter().map(|(p, t)| (*p, Matcher::new(t))).collect();
        let mut scratch = Scratch::default();
        let mut fingers = Vec::new();
        for id in missing {
            let score = self
                .subjects
                .iter()
                .find(|s| &s.subject_id == id)
                .map(|s| subject_score(&matchers, &s.fingers, &mut scratch, &mut fingers))
                .unwrap_or(0.0);
            best.push(Candidate {
                subject_id: id.clone(),
                score,
            });
        }
        best
    }
}

/// Whether fingers at positions `a` and `b` may be compared (0 = unknown matches anything).
fn same_finger(a: u8, b: u8) -> bool {
    a == 0 || b == 0 || a == b
}

/// The fused score of one subject (see the module docs); `fingers` is scratch for the per-finger scores.
fn subject_score(
    probe: &[(u8, Matcher)],
    subject: &[(u8, PreparedTemplate)],
    scratch: &mut Scratch,
    fingers: &mut Vec<f32>,
) -> f32 {
    fingers.clear();
    for (pos, matcher) in probe {
        let mut comparable = subject
            .iter()
            .filter(|(s_pos, _)| same_finger(*pos, *s_pos))
            .peekable();
        if comparable.peek().is_none() {
            continue;
        }
        fingers.push(calibration::best_of(
            comparable.map(|(_, s)| matcher.score_with(s, scratch)),
        ));
    }
    calibration::fuse(fingers)
}
