//! Local ridge period (pixels from one ridge to the next). For each foreground block, the along-ridge smoothed image
//! is sampled on a line across the ridges through the block centre; the first clear peak of that signature's
//! autocorrelation is the period. Blocks without a clear peak (noise, cores, creases) take a weighted mean of their
//! neighbours' estimates, and the image's median where no neighbour has one.

use super::blocks::{BLOCK, BlockMap, Orientation};
use super::enhance::{MAX_PERIOD, MIN_PERIOD};
use super::plane::Plane;

/// Half length of the signature, pixels.
const HALF: isize = 20;
/// Lag range searched (pixels).
const MIN_LAG: usize = 4;
const MAX_LAG: usize = 16;
/// Normalised autocorrelation a peak needs to count.
const MIN_PEAK: f32 = 0.25;
/// Period assumed when nothing in the image gives one (typical at 500 ppi).
const DEFAULT_PERIOD: f32 = 9.0;
/// Neighbourhood radius (blocks) of the smoothing of estimates.
const SMOOTH_RADIUS: isize = 2;

/// The ridge period per block (foreground blocks; background blocks hold the image median).
pub(crate) fn periods(
    smoothed: &Plane,
    orientation: &Orientation,
    mask: &BlockMap<bool>,
) -> BlockMap<f32> {
    let (w, h) = (mask.width, mask.height);
    let mut raw = BlockMap::filled(w, h, (0.0f32, 0.0f32));
    for by in 0..h {
        for bx in 0..w {
            if mask.get(bx, by) {
                raw.set(bx, by, estimate(smoothed, orientation, bx, by));
            }
        }
    }
    let mut valid: Vec<f32> = raw.data.iter().filter(|e| e.1 > 0.0).map(|e| e.0).collect();
    valid.sort_by(f32::total_cmp);
    let median = valid
        .get(valid.len() / 2)
        .copied()
        .unwrap_or(DEFAULT_PERIOD);
    let mut out = BlockMap::filled(w, h, median);
    for by in 0..h as isize {
        for bx in 0..w as isize {
            if !mask.get(bx as usize, by as usize) {
                continue;
            }
            let (mut sum, mut weight) = (0.0, 0.0);
            for dy in -SMOOTH_RADIUS..=SMOOTH_RADIUS {
                for dx in -SMOOTH_RADIUS..=SMOOTH_RADIUS {
                    let (x, y) = (bx + dx, by + dy);
                    if x < 0 || y < 0 || x >= w as isize || y >= h as isize {
                        continue;
                    }
                    let (p, c) = raw.get(x as usize, y as usize);
                    let k = c / (1.0 + (dx * dx + dy * dy) as f32);
                    sum += k * p;
                    weight += k;
                }
            }
            if weight > 0.0 {
                out.set(bx as usize, by as usize, sum / weight);
            }
        }
    }
    out
}

/// `(period, confidence)` of one block; confidence 0 when no clear peak.
fn estimate(smoothed: &Plane, orientation: &Orientation, bx: usize, by: usize) -> (f32, f32) {
    let (cx, cy) = ((bx * BLOCK) as f32 + 4.0, (by * BLOCK) as f32 + 4.0);
    let angle = orientation.angle.get(bx, by);
    let (nx, ny) = (-angle.sin(), angle.cos());
    let mut signature = [0.0f32; (2 * HALF + 1) as usize];
    for (s, k) in signature.iter_mut().zip(-HALF..=HALF) {
        *s = smoothed.bilinear(cx + k as f32 * nx, cy + k as f32 * ny);
    }
    let mean = signature.iter().sum::<f32>() / signature.len() as f32;
    for s in &mut signature {
        *s -= mean;
    }
    let correlation = |lag: usize| -> f32 {
        let n = signature.len() - lag;
        signature[..n]
            .iter()
            .zip(&signature[lag..])
            .map(|(a, b)| a * b)
            .sum::<f32>()
            / n as f32
    };
    let zero = correlation(0);
    if zero <= f32::EPSILON {
        return (0.0, 0.0);
    }
    let r: Vec<f32> = (0..=MAX_LAG + 1).map(|l| correlation(l) / zero).collect();
    // The first local maximum after the first dip below zero.
    let Some(dip) = (1..MAX_LAG).find(|&l| r[l] < 0.0) else {
        return (0.0, 0.0);
    };
    let Some(peak) = (dip.max(MIN_LAG)..=MAX_LAG).find(|&l| r[l] >= r[l - 1] && r[l] >= r[l + 1])
    else {
        return (0.0, 0.0);
    };
    if r[peak] < MIN_PEAK {
        return (0.0, 0.0);
    }
    // Parabolic refinement.
    let (a, b, c) = (r[peak - 1], r[peak], r[peak + 1]);
    let denominator = a - 2.0 * b + c;
    let shift = if denominator.abs() > f32::EPSILON {
        (0.5 * (a - c) / denominator).clamp(-0.5, 0.5)
    } else {
        0.0
    };
    let period = (peak as f32 + shift).clamp(MIN_PERIOD, MAX_PERIOD);
    (period, r[peak])
}
