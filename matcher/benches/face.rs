//! Benchmarks of the face pipeline (`hotspot_matcher::face`) and of the 1:N face index.
//!
//! - `face_decode_jpeg`: `decode::decode_photo` of that photo (1536x1152 JPEG, 339 KiB);
//! - `face_detect`: YuNet on one decoded photo (1536x1152 JPEG of `../shared/data/faces`), shrink included;
//! - `face_embed`: size check, alignment, blur check and SFace for the detected face;
//! - `face_analyze_jpeg`: the whole `FaceEngine::analyze` from JPEG bytes (decoding included);
//! - `face_index_1m/int8_{1,2}_threads`: `FaceIndex::search` (k = 10) over 1 000 000 random 128-d embeddings;
//!   `face_index_1m/f32_baseline_1_thread` is exact `f32` cosine brute force over the same vectors, measured in the
//!   same run for the ratio.
//!
//! Models: `$HOTSPOT_MODELS_DIR`, else `<repo>/models` (`scripts/fetch-models.sh`); without them (or without the
//! photos) the model benchmarks are skipped with a note on stderr and the index benchmarks still run.
//! Run: `CARGO_TARGET_DIR=/tmp/target-face cargo bench -p hotspot-matcher --bench face`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use hotspot_matcher::face::decode::decode_photo;
use hotspot_matcher::face::{EMBEDDING_DIM, Embedding, FaceEngine, FaceIndex};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn engine_and_photo() -> Option<(FaceEngine, Vec<u8>)> {
    let models = std::env::var_os("HOTSPOT_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(REPO).join("models"));
    let det = std::fs::read(models.join("face_detection_yunet_2023mar.onnx"));
    let rec = std::fs::read(models.join("face_recognition_sface_2021dec.onnx"));
    let photo =
        std::fs::read(PathBuf::from(REPO).join("../shared/data/faces/deepface-pairs/img2.jpg"));
    match (det, rec, photo) {
        (Ok(d), Ok(r), Ok(p)) => Some((FaceEngine::load(&d, &r).unwrap(), p)),
        _ => {
            eprintln!(
                "face models or photos not found: skipping the model benchmarks (scripts/fetch-models.sh)"
            );
            None
        }
    }
}

fn models(c: &mut Criterion) {
    let Some((engine, jpeg)) = engine_and_photo() else {
        return;
    };
    let photo = decode_photo(&jpeg).unwrap();
    let faces = engine.detect(&photo).unwrap();
    let face = faces.first().unwrap().clone();
    let mut group = c.benchmark_group("face");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("face_decode_jpeg", |b| {
        b.iter(|| decode_photo(black_box(&jpeg)).unwrap())
    });
    group.bench_function("face_detect", |b| {
        b.iter(|| engine.detect(black_box(&photo)).unwrap())
    });
    group.bench_function("face_embed", |b| {
        b.iter(|| engine.embed_face(black_box(&photo), &face).unwrap())
    });
    group.bench_function("face_analyze_jpeg", |b| {
        b.iter(|| engine.analyze(black_box(&jpeg)).unwrap())
    });
    group.finish();
}

fn random_embeddings(n: usize, seed: u64) -> Vec<Embedding> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let raw: [f32; EMBEDDING_DIM] = std::array::from_fn(|_| rng.random_range(-1.0..1.0));
            Embedding::from_raw(&raw).unwrap()
        })
        .collect()
}

fn index(c: &mut Criterion) {
    const N: usize = 1_000_000;
    let gallery = random_embeddings(N, 1);
    let probe = random_embeddings(1, 2).remove(0);
    let flat: Vec<f32> = gallery
        .iter()
        .flat_map(|e| e.as_slice().iter().copied())
        .collect();
    let entries: Vec<(String, Embedding)> = gallery
        .into_iter()
        .enumerate()
        .map(|(i, e)| (format!("subject-{i}"), e))
        .collect();
    let index = FaceIndex::build(entries);
    let mut group = c.benchmark_group("face_index_1m");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    for threads in [1, 2] {
        let index = index
            .clone()
            .with_threads(NonZeroUsize::new(threads).unwrap());
        group.bench_function(format!("int8_{threads}_threads"), |b| {
            b.iter(|| index.search(black_box(&probe), 10))
        });
    }
    group.bench_function("f32_baseline_1_thread", |b| {
        b.iter(|| {
            let p = black_box(probe.as_slice());
            let mut best = (usize::MAX, f32::NEG_INFINITY);
            for (i, row) in flat.chunks_exact(EMBEDDING_DIM).enumerate() {
                let s: f32 = row.iter().zip(p).map(|(a, b)| a * b).sum();
                if s > best.1 {
                    best = (i, s);
                }
            }
            best
        })
    });
    group.finish();
}

criterion_group!(benches, models, index);
criterion_main!(benches);
