//! Synthetic templates for tests: random minutiae sets, exact rigid moves, and "new impressions" of a template
//! (moved, jittered, with minutiae lost and spurious ones added).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::f32::consts::TAU;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::template::{Minutia, MinutiaKind, Template};

/// Image area the synthetic minutiae lie in (500 ppi pixels).
const WIDTH: f32 = 300.0;
const HEIGHT: f32 = 400.0;
/// Closest two synthetic minutiae may be.
const MIN_SPACING: f32 = 12.0;

pub(crate) fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn random_minutia(rng: &mut StdRng) -> Minutia {
    Minutia {
        x: rng.random_range(20.0..WIDTH - 20.0),
        y: rng.random_range(20.0..HEIGHT - 20.0),
        angle: rng.random_range(0.0..TAU),
        kind: if rng.random_bool(0.5) {
            MinutiaKind::RidgeEnding
        } else {
            MinutiaKind::Bifurcation
        },
        quality: rng.random_range(40..=100),
    }
}

/// `n` random minutiae at least [`MIN_SPACING`] apart.
pub(crate) fn random_template(rng: &mut StdRng, n: usize) -> Template {
    let mut minutiae: Vec<Minutia> = Vec::with_capacity(n);
    while minutiae.len() < n {
        let m = random_minutia(rng);
        if minutiae
            .iter()
            .all(|o| (o.x - m.x).hypot(o.y - m.y) >= MIN_SPACING)
        {
            minutiae.push(m);
        }
    }
    Template { minutiae }
}

/// `t` rotated by `degrees` counter-clockwise (as seen on the image) about the image centre, then shifted by
/// `(dx, dy)` image pixels (y down).
pub(crate) fn rotate_shift(t: &Template, degrees: f32, dx: f32, dy: f32) -> Template {
    let phi = degrees.to_radians();
    let (sin, cos) = phi.sin_cos();
    let (cx, cy) = (WIDTH / 2.0, HEIGHT / 2.0);
    let minutiae = t
        .minutiae
        .iter()
        .map(|m| {
            // Work with y up so that counter-clockwise rotation adds to the angle.
            let (x, y) = (m.x - cx, cy - m.y);
            let (rx, ry) = (cos * x - sin * y, sin * x + cos * y);
            Minutia {
                x: cx + rx + dx,
                y: cy - ry + dy,
                angle: (m.angle + phi).rem_euclid(TAU),
                ..m.clone()
            }
        })
        .collect();
    Template { minutiae }
}

/// Another impression of `t`: moved by `degrees` and `(dx, dy)`, positions jittered by up to `jitter` px and
/// directions by up to 0.1 rad, a share `lose` of minutiae lost, and `spurious` random minutiae added.
pub(crate) fn impression(
    rng: &mut StdRng,
    t: &Template,
    (degrees, dx, dy): (f32, f32, f32),
    jitter: f32,
    lose: f64,
    spurious: usize,
) -> Template {
    let mut kept = Vec::with_capacity(t.minutiae.len() + spurious);
    for m in &t.minutiae {
        if rng.random_bool(lose) {
            continue;
        }
        kept.push(Minutia {
            x: m.x + rng.random_range(-jitter..=jitter),
            y: m.y + rng.random_range(-jitter..=jitter),
            angle: (m.angle + rng.random_range(-0.1..=0.1f32)).rem_euclid(TAU),
            ..m.clone()
        });
    }
    kept.extend((0..spurious).map(|_| random_minutia(rng)));
    rotate_shift(&Template { minutiae: kept }, degrees, dx, dy)
}
