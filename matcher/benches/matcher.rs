//! Benchmarks of extraction and comparison on FVC2002 images (`../shared/data`; without it, on synthetic images
//! and templates, noted on stderr).
//!
//! - `extract`: one 500 ppi image to a template.
//! - `compare_1n`: one probe, prepared once, against a gallery of templates (the 1:N inner loop), reported per
//!   comparison; `compare_1n_baseline` is the same loop with the probe prepared again for every candidate (what a
//!   naive 1:1 API costs), measured in the same run for the ratio.
//! - `search_index`: a whole `FingerprintIndex::search` over the gallery, on all cores.
//!
//! Run: `CARGO_TARGET_DIR=/tmp/target-matcher cargo bench -p hotspot-matcher --bench matcher`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hotspot_device_protocols::image::{GrayImage, decode_gray};
use hotspot_matcher::extract::extract;
use hotspot_matcher::{FingerprintIndex, Matcher, PreparedTemplate, Scratch, Subject, Template};

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/fingerprints/fvc2002"
);

/// FVC2002 DB1 set B images, or synthetic ridge images when the data is absent.
fn images() -> Vec<GrayImage> {
    let dir = Path::new(DATA).join("DB1_B");
    if dir.is_dir() {
        let mut out = Vec::new();
        for finger in 101..=110 {
            for impression in 1..=8 {
                let bytes = std::fs::read(dir.join(format!("{finger}_{impression}.tif"))).unwrap();
                out.push(decode_gray(&bytes).unwrap());
            }
        }
        return out;
    }
    eprintln!("../shared/data not found: benchmarking synthetic ridge images");
    (0..80)
        .map(|k| {
            let (w, h) = (388u32, 374u32);
            let pixels = (0..w * h)
                .map(|i| {
                    let (x, y) = ((i % w) as f32, (i / w) as f32);
                    let phase = (x * (0.5 + 0.01 * k as f32) + y * 0.8) / 9.0
                        + ((y - 180.0).atan2(x - 190.0 - k as f32)) / std::f32::consts::TAU;
                    (128.0 + 100.0 * (std::f32::consts::TAU * phase).cos()) as u8
                })
                .collect();
            GrayImage {
                width: w,
                height: h,
                ppi: None,
                pixels,
            }
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let images = images();
    let templates: Vec<Template> = images.iter().map(|i| extract(i).unwrap()).collect();
    let gallery: Vec<PreparedTemplate> = templates.iter().map(PreparedTemplate::new).collect();

    let mut group = c.benchmark_group("extract");
    group.throughput(Throughput::Elements(1));
    group.bench_function("fvc2002_db1_image", |b| {
        let mut k = 0;
        b.iter(|| {
            k = (k + 1) % images.len();
            black_box(extract(&images[k]).unwrap())
        });
    });
    group.finish();

    let mut group = c.benchmark_group("compare_1n");
    group.throughput(Throughput::Elements(gallery.len() as u64));
    let probe = Matcher::new(&templates[0]);
    group.bench_function("prepared_probe", |b| {
        let mut scratch = Scratch::default();
        b.iter(|| {
            let mut sum = 0.0;
            for g in &gallery {
                sum += probe.score_with(g, &mut scratch);
            }
            black_box(sum)
        });
    });
    group.bench_function("baseline_probe_prepared_per_candidate", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for g in &gallery {
                sum += hotspot_matcher::compare(&PreparedTemplate::new(&templates[0]), g);
            }
            black_box(sum)
        });
    });
    group.finish();

    let subjects: Vec<Subject> = templates
        .iter()
        .enumerate()
        .map(|(k, t)| Subject {
            subject_id: format!("s{k}"),
            fingers: vec![(0, t.clone())],
        })
        .collect();
    let index = FingerprintIndex::build(subjects);
    let mut group = c.benchmark_group("search_index");
    group.throughput(Throughput::Elements(index.len() as u64));
    group.bench_function("one_finger_all_cores", |b| {
        b.iter(|| black_box(index.search(&[(0, templates[1].clone())], 5)));
    });
    group.finish();
}

criterion_group!(matcher, benches);
criterion_main!(matcher);
