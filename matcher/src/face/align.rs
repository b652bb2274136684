//! Five-point similarity alignment to the recogniser's 112x112 crop.
//!
//! SFace was trained on faces warped so that the eyes, nose tip and mouth corners land on fixed points
//! ([`TEMPLATE`], the ArcFace/InsightFace template OpenCV's `FaceRecognizerSF::alignCrop` uses). The transform is the
//! least-squares similarity (rotation, uniform scale, translation; no reflection) from the detected landmarks to the
//! template. In two dimensions Umeyama's estimate, which OpenCV computes with an SVD, has a closed form: with
//! demeaned points written as complex numbers, `a = sum(conj(s) d) / sum(|s|^2)`.
//!
//! The crop is sampled bilinearly with pixel centres at integer coordinates and black outside the photo, as
//! `cv::warpAffine` does. When the face in the photo is larger than the crop (the usual case), shrinking without
//! care would alias fine texture (hair, stubble, JPEG noise) into the crop: the face's part of the photo is first
//! shrunk by the whole factor `k = floor(1 / scale)` with `k x k` block means, then each crop pixel averages
//! `n x n` bilinear samples of that over its footprint, `n = ceil(1 / remaining scale)` (1 or 2). Block means cost
//! one read per photo pixel, where supersampling the whole factor cost `4 n^2` reads per crop pixel.

use image::RgbImage;

/// Side of the recogniser's input crop.
pub const CROP: usize = 112;
/// Where the five landmarks go in the crop (right eye, left eye, nose tip, right and left mouth corners).
pub const TEMPLATE: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];
/// Most sub-samples per crop pixel side when shrinking.
const MAX_SUPERSAMPLE: usize = 4;

/// A similarity transform `photo -> crop`: `[u, v] = [[a, -b], [b, a]] [x, y] + [tx, ty]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    a: f32,
    b: f32,
    tx: f32,
    ty: f32,
}

impl Similarity {
    /// Least-squares similarity mapping `src` onto `dst`; `None` if the source points coincide.
    pub fn estimate(src: &[[f32; 2]; 5], dst: &[[f32; 2]; 5]) -> Option<Self> {
        let mean =
            |p: &[[f32; 2]; 5], k: usize| p.iter().map(|q| f64::from(q[k])).sum::<f64>() / 5.0;
        let (smx, smy, dmx, dmy) = (mean(src, 0), mean(src, 1), mean(dst, 0), mean(dst, 1));
        let (mut re, mut im, mut norm) = (0.0f64, 0.0f64, 0.0f64);
        for (s, d) in src.iter().zip(dst) {
            let (sx, sy) = (f64::from(s[0]) - smx, f64::from(s[1]) - smy);
            let (dx, dy) = (f64::from(d[0]) - dmx, f64::from(d[1]) - dmy);
            re += sx * dx + sy * dy;
            im += sx * dy - sy * dx;
            norm += sx * sx + sy * sy;
        }
        if norm.is_nan() || norm <= 1e-9 {
            return None;
        }
        let (a, b) = (re / norm, im / norm);
        let tx = dmx - (a * smx - b * smy);
        let ty = dmy - (b * smx + a * smy);
        Some(Self {
            a: a as f32,
            b: b as f32,
            tx: tx as f32,
            ty: ty as f32,
        })
    }

    /// Photo pixels per crop pixel is `1 / scale()`.
    pub fn scale(&self) -> f32 {
        self.a.hypot(self.b)
    }

    /// Maps a photo point into the crop.
    pub fn apply(&self, p: [f32; 2]) -> [f32; 2] {
        [
            self.a * p[0] - self.b * p[1] + self.tx,
            self.b * p[0] + self.a * p[1] + self.ty,
        ]
    }

    /// The inverse transform (`crop -> photo`).
    fn inverse(&self) -> Self {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / d, -self.b / d);
        Self {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        }
    }
}

/// The aligned crop: `CROP x CROP` RGB pixels, row-major, as `f32` 0..255.
#[derive(Debug, Clone)]
pub struct Crop(pub Vec<[f32; 3]>);

impl Crop {
    /// Luma (BT.601) of each pixel, row-major.
    pub fn grey(&self) -> Vec<f32> {
        self.0
            .iter()
            .map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2])
            .collect()
    }
}

/// Warps the face under `landmarks` into the recogniser's crop; `None` if the landmarks are degenerate.
pub fn align(photo: &RgbImage, landmarks: &[[f32; 2]; 5], antialias: bool) -> Option<Crop> {
    let t = Similarity::estimate(landmarks, &TEMPLATE)?;
    if !antialias {
        return Some(warp(photo, &t, 1));
    }
    // Shrink the face's part of the photo first by the whole factor k = floor(1 / scale) (k x k block means: cheap,
    // alias-free), then supersample the remaining factor (below 2) in the warp.
    let k = (1.0 / t.scale()).floor();
    if k >= 2.0 && k.is_finite() {
        let k = k as u32;
        let (small, t) = shrink_region(photo, &t, k);
        let n = ((1.0 / t.scale()).ceil() as usize).clamp(1, MAX_SUPERSAMPLE);
        return Some(warp(&small, &t, n));
    }
    let n = ((1.0 / t.scale()).ceil() as usize).clamp(1, MAX_SUPERSAMPLE);
    Some(warp(photo, &t, n))
}

/// The part of `photo` that the crop of `t` covers (plus a margin), shrunk by `k` with block means, and the transform
/// from the shrunk image to the crop. Block `(i, j)` covers photo pixels `[x0 + i k, x0 + (i + 1) k)`, so its centre
/// is photo point `x0 + i k + (k - 1) / 2`.
fn shrink_region(photo: &RgbImage, t: &Similarity, k: u32) -> (RgbImage, Similarity) {
    let inv = t.inverse();
    let edge = CROP as f32;
    let corners = [[0.0, 0.0], [edge, 0.0], [0.0, edge], [edge, edge]].map(|c| inv.apply(c));
    let margin = 2.0 * k as f32;
    let lo = |i: usize| corners.iter().map(|c| c[i]).fold(f32::INFINITY, f32::min) - margin;
    let hi = |i: usize| {
        corners
            .iter()
            .map(|c| c[i])
            .fold(f32::NEG_INFINITY, f32::max)
            + margin
    };
    // Whole blocks inside the photo; outside stays black in the warp, as before.
    let clamp = |v: f32, max: u32| (v.max(0.0) as u32).min(max);
    let (x0, y0) = (clamp(lo(0), photo.width()), clamp(lo(1), photo.height()));
    let (x1, y1) = (clamp(hi(0), photo.width()), clamp(hi(1), photo.height()));
    let (w, h) = ((x1 - x0) / k, (y1 - y0) / k);
    let area = (k * k) as f32;
    let small = RgbImage::from_fn(w, h, |i, j| {
        let mut acc = [0u32; 3];
        for y in y0 + j * k..y0 + (j + 1) * k {
            for x in x0 + i * k..x0 + (i + 1) * k {
                let p = photo.get_pixel(x, y).0;
                for (a, v) in acc.iter_mut().zip(p) {
                    *a += u32::from(v);
                }
            }
        }
        image::Rgb(acc.map(|a| (a as f32 / area).round() as u8))
    });
    let half = (k as f32 - 1.0) / 2.0;
    let [tx, ty] = t.apply([x0 as f32 + half, y0 as f32 + half]);
    let kf = k as f32;
    let composed = Similarity {
        a: t.a * kf,
        b: t.b * kf,
        tx,
        ty,
    };
    (small, composed)
}

/// Samples the crop through `t`, averaging `n x n` points per crop pixel.
pub fn warp(photo: &RgbImage, t: &Similarity, n: usize) -> Crop {
    let inv = t.inverse();
    let offsets: Vec<f32> = (0..n).map(|i| (i as f32 + 0.5) / n as f32 - 0.5).collect();
    let weight = 1.0 / (n * n) as f32;
    let mut out = vec![[0.0f32; 3]; CROP * CROP];
    for (v, row) in out.chunks_exact_mut(CROP).enumerate() {
        for (u, px) in row.iter_mut().enumerate() {
            let mut acc = [0.0f32; 3];
            for dv in &offsets {
                for du in &offsets {
                    let [x, y] = inv.apply([u as f32 + du, v as f32 + dv]);
                    for (a, s) in acc.iter_mut().zip(bilinear(photo, x, y)) {
                        *a += s;
                    }
                }
            }
            *px = acc.map(|a| a * weight);
        }
    }
    Crop(out)
}

/// Bilinear sample at `(x, y)` (pixel centres at integers), black outside the photo.
fn bilinear(photo: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let (w, h) = (photo.width() as i64, photo.height() as i64);
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let get = |xi: i64, yi: i64| -> [f32; 3] {
        if xi < 0 || yi < 0 || xi >= w || yi >= h {
            return [0.0; 3];
        }
        // In range by the check above.
        photo.get_pixel(xi as u32, yi as u32).0.map(f32::from)
    };
    let (p00, p10, p01, p11) = (
        get(x0, y0),
        get(x0 + 1, y0),
        get(x0, y0 + 1),
        get(x0 + 1, y0 + 1),
    );
    std::array::from_fn(|k| {
        let top = p00[k] + (p10[k] - p00[k]) * fx;
        let bottom = p01[k] + (p11[k] - p01[k]) * fx;
        top + (bottom - top) * fy
    })
}
