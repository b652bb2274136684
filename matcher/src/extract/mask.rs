//! Segmentation: which blocks show finger ridges. A block is foreground when its gradient energy is a fair share
//! of the image's strong-ridge energy (a relative rule, so it holds across sensors and contrasts); the result is
//! cleaned into one solid region: small specks dropped, holes filled, the outline smoothed.

use super::blocks::{BlockMap, Tensor};

/// Energy below this share of the 95th-percentile block energy is background.
const RELATIVE_ENERGY: f32 = 0.12;
/// Mean squared Sobel gradient below which a block is background whatever the image (a blank or flat image).
const ABSOLUTE_ENERGY: f32 = 150.0;
/// Foreground regions smaller than this share of the largest are dropped.
const MIN_REGION_SHARE: f32 = 0.2;
/// Majority-vote smoothing passes over the outline.
const SMOOTHING_PASSES: usize = 3;

/// The foreground mask of a block tensor map (unsmoothed tensors).
pub(crate) fn segment(tensors: &BlockMap<Tensor>) -> BlockMap<bool> {
    let energy = smoothed_energy(tensors);
    let mut sorted = energy.data.clone();
    sorted.sort_by(f32::total_cmp);
    let high = sorted
        .get(sorted.len() * 95 / 100)
        .copied()
        .unwrap_or_default();
    let threshold = (RELATIVE_ENERGY * high).max(ABSOLUTE_ENERGY);
    let mut mask = BlockMap {
        width: energy.width,
        height: energy.height,
        data: energy.data.iter().map(|&e| e > threshold).collect(),
    };
    keep_large_regions(&mut mask);
    fill_holes(&mut mask);
    for _ in 0..SMOOTHING_PASSES {
        mask = majority(&mask);
    }
    keep_large_regions(&mut mask);
    fill_holes(&mut mask);
    mask
}

/// Block energy (trace of the tensor) averaged over 3x3 blocks.
fn smoothed_energy(t: &BlockMap<Tensor>) -> BlockMap<f32> {
    let mut out = BlockMap::filled(t.width, t.height, 0.0f32);
    for by in 0..t.height as isize {
        for bx in 0..t.width as isize {
            let mut sum = 0.0;
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let b = t.get_clamped(bx + dx, by + dy);
                    sum += b.xx + b.yy;
                }
            }
            out.set(bx as usize, by as usize, sum / 9.0);
        }
    }
    out
}

/// Labels 4-connected regions of blocks equal to `value`; returns labels (0 = other value) and region sizes
/// (index `label - 1`).
fn regions(mask: &BlockMap<bool>, value: bool) -> (Vec<u32>, Vec<usize>) {
    let (w, h) = (mask.width, mask.height);
    let mut labels = vec![0u32; w * h];
    let mut sizes = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if mask.data[start] != value || labels[start] != 0 {
            continue;
        }
        let label = sizes.len() as u32 + 1;
        let mut size = 0;
        labels[start] = label;
        stack.push(start);
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = (i % w, i / w);
            let neighbours = [
                (x > 0).then(|| i - 1),
                (x + 1 < w).then(|| i + 1),
                (y > 0).then(|| i - w),
                (y + 1 < h).then(|| i + w),
            ];
            for j in neighbours.into_iter().flatten() {
                if mask.data[j] == value && labels[j] == 0 {
                    labels[j] = label;
                    stack.push(j);
                }
            }
        }
        sizes.push(size);
    }
    (labels, sizes)
}

fn keep_large_regions(mask: &mut BlockMap<bool>) {
    let (labels, sizes) = regions(mask, true);
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let min = (largest as f32 * MIN_REGION_SHARE).ceil() as usize;
    for (m, &l) in mask.data.iter_mut().zip(&labels) {
        if l != 0 && sizes[l as usize - 1] < min {
            *m = false;
        }
    }
}

/// Background regions that do not touch the image border become foreground.
fn fill_holes(mask: &mut BlockMap<bool>) {
    let (w, h) = (mask.width, mask.height);
    let (labels, sizes) = regions(mask, false);
    let mut touches = vec![false; sizes.len()];
    for (i, &l) in labels.iter().enumerate() {
        let (x, y) = (i % w, i / w);
        if l != 0 && (x == 0 || y == 0 || x + 1 == w || y + 1 == h) {
            touches[l as usize - 1] = true;
        }
    }
    for (m, &l) in mask.data.iter_mut().zip(&labels) {
        if l != 0 && !touches[l as usize - 1] {
            *m = true;
        }
    }
}

/// Each block takes the majority value of its 5x5 neighbourhood (blocks outside the map count as background).
fn majority(mask: &BlockMap<bool>) -> BlockMap<bool> {
    let mut out = mask.clone();
    for by in 0..mask.height as isize {
        for bx in 0..mask.width as isize {
            let mut set = 0;
            for dy in -2..=2 {
                for dx in -2..=2 {
                    let (x, y) = (bx + dx, by + dy);
                    let inside =
                        x >= 0 && y >= 0 && x < mask.width as isize && y < mask.height as isize;
                    set += usize::from(inside && mask.get(x as usize, y as usize));
                }
            }
            out.set(bx as usize, by as usize, set >= 13);
        }
    }
    out
}
