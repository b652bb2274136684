//! False-minutia removal on the skeleton graph. Lengths are in units of the local ridge period `T`, so the rules
//! hold for fine and coarse ridges alike:
//! - **fragments**: a ridge with two free ends shorter than [`FRAGMENT`] `T` (dirt, a pore's rim) goes;
//! - **spurs**: a free end joined to a fork by less than [`SPUR`] `T` (a hair on the skeleton) goes;
//! - **holes**: two forks joined by two paths, or a fork joined to itself, around less than [`HOLE`] `T` (a pore
//!   or a blob inside a ridge) becomes a plain ridge;
//! - **bridges**: two forks joined by less than [`BRIDGE`] `T` across the ridge flow (ink or sweat between two
//!   ridges) lose the joining path.
//!
//! A node left with two ridges is dissolved and its ridges joined, so later rules see whole ridge lengths.

use super::skeleton::{Graph, Pixel};

/// Thresholds in ridge periods.
const FRAGMENT: f32 = 1.6;
const SPUR: f32 = 1.0;
const HOLE: f32 = 3.5;
const BRIDGE: f32 = 1.6;
/// A bridge leaves the ridge direction by at least this (radians).
const BRIDGE_ANGLE: f32 = 0.6;
/// Passes of all rules.
const PASSES: usize = 3;

/// Local information the rules need.
pub(crate) trait Context {
    /// Ridge period (pixels) at a point.
    fn period(&self, x: f32, y: f32) -> f32;
    /// Ridge direction in [0, pi) at a point.
    fn ridge_angle(&self, x: f32, y: f32) -> f32;
}

/// Applies the rules until nothing changes (at most [`PASSES`] times).
pub(crate) fn clean(graph: &mut Graph, context: &impl Context) {
    for _ in 0..PASSES {
        let mut changed = false;
        for e in 0..graph.edges.len() {
            if graph.edges[e].alive && is_false_ridge(graph, e, context) {
                remove_edge(graph, e);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

fn is_false_ridge(graph: &Graph, e: usize, context: &impl Context) -> bool {
    let edge = &graph.edges[e];
    let (a, b) = (edge.from, edge.to);
    let (na, nb) = (&graph.nodes[a], &graph.nodes[b]);
    let period = context.period(0.5 * (na.x + nb.x), 0.5 * (na.y + nb.y));
    let length = edge.length() as f32 / period;
    let (da, db) = (graph.degree(a), graph.degree(b));
    if a == b {
        return length < HOLE;
    }
    match (da, db) {
        (1, 1) => length < FRAGMENT,
        (1, _) | (_, 1) => length < SPUR,
        _ => {
            let parallel = graph
                .live_edges(a)
                .filter(|&f| f != e && graph.other_end(f, a) == b)
                .map(|f| graph.edges[f].length())
                .min();
            if let Some(other) = parallel {
                // Drop the longer of two paths around a hole.
                return (length + other as f32 / period) < HOLE && edge.length() >= other;
            }
            length < BRIDGE && crosses_flow(na.x, na.y, nb.x, nb.y, context)
        }
    }
}

/// Whether the segment between two points runs across the ridge direction.
fn crosses_flow(ax: f32, ay: f32, bx: f32, by: f32, context: &impl Context) -> bool {
    let along = (by - ay).atan2(bx - ax);
    let ridge = context.ridge_angle(0.5 * (ax + bx), 0.5 * (ay + by));
    let d = (along - ridge).rem_euclid(std::f32::consts::PI);
    d.min(std::f32::consts::PI - d) > BRIDGE_ANGLE
}

/// Removes edge `e`; nodes left with no ridge die, nodes left with two are dissolved.
fn remove_edge(graph: &mut Graph, e: usize) {
    graph.edges[e].alive = false;
    let (a, b) = (graph.edges[e].from, graph.edges[e].to);
    settle(graph, a);
    if b != a {
        settle(graph, b);
    }
}

fn settle(graph: &mut Graph, n: usize) {
    if !graph.nodes[n].alive {
        return;
    }
    match graph.degree(n) {
        0 => graph.nodes[n].alive = false,
        2 => dissolve(graph, n),
        _ => {}
    }
}

/// Joins the two ridges at node `n` into one and removes `n` (a loop through `n` alone is removed entirely).
fn dissolve(graph: &mut Graph, n: usize) {
    let live: Vec<usize> = graph.live_edges(n).collect();
    let [e1, e2] = live[..] else { return };
    graph.nodes[n].alive = false;
    graph.edges[e1].alive = false;
    graph.edges[e2].alive = false;
    if e1 == e2 {
        return;
    }
    let (a, b) = (graph.other_end(e1, n), graph.other_end(e2, n));
    let node = &graph.nodes[n];
    let centre: Pixel = (node.x.round() as u16, node.y.round() as u16);
    let mut path: Vec<Pixel> = graph.path_from(e1, n).collect();
    path.reverse();
    path.push(centre);
    path.extend(graph.path_from(e2, n));
    graph.add_edge(a, b, path);
    if a == b {
        settle(graph, a);
    }
}
