//! Real-data tests on FVC2002 DB1-DB4 set B (`../shared/data`; skipped with a note when absent): templates
//! extracted from the TIFF images (impressions 1-4 of every finger, extracted once per test run), the ISO
//! templates beside them, and an ignored calibration run over all 320 images that measures the knots of
//! [`crate::calibration::KNOTS`]:
//! `cargo test --release -p hotspot-matcher fvc_calibration -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hotspot_device_protocols::image::decode_gray;
use hotspot_device_protocols::template::parse_iso19794_2;
use rayon::prelude::*;

use crate::calibration::{KNOTS, calibrate};
use crate::extract::extract;
use crate::{HIT_THRESHOLD, Matcher, PreparedTemplate, Template};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");
pub(crate) const DBS: u32 = 4;
pub(crate) const FINGERS: u32 = 10;
/// Impressions used by the regular (debug-build) tests; the calibration run uses all 8.
pub(crate) const TEST_IMPRESSIONS: u32 = 4;

/// One FVC sample: database (1..=4), finger (0..10), impression (1..=8).
pub(crate) struct Sample {
    pub db: u32,
    pub finger: u32,
    pub impression: u32,
    pub template: Template,
    pub prepared: PreparedTemplate,
}

impl Sample {
    pub(crate) fn same_finger(&self, other: &Sample) -> bool {
        self.db == other.db && self.finger == other.finger
    }
}

/// The FVC2002 folder, or `None` (noted on stderr) when the data is absent.
pub(crate) fn data_dir() -> Option<PathBuf> {
    let dir = Path::new(DATA).join("fingerprints/fvc2002");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: ../shared/data/fingerprints/fvc2002 not found");
        None
    }
}

/// Path of one sample's file with extension `ext`.
pub(crate) fn sample_path(dir: &Path, db: u32, finger: u32, impression: u32, ext: &str) -> PathBuf {
    dir.join(format!("DB{db}_B/{}_{impression}.{ext}", 101 + finger))
}

fn sample(db: u32, finger: u32, impression: u32, template: Template) -> Sample {
    let prepared = PreparedTemplate::new(&template);
    Sample {
        db,
        finger,
        impression,
        template,
        prepared,
    }
}

/// Extracts impressions `1..=impressions` of every finger from the TIFF images, in parallel.
pub(crate) fn extract_images(dir: &Path, impressions: u32) -> Vec<Sample> {
    let keys: Vec<(u32, u32, u32)> = (1..=DBS)
        .flat_map(|db| (0..FINGERS).flat_map(move |f| (1..=impressions).map(move |i| (db, f, i))))
        .collect();
    keys.into_par_iter()
        .map(|(db, finger, impression)| {
            let bytes = std::fs::read(sample_path(dir, db, finger, impression, "tif")).unwrap();
            let template = extract(&decode_gray(&bytes).unwrap()).unwrap();
            sample(db, finger, impression, template)
        })
        .collect()
}

/// Impressions 1..=[`TEST_IMPRESSIONS`] extracted from the images, once per test run; `None` without data.
pub(crate) fn images() -> Option<&'static [Sample]> {
    static SAMPLES: OnceLock<Option<Vec<Sample>>> = OnceLock::new();
    SAMPLES
        .get_or_init(|| data_dir().map(|dir| extract_images(&dir, TEST_IMPRESSIONS)))
        .as_deref()
}

/// All 320 ISO templates (made by a commercial extractor from stretched images), or `None` without data.
pub(crate) fn iso_templates() -> Option<Vec<Sample>> {
    let dir = data_dir()?;
    let mut samples = Vec::new();
    for db in 1..=DBS {
        for finger in 0..FINGERS {
            for impression in 1..=8 {
                let bytes =
                    std::fs::read(sample_path(&dir, db, finger, impression, "iso")).unwrap();
                let record = parse_iso19794_2(&bytes).unwrap();
                let template = Template::from_view(
                    &record.views[0],
                    record.x_resolution_ppcm,
                    record.y_resolution_ppcm,
                );
                samples.push(sample(db, finger, impression, template));
            }
        }
    }
    Some(samples)
}

/// Calibrated scores of all pairs within each database: `(genuine, impostor)`.
fn pair_scores(samples: &[Sample]) -> (Vec<f32>, Vec<f32>) {
    let mut genuine = Vec::new();
    let mut impostor = Vec::new();
    for (k, a) in samples.iter().enumerate() {
        let m = Matcher::from_prepared(a.prepared.clone());
        for b in samples[k + 1..].iter().filter(|b| b.db == a.db) {
            let s = m.score(&b.prepared);
            if a.same_finger(b) {
                genuine.push(s);
            } else {
                impostor.push(s);
            }
        }
    }
    (genuine, impostor)
}

fn share_at_or_above(scores: &[f32], t: f32) -> f64 {
    scores.iter().filter(|&&s| s >= t).count() as f64 / scores.len().max(1) as f64
}

#[test]
fn extracted_templates_separate_mates_from_non_mates() {
    let Some(samples) = images() else { return };
    let counts: Vec<usize> = samples.iter().map(|s| s.template.minutiae.len()).collect();
    let mean = counts.iter().sum::<usize>() as f64 / counts.len() as f64;
    eprintln!(
        "minutiae per image: mean {mean:.1}, min {}, max {}",
        counts.iter().min().unwrap(),
        counts.iter().max().unwrap()
    );
    // FVC images hold roughly 20-80 true minutiae; far outside means the extractor is broken.
    assert!((20.0..70.0).contains(&mean), "{mean}");
    assert!(counts.iter().all(|&c| c >= 5), "{counts:?}");
    let (genuine, impostor) = pair_scores(samples);
    let accepted = share_at_or_above(&genuine, HIT_THRESHOLD);
    let false_matches = share_at_or_above(&impostor, HIT_THRESHOLD);
    eprintln!(
        "{} genuine pairs: {accepted:.3} at or above {HIT_THRESHOLD}; {} impostor pairs: {false_matches:.5}",
        genuine.len(),
        impostor.len()
    );
    assert_eq!((genuine.len(), impostor.len()), (240, 2880));
    // Measured 0.90 genuine acceptance at FMR 1e-4 on this subset; the threshold stands for FMR 1e-4.
    assert!(accepted >= 0.85, "{accepted}");
    assert!(false_matches <= 1e-3, "{false_matches}");
}

#[test]
fn iso_templates_of_another_extractor_are_matched() {
    let Some(samples) = iso_templates() else {
        return;
    };
    // Identification within each database: impression 1 enrolled, 2..=8 searched among the 10 fingers.
    let (mut probes, mut first) = (0, 0);
    for db in 1..=DBS {
        let enrolled: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.db == db && s.impression == 1)
            .collect();
        for p in samples.iter().filter(|s| s.db == db && s.impression > 1) {
            let m = Matcher::from_prepared(p.prepared.clone());
            let best = enrolled
                .iter()
                .max_by(|a, b| m.score(&a.prepared).total_cmp(&m.score(&b.prepared)))
                .unwrap();
            probes += 1;
            first += usize::from(best.same_finger(p));
        }
    }
    eprintln!("ISO templates: {first}/{probes} probes rank their own finger first");
    assert!(first * 100 >= probes * 95, "{first}/{probes}");
}

/// The raw score reached by a share `fmr` of `sorted` (descending) scores.
fn raw_at(sorted: &[f32], fmr: f64) -> f32 {
    sorted[((sorted.len() as f64 * fmr) as usize).min(sorted.len() - 1)]
}

#[test]
#[ignore = "calibration run: extracts and compares all 320 images; run in release with --ignored --nocapture"]
fn fvc_calibration() {
    let Some(dir) = data_dir() else { return };
    let samples = extract_images(&dir, 8);
    let matchers: Vec<Matcher> = samples
        .iter()
        .map(|s| Matcher::from_prepared(s.prepared.clone()))
        .collect();
    let rows: Vec<(Vec<f32>, Vec<f32>)> = (0..samples.len())
        .into_par_iter()
        .map(|k| {
            let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
            for b in &samples[k + 1..] {
                let raw = matchers[k].raw_score(&b.prepared);
                if samples[k].same_finger(b) {
                    genuine.push(raw);
                } else {
                    impostor.push(raw);
                }
            }
            (genuine, impostor)
        })
        .collect();
    let genuine: Vec<f32> = rows.iter().flat_map(|r| r.0.iter().copied()).collect();
    let mut impostor: Vec<f32> = rows.iter().flat_map(|r| r.1.iter().copied()).collect();
    impostor.sort_by(|a, b| b.total_cmp(a));
    eprintln!(
        "{} genuine and {} impostor pairs (within and across databases); highest impostor raw {:.2}",
        genuine.len(),
        impostor.len(),
        impostor[0]
    );
    let zero = impostor.iter().filter(|&&r| r <= 0.0).count();
    eprintln!(
        "{:.3} of impostor pairs score raw 0; measured knots (paste into calibration::KNOTS):\n    (0.0, 0.0),",
        zero as f64 / impostor.len() as f64
    );
    for half_decades in 1..=8 {
        let fmr = 10f64.powf(-0.5 * f64::from(half_decades));
        let raw = raw_at(&impostor, fmr);
        if raw > 0.0 {
            eprintln!("    ({raw:.2}, {:.1}),", 5.0 * f64::from(half_decades));
        }
    }
    // The calibrated scale must hold on the data it was measured on: FMR at each threshold within a factor of 2.
    let calibrated: Vec<f32> = impostor.iter().map(|&r| calibrate(r)).collect();
    for t in [20.0f32, 30.0, 40.0] {
        let measured = share_at_or_above(&calibrated, t);
        let nominal = crate::calibration::fmr_of(t);
        eprintln!("calibrated {t}: measured FMR {measured:.2e}, nominal {nominal:.2e}");
        assert!(measured <= 2.0 * nominal && measured >= nominal / 2.0);
    }
    let genuine_cal: Vec<f32> = genuine.iter().map(|&r| calibrate(r)).collect();
    for t in [30.0f32, 40.0, 50.0] {
        eprintln!(
            "genuine at or above {t}: {:.4}",
            share_at_or_above(&genuine_cal, t)
        );
    }
    assert_eq!(KNOTS[0], (0.0, 0.0));
}
