//! Local structures: each minutia described by its nearest neighbours, in terms that do not change when the finger
//! is rotated or shifted (distance, bearing of the neighbour seen from the minutia's own direction, and the
//! neighbour's direction relative to it). Two minutiae whose neighbourhoods agree are likely the same point of the
//! same finger, and make a good anchor for aligning two templates.

use crate::geometry::{Turn, turn, turn_diff, turn_tolerance};

/// Neighbours kept per minutia.
pub(crate) const NEIGHBOURS: usize = 6;
/// Neighbours closer than this (pixels at 500 ppi) are ignored: they are usually extraction noise.
const MIN_NEIGHBOUR_DISTANCE: f32 = 6.0;
/// Neighbours farther than this are ignored: distortion makes far geometry unreliable.
const MAX_NEIGHBOUR_DISTANCE: f32 = 160.0;
/// Distance tolerance between two edges: a fixed part plus a share of the length (skin stretches).
const DISTANCE_TOLERANCE: f32 = 8.0;
const DISTANCE_TOLERANCE_SHARE: f32 = 0.08;
/// Angle tolerance for bearings and relative directions (0.4 rad, about 23 degrees).
const ANGLE_TOLERANCE: Turn = turn_tolerance(0.4);

/// A minutia in the working frame (y up).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    pub x: f32,
    pub y: f32,
    /// Direction in radians, [0, 2 pi).
    pub angle: f32,
    /// The same direction as a [`Turn`].
    pub dir: Turn,
}

impl Point {
    pub(crate) fn new(x: f32, y: f32, angle: f32) -> Self {
        let dir = turn(angle);
        Self {
            x,
            y,
            angle: crate::geometry::wrap(angle),
            dir,
        }
    }
}

/// One neighbour as seen from a reference minutia.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Edge {
    /// Distance in pixels.
    pub length: f32,
    /// Direction from the reference to the neighbour, relative to the reference's direction.
    pub bearing: Turn,
    /// Neighbour's direction relative to the reference's direction.
    pub relative_direction: Turn,
}

/// The edges to the (up to) [`NEIGHBOURS`] nearest usable neighbours of `points[index]`, nearest first.
pub(crate) fn neighbourhood(points: &[Point], index: usize) -> Vec<Edge> {
    let Some(me) = points.get(index) else {
        return Vec::new();
    };
    let mut edges: Vec<Edge> = points
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != index)
        .filter_map(|(_, other)| {
            let (dx, dy) = (other.x - me.x, other.y - me.y);
            let length = dx.hypot(dy);
            (MIN_NEIGHBOUR_DISTANCE..=MAX_NEIGHBOUR_DISTANCE)
                .contains(&length)
                .then(|| Edge {
                    length,
                    bearing: turn(dy.atan2(dx)).wrapping_sub(me.dir),
                    relative_direction: other.dir.wrapping_sub(me.dir),
                })
        })
        .collect();
    edges.sort_by(|a, b| a.length.total_cmp(&b.length));
    edges.truncate(NEIGHBOURS);
    edges
}

/// How well two neighbourhoods agree, in [0, 1]: each edge of `a` takes its best-agreeing edge of `b` (agreement
/// falls linearly to 0 at the tolerance, in length, bearing and relative direction alike), summed and divided by
/// the larger neighbourhood. Both slices must be sorted by length.
///
/// Gives up early, returning 0, once the result can no longer exceed `to_beat`.
pub(crate) fn similarity(a: &[Edge], b: &[Edge], to_beat: f32) -> f32 {
    let larger = a.len().max(b.len());
    if larger == 0 {
        return 0.0;
    }
    let needed = to_beat * larger as f32;
    let angle_tolerance = f32::from(ANGLE_TOLERANCE);
    let mut total = 0.0;
    for (k, ea) in a.iter().enumerate() {
        if total + (a.len() - k) as f32 <= needed {
            return 0.0;
        }
        let tolerance = DISTANCE_TOLERANCE + DISTANCE_TOLERANCE_SHARE * ea.length;
        let mut best = 0.0f32;
        for eb in b {
            let dl = eb.length - ea.length;
            if dl < -tolerance {
                continue;
            }
            if dl > tolerance {
                break;
            }
            let db = turn_diff(ea.bearing, eb.bearing);
            let dr = turn_diff(ea.relative_direction, eb.relative_direction);
            if db < ANGLE_TOLERANCE && dr < ANGLE_TOLERANCE {
                let s = (1.0 - dl.abs() / tolerance)
                    * (1.0 - f32::from(db) / angle_tolerance)
                    * (1.0 - f32::from(dr) / angle_tolerance);
                best = best.max(s);
            }
        }
        total += best;
    }
    total / larger as f32
}
