//! A grey-scale image as `f32` samples, and the one geometric operation extraction needs on it: resampling to
//! 500 ppi, so that every later step can work in fixed pixel distances.

/// A row-major `f32` image.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plane {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Plane {
    /// A `width` x `height` plane filled with `value`.
    pub(crate) fn filled(width: usize, height: usize, value: f32) -> Self {
        Self {
            width,
            height,
            data: vec![value; width * height],
        }
    }

    /// The pixels of an 8-bit image (`pixels.len()` must be `width * height`; checked by the caller).
    pub(crate) fn from_u8(width: usize, height: usize, pixels: &[u8]) -> Self {
        Self {
            width,
            height,
            data: pixels.iter().map(|&p| f32::from(p)).collect(),
        }
    }

    /// Sample at integer coordinates, clamped to the border.
    pub(crate) fn at_clamped(&self, x: isize, y: isize) -> f32 {
        let x = x.clamp(0, self.width as isize - 1) as usize;
        let y = y.clamp(0, self.height as isize - 1) as usize;
        self.data[y * self.width + x]
    }

    /// Bilinear sample at real coordinates, clamped to the border.
    pub(crate) fn bilinear(&self, x: f32, y: f32) -> f32 {
        let (fx, fy) = (x.floor(), y.floor());
        let (tx, ty) = (x - fx, y - fy);
        let (ix, iy) = (fx as isize, fy as isize);
        let top = self.at_clamped(ix, iy) * (1.0 - tx) + self.at_clamped(ix + 1, iy) * tx;
        let bottom =
            self.at_clamped(ix, iy + 1) * (1.0 - tx) + self.at_clamped(ix + 1, iy + 1) * tx;
        top * (1.0 - ty) + bottom * ty
    }

    /// This image scaled by `factor` (bilinear; a box pre-filter when shrinking by more than 1.5x).
    pub(crate) fn scaled(&self, factor: f32) -> Plane {
        let width = ((self.width as f32 * factor).round() as usize).max(1);
        let height = ((self.height as f32 * factor).round() as usize).max(1);
        let source = if factor < 0.67 {
            self.box_blurred(((0.5 / factor).round() as usize).max(1))
        } else {
            self.clone()
        };
        let mut out = Plane::filled(width, height, 0.0);
        for y in 0..height {
            let sy = (y as f32 + 0.5) / factor - 0.5;
            for x in 0..width {
                let sx = (x as f32 + 0.5) / factor - 0.5;
                out.data[y * width + x] = source.bilinear(sx, sy);
            }
        }
        out
    }

    /// Mean over a `(2r+1)^2` window, clamped at the border.
    pub(crate) fn box_blurred(&self, r: usize) -> Plane {
        let horizontal = self.blur_rows(r);
        horizontal.transposed().blur_rows(r).transposed()
    }

    fn blur_rows(&self, r: usize) -> Plane {
        let mut out = Plane::filled(self.width, self.height, 0.0);
        let n = (2 * r + 1) as f32;
        for y in 0..self.height {
            let row = &self.data[y * self.width..(y + 1) * self.width];
            let at = |x: isize| row[x.clamp(0, self.width as isize - 1) as usize];
            let mut sum: f32 = (-(r as isize)..=r as isize).map(at).sum();
            for x in 0..self.width {
                out.data[y * self.width + x] = sum / n;
                sum += at(x as isize + r as isize + 1) - at(x as isize - r as isize);
            }
        }
        out
    }

    fn transposed(&self) -> Plane {
        let mut out = Plane::filled(self.height, self.width, 0.0);
        for y in 0..self.height {
            for x in 0..self.width {
                out.data[x * self.height + y] = self.data[y * self.width + x];
            }
        }
        out
    }

    /// The image as 8-bit grey, linearly stretched from `[lo, hi]` to `[0, 255]` (for diagnostics).
    pub(crate) fn to_u8(&self, lo: f32, hi: f32) -> Vec<u8> {
        let span = (hi - lo).max(f32::EPSILON);
        self.data
            .iter()
            .map(|&v| ((v - lo) / span * 255.0).clamp(0.0, 255.0) as u8)
            .collect()
    }
}
