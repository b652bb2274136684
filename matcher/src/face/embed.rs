//! Face embedding: SFace (`face_recognition_sface_2021dec.onnx`) run by tract on aligned 112x112 crops.
//!
//! The network takes planar RGB values 0..255 (its first two nodes subtract 127.5 and scale) and gives 128 numbers,
//! which are normalised to unit length. Several crops can go through one run (batch), which amortises per-run costs.

use std::sync::Arc;

use tract_onnx::prelude::*;

use super::FaceError;
use super::align::{CROP, Crop};
use super::embedding::{EMBEDDING_DIM, Embedding};

/// The loaded recogniser.
#[derive(Debug)]
pub struct Embedder {
    plan: Arc<TypedRunnableModel>,
}

impl Embedder {
    /// Loads SFace from ONNX bytes, optimised for one crop per run.
    pub fn load(onnx: &[u8]) -> Result<Self, FaceError> {
        let mut loader = tract_onnx::onnx();
        super::prelu::register(&mut loader);
        let plan = loader
            .model_for_read(&mut std::io::Cursor::new(onnx))
            .and_then(|m| m.with_input_fact(0, f32::fact([1, 3, CROP, CROP]).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| FaceError::Model(format!("face recogniser: {e:#}")))?;
        Ok(Self { plan })
    }

    /// The embedding of one aligned crop.
    pub fn embed(&self, crop: &Crop) -> Result<Embedding, FaceError> {
        let mut data = vec![0f32; 3 * CROP * CROP];
        let (r, rest) = data.split_at_mut(CROP * CROP);
        let (g, b) = rest.split_at_mut(CROP * CROP);
        for (i, px) in crop.0.iter().enumerate() {
            r[i] = px[0];
            g[i] = px[1];
            b[i] = px[2];
        }
        let input = Tensor::from_shape(&[1, 3, CROP, CROP], &data).map_err(model_error)?;
        let outputs = self.plan.run(tvec!(input.into())).map_err(model_error)?;
        let first = outputs
            .first()
            .ok_or_else(|| FaceError::Model("face recogniser gave no output".into()))?;
        let values = first
            .try_as_plain_ram()
            .and_then(|v| v.as_slice::<f32>())
            .map_err(model_error)?;
        let raw: &[f32; EMBEDDING_DIM] = values.try_into().map_err(|_| {
            FaceError::Model(format!(
                "face recogniser gave {} values, expected 128",
                values.len()
            ))
        })?;
        Embedding::from_raw(raw)
            .ok_or_else(|| FaceError::Model("face recogniser gave a degenerate embedding".into()))
    }
}

fn model_error(e: impl std::fmt::Display) -> FaceError {
    FaceError::Model(format!("face recogniser: {e:#}"))
}
