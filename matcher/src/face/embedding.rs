//! The face embedding: 128 numbers of unit length from SFace, compared by cosine similarity.
//!
//! Watchlists ship embeddings, never photos, so the encoding is compact and versioned: one format byte, one model
//! byte (embeddings of different models are not comparable, so a gallery made with another model is refused, not
//! silently mismatched), a positive `f32` scale and the 128 components quantised to `i8` (134 bytes). Quantisation
//! changes a cosine by well under 0.01 (tested), far below the distance between the decision thresholds.

use thiserror::Error;

/// Number of components of an embedding.
pub const EMBEDDING_DIM: usize = 128;
/// Length of [`Embedding::encode`]'s output.
pub const ENCODED_LEN: usize = 2 + 4 + EMBEDDING_DIM;
/// Format byte of the current encoding (int8 components with one scale).
const FORMAT_INT8_V1: u8 = 1;
/// Model byte: SFace `face_recognition_sface_2021dec.onnx`.
pub const MODEL_SFACE_2021DEC: u8 = 1;

/// Why bytes are not an embedding.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EmbeddingDecodeError {
    /// Wrong length.
    #[error("a face embedding is {ENCODED_LEN} bytes, got {0}")]
    Length(usize),
    /// Unknown format byte.
    #[error("unknown face embedding format {0} (this build reads format {FORMAT_INT8_V1})")]
    Format(u8),
    /// Made by another model.
    #[error(
        "face embedding made by model {0}, this build compares model {MODEL_SFACE_2021DEC} (SFace 2021dec)"
    )]
    Model(u8),
    /// Scale not a positive finite number, or all components zero.
    #[error("face embedding has an invalid scale or is all zeros")]
    Degenerate,
}

/// A unit-length face embedding (SFace, 128-d). Compare two with [`Embedding::cosine`].
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding([f32; EMBEDDING_DIM]);

impl Embedding {
    /// Normalises `values` to unit length; `None` if any value is not finite or all are zero.
    pub fn from_raw(values: &[f32; EMBEDDING_DIM]) -> Option<Self> {
        if values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm <= f32::MIN_POSITIVE {
            return None;
        }
        let mut out = [0.0; EMBEDDING_DIM];
        for (o, v) in out.iter_mut().zip(values) {
            *o = v / norm;
        }
        Some(Self(out))
    }

    /// The unit-length components.
    pub fn as_slice(&self) -> &[f32; EMBEDDING_DIM] {
        &self.0
    }

    /// Cosine similarity in -1..=1 (both are unit length, so this is the dot product).
    pub fn cosine(&self, other: &Embedding) -> f32 {
        self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum()
    }

    /// Components quantised to `i8` and the scale that maps them back (`value ~= q * scale`).
    pub(crate) fn quantise(&self) -> ([i8; EMBEDDING_DIM], f32) {
        let max = self.0.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        let mut q = [0i8; EMBEDDING_DIM];
        for (o, v) in q.iter_mut().zip(&self.0) {
            // |v / scale| <= 127 by construction, so the cast cannot saturate.
            *o = (v / scale).round().clamp(-127.0, 127.0) as i8;
        }
        (q, scale)
    }

    /// Compact versioned bytes ([`ENCODED_LEN`] long) for watchlists.
    pub fn encode(&self) -> Vec<u8> {
        let (q, scale) = self.quantise();
        let mut out = Vec::with_capacity(ENCODED_LEN);
        out.push(FORMAT_INT8_V1);
        out.push(MODEL_SFACE_2021DEC);
        out.extend_from_slice(&scale.to_le_bytes());
        out.extend(q.iter().map(|v| v.to_le_bytes()[0]));
        out
    }

    /// Reads [`Embedding::encode`]'s bytes; the result is unit length again.
    pub fn decode(bytes: &[u8]) -> Result<Self, EmbeddingDecodeError> {
        if bytes.len() != ENCODED_LEN {
            return Err(EmbeddingDecodeError::Length(bytes.len()));
        }
        let (head, body) = bytes.split_at(6);
        let [format, model, s0, s1, s2, s3] =
            [head[0], head[1], head[2], head[3], head[4], head[5]];
        if format != FORMAT_INT8_V1 {
            return Err(EmbeddingDecodeError::Format(format));
        }
        if model != MODEL_SFACE_2021DEC {
            return Err(EmbeddingDecodeError::Model(model));
        }
        let scale = f32::from_le_bytes([s0, s1, s2, s3]);
        if !(scale.is_finite() && scale > 0.0) {
            return Err(EmbeddingDecodeError::Degenerate);
        }
        let mut raw = [0.0f32; EMBEDDING_DIM];
        for (o, b) in raw.iter_mut().zip(body) {
            *o = f32::from(i8::from_le_bytes([*b])) * scale;
        }
        Self::from_raw(&raw).ok_or(EmbeddingDecodeError::Degenerate)
    }
}
