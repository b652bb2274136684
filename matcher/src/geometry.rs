//! Angle arithmetic and rigid transforms in the matcher's working frame: x right, y **up** (the image row is
//! negated), angles counter-clockwise from the x axis in radians, so a rotation by `phi` adds `phi` to every
//! direction.

use std::f32::consts::TAU;

/// `angle` wrapped into [0, 2 pi).
pub(crate) fn wrap(angle: f32) -> f32 {
    let a = angle.rem_euclid(TAU);
    if a >= TAU { 0.0 } else { a }
}

/// Steps of a full turn in a [`Turn`] angle.
const TURN_STEPS: f32 = 65536.0;

/// An angle as a fraction of a full turn in 1/65536 steps, so that differences wrap for free.
pub(crate) type Turn = u16;

/// `angle` (radians, any value) as a [`Turn`].
pub(crate) fn turn(angle: f32) -> Turn {
    ((wrap(angle) * TURN_STEPS / TAU).round() as u32 % 65536) as Turn
}

/// A tolerance in radians (0..=pi) as a [`Turn`] difference.
pub(crate) const fn turn_tolerance(radians: f32) -> Turn {
    (radians * TURN_STEPS / TAU) as Turn
}

/// Absolute difference of two [`Turn`] angles, 0..=32768 (half a turn).
pub(crate) fn turn_diff(a: Turn, b: Turn) -> Turn {
    (a.wrapping_sub(b) as i16).unsigned_abs()
}

/// A rotation by `angle` about the origin followed by a translation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rigid {
    /// Rotation in radians (counter-clockwise).
    pub angle: f32,
    cos: f32,
    sin: f32,
    dx: f32,
    dy: f32,
}

impl Rigid {
    /// The transform that rotates by `angle` about `from` and then moves `from` onto `to`.
    pub(crate) fn about(angle: f32, from: (f32, f32), to: (f32, f32)) -> Self {
        let (sin, cos) = angle.sin_cos();
        let dx = to.0 - (cos * from.0 - sin * from.1);
        let dy = to.1 - (sin * from.0 + cos * from.1);
        Self {
            angle,
            cos,
            sin,
            dx,
            dy,
        }
    }

    /// Least-squares rigid fit (rotation + translation, no scale) mapping `from[i]` onto `to[i]`; `None` for fewer
    /// than two points or when the points coincide.
    pub(crate) fn fit(
        pairs: impl Iterator<Item = ((f32, f32), (f32, f32))> + Clone,
    ) -> Option<Self> {
        let (mut n, mut fx, mut fy, mut tx, mut ty) = (0.0f32, 0.0, 0.0, 0.0, 0.0);
        for ((ax, ay), (bx, by)) in pairs.clone() {
            n += 1.0;
            fx += ax;
            fy += ay;
            tx += bx;
            ty += by;
        }
        if n < 2.0 {
            return None;
        }
        let (fx, fy, tx, ty) = (fx / n, fy / n, tx / n, ty / n);
        let (mut dot, mut cross) = (0.0f32, 0.0f32);
        for ((ax, ay), (bx, by)) in pairs {
            let (ax, ay, bx, by) = (ax - fx, ay - fy, bx - tx, by - ty);
            dot += ax * bx + ay * by;
            cross += ax * by - ay * bx;
        }
        if dot == 0.0 && cross == 0.0 {
            return None;
        }
        Some(Self::about(cross.atan2(dot), (fx, fy), (tx, ty)))
    }

    /// The transform that undoes this one.
    pub(crate) fn inverse(&self) -> Self {
        // p = R^T (q - d)
        let (dx, dy) = (
            -(self.cos * self.dx + self.sin * self.dy),
            self.sin * self.dx - self.cos * self.dy,
        );
        Self {
            angle: -self.angle,
            cos: self.cos,
            sin: -self.sin,
            dx,
            dy,
        }
    }

    /// Applies the transform to a point.
    pub(crate) fn apply(&self, x: f32, y: f32) -> (f32, f32) {
        (
            self.cos * x - self.sin * y + self.dx,
            self.sin * x + self.cos * y + self.dy,
        )
    }
}
