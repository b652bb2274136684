//! Minutiae from the cleaned skeleton graph: endings (one ridge) and bifurcations (three), each with a direction,
//! then the rules that need directions and the finger outline:
//! - **gaps**: two endings facing each other across less than [`GAP`] ridge periods are one broken ridge;
//! - **border**: minutiae closer than [`BORDER`] periods to the background or the image edge are where the ridges
//!   were cut by the segmentation, not where they end.
//!
//! # Direction convention (image frame, y down)
//! An ending points away from its ridge (out of the ridge end); a bifurcation points along its stem, away from
//! the fork (the direction of the valley that ends between the branches). So an ending and a bifurcation seen at
//! the same place under different pressure point the same way, as in ISO/IEC 19794-2.

use std::f32::consts::PI;

use super::filter::Context;
use super::skeleton::Graph;

/// Gap rule: distance in ridge periods and angle tolerance (radians).
const GAP: f32 = 2.2;
const GAP_ANGLE: f32 = 0.8;
/// Border rule: distance in ridge periods.
const BORDER: f32 = 1.4;
/// Directions are read from the ridge path between these distances from the node, in ridge periods.
const TRACE_NEAR: f32 = 0.6;
const TRACE_FAR: f32 = 1.6;
/// The orientation field replaces the traced axis when they agree within this (radians).
const AXIS_AGREEMENT: f32 = 0.6;

/// A detected minutia in the image frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Found {
    pub x: f32,
    pub y: f32,
    /// Radians in the image frame (y down).
    pub angle: f32,
    pub bifurcation: bool,
}

/// What the border rule needs: distance (pixels) from a point to the background or the image edge.
pub(crate) trait Outline {
    fn depth(&self, x: f32, y: f32) -> f32;
}

/// The minutiae of `graph`, after the gap and border rules.
pub(crate) fn minutiae(
    graph: &Graph,
    context: &impl Context,
    outline: &impl Outline,
) -> Vec<Found> {
    let mut found: Vec<Found> = (0..graph.nodes.len())
        .filter(|&n| graph.nodes[n].alive)
        .filter_map(|n| {
            let node = &graph.nodes[n];
            let period = context.period(node.x, node.y);
            let branches: Vec<(f32, f32)> = graph
                .live_edges(n)
                .map(|e| branch_vector(graph, n, e, period))
                .collect();
            let traced = match branches[..] {
                [(dx, dy)] => Some((false, (-dy).atan2(-dx))),
                [a, b, c] => Some((true, stem_direction([a, b, c]))),
                _ => None,
            }?;
            Some(Found {
                x: node.x,
                y: node.y,
                angle: refine(traced.1, context.ridge_angle(node.x, node.y)),
                bifurcation: traced.0,
            })
        })
        .collect();
    remove_gaps(&mut found, context);
    found.retain(|m| outline.depth(m.x, m.y) >= BORDER * context.period(m.x, m.y));
    found
}

/// Vector from node `n` to the mean of the pixels of edge `e` between the trace distances.
fn branch_vector(graph: &Graph, n: usize, e: usize, period: f32) -> (f32, f32) {
    let node = &graph.nodes[n];
    let (near, far) = (
        (TRACE_NEAR * period) as usize,
        ((TRACE_FAR * period) as usize).max(1),
    );
    let (mut sx, mut sy, mut count) = (0.0, 0.0, 0.0f32);
    for (k, (x, y)) in graph.path_from(e, n).enumerate().take(far) {
        if k + 1 >= near {
            sx += f32::from(x);
            sy += f32::from(y);
            count += 1.0;
        }
    }
    if count == 0.0 {
        let other = &graph.nodes[graph.other_end(e, n)];
        return (other.x - node.x, other.y - node.y);
    }
    (sx / count - node.x, sy / count - node.y)
}

/// Direction of a fork: along the branch that differs most from the other two (the stem), blended with the
/// direction opposite to the other two.
fn stem_direction(branches: [(f32, f32); 3]) -> f32 {
    let unit = |(x, y): (f32, f32)| {
        let n = x.hypot(y).max(f32::EPSILON);
        (x / n, y / n)
    };
    let u = branches.map(unit);
    let dot = |a: (f32, f32), b: (f32, f32)| a.0 * b.0 + a.1 * b.1;
    // The stem is opposite the pair of branches closest to each other.
    let pairs = [(0, 1, 2), (0, 2, 1), (1, 2, 0)];
    let (i, j, k) = pairs
        .into_iter()
        .max_by(|a, b| dot(u[a.0], u[a.1]).total_cmp(&dot(u[b.0], u[b.1])))
        .unwrap_or((0, 1, 2));
    let x = u[k].0 - 0.5 * (u[i].0 + u[j].0);
    let y = u[k].1 - 0.5 * (u[i].1 + u[j].1);
    y.atan2(x)
}

/// The orientation field's axis, oriented like `traced`, when it agrees with `traced`; else `traced`.
fn refine(traced: f32, axis: f32) -> f32 {
    let d = (traced - axis).rem_euclid(2.0 * PI);
    let (oriented, gap) = if !(PI / 2.0..=1.5 * PI).contains(&d) {
        (axis, d.min(2.0 * PI - d))
    } else {
        (axis + PI, (d - PI).abs())
    };
    if gap < AXIS_AGREEMENT {
        oriented.rem_euclid(2.0 * PI)
    } else {
        traced.rem_euclid(2.0 * PI)
    }
}

/// Angle between direction `a` and the direction of vector `(dx, dy)`, in [0, pi].
fn angle_to(a: f32, dx: f32, dy: f32) -> f32 {
    let d = (dy.atan2(dx) - a).rem_euclid(2.0 * PI);
    d.min(2.0 * PI - d)
}

/// Removes pairs of endings that face each other across a short gap.
fn remove_gaps(found: &mut Vec<Found>, context: &impl Context) {
    let mut dead = vec![false; found.len()];
    for i in 0..found.len() {
        for j in i + 1..found.len() {
            let (a, b) = (&found[i], &found[j]);
            if dead[i] || dead[j] || a.bifurcation || b.bifurcation {
                continue;
            }
            let (dx, dy) = (b.x - a.x, b.y - a.y);
            let limit = GAP * context.period(0.5 * (a.x + b.x), 0.5 * (a.y + b.y));
            if dx.hypot(dy) < limit
                && angle_to(a.angle, dx, dy) < GAP_ANGLE
                && angle_to(b.angle, -dx, -dy) < GAP_ANGLE
            {
                dead[i] = true;
                dead[j] = true;
            }
        }
    }
    let mut k = 0;
    found.retain(|_| {
        k += 1;
        !dead[k - 1]
    });
}
