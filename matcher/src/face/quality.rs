//! Face quality checks: the reasons a photo cannot give a trustworthy comparison, told to the officer.
//!
//! - No face: the detector found nothing at or above its score threshold.
//! - Too small: fewer than [`MIN_EYE_DISTANCE`] pixels between the eyes. The recogniser's crop has 35 px between
//!   the eyes; a face much smaller than that is upsampled, its identity detail was never captured.
//! - Too blurred: blur is measured on the aligned crop (so the same for every face size) with the "blur effect" of
//!   Crété-Roffet et al. (2007): blur the crop again with a 9-tap box filter and see how much of its gradient
//!   survives. A sharp face loses much of it, an already blurred one almost none. The measure is 0 (sharp) to 1
//!   (flat), independent of brightness and contrast; photos above [`MAX_BLUR`] are refused.
//!
//! Several faces is not a failure: the best-scoring one is used and a note says so.

use std::fmt;

use super::align::{CROP, Crop};

/// Least accepted distance between the eyes, in photo pixels.
pub const MIN_EYE_DISTANCE: f32 = 20.0;
/// Most accepted blur effect (0 sharp .. 1 flat) of the aligned crop.
pub const MAX_BLUR: f32 = 0.6;
/// The region of the crop the blur is measured on (brows to chin, cheek to cheek): `[x0, y0, x1, y1)`.
const FACE_REGION: [usize; 4] = [24, 32, 88, 108];
/// Length of the re-blur filter.
const REBLUR: usize = 9;

/// Why a face photo cannot be compared.
#[derive(Debug, Clone, PartialEq)]
pub enum QualityIssue {
    /// No face found.
    NoFace,
    /// The face is too small in the photo.
    TooSmall {
        /// Measured distance between the eyes, pixels.
        eye_distance: f32,
    },
    /// The face is too blurred.
    TooBlurred {
        /// Measured blur effect, 0 (sharp) to 1 (flat).
        blur: f32,
    },
}

impl fmt::Display for QualityIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoFace => write!(
                f,
                "no face found in the photo: retake it facing the camera, face fully visible"
            ),
            Self::TooSmall { eye_distance } => write!(
                f,
                "face too small: {eye_distance:.0} pixels between the eyes, at least {MIN_EYE_DISTANCE:.0} needed: \
                 move closer or zoom in"
            ),
            Self::TooBlurred { blur } => write!(
                f,
                "face too blurred (blur {blur:.2}, at most {MAX_BLUR:.2} accepted): hold the camera still, check focus"
            ),
        }
    }
}

/// The blur effect of the crop's face region: 0 (sharp) to 1 (no detail at all).
pub fn blur_effect(crop: &Crop) -> f32 {
    let grey = crop.grey();
    let [x0, y0, x1, y1] = FACE_REGION;
    let at = |x: usize, y: usize| grey[y * CROP + x];
    // Mean of REBLUR samples centred on (x, y) along one axis (the region leaves room for the filter).
    let half = REBLUR / 2;
    let box_h =
        |x: usize, y: usize| (x - half..=x + half).map(|i| at(i, y)).sum::<f32>() / REBLUR as f32;
    let box_v =
        |x: usize, y: usize| (y - half..=y + half).map(|j| at(x, j)).sum::<f32>() / REBLUR as f32;
    let (mut sum_h, mut lost_h, mut sum_v, mut lost_v) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
    for y in y0..y1 {
        for x in x0..x1 {
            let d = (at(x, y) - at(x - 1, y)).abs();
            let db = (box_h(x, y) - box_h(x - 1, y)).abs();
            sum_h += d;
            lost_h += (d - db).max(0.0);
            let d = (at(x, y) - at(x, y - 1)).abs();
            let db = (box_v(x, y) - box_v(x, y - 1)).abs();
            sum_v += d;
            lost_v += (d - db).max(0.0);
        }
    }
    let ratio = |sum: f32, lost: f32| if sum > 0.0 { (sum - lost) / sum } else { 1.0 };
    ratio(sum_h, lost_h).max(ratio(sum_v, lost_v))
}
