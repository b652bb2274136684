//! Face score calibration, fusion with fingerprints, and the hit / no-hit / inconclusive decision.
//!
//! # Scale
//! Scores are calibrated on the fingerprint side's scale (`crate::calibration`): `s = -10 * log10(FMR)`, where the
//! false-match rate (FMR) is the chance that a comparison of two *different* people scores at least this high.
//! So 30 means one impostor comparison in a thousand scores this high, 60 one in a million.
//!
//! [`face_fmr`] turns an SFace cosine into an FMR with a normal model of impostor cosines ([`IMPOSTOR_MEAN`],
//! [`IMPOSTOR_SD`]), chosen to be conservative against every impostor population measured on the development
//! photos (21 404 comparisons in three populations; `scripts/face_calibration.py`, `docs/face.md`): in each
//! population's upper tail the measured FMR is at most the model's (worst ratio 0.92, for the population of similar
//! celebrity portraits, whose impostor mean is 0.136 against 0.044 and 0.056 for the others). Impostor scores depend
//! on the population and the imaging, so a deployment should re-check this on its own data. The model puts FMR 1e-2
//! at cosine 0.363 (OpenCV's published SFace threshold), 1e-4 at 0.502 and 1e-6 at 0.605. [`face_score`] is the
//! same on the decibel scale, [`threshold_for_far`] the inverse.
//!
//! # Fusion rule
//! Calibrated FMRs of independent comparisons are, for an impostor, independent and uniform on 0..1. For a face
//! FMR `p1` and a fingerprint FMR `p2` (itself already fused over the fingers), the fused FMR is
//! `Pr(U1 U2 <= p1 p2) = p1 p2 (1 - ln(p1 p2))` (Fisher's method for two tests; the fingerprint side fuses fingers
//! the same way, so one rule covers every combination). One modality alone keeps its own FMR.
//!
//! # Decision
//! The fused FMR is compared with thresholds that are themselves FMRs ([`DecisionThresholds`], usually derived from
//! a false-positive identification rate per search and the gallery size):
//! - at or below `hit_fmr`: **hit**; at or below `review_fmr`: **inconclusive** (an officer looks); else **no hit**;
//! - except that when both modalities were compared and one alone is a hit while the other looks like a stranger
//!   (FMR above [`DISAGREEMENT_FMR`]), the answer is **inconclusive**: the modalities disagree, which is exactly
//!   when an officer must look (look-alike, swapped photo, poor fingerprint).

/// Mean of the impostor cosine model (see the module docs).
pub const IMPOSTOR_MEAN: f64 = 0.13;
/// Standard deviation of the impostor cosine model.
pub const IMPOSTOR_SD: f64 = 0.10;
/// A modality whose FMR is above this looks like a comparison with a stranger.
pub const DISAGREEMENT_FMR: f64 = 0.05;
/// Calibrated scores are capped here (FMR 1e-10), as on the fingerprint side: beyond, the model means nothing.
pub const MAX_SCORE: f32 = 100.0;
/// Face cosine at an estimated false-match rate of 1e-4 (`threshold_for_far(1e-4)`, checked by a test).
pub const FACE_MATCH_THRESHOLD: f32 = 0.502;

/// Estimated false-match rate of a face cosine similarity: `Pr(impostor cosine >= cosine)`.
pub fn face_fmr(cosine: f32) -> f64 {
    let z = (f64::from(cosine) - IMPOSTOR_MEAN) / IMPOSTOR_SD;
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// A face cosine on the calibrated decibel scale (`-10 log10 FMR`, 0..=[`MAX_SCORE`]).
pub fn face_score(cosine: f32) -> f32 {
    score_of(face_fmr(cosine))
}

/// The face cosine whose estimated false-match rate is `far` (clamped to `1e-15..=1`).
pub fn threshold_for_far(far: f64) -> f32 {
    let far = if far.is_nan() {
        1.0
    } else {
        far.clamp(1e-15, 1.0)
    };
    // face_fmr decreases as the cosine grows: bisect (60 halvings reach f64 noise).
    let (mut lo, mut hi) = (-1.0f64, 1.5f64);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if face_fmr(mid as f32) > far {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi as f32
}

/// Decision thresholds, each a per-comparison false-match rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecisionThresholds {
    /// At or below: hit.
    pub hit_fmr: f64,
    /// At or below (and above `hit_fmr`): inconclusive.
    pub review_fmr: f64,
}

impl DecisionThresholds {
    /// Thresholds giving the wanted false-positive identification rates (per search) against `subjects` subjects:
    /// each rate divided by the number of subjects compared (the union bound).
    pub fn for_gallery(subjects: usize, hit_fpir: f64, review_fpir: f64) -> Self {
        let n = subjects.max(1) as f64;
        Self {
            hit_fmr: hit_fpir / n,
            review_fmr: review_fpir.max(hit_fpir) / n,
        }
    }
}

/// The fused answer for one subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceDecision {
    /// Same person, at the hit threshold's false-match rate.
    Hit,
    /// Not this subject.
    NoHit,
    /// An officer must look.
    Inconclusive,
}

/// A fused comparison with one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Fusion {
    /// The decision.
    pub decision: FaceDecision,
    /// Fused false-match rate (1 when nothing was compared).
    pub fmr: f64,
    /// The same on the calibrated decibel scale.
    pub score: f32,
    /// The face's calibrated score, if a face was compared.
    pub face_score: Option<f32>,
    /// Why, when it is not plain (disagreement, review band, nothing compared).
    pub reason: Option<String>,
}

/// Fuses a face cosine (if a face was compared) with the fingerprint side's calibrated score (decibel scale, see the
/// module docs; if fingerprints were compared) for one subject, and decides.
pub fn fuse(
    face_cosine: Option<f32>,
    fingerprint_score: Option<f32>,
    thresholds: &DecisionThresholds,
) -> Fusion {
    let face = face_cosine.map(face_fmr);
    let finger = fingerprint_score.map(|s| {
        if s.is_nan() {
            1.0
        } else {
            fmr_of(s.clamp(0.0, MAX_SCORE))
        }
    });
    let fmr = match (face, finger) {
        (Some(a), Some(b)) => fisher(a * b),
        (Some(p), None) | (None, Some(p)) => p,
        (None, None) => 1.0,
    };
    let disagreement = match (face, finger) {
        (Some(a), Some(b)) if a <= thresholds.hit_fmr && b > DISAGREEMENT_FMR => {
            Some("the face matches")
        }
        (Some(a), Some(b)) if b <= thresholds.hit_fmr && a > DISAGREEMENT_FMR => {
            Some("the fingerprints match")
        }
        _ => None,
    };
    let (decision, reason) = if face.is_none() && finger.is_none() {
        (
            FaceDecision::Inconclusive,
            Some("neither a face nor fingerprints could be compared".to_owned()),
        )
    } else if let Some(which) = disagreement {
        (
            FaceDecision::Inconclusive,
            Some(format!(
                "face and fingerprints disagree: {which}, the other does not"
            )),
        )
    } else if fmr <= thresholds.hit_fmr {
        (FaceDecision::Hit, None)
    } else if fmr <= thresholds.review_fmr {
        (
            FaceDecision::Inconclusive,
            Some("score between the review and hit thresholds".to_owned()),
        )
    } else {
        (FaceDecision::NoHit, None)
    };
    Fusion {
        decision,
        fmr,
        score: score_of(fmr),
        face_score: face.map(score_of),
        reason,
    }
}

/// `Pr(U1 U2 <= x)` for independent uniform `U1`, `U2`.
fn fisher(x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    (x * (1.0 - x.ln())).min(1.0)
}

fn score_of(fmr: f64) -> f32 {
    if fmr.is_nan() || fmr <= 0.0 {
        return MAX_SCORE;
    }
    ((-10.0 * fmr.min(1.0).log10()) as f32).clamp(0.0, MAX_SCORE)
}

fn fmr_of(score: f32) -> f64 {
    10f64.powf(-f64::from(score) / 10.0)
}

/// Complementary error function (Numerical Recipes `erfcc`, relative error below 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}
