//! Global consistency of one alignment hypothesis: move the probe's minutiae with a rigid transform and pair each
//! with the nearest free candidate minutia that agrees in position and direction (one-to-one, greedy, working
//! outwards from the anchor where the alignment is most accurate).

use crate::geometry::{Rigid, Turn, turn, turn_diff, turn_tolerance};
use crate::local::Point;
use crate::template::MAX_MINUTIAE;

/// Position tolerance (pixels at 500 ppi) at the anchor.
const DISTANCE_TOLERANCE: f32 = 12.0;
/// Extra position tolerance per pixel of distance from the anchor (skin distortion grows outwards).
const DISTANCE_TOLERANCE_SLOPE: f32 = 0.06;
/// Direction tolerance (pi/6 radians, 30 degrees).
const ANGLE_TOLERANCE: Turn = turn_tolerance(std::f32::consts::PI / 6.0);

/// The minutia pairs found under one transform.
#[derive(Debug, Clone)]
pub(crate) struct Pairing {
    /// `(probe index, candidate index)` of each pair; only the first `count` entries are used.
    pairs: [(u8, u8); MAX_MINUTIAE],
    /// Number of pairs.
    pub count: usize,
    /// Sum over pairs of the closeness in position and direction, each pair worth at most 1.
    pub weight: f32,
}

impl Pairing {
    /// The pairs as indices.
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (usize, usize)> + Clone + '_ {
        self.pairs[..self.count]
            .iter()
            .map(|&(p, c)| (usize::from(p), usize::from(c)))
    }
}

/// Pairs `probe` (moved by `transform`) with `candidate`, visiting probe minutiae by distance from `anchor` (a
/// probe-frame point). At most [`MAX_MINUTIAE`] minutiae of each side are considered.
pub(crate) fn pair_up(
    probe: &[Point],
    candidate: &[Point],
    transform: &Rigid,
    anchor: (f32, f32),
) -> Pairing {
    let probe = &probe[..probe.len().min(MAX_MINUTIAE)];
    let candidate = &candidate[..candidate.len().min(MAX_MINUTIAE)];
    let mut order = [0u8; MAX_MINUTIAE];
    let mut radius = [0f32; MAX_MINUTIAE];
    for (i, p) in probe.iter().enumerate() {
        order[i] = i as u8;
        radius[i] = (p.x - anchor.0).hypot(p.y - anchor.1);
    }
    let order = &mut order[..probe.len()];
    order.sort_unstable_by(|&a, &b| radius[usize::from(a)].total_cmp(&radius[usize::from(b)]));

    let rotation = turn(transform.angle);
    let mut used = [false; MAX_MINUTIAE];
    let mut pairing = Pairing {
        pairs: [(0, 0); MAX_MINUTIAE],
        count: 0,
        weight: 0.0,
    };
    for &i in order.iter() {
        let p = &probe[usize::from(i)];
        let (x, y) = transform.apply(p.x, p.y);
        let moved = Point {
            x,
            y,
            angle: p.angle,
            dir: p.dir.wrapping_add(rotation),
        };
        let tolerance = DISTANCE_TOLERANCE + DISTANCE_TOLERANCE_SLOPE * radius[usize::from(i)];
        if let Some((j, closeness)) = nearest_free(&moved, candidate, &used, tolerance) {
            used[j] = true;
            pairing.pairs[pairing.count] = (i, j as u8);
            pairing.count += 1;
            pairing.weight += 0.5 + 0.5 * closeness;
        }
    }
    pairing
}

/// The nearest candidate minutia not yet `used` within `tolerance` pixels and [`ANGLE_TOLERANCE`] of `moved`
/// (whose `dir` is already rotated), with its closeness in [0, 1] (1 = same position and direction).
fn nearest_free(
    moved: &Point,
    candidate: &[Point],
    used: &[bool; MAX_MINUTIAE],
    tolerance: f32,
) -> Option<(usize, f32)> {
    let mut best: Option<(usize, f32)> = None;
    for (j, c) in candidate.iter().enumerate() {
        let d2 = (c.x - moved.x) * (c.x - moved.x) + (c.y - moved.y) * (c.y - moved.y);
        if !used[j]
            && d2 < tolerance * tolerance
            && best.is_none_or(|(_, b)| d2 < b)
            && turn_diff(moved.dir, c.dir) < ANGLE_TOLERANCE
        {
            best = Some((j, d2));
        }
    }
    best.map(|(j, d2)| {
        let da = f32::from(turn_diff(moved.dir, candidate[j].dir)) / f32::from(ANGLE_TOLERANCE);
        (j, (1.0 - d2.sqrt() / tolerance) * (1.0 - da))
    })
}
