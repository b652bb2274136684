//! The face models on disk: where they are and how they are loaded. Shared by central (`watchlist import`, `serve`)
//! and the gateway (`[face] models_dir`), so both sides compute embeddings with the same networks.
//!
//! The files come from `scripts/fetch-models.sh` (a hash-pinned PyPI wheel, each file's sha256 checked); the
//! Debian package installs them in `/usr/share/hotspot-edge/models`.

use std::path::{Path, PathBuf};

use hotspot_matcher::face::{FaceEngine, FaceError};

/// The detector's file name.
pub const DETECTOR: &str = "face_detection_yunet_2023mar.onnx";
/// The recogniser's file name.
pub const RECOGNISER: &str = "face_recognition_sface_2021dec.onnx";
/// Both files, detector first.
pub const FILES: [&str; 2] = [DETECTOR, RECOGNISER];
/// Largest model file read.
const MAX_MODEL_BYTES: u64 = 256 * 1024 * 1024;

/// The models could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A file is missing or unreadable.
    #[error("face model {path}: {what} (run scripts/fetch-models.sh)")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
    /// The files do not load as the expected networks.
    #[error("face models in {dir}: {source}")]
    Load {
        /// The folder.
        dir: PathBuf,
        /// The loader's error.
        source: FaceError,
    },
}

/// Reads both models from `dir` and builds the engine (takes a second or two: call it once, at start).
pub fn load_face_engine(dir: &Path) -> Result<FaceEngine, ModelError> {
    let read = |name: &str| {
        let path = dir.join(name);
        crate::fsutil::read(&path, MAX_MODEL_BYTES).map_err(|e| ModelError::Read {
            path: path.clone(),
            what: e.to_string(),
        })
    };
    let (detector, recogniser) = (read(DETECTOR)?, read(RECOGNISER)?);
    FaceEngine::load(&detector, &recogniser).map_err(|source| ModelError::Load {
        dir: dir.to_owned(),
        source,
    })
}
