//! Real-data tests on the FVC2002 DB1-DB4 set B ISO templates (`../shared/data`, 4 databases x 10 fingers x 8
//! impressions): the verification protocol (impression 1 enrolled, 2..=8 probed) with impostor rates, and an
//! ignored calibration run that measures the score distributions behind [`HIT_THRESHOLD`]:
//! `cargo test --release -p hotspot-matcher fvc_calibration -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Instant;

use hotspot_device_protocols::template::parse_iso19794_2;

use crate::{HIT_THRESHOLD, PreparedTemplate, Template, compare};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");
const DBS: u32 = 4;
const FINGERS: u32 = 10;
const IMPRESSIONS: u32 = 8;

/// One FVC template: database (1..=4), finger (0..10), impression (1..=8).
pub(crate) struct Sample {
    pub db: u32,
    pub finger: u32,
    pub impression: u32,
    pub template: Template,
    pub prepared: PreparedTemplate,
}

impl Sample {
    fn same_finger(&self, other: &Sample) -> bool {
        self.db == other.db && self.finger == other.finger
    }
}

/// All 320 templates, or `None` (noted on stderr) if the data folder is absent.
pub(crate) fn load() -> Option<Vec<Sample>> {
    let dir = Path::new(DATA).join("fingerprints/fvc2002");
    if !dir.is_dir() {
        eprintln!("skipping: ../shared/data not found");
        return None;
    }
    let mut samples = Vec::new();
    for db in 1..=DBS {
        for finger in 0..FINGERS {
            for impression in 1..=IMPRESSIONS {
                let path = dir.join(format!("DB{db}_B/{}_{impression}.iso", 101 + finger));
                let record = parse_iso19794_2(&std::fs::read(&path).unwrap()).unwrap();
                let template = Template::from_view(
                    &record.views[0],
                    record.x_resolution_ppcm,
                    record.y_resolution_ppcm,
                );
                let prepared = PreparedTemplate::new(&template);
                samples.push(Sample {
                    db,
                    finger,
                    impression,
                    template,
                    prepared,
                });
            }
        }
    }
    Some(samples)
}

/// Counts of one database's verification protocol.
#[derive(Debug, Default)]
struct Protocol {
    probes: usize,
    rank1: usize,
    rank1_at_threshold: usize,
    impostors: usize,
    impostors_at_threshold: usize,
}

/// Impression 1 of each finger enrolled, impressions 2..=8 probed against all 10; impostors are all pairs of
/// templates of different fingers in the database.
fn protocol(samples: &[Sample], db: u32, threshold: f32) -> Protocol {
    let in_db: Vec<&Sample> = samples.iter().filter(|s| s.db == db).collect();
    let enrolled: Vec<&Sample> = in_db
        .iter()
        .copied()
        .filter(|s| s.impression == 1)
        .collect();
    let mut p = Protocol::default();
    for probe in in_db.iter().filter(|s| s.impression > 1) {
        let scores: Vec<(bool, f32)> = enrolled
            .iter()
            .map(|e| (e.same_finger(probe), compare(&probe.prepared, &e.prepared)))
            .collect();
        let own = scores.iter().find(|(same, _)| *same).map_or(0.0, |s| s.1);
        let other = scores
            .iter()
            .filter(|(same, _)| !same)
            .map(|s| s.1)
            .fold(0.0, f32::max);
        p.probes += 1;
        p.rank1 += usize::from(own > other);
        p.rank1_at_threshold += usize::from(own > other && own >= threshold);
    }
    for (k, a) in in_db.iter().enumerate() {
        for b in in_db[k + 1..].iter().filter(|b| !a.same_finger(b)) {
            p.impostors += 1;
            p.impostors_at_threshold += usize::from(compare(&a.prepared, &b.prepared) >= threshold);
        }
    }
    p
}

fn ratio(part: usize, whole: usize) -> f64 {
    part as f64 / whole.max(1) as f64
}

#[test]
fn fvc_verification_protocol_meets_the_bar() {
    let Some(samples) = load() else { return };
    for db in 1..=DBS {
        let p = protocol(&samples, db, HIT_THRESHOLD);
        let genuine = ratio(p.rank1_at_threshold, p.probes);
        let impostor = ratio(p.impostors_at_threshold, p.impostors);
        eprintln!(
            "DB{db}: rank-1 {}/{}; rank-1 and >= {HIT_THRESHOLD}: {}/{} ({genuine:.3}); impostors >= threshold: {}/{} ({impostor:.4})",
            p.rank1,
            p.probes,
            p.rank1_at_threshold,
            p.probes,
            p.impostors_at_threshold,
            p.impostors
        );
        assert!(
            genuine >= 0.80,
            "DB{db}: genuine rank-1 at threshold {genuine}"
        );
        assert!(impostor < 0.01, "DB{db}: impostor rate {impostor}");
    }
}

/// Fraction of `scores` at or above `threshold`.
fn rate_at(scores: &[f32], threshold: f32) -> f64 {
    ratio(
        scores.iter().filter(|s| **s >= threshold).count(),
        scores.len(),
    )
}

/// Score at which the share of impostor scores at or above it is `fmr` (`sorted` descending).
fn score_at_fmr(sorted: &[f32], fmr: f64) -> f32 {
    sorted[((sorted.len() as f64 * fmr) as usize).min(sorted.len() - 1)]
}

#[test]
#[ignore = "calibration run: slow in debug; run in release with --ignored --nocapture"]
fn fvc_calibration() {
    let Some(samples) = load() else { return };
    let started = Instant::now();
    let (mut genuine, mut impostor, mut impostor_same_db) = (Vec::new(), Vec::new(), Vec::new());
    for (k, a) in samples.iter().enumerate() {
        for b in &samples[k + 1..] {
            let score = compare(&a.prepared, &b.prepared);
            match (a.same_finger(b), a.db == b.db) {
                (true, _) => genuine.push(score),
                (false, true) => {
                    impostor.push(score);
                    impostor_same_db.push(score);
                }
                (false, false) => impostor.push(score),
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let comparisons = genuine.len() + impostor.len();
    eprintln!(
        "{comparisons} comparisons in {elapsed:.2} s: {:.0} per second",
        comparisons as f64 / elapsed
    );
    for (name, scores) in [("all", &mut impostor), ("same-DB", &mut impostor_same_db)] {
        scores.sort_by(|a, b| b.total_cmp(a));
        eprintln!(
            "impostors ({name}, {} pairs): highest {:.2}, score at FMR 1e-3 {:.2}, at 1e-4 {:.2}",
            scores.len(),
            scores[0],
            score_at_fmr(scores, 1e-3),
            score_at_fmr(scores, 1e-4)
        );
    }
    for t in [20.0, 24.0, HIT_THRESHOLD, 28.0, 30.0] {
        let (all, same) = (rate_at(&impostor, t), rate_at(&impostor_same_db, t));
        let accepted = rate_at(&genuine, t);
        eprintln!(
            "threshold {t}: FMR all {all:.5}, same-DB {same:.5}; genuine acceptance {accepted:.4} of {} pairs",
            genuine.len()
        );
    }
    for db in 1..=DBS {
        let p = protocol(&samples, db, HIT_THRESHOLD);
        eprintln!(
            "DB{db} protocol: rank-1 {}/{}, rank-1 and >= threshold {}",
            p.rank1, p.probes, p.rank1_at_threshold
        );
    }
    assert!(rate_at(&impostor, HIT_THRESHOLD) <= 1e-3);
    assert!(rate_at(&impostor_same_db, HIT_THRESHOLD) <= 1e-3);
}
