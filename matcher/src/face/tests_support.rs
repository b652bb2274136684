//! Test helpers: where the models and the shared face photos are, and skipping (or failing in CI) without them.
//!
//! Models: `$HOTSPOT_MODELS_DIR`, else `<repo>/models` (`scripts/fetch-models.sh`). When they are absent a test
//! prints why and returns, unless `CI` is set: then it fails, because CI must fetch them.
//! Photos: `<repo>/../shared/data/faces`; when absent a test prints why and returns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::OnceLock;

use super::FaceEngine;

pub const DETECTOR: &str = "face_detection_yunet_2023mar.onnx";
pub const RECOGNISER: &str = "face_recognition_sface_2021dec.onnx";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The models folder.
pub fn models_dir() -> PathBuf {
    std::env::var_os("HOTSPOT_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("models"))
}

/// Both model files' bytes, or `None` (after saying why) when absent outside CI.
pub fn model_bytes() -> Option<(Vec<u8>, Vec<u8>)> {
    let dir = models_dir();
    match (
        std::fs::read(dir.join(DETECTOR)),
        std::fs::read(dir.join(RECOGNISER)),
    ) {
        (Ok(d), Ok(r)) => Some((d, r)),
        (d, r) => {
            let what = format!(
                "face models not found in {} ({}): run scripts/fetch-models.sh",
                dir.display(),
                d.err()
                    .or(r.err())
                    .map(|e| e.to_string())
                    .unwrap_or_default()
            );
            if std::env::var_os("CI").is_some() {
                panic!("{what} (CI is set, so this is a failure)");
            }
            eprintln!("SKIPPED: {what}");
            None
        }
    }
}

/// One engine shared by all tests (loading optimises both networks, which takes a while in debug builds).
pub fn engine() -> Option<&'static FaceEngine> {
    static ENGINE: OnceLock<Option<FaceEngine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            model_bytes().map(|(d, r)| FaceEngine::load(&d, &r).expect("the verified models load"))
        })
        .as_ref()
}

/// The shared face photos folder, or `None` (after saying why).
pub fn faces_dir() -> Option<PathBuf> {
    let dir = repo().join("../shared/data/faces");
    if dir.join("faceapi-bbt").is_dir() && dir.join("deepface-pairs").is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: face photos not found in {}", dir.display());
        None
    }
}

/// Bytes of a photo under the shared faces folder.
pub fn photo(dir: &std::path::Path, rel: &str) -> Vec<u8> {
    std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}
