//! Minutiae extraction from a grey-scale fingerprint image.
//!
//! # Pipeline
//! 1. Resample to 500 ppi when the image states another resolution (`plane.rs`).
//! 2. Block gradient tensors: foreground mask (`mask.rs`) and ridge orientation field with coherence
//!    (`blocks.rs`).
//! 3. Enhancement along and across the ridges, tuned to the local ridge period (`enhance.rs`, `frequency.rs`);
//!    its sign is the binary ridge map.
//! 4. Clean-up and thinning to a one-pixel skeleton (`binary.rs`), traced into a graph of endings and forks
//!    (`skeleton.rs`).
//! 5. False-minutia removal on the graph (`filter.rs`), then minutiae with directions, gap and border rules and
//!    quality (`minutiae.rs`).
//!
//! Everything is deterministic and allocation-bounded by the image size ([`MAX_SIDE`]).

mod binary;
mod blocks;
mod enhance;
mod filter;
mod frequency;
mod mask;
mod minutiae;
mod plane;
mod skeleton;

use std::f32::consts::TAU;

use hotspot_device_protocols::image::GrayImage;

use crate::template::{MAX_MINUTIAE, Minutia, MinutiaKind, Template};
use blocks::{BLOCK, BlockMap, Orientation};
use enhance::{BinMap, Padded};
use plane::Plane;

/// Resolution the pipeline works at.
pub const WORKING_PPI: u32 = 500;
/// Smallest side accepted (pixels at 500 ppi): anything smaller cannot hold a usable fingerprint.
pub const MIN_SIDE: usize = 64;
/// Largest side accepted at 500 ppi (10 cm, a four-finger slap), which bounds memory (about 30 bytes per pixel)
/// and time. The encoded image itself may be up to 4096 pixels a side before resampling.
pub const MAX_SIDE: usize = 2048;
/// Largest side of the image as given.
const MAX_INPUT_SIDE: usize = 4096;
/// Resolutions accepted (pixels per inch).
pub const PPI_RANGE: std::ops::RangeInclusive<u32> = 250..=2000;
/// Stated resolutions within this share of 500 ppi are used as they are.
const PPI_TOLERANCE: f32 = 0.03;
/// Orientation smoothing (Gaussian sigma, blocks).
const ORIENTATION_SIGMA: f32 = 1.5;

/// Why an image could not be processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The pixel buffer does not hold `width * height` bytes.
    #[error("image of {width}x{height} needs {expected} pixels but has {actual}")]
    PixelCount {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// `width * height`.
        expected: usize,
        /// Buffer length.
        actual: usize,
    },
    /// A side (at 500 ppi) is outside `MIN_SIDE..=MAX_SIDE`.
    #[error(
        "image is {width}x{height} pixels at 500 ppi; each side must be {MIN_SIDE}..={MAX_SIDE}"
    )]
    Size {
        /// Width at 500 ppi.
        width: usize,
        /// Height at 500 ppi.
        height: usize,
    },
    /// The stated resolution is outside [`PPI_RANGE`].
    #[error("image resolution {0} ppi is outside 250..=2000")]
    Resolution(u32),
}

/// Intermediate images of one extraction, 8-bit grey at 500 ppi, for inspection.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostics {
    /// Width at 500 ppi.
    pub width: usize,
    /// Height at 500 ppi.
    pub height: usize,
    /// The enhanced image (ridges dark, background mid-grey).
    pub enhanced: Vec<u8>,
    /// The skeleton over the binary ridge map (skeleton black, ridges grey, valleys white).
    pub skeleton: Vec<u8>,
}

/// Extracts the minutiae of `image` (resolution from `image.ppi`, 500 ppi when absent).
pub fn extract(image: &GrayImage) -> Result<Template, ExtractError> {
    pipeline(image).map(|(t, _)| t)
}

/// [`extract`], also returning the intermediate images.
pub fn extract_with_diagnostics(
    image: &GrayImage,
) -> Result<(Template, Diagnostics), ExtractError> {
    let (template, stages) = pipeline(image)?;
    let (w, h) = (stages.enhanced.width, stages.enhanced.height);
    let diagnostics = Diagnostics {
        width: w,
        height: h,
        enhanced: stages.enhanced.to_u8(-40.0, 40.0),
        skeleton: (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                if stages.skeleton.get(x, y) {
                    0
                } else if stages.ridges.get(x, y) {
                    150
                } else {
                    255
                }
            })
            .collect(),
    };
    Ok((template, diagnostics))
}

/// Intermediate results kept for [`Diagnostics`].
struct Stages {
    enhanced: Plane,
    ridges: binary::Binary,
    skeleton: binary::Binary,
}

/// The whole pipeline (see the module docs).
fn pipeline(image: &GrayImage) -> Result<(Template, Stages), ExtractError> {
    let plane = working_plane(image)?;
    let (w, h) = (plane.width, plane.height);
    let raw = blocks::tensors(&plane);
    let block_mask = mask::segment(&raw);
    let orientation = Orientation::from_tensors(&blocks::smooth_tensors(
        &raw,
        Some(&block_mask),
        ORIENTATION_SIGMA,
    ));
    let pixel_mask = pixel_mask(&block_mask, w, h);
    let bins = BinMap::new(&orientation, w, h);
    let along = enhance::smooth_along(&Padded::of(&plane), &plane, &bins, &pixel_mask);
    let periods = frequency::periods(&along, &orientation, &block_mask);
    let enhanced = enhance::filter_across(&Padded::of(&along), w, h, &bins, &periods, &pixel_mask);
    let mut ridges = binary::Binary::new(w, h, |i| pixel_mask[i] && enhanced.data[i] < 0.0);
    ridges.clean();
    let mut skeleton = ridges.clone();
    skeleton.thin();
    let mut graph = skeleton::Graph::of(&skeleton);
    let context = Local {
        orientation: &orientation,
        periods: &periods,
        depth: depth(&pixel_mask, w, h),
        width: w,
    };
    filter::clean(&mut graph, &context);
    let found = minutiae::minutiae(&graph, &context, &context);
    let template = to_template(&found, &orientation);
    Ok((
        template,
        Stages {
            enhanced,
            ridges,
            skeleton,
        },
    ))
}

/// The image as a 500 ppi plane, after checking its buffer, resolution and size.
fn working_plane(image: &GrayImage) -> Result<Plane, ExtractError> {
    let (width, height) = (image.width as usize, image.height as usize);
    let expected = width.saturating_mul(height);
    if image.pixels.len() != expected {
        return Err(ExtractError::PixelCount {
            width: image.width,
            height: image.height,
            expected,
            actual: image.pixels.len(),
        });
    }
    let ppi = image.ppi.unwrap_or(WORKING_PPI);
    if !PPI_RANGE.contains(&ppi) {
        return Err(ExtractError::Resolution(ppi));
    }
    let factor = WORKING_PPI as f32 / ppi as f32;
    let scaled = |side: usize| {
        if (factor - 1.0).abs() <= PPI_TOLERANCE {
            side
        } else {
            (side as f32 * factor).round() as usize
        }
    };
    let (sw, sh) = (scaled(width), scaled(height));
    if !(MIN_SIDE..=MAX_SIDE).contains(&sw)
        || !(MIN_SIDE..=MAX_SIDE).contains(&sh)
        || width > MAX_INPUT_SIDE
        || height > MAX_INPUT_SIDE
    {
        return Err(ExtractError::Size {
            width: sw,
            height: sh,
        });
    }
    let plane = Plane::from_u8(width, height, &image.pixels);
    Ok(if (sw, sh) == (width, height) {
        plane
    } else {
        plane.scaled(factor)
    })
}

fn pixel_mask(blocks: &BlockMap<bool>, w: usize, h: usize) -> Vec<bool> {
    (0..w * h)
        .map(|i| blocks.get((i % w) / BLOCK, (i / w) / BLOCK))
        .collect()
}

/// A chamfer step: offset and cost.
type Step = (isize, isize, f32);

/// Chamfer distance (pixels) from each pixel to the nearest background pixel or the image edge.
fn depth(mask: &[bool], w: usize, h: usize) -> Vec<f32> {
    const DIAGONAL: f32 = std::f32::consts::SQRT_2;
    let mut d: Vec<f32> = (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            if mask[i] {
                (x.min(y).min(w - 1 - x).min(h - 1 - y) + 1) as f32
            } else {
                0.0
            }
        })
        .collect();
    let passes: [(&[Step], bool); 2] = [
        (
            &[
                (-1, 0, 1.0),
                (-1, -1, DIAGONAL),
                (0, -1, 1.0),
                (1, -1, DIAGONAL),
            ],
            false,
        ),
        (
            &[
                (1, 0, 1.0),
                (1, 1, DIAGONAL),
                (0, 1, 1.0),
                (-1, 1, DIAGONAL),
            ],
            true,
        ),
    ];
    for (steps, reverse) in passes {
        for k in 0..w * h {
            let i = if reverse { w * h - 1 - k } else { k };
            if d[i] == 0.0 {
                continue;
            }
            let (x, y) = ((i % w) as isize, (i / w) as isize);
            for &(dx, dy, cost) in steps {
                let (nx, ny) = (x + dx, y + dy);
                if nx >= 0 && ny >= 0 && nx < w as isize && ny < h as isize {
                    d[i] = d[i].min(d[ny as usize * w + nx as usize] + cost);
                }
            }
        }
    }
    d
}

/// The local maps the graph rules read.
struct Local<'a> {
    orientation: &'a Orientation,
    periods: &'a BlockMap<f32>,
    depth: Vec<f32>,
    width: usize,
}

impl filter::Context for Local<'_> {
    fn period(&self, x: f32, y: f32) -> f32 {
        self.periods.at_pixel(x, y)
    }

    fn ridge_angle(&self, x: f32, y: f32) -> f32 {
        self.orientation.angle_at(x, y)
    }
}

impl minutiae::Outline for Local<'_> {
    fn depth(&self, x: f32, y: f32) -> f32 {
        let (xi, yi) = (x.round().max(0.0) as usize, y.round().max(0.0) as usize);
        self.depth
            .get(yi * self.width + xi.min(self.width - 1))
            .copied()
            .unwrap_or(0.0)
    }
}

/// Converts image-frame minutiae to the template convention (angles counter-clockwise as seen on the image), with
/// quality from the orientation coherence; keeps the best [`MAX_MINUTIAE`].
fn to_template(found: &[minutiae::Found], orientation: &Orientation) -> Template {
    let mut minutiae: Vec<Minutia> = found
        .iter()
        .map(|m| Minutia {
            x: m.x,
            y: m.y,
            angle: (-m.angle).rem_euclid(TAU),
            kind: if m.bifurcation {
                MinutiaKind::Bifurcation
            } else {
                MinutiaKind::RidgeEnding
            },
            quality: (orientation.coherence.at_pixel(m.x, m.y) * 100.0).clamp(1.0, 100.0) as u8,
        })
        .collect();
    if minutiae.len() > MAX_MINUTIAE {
        minutiae.sort_by_key(|m| std::cmp::Reverse(m.quality));
        minutiae.truncate(MAX_MINUTIAE);
    }
    Template { minutiae }
}
