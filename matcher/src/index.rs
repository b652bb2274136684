//! The 1:N index: subjects' prepared finger templates, immutable once built (the gateway builds a new index aside
//! and swaps whole `Arc`s, so searches never wait for a rebuild).
//!
//! # Search
//! The probe's fingers are prepared once ([`Matcher`]); subjects are scored in parallel on all cores (rayon), each
//! worker reusing one [`Scratch`], one probe finger at a time over all subjects (so that one probe's table stays
//! in the cache: about 10% faster than every probe finger per subject, on a 20k-subject index in a development
//! measurement, `docs/benchmark.md`), then fused per subject.
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
use crate::compare::{CandidatePoints, CandidateRef, Matcher, PreparedTemplate, Scratch};
use crate::edges::{QuarterPoint, StoredEdge};
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
    /// The subject's id is `ids[id_start..id_end]` of the index.
    id_start: usize,
    id_end: usize,
    /// The subject's fingers are `fingers[first..first + count]` of the index.
    first: usize,
    count: u8,
}

/// One enrolled finger: its position and where its minutiae and edges lie in the index's shared arrays.
#[derive(Debug, Clone, Copy)]
struct IndexedFinger {
    points: usize,
    edges: usize,
    hull: usize,
    n_edges: u16,
    n_points: u8,
    n_hull: u8,
    position: u8,
}

/// An immutable 1:N index over prepared templates.
///
/// # Memory
/// Every enrolled finger's minutiae, candidate edges and hull vertices live in arrays shared by the whole index,
/// exactly sized: no per-finger allocation, the area as its vertices' indices and no grid (both made during a
/// comparison, only for the candidates that get as far as an alignment), no probe-only edges, edges without their
/// hash cell (recomputed from the shape) and with their directions kept to 1/1024 turn (6 bytes each), and minutiae
/// at the template codec's precision (quarter pixels, 6 bytes each). Templates decoded from the codec, as watchlists
/// are stored, score exactly as they would one to one; others are rounded to quarter pixels first.
/// About 1.1 KB per finger of 45 minutiae ([`Self::heap_bytes`]).
#[derive(Debug, Clone, Default)]
pub struct FingerprintIndex {
    /// Subject ids, one after the other (one allocation for all, so that a large index leaves no small blocks
    /// scattered over the heap).
    ids: String,
    subjects: Vec<IndexedSubject>,
    fingers: Vec<IndexedFinger>,
    points: Vec<QuarterPoint>,
    edges: Vec<StoredEdge>,
    /// Each finger's convex hull vertices, as indices into its minutiae.
    hulls: Vec<u8>,
}

/// Subjects prepared in parallel at a time while building: bounds the build's memory above the index itself.
const BUILD_CHUNK: usize = 4096;

impl FingerprintIndex {
    /// Prepares every subject's templates, in parallel (CPU-heavy for large lists: build off the serving thread).
    /// A finger beyond the 255th of a subject is left out (no capture has more than 10).
    pub fn build(subjects: Vec<Subject>) -> Self {
        let mut index = Self {
            subjects: Vec::with_capacity(subjects.len()),
            ..Self::default()
        };
        let mut rest = subjects.into_iter();
        loop {
            let chunk: Vec<Subject> = rest.by_ref().take(BUILD_CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            let prepared: Vec<(String, Vec<(u8, PreparedTemplate)>)> = chunk
                .into_par_iter()
                .map(|s| {
                    let fingers = s
                        .fingers
                        .iter()
                        .take(usize::from(u8::MAX))
                        .map(|(pos, t)| (*pos, PreparedTemplate::new(t)))
                        .collect();
                    (s.subject_id, fingers)
                })
                .collect();
            for (subject_id, fingers) in prepared {
                let id_start = index.ids.len();
                index.ids.push_str(&subject_id);
                index.subjects.push(IndexedSubject {
                    id_start,
                    id_end: index.ids.len(),
                    first: index.fingers.len(),
                    count: fingers.len() as u8,
                });
                for (position, t) in fingers {
                    let (points, edges, hull) = t.into_parts();
                    index.fingers.push(IndexedFinger {
                        points: index.points.len(),
                        edges: index.edges.len(),
                        hull: index.hulls.len(),
                        // At most 255 minutiae, each with at most 5 one-way candidate edges; hull vertices are
                        // some of the minutiae.
                        n_edges: edges.len() as u16,
                        n_points: points.len() as u8,
                        n_hull: hull.len() as u8,
                        position,
                    });
                    index.points.extend(points.iter().map(QuarterPoint::new));
                    index.edges.extend_from_slice(&edges);
                    index.hulls.extend_from_slice(&hull);
                }
            }
        }
        index.ids.shrink_to_fit();
        index.fingers.shrink_to_fit();
        index.points.shrink_to_fit();
        index.edges.shrink_to_fit();
        index.hulls.shrink_to_fit();
        index
    }

    /// Number of subjects.
    pub fn len(&self) -> usize {
        self.subjects.len()
    }

    /// Whether the index holds no subject.
    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty()
    }

    /// Bytes the index holds on the heap (subjects, fingers, minutiae and edges; allocator overhead aside).
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(self.subjects.as_slice())
            + self.ids.len()
            + std::mem::size_of_val(self.fingers.as_slice())
            + std::mem::size_of_val(self.points.as_slice())
            + std::mem::size_of_val(self.edges.as_slice())
            + self.hulls.len()
    }

    /// A subject's id.
    fn id_of(&self, s: &IndexedSubject) -> &str {
        self.ids.get(s.id_start..s.id_end).unwrap_or("")
    }

    /// A subject's fingers as `(position, candidate)`.
    fn fingers_of<'a>(
        &'a self,
        s: &IndexedSubject,
    ) -> impl Iterator<Item = (u8, CandidateRef<'a>)> + Clone + 'a {
        self.fingers
            .get(s.first..s.first + usize::from(s.count))
            .unwrap_or(&[])
            .iter()
            .map(|f| {
                let points = self
                    .points
                    .get(f.points..f.points + usize::from(f.n_points))
                    .unwrap_or(&[]);
                let edges = self
                    .edges
                    .get(f.edges..f.edges + usize::from(f.n_edges))
                    .unwrap_or(&[]);
                let hull = self
                    .hulls
                    .get(f.hull..f.hull + usize::from(f.n_hull))
                    .unwrap_or(&[]);
                let points = CandidatePoints::Quarter(points);
                (
                    f.position,
                    CandidateRef {
                        points,
                        edges,
                        hull,
                    },
                )
            })
    }

    /// The best `max_candidates` subjects for `probe` (`(finger position, template)` pairs), best first.
    pub fn search(&self, probe: &[(u8, Template)], max_candidates: usize) -> Vec<Candidate> {
        if max_candidates == 0 || probe.is_empty() {
            return Vec::new();
        }
        let probe: Vec<(u8, Matcher)> = probe.iter().map(|(p, t)| (*p, Matcher::new(t))).collect();
        let mut scored = self.scores_by_finger(&probe);
        scored.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| self.id_of(a.1).cmp(self.id_of(b.1)))
        });
        scored
            .into_iter()
            .take(max_candidates)
            .map(|(score, s)| Candidate {
                subject_id: self.id_of(s).to_owned(),
                score,
            })
            .collect()
    }
}

impl FingerprintIndex {
    /// Appends to `best` (a [`FingerprintIndex::search`] result for `probe`) the scores of the subjects named in
    /// `include` that it does not hold, after the best; a subject with no finger comparable with the probe's (or
    /// not in the index) is left out: its fingers give no evidence either way. The fusion with faces uses it to
    /// score the face search's candidates on their fingers after the search, which may have run before `include`
    /// was known (the gateway searches the fingers while the face is still being analysed). Costs one comparison
    /// per finger of each subject added, not a search.
    pub fn add_included(
        &self,
        probe: &[(u8, Template)],
        best: &mut Vec<Candidate>,
        include: &[String],
    ) {
        let missing: Vec<&String> = include
            .iter()
            .filter(|id| !best.iter().any(|c| &c.subject_id == *id))
            .collect();
        if missing.is_empty() {
            return;
        }
        let matchers: Vec<(u8, Matcher)> =
            probe.iter().map(|(p, t)| (*p, Matcher::new(t))).collect();
        let mut scratch = Scratch::default();
        let mut fingers = Vec::new();
        for id in missing {
            let Some(s) = self.subjects.iter().find(|s| self.id_of(s) == id.as_str()) else {
                continue;
            };
            let score = subject_score(&matchers, self.fingers_of(s), &mut scratch, &mut fingers);
            // `fingers` holds the probe fingers that had a comparable finger in the subject.
            if !fingers.is_empty() {
                best.push(Candidate {
                    subject_id: id.clone(),
                    score,
                });
            }
        }
    }
}

impl FingerprintIndex {
    /// Every subject's fused score (those above 0), one probe finger at a time over all subjects, so that one probe
    /// table stays in the cache.
    fn scores_by_finger(&self, probe: &[(u8, Matcher)]) -> Vec<(f32, &IndexedSubject)> {
        let n = self.subjects.len();
        // per_finger[k * n + s]: probe finger k's best-of score against subject s, NaN when nothing comparable.
        let mut per_finger = vec![f32::NAN; probe.len() * n];
        for ((pos, matcher), column) in probe.iter().zip(per_finger.chunks_mut(n.max(1))) {
            column
                .par_iter_mut()
                .zip(self.subjects.par_iter())
                .for_each_init(Scratch::default, |scratch, (out, s)| {
                    if let Some(score) = finger_score(*pos, matcher, self.fingers_of(s), scratch) {
                        *out = score;
                    }
                });
        }
        let mut fingers = Vec::with_capacity(probe.len());
        self.subjects
            .iter()
            .enumerate()
            .filter_map(|(k, s)| {
                fingers.clear();
                fingers.extend(
                    (0..probe.len())
                        .map(|p| per_finger[p * n + k])
                        .filter(|v| !v.is_nan()),
                );
                let score = calibration::fuse(&fingers);
                (score > 0.0).then_some((score, s))
            })
            .collect()
    }
}

/// Whether fingers at positions `a` and `b` may be compared (0 = unknown matches anything).
fn same_finger(a: u8, b: u8) -> bool {
    a == 0 || b == 0 || a == b
}

/// The score of probe finger `matcher` at position `pos` against a subject's fingers ([`calibration::best_of`]
/// its comparable fingers), `None` when none is comparable.
fn finger_score<'a>(
    pos: u8,
    matcher: &Matcher,
    subject: impl Iterator<Item = (u8, CandidateRef<'a>)>,
    scratch: &mut Scratch,
) -> Option<f32> {
    let mut comparable = subject
        .filter(|(s_pos, _)| same_finger(pos, *s_pos))
        .peekable();
    comparable.peek()?;
    Some(calibration::best_of(
        comparable.map(|(_, s)| matcher.score_candidate(s, scratch)),
    ))
}

/// The fused score of one subject (see the module docs); `fingers` is scratch for the per-finger scores.
fn subject_score<'a>(
    probe: &[(u8, Matcher)],
    subject: impl Iterator<Item = (u8, CandidateRef<'a>)> + Clone,
    scratch: &mut Scratch,
    fingers: &mut Vec<f32>,
) -> f32 {
    fingers.clear();
    fingers.extend(
        probe
            .iter()
            .filter_map(|(pos, matcher)| finger_score(*pos, matcher, subject.clone(), scratch)),
    );
    calibration::fuse(fingers)
}
