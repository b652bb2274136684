//! One-to-one comparison of two templates.
//!
//! # Algorithm
//! 1. [`PreparedTemplate::new`] moves the minutiae into a y-up working frame and describes each by its nearest
//!    neighbours (`local.rs`); this is done once per template.
//! 2. [`compare`] scores every probe/candidate minutia pair by neighbourhood agreement and keeps the best
//!    [`HYPOTHESES`] pairs as anchors. Each anchor gives a rotation (difference of the two directions) and a
//!    translation (anchor onto anchor).
//! 3. Under each anchor's transform the minutiae are paired one-to-one (`align.rs`); the transform is then
//!    refitted to all pairs by least squares and the pairing repeated. The best pairing of all anchors wins.
//! 4. The score is `100 * w^2 / (a_probe * a_candidate)`, where `w` is the pairing's weight (each pair worth 0.5
//!    to 1 by how closely it agrees in position and direction) and `a` is, for each side, the number of its
//!    minutiae that fall inside the other's area (convex hull grown by 8 px) after alignment, raised to at least
//!    12 (or the side's minutia count if smaller) so that a tiny overlap cannot score high. Dividing by the overlap
//!    rather than the whole counts keeps partially overlapping impressions of one finger comparable. The result is
//!    0 for nothing in common and 100 for identical templates.
//!
//! The comparison allocates nothing: scratch space lives on the stack (templates hold at most 255 minutiae).

use crate::align::{Pairing, pair_up};
use crate::geometry::Rigid;
use crate::local::{self, Edge, NEIGHBOURS, Point};
use crate::region::Hull;
use crate::template::{MAX_MINUTIAE, Template};

/// Anchors tried per comparison.
pub const HYPOTHESES: usize = 12;
/// Pairs needed before a pairing's transform is refitted.
const MIN_PAIRS_TO_REFIT: usize = 3;

/// A template made ready for many comparisons: working-frame minutiae and their neighbourhoods.
#[derive(Debug, Clone)]
pub struct PreparedTemplate {
    points: Vec<Point>,
    /// `NEIGHBOURS` edges per point; `edge_counts[i]` of them are used.
    edges: Vec<Edge>,
    edge_counts: Vec<u8>,
    hull: Hull,
}

impl PreparedTemplate {
    /// Prepares `t` (only its first 255 minutiae are used).
    pub fn new(t: &Template) -> Self {
        let points: Vec<Point> = t
            .minutiae
            .iter()
            .take(MAX_MINUTIAE)
            .map(|m| Point::new(m.x, -m.y, m.angle))
            .collect();
        let mut edges = vec![Edge::default(); points.len() * NEIGHBOURS];
        let mut edge_counts = Vec::with_capacity(points.len());
        for (i, slot) in edges.chunks_exact_mut(NEIGHBOURS).enumerate() {
            let found = local::neighbourhood(&points, i);
            slot[..found.len()].copy_from_slice(&found);
            edge_counts.push(found.len() as u8);
        }
        let hull = Hull::of(points.iter().map(|p| (p.x, p.y)));
        Self {
            points,
            edges,
            edge_counts,
            hull,
        }
    }

    /// Number of minutiae used.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the template has no minutiae.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    fn edges_of(&self, i: usize) -> &[Edge] {
        let start = i * NEIGHBOURS;
        &self.edges[start..start + usize::from(self.edge_counts[i])]
    }
}

/// Similarity of two prepared templates: 0 for nothing in common, up to 100 for identical ones; higher is more
/// similar. Invariant to rotation and translation, and close to symmetric.
pub fn compare(probe: &PreparedTemplate, candidate: &PreparedTemplate) -> f32 {
    score(probe, candidate).unwrap_or(0.0)
}

/// Overlap counts below this are raised to it (or to the minutia count if smaller) in the score's denominator.
const OVERLAP_FLOOR: usize = 12;
/// Margin (pixels) by which a template's area is grown when counting overlap.
const OVERLAP_MARGIN: f32 = 8.0;

/// The best alignment's pairing, scored; `None` if either side has fewer than 2 minutiae or nothing aligns.
fn score(probe: &PreparedTemplate, candidate: &PreparedTemplate) -> Option<f32> {
    if probe.len() < 2 || candidate.len() < 2 {
        return None;
    }
    let anchors = best_anchors(probe, candidate);
    let mut best: Option<(Pairing, Rigid)> = None;
    for &(_, i, j) in anchors.iter().take_while(|(s, _, _)| *s > 0.0) {
        let found = evaluate(probe, candidate, usize::from(i), usize::from(j));
        if best.as_ref().is_none_or(|(b, _)| found.0.weight > b.weight) {
            best = Some(found);
        }
    }
    let (pairing, transform) = best?;
    let inverse = transform.inverse();
    let inside = |points: &[Point], area: &Hull, moved: &Rigid| {
        points
            .iter()
            .filter(|p| area.contains(moved.apply(p.x, p.y), OVERLAP_MARGIN))
            .count()
    };
    // Each side's overlap, at least the floor and the pair count, at most its minutia count.
    let area =
        |overlap: usize, n: usize| overlap.max(OVERLAP_FLOOR).max(pairing.count).min(n) as f32;
    let a_probe = area(
        inside(&probe.points, &candidate.hull, &transform),
        probe.len(),
    );
    let a_candidate = area(
        inside(&candidate.points, &probe.hull, &inverse),
        candidate.len(),
    );
    Some(100.0 * pairing.weight * pairing.weight / (a_probe * a_candidate))
}

/// The [`HYPOTHESES`] minutia pairs with the most similar neighbourhoods, best first, as `(similarity, i, j)`.
fn best_anchors(
    probe: &PreparedTemplate,
    candidate: &PreparedTemplate,
) -> [(f32, u8, u8); HYPOTHESES] {
    let mut top = [(0.0f32, 0u8, 0u8); HYPOTHESES];
    for i in 0..probe.len() {
        let a = probe.edges_of(i);
        for j in 0..candidate.len() {
            let s = local::similarity(a, candidate.edges_of(j), top[HYPOTHESES - 1].0);
            if s > top[HYPOTHESES - 1].0 {
                let at = top.partition_point(|(t, _, _)| *t >= s);
                top.copy_within(at..HYPOTHESES - 1, at + 1);
                top[at] = (s, i as u8, j as u8);
            }
        }
    }
    top
}

/// The best pairing under the anchor `(i, j)` and its transform, refitting the transform once.
fn evaluate(
    probe: &PreparedTemplate,
    candidate: &PreparedTemplate,
    i: usize,
    j: usize,
) -> (Pairing, Rigid) {
    let (p, c) = (&probe.points[i], &candidate.points[j]);
    let transform = Rigid::about(c.angle - p.angle, (p.x, p.y), (c.x, c.y));
    let first = pair_up(&probe.points, &candidate.points, &transform, (p.x, p.y));
    match refit(probe, candidate, &first) {
        Some(second) if second.0.weight > first.weight => second,
        _ => (first, transform),
    }
}

fn refit(
    probe: &PreparedTemplate,
    candidate: &PreparedTemplate,
    pairing: &Pairing,
) -> Option<(Pairing, Rigid)> {
    if pairing.count < MIN_PAIRS_TO_REFIT {
        return None;
    }
    let pairs = pairing.pairs().map(|(a, b)| {
        let (p, c) = (&probe.points[a], &candidate.points[b]);
        ((p.x, p.y), (c.x, c.y))
    });
    let transform = Rigid::fit(pairs.clone())?;
    let n = pairing.count as f32;
    let (sx, sy) = pairs.fold((0.0, 0.0), |(sx, sy), ((x, y), _)| (sx + x, sy + y));
    Some((
        pair_up(
            &probe.points,
            &candidate.points,
            &transform,
            (sx / n, sy / n),
        ),
        transform,
    ))
}
