//! Face detection with landmarks: YuNet (`face_detection_yunet_2023mar.onnx`) run by tract.
//!
//! The photo is shrunk (never enlarged) to fit a square canvas of [`FaceOptions::detector_size`] pixels, placed at
//! the top-left and padded with zeros, as OpenCV's `FaceDetectorYN` pads to a multiple of 32. One fixed canvas means
//! one optimised plan, built once at load. The network sees BGR values 0..255 (what it was trained on). Its outputs
//! are decoded as `FaceDetectorYN` does: per stride (8, 16, 32) and grid cell, score = sqrt(cls * obj), box centre and
//! landmarks as offsets in cell units, box size as exp(.) * stride; then non-maximum suppression (IoU 0.3). Results
//! are in the original photo's pixel coordinates.
//!
//! [`FaceOptions::detector_size`]: super::FaceOptions::detector_size

use image::RgbImage;
use image::imageops;
use tract_onnx::prelude::*;

use super::FaceError;

/// The detector's strides, in the order of its outputs.
const STRIDES: [usize; 3] = [8, 16, 32];
/// Overlap above which the weaker of two detections is dropped (OpenCV's default).
const NMS_IOU: f32 = 0.3;

/// One detected face, in photo pixel coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Detector confidence, 0..1.
    pub score: f32,
    /// Box: left, top, width, height.
    pub bbox: [f32; 4],
    /// Right eye, left eye, nose tip, right and left mouth corners (the subject's right is the image's left).
    pub landmarks: [[f32; 2]; 5],
}

impl Detection {
    /// Distance between the eyes in pixels.
    pub fn eye_distance(&self) -> f32 {
        let [r, l] = [self.landmarks[0], self.landmarks[1]];
        (r[0] - l[0]).hypot(r[1] - l[1])
    }
}

/// The loaded detector for one canvas size.
#[derive(Debug)]
pub struct Detector {
    plan: Arc<TypedRunnableModel>,
    size: usize,
}

impl Detector {
    /// Loads YuNet from ONNX bytes for a square canvas of `size` pixels (a multiple of 32).
    pub fn load(onnx: &[u8], size: usize) -> Result<Self, FaceError> {
        if size == 0 || !size.is_multiple_of(32) {
            return Err(FaceError::Model(format!(
                "detector size {size} is not a positive multiple of 32"
            )));
        }
        // The file declares 640x640 shapes for its output and intermediate values; the canvas size overrides them.
        let plan = tract_onnx::onnx()
            .with_ignore_output_shapes(true)
            .with_ignore_value_info(true)
            .model_for_read(&mut std::io::Cursor::new(onnx))
            .and_then(|m| m.with_input_fact(0, f32::fact([1, 3, size, size]).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| FaceError::Model(format!("face detector: {e:#}")))?;
        Ok(Self { plan, size })
    }

    /// Canvas side in pixels.
    pub fn size(&self) -> usize {
        self.size
    }

    /// All faces scoring at least `min_score`, best first.
    pub fn detect(&self, photo: &RgbImage, min_score: f32) -> Result<Vec<Detection>, FaceError> {
        let (input, scale) = self.canvas(photo)?;
        let outputs = self
            .plan
            .run(tvec!(input.into()))
            .map_err(|e| FaceError::Model(format!("face detector: {e:#}")))?;
        let mut faces = decode(&outputs, self.size, min_score)?;
        faces = non_max_suppression(faces);
        for face in &mut faces {
            for v in face.bbox.iter_mut() {
                *v /= scale;
            }
            for p in face.landmarks.iter_mut().flatten() {
                *p /= scale;
            }
        }
        Ok(faces)
    }

    /// The detector input (planar BGR, 0..255, zero padded) and the photo-to-canvas scale.
    fn canvas(&self, photo: &RgbImage) -> Result<(Tensor, f32), FaceError> {
        let (w, h) = photo.dimensions();
        let scale = (self.size as f32 / w.max(h) as f32).min(1.0);
        let shrunk;
        let src = if scale < 1.0 {
            let tw = ((w as f32 * scale).round() as u32).clamp(1, self.size as u32);
            let th = ((h as f32 * scale).round() as u32).clamp(1, self.size as u32);
            shrunk = imageops::thumbnail(photo, tw, th);
            &shrunk
        } else {
            photo
        };
        // The exact scale after rounding, so that coordinates map back precisely (x and y differ by < 1 px).
        let scale = if scale < 1.0 {
            src.width() as f32 / w as f32
        } else {
            1.0
        };
        let n = self.size;
        let mut data = vec![0f32; 3 * n * n];
        let (bgr_b, rest) = data.split_at_mut(n * n);
        let (bgr_g, bgr_r) = rest.split_at_mut(n * n);
        for (y, row) in src.rows().enumerate() {
            for (x, px) in row.enumerate() {
                let i = y * n + x;
                bgr_r[i] = f32::from(px[0]);
                bgr_g[i] = f32::from(px[1]);
                bgr_b[i] = f32::from(px[2]);
            }
        }
        let tensor = Tensor::from_shape(&[1, 3, n, n], &data)
            .map_err(|e| FaceError::Model(format!("face detector input: {e:#}")))?;
        Ok((tensor, scale))
    }
}

/// Decodes YuNet's 12 outputs (cls, obj, bbox, kps; each for strides 8, 16, 32) into canvas coordinates.
fn decode(outputs: &[TValue], size: usize, min_score: f32) -> Result<Vec<Detection>, FaceError> {
    if outputs.len() != 12 {
        return Err(FaceError::Model(format!(
            "face detector gave {} outputs, expected 12",
            outputs.len()
        )));
    }
    let view = |i: usize| {
        (outputs[i]
            .try_as_plain_ram()
            .and_then(|v| v.as_slice::<f32>()))
        .map_err(|e| FaceError::Model(format!("face detector output {i}: {e}")))
    };
    let mut faces = Vec::new();
    for (s, &stride) in STRIDES.iter().enumerate() {
        let cols = size / stride;
        let cells = cols * cols;
        let (cls, obj, bbox, kps) = (view(s)?, view(s + 3)?, view(s + 6)?, view(s + 9)?);
        if cls.len() != cells
            || obj.len() != cells
            || bbox.len() != 4 * cells
            || kps.len() != 10 * cells
        {
            return Err(FaceError::Model(format!(
                "face detector outputs for stride {stride} have unexpected sizes"
            )));
        }
        let st = stride as f32;
        for idx in 0..cells {
            let score = (cls[idx].clamp(0.0, 1.0) * obj[idx].clamp(0.0, 1.0)).sqrt();
            if score.is_nan() || score < min_score {
                continue;
            }
            let (r, c) = ((idx / cols) as f32, (idx % cols) as f32);
            let b = &bbox[4 * idx..4 * idx + 4];
            let (cx, cy) = ((c + b[0]) * st, (r + b[1]) * st);
            let (w, h) = (b[2].exp() * st, b[3].exp() * st);
            let k = &kps[10 * idx..10 * idx + 10];
            let mut landmarks = [[0.0; 2]; 5];
            for (n, lm) in landmarks.iter_mut().enumerate() {
                *lm = [(k[2 * n] + c) * st, (k[2 * n + 1] + r) * st];
            }
            faces.push(Detection {
                score,
                bbox: [cx - w / 2.0, cy - h / 2.0, w, h],
                landmarks,
            });
        }
    }
    Ok(faces)
}

/// Greedy non-maximum suppression; the result is sorted best first.
fn non_max_suppression(mut faces: Vec<Detection>) -> Vec<Detection> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for face in faces {
        if kept.iter().all(|k| iou(&k.bbox, &face.bbox) <= NMS_IOU) {
            kept.push(face);
        }
    }
    kept
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let ix = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let iy = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    if ix <= 0.0 || iy <= 0.0 {
        return 0.0;
    }
    let inter = ix * iy;
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}
