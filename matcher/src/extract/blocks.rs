//! Block-level analysis: the image cut into [`BLOCK`]-pixel squares, each described by the gradient structure
//! tensor of its pixels. From the tensors come the ridge orientation field (smoothed over neighbouring blocks, so a
//! scar or a pore does not turn it), its coherence (how clearly one direction dominates), and the gradient energy
//! that separates the finger from the background.

use super::plane::Plane;

/// Block side in pixels (at 500 ppi).
pub(crate) const BLOCK: usize = 8;

/// A value per block, row-major.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BlockMap<T> {
    pub width: usize,
    pub height: usize,
    pub data: Vec<T>,
}

impl<T: Copy> BlockMap<T> {
    pub(crate) fn filled(width: usize, height: usize, value: T) -> Self {
        Self {
            width,
            height,
            data: vec![value; width * height],
        }
    }

    pub(crate) fn get(&self, bx: usize, by: usize) -> T {
        self.data[by * self.width + bx]
    }

    pub(crate) fn set(&mut self, bx: usize, by: usize, value: T) {
        self.data[by * self.width + bx] = value;
    }

    /// The value at a block clamped into the map.
    pub(crate) fn get_clamped(&self, bx: isize, by: isize) -> T {
        let bx = bx.clamp(0, self.width as isize - 1) as usize;
        let by = by.clamp(0, self.height as isize - 1) as usize;
        self.get(bx, by)
    }

    /// The value of the block holding pixel `(x, y)` (clamped into the map).
    pub(crate) fn at_pixel(&self, x: f32, y: f32) -> T {
        self.get_clamped((x / BLOCK as f32) as isize, (y / BLOCK as f32) as isize)
    }
}

/// Gradient structure tensor of a region: sums of `gx^2`, `gy^2`, `gx*gy`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Tensor {
    pub xx: f32,
    pub yy: f32,
    pub xy: f32,
}

impl Tensor {
    fn add_scaled(&mut self, other: &Tensor, w: f32) {
        self.xx += w * other.xx;
        self.yy += w * other.yy;
        self.xy += w * other.xy;
    }

    /// Ridge direction in [0, pi) (image frame, y down): perpendicular to the dominant gradient.
    pub(crate) fn ridge_angle(&self) -> f32 {
        let gradient = 0.5 * (2.0 * self.xy).atan2(self.xx - self.yy);
        (gradient + std::f32::consts::FRAC_PI_2).rem_euclid(std::f32::consts::PI)
    }

    /// How strongly one direction dominates, in [0, 1].
    pub(crate) fn coherence(&self) -> f32 {
        let sum = self.xx + self.yy;
        if sum <= f32::EPSILON {
            return 0.0;
        }
        ((self.xx - self.yy).powi(2) + 4.0 * self.xy * self.xy).sqrt() / sum
    }
}

/// The per-block gradient tensors of `image` (Sobel gradients), normalised per pixel.
pub(crate) fn tensors(image: &Plane) -> BlockMap<Tensor> {
    let (w, h) = (image.width, image.height);
    let mut map = BlockMap::filled(w.div_ceil(BLOCK), h.div_ceil(BLOCK), Tensor::default());
    let mut counts = vec![0u32; map.data.len()];
    let d = &image.data;
    for y in 1..h.saturating_sub(1) {
        let (up, row, down) = ((y - 1) * w, y * w, (y + 1) * w);
        let block_row = (y / BLOCK) * map.width;
        for x in 1..w.saturating_sub(1) {
            let gx = (d[up + x + 1] + 2.0 * d[row + x + 1] + d[down + x + 1])
                - (d[up + x - 1] + 2.0 * d[row + x - 1] + d[down + x - 1]);
            let gy = (d[down + x - 1] + 2.0 * d[down + x] + d[down + x + 1])
                - (d[up + x - 1] + 2.0 * d[up + x] + d[up + x + 1]);
            let b = block_row + x / BLOCK;
            let t = &mut map.data[b];
            t.xx += gx * gx;
            t.yy += gy * gy;
            t.xy += gx * gy;
            counts[b] += 1;
        }
    }
    for (t, &n) in map.data.iter_mut().zip(&counts) {
        let n = n.max(1) as f32;
        t.xx /= n;
        t.yy /= n;
        t.xy /= n;
    }
    map
}

/// `map` averaged over neighbouring blocks with Gaussian weights (`sigma` in blocks), only over blocks where
/// `mask` is set (all blocks if `None`).
pub(crate) fn smooth_tensors(
    map: &BlockMap<Tensor>,
    mask: Option<&BlockMap<bool>>,
    sigma: f32,
) -> BlockMap<Tensor> {
    let radius = (2.0 * sigma).ceil() as isize;
    let weights: Vec<f32> = (-radius..=radius)
        .map(|d| (-(d * d) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let mut out = BlockMap::filled(map.width, map.height, Tensor::default());
    for by in 0..map.height {
        for bx in 0..map.width {
            let mut sum = Tensor::default();
            for dy in -radius..=radius {
                let y = by as isize + dy;
                if y < 0 || y >= map.height as isize {
                    continue;
                }
                for dx in -radius..=radius {
                    let x = bx as isize + dx;
                    if x < 0 || x >= map.width as isize {
                        continue;
                    }
                    let (x, y) = (x as usize, y as usize);
                    if mask.is_some_and(|m| !m.get(x, y)) {
                        continue;
                    }
                    let w = weights[(dx + radius) as usize] * weights[(dy + radius) as usize];
                    sum.add_scaled(&map.get(x, y), w);
                }
            }
            out.set(bx, by, sum);
        }
    }
    out
}

/// The ridge orientation field: per block, the ridge direction in [0, pi) and its coherence.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Orientation {
    pub angle: BlockMap<f32>,
    pub coherence: BlockMap<f32>,
}

impl Orientation {
    pub(crate) fn from_tensors(t: &BlockMap<Tensor>) -> Self {
        Self {
            angle: BlockMap {
                width: t.width,
                height: t.height,
                data: t.data.iter().map(Tensor::ridge_angle).collect(),
            },
            coherence: BlockMap {
                width: t.width,
                height: t.height,
                data: t.data.iter().map(Tensor::coherence).collect(),
            },
        }
    }

    /// The ridge direction at pixel `(x, y)`, interpolated between block centres (as doubled-angle vectors).
    pub(crate) fn angle_at(&self, x: f32, y: f32) -> f32 {
        let fx = x / BLOCK as f32 - 0.5;
        let fy = y / BLOCK as f32 - 0.5;
        let (bx, by) = (fx.floor(), fy.floor());
        let (tx, ty) = (fx - bx, fy - by);
        let (bx, by) = (bx as isize, by as isize);
        let (mut c, mut s) = (0.0f32, 0.0f32);
        for (dx, dy, w) in [
            (0, 0, (1.0 - tx) * (1.0 - ty)),
            (1, 0, tx * (1.0 - ty)),
            (0, 1, (1.0 - tx) * ty),
            (1, 1, tx * ty),
        ] {
            let a = 2.0 * self.angle.get_clamped(bx + dx, by + dy);
            let k = w * self.coherence.get_clamped(bx + dx, by + dy).max(0.05);
            c += k * a.cos();
            s += k * a.sin();
        }
        (0.5 * s.atan2(c)).rem_euclid(std::f32::consts::PI)
    }
}
