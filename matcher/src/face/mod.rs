//! Face matching on the box: detection, alignment, embedding, quality checks, 1:N search and fusion. No I/O.
//!
//! A photo goes through [`FaceEngine::analyze`]: decode (JPEG/PNG, EXIF orientation, bounded: [`decode`]), detect
//! faces with five landmarks (YuNet: [`detect`]), keep the best-scoring face, check its size, warp it onto the
//! recogniser's 112x112 template ([`align`]), check its blur ([`quality`]) and embed it (SFace, 128-d: [`embed`]).
//! Both networks are ONNX files run by tract (pure Rust, CPU); the library takes their bytes, the caller reads the
//! files (`scripts/fetch-models.sh` fetches and verifies them). Watchlists carry [`Embedding`]s, never photos; the
//! [`FaceIndex`] searches them exactly on int8 vectors; [`fusion`] turns face and fingerprint scores into one
//! false-match-rate-calibrated decision. See `docs/face.md` for measured accuracy and speed.

pub mod align;
pub mod decode;
pub mod detect;
pub mod embed;
pub mod embedding;
pub mod fusion;
pub mod index;
mod prelu;
pub mod quality;

#[cfg(test)]
mod tests_engine;
#[cfg(test)]
mod tests_parts;
#[cfg(test)]
pub(crate) mod tests_support;

use image::RgbImage;
use thiserror::Error;

pub use detect::Detection;
pub use embedding::{EMBEDDING_DIM, Embedding, EmbeddingDecodeError};
pub use fusion::{
    DecisionThresholds, FACE_MATCH_THRESHOLD, FaceDecision, Fusion, face_fmr, face_score, fuse,
    threshold_for_far,
};
pub use index::FaceIndex;
pub use quality::QualityIssue;

use align::Crop;
use detect::Detector;
use embed::Embedder;

/// Why a photo gave no embedding.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FaceError {
    /// The photo is readable but unfit for comparison; the text is meant for the officer.
    #[error("{0}")]
    Quality(QualityIssue),
    /// The bytes are not a usable JPEG or PNG photo.
    #[error("bad photo: {0}")]
    Image(String),
    /// A model could not be loaded or run (wrong file, corrupted bytes).
    #[error("face model: {0}")]
    Model(String),
}

/// Settings of the pipeline; [`FaceOptions::default`] is what the gateway uses and what `docs/face.md` measured.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceOptions {
    /// Side of the detector's square canvas (multiple of 32). Photos are shrunk to fit.
    pub detector_size: usize,
    /// Least detector score for a face.
    pub min_detection_score: f32,
    /// Average several samples per crop pixel when the face is larger than the crop.
    pub antialias: bool,
    /// Least distance between the eyes, pixels.
    pub min_eye_distance: f32,
    /// Most blur effect accepted (0 sharp .. 1 flat).
    pub max_blur: f32,
}

impl Default for FaceOptions {
    fn default() -> Self {
        Self {
            detector_size: 320,
            min_detection_score: 0.6,
            antialias: true,
            min_eye_distance: quality::MIN_EYE_DISTANCE,
            max_blur: quality::MAX_BLUR,
        }
    }
}

/// The result of analysing one photo.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceAnalysis {
    /// The face's embedding.
    pub embedding: Embedding,
    /// The detector's score for the face used.
    pub detection_score: f32,
    /// Things the officer should know that did not stop the comparison.
    pub notes: Vec<String>,
    /// Faces found in the photo.
    pub faces_found: usize,
    /// The face used, in photo pixels.
    pub face: Detection,
    /// Blur effect of the aligned face (0 sharp .. 1 flat).
    pub blur: f32,
}

/// The loaded models: build once, share between threads (`Send + Sync`; runs allocate their own state).
#[derive(Debug)]
pub struct FaceEngine {
    detector: Detector,
    embedder: Embedder,
    options: FaceOptions,
}

impl FaceEngine {
    /// Loads YuNet and SFace from their ONNX bytes with the default options.
    pub fn load(detector_onnx: &[u8], recogniser_onnx: &[u8]) -> Result<Self, FaceError> {
        Self::load_with(detector_onnx, recogniser_onnx, FaceOptions::default())
    }

    /// Loads with explicit options.
    pub fn load_with(
        detector_onnx: &[u8],
        recogniser_onnx: &[u8],
        options: FaceOptions,
    ) -> Result<Self, FaceError> {
        Ok(Self {
            detector: Detector::load(detector_onnx, options.detector_size)?,
            embedder: Embedder::load(recogniser_onnx)?,
            options,
        })
    }

    /// The options in use.
    pub fn options(&self) -> &FaceOptions {
        &self.options
    }

    /// Decodes a JPEG/PNG photo and analyses its best face.
    pub fn analyze(&self, image_bytes: &[u8]) -> Result<FaceAnalysis, FaceError> {
        self.analyze_photo(&decode::decode_photo(image_bytes)?)
    }

    /// Analyses the best face of a decoded photo.
    pub fn analyze_photo(&self, photo: &RgbImage) -> Result<FaceAnalysis, FaceError> {
        let faces = self.detect(photo)?;
        self.analyze_faces(photo, faces)
    }

    /// The second half of [`FaceEngine::analyze_photo`]: picks the best of the detected `faces` (best first, as
    /// [`FaceEngine::detect`] gives them), checks it and embeds it.
    pub fn analyze_faces(
        &self,
        photo: &RgbImage,
        faces: Vec<Detection>,
    ) -> Result<FaceAnalysis, FaceError> {
        let faces_found = faces.len();
        let Some(best) = faces.into_iter().next() else {
            return Err(FaceError::Quality(QualityIssue::NoFace));
        };
        let (embedding, blur) = self.embed_face(photo, &best)?;
        let mut notes = Vec::new();
        if faces_found > 1 {
            notes.push(format!(
                "{faces_found} faces found; used the highest-scoring one (detector score {:.2})",
                best.score
            ));
        }
        Ok(FaceAnalysis {
            embedding,
            detection_score: best.score,
            notes,
            faces_found,
            face: best,
            blur,
        })
    }

    /// All faces in the photo at or above the score threshold, best first.
    pub fn detect(&self, photo: &RgbImage) -> Result<Vec<Detection>, FaceError> {
        self.detector
            .detect(photo, self.options.min_detection_score)
    }

    /// Size check, alignment, blur check and embedding of one detected face; returns the embedding and blur.
    pub fn embed_face(
        &self,
        photo: &RgbImage,
        face: &Detection,
    ) -> Result<(Embedding, f32), FaceError> {
        let crop = self.checked_crop(photo, face)?;
        let blur = quality::blur_effect(&crop);
        if blur > self.options.max_blur {
            return Err(FaceError::Quality(QualityIssue::TooBlurred { blur }));
        }
        Ok((self.embedder.embed(&crop)?, blur))
    }

    /// The aligned crop of a face, after the size check.
    pub fn checked_crop(&self, photo: &RgbImage, face: &Detection) -> Result<Crop, FaceError> {
        let eye_distance = face.eye_distance();
        if eye_distance.is_nan() || eye_distance < self.options.min_eye_distance {
            return Err(FaceError::Quality(QualityIssue::TooSmall { eye_distance }));
        }
        align::align(photo, &face.landmarks, self.options.antialias)
            .ok_or(FaceError::Quality(QualityIssue::NoFace))
    }

    /// The embedding of an already aligned crop (parity tests, benchmarks).
    pub fn embed_crop(&self, crop: &Crop) -> Result<Embedding, FaceError> {
        self.embedder.embed(crop)
    }
}
