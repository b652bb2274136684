//! One-to-one comparison of templates, built for 1:N speed: the probe is prepared once ([`Matcher`]), each
//! candidate is a [`PreparedTemplate`] made when the watchlist is indexed.
//!
//! # Algorithm
//! 1. [`PreparedTemplate::new`] moves the minutiae into a y-up working frame and relates each to its nearest
//!    neighbours by **edges** whose shape (length, and the two directions relative to the edge) does not change
//!    with rotation or translation, each with a hash cell of its shape (`edges.rs`). A candidate keeps the edges
//!    to 5 nearest neighbours, one way; [`Matcher::new`] files the probe's edges to 7 nearest neighbours, both ways,
//!    in a hash table under every cell within tolerance (`table.rs`), so that a candidate edge still finds its
//!    counterpart when a few minutiae are missing or spurious.
//! 2. Each candidate edge looks up its cell: the probe edges found there with an agreeing shape are **links**
//!    between minutia pairs. The pairs with the most agreeing links are **roots** (`grow.rs`).
//! 3. From each root (up to [`ROOTS`], skipping roots already reached from a better one) a pairing grows along
//!    links; the largest wins. Fewer than 4 pairs grown is no match (score 0): that ends most impostor
//!    comparisons before any alignment, which is most of the speed of a 1:N search.
//! 4. A rigid transform is fitted to that pairing by least squares, and all minutiae are paired again under it
//!    (`align.rs`), refitting once. Growth found the alignment despite distortion; the global pass finds the
//!    pairs growth could not reach and drops the ones that do not fit the whole.
//! 5. The raw score is `100 * w^2 / (a_probe * a_candidate)`, where `w` is the pairing's weight (each pair worth
//!    0.5 to 1 by how closely it agrees in position and direction) and `a` is, for each side, the number of its
//!    minutiae inside the other's area (convex hull grown by 8 px) after alignment, raised to at least 12 (or the
//!    side's minutia count if smaller) so that a tiny overlap cannot score high. Dividing by the overlap rather than
//!    the whole counts keeps partially overlapping impressions of one finger comparable. It is 0 for nothing in
//!    common and 100 for identical templates; [`crate::calibration`] maps it to the calibrated score that
//!    [`Matcher::score`] and [`compare`] return.

use crate::align::{Grid, Pairing, pair_up};
use crate::calibration::calibrate;
use crate::edges::{self, Edge, Point};
use crate::geometry::Rigid;
use crate::grow::{Growth, Links};
use crate::region::Hull;
use crate::table::Table;
use crate::template::{MAX_MINUTIAE, Template};

/// Roots tried per comparison.
pub const ROOTS: usize = 8;
/// A grown pairing needs this many pairs to be worth aligning; fewer score 0 (most impostor comparisons stop
/// here, which is most of the time saved in a 1:N search).
const MIN_GROWN: usize = 4;
/// A global pairing is refitted and paired again only from this many pairs (below, it is no match either way).
const MIN_TO_REFIT: usize = 8;
/// Overlap counts below this are raised to it (or to the minutia count if smaller) in the score's denominator.
const OVERLAP_FLOOR: usize = 12;
/// Margin (pixels) by which a template's area is grown when counting overlap.
const OVERLAP_MARGIN: f32 = 8.0;

/// A probe point and the candidate point it is paired with.
type PointPair = ((f32, f32), (f32, f32));

/// A template made ready for comparison: working-frame minutiae, their edges and their area.
#[derive(Debug, Clone, Default)]
pub struct PreparedTemplate {
    points: Vec<Point>,
    /// Edges between candidate neighbours ([`edges::CANDIDATE_NEIGHBOURS`]), one way, sorted by cell.
    edges: Vec<Edge>,
    /// The further pairs a probe also relates ([`edges::PROBE_NEIGHBOURS`]), one way.
    probe_edges: Vec<Edge>,
    hull: Hull,
    grid: Grid,
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
        // One edge per neighbour pair, from the lower index; sorted by cell, so that a candidate's lookups walk
        // the probe's table forwards.
        let (mut edges, mut probe_edges) = (Vec::new(), Vec::new());
        for (i, j, rank) in edges::neighbour_pairs(&points, edges::PROBE_NEIGHBOURS) {
            let e = Edge::between(&points, usize::from(i), usize::from(j));
            if usize::from(rank) < edges::CANDIDATE_NEIGHBOURS {
                edges.push(e);
            } else {
                probe_edges.push(e);
            }
        }
        edges.sort_unstable_by_key(|e| e.cell);
        let hull = Hull::of(points.iter().map(|p| (p.x, p.y)));
        let grid = Grid::new(&points);
        Self {
            points,
            edges,
            probe_edges,
            hull,
            grid,
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
}

/// A probe made ready to be compared with many candidates.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    probe: PreparedTemplate,
    table: Table,
}

/// Reusable working memory of comparisons (one per thread): comparing with it allocates nothing once warm.
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    links: Links,
    roots: Vec<(f32, u8, u8)>,
    growth: Growth,
    best: Growth,
    covered: Vec<u8>,
    fit: Vec<PointPair>,
    order: Vec<u32>,
    pairings: [Pairing; 2],
}

impl Matcher {
    /// Prepares `probe`.
    pub fn new(probe: &Template) -> Self {
        Self::from_prepared(PreparedTemplate::new(probe))
    }

    /// Wraps an already prepared probe.
    pub fn from_prepared(probe: PreparedTemplate) -> Self {
        // The probe files each neighbour pair in both directions.
        let both: Vec<Edge> = probe
            .edges
            .iter()
            .chain(&probe.probe_edges)
            .flat_map(|e| {
                let (i, j) = (usize::from(e.from), usize::from(e.to));
                [*e, Edge::between(&probe.points, j, i)]
            })
            .collect();
        let table = Table::new(&both);
        Self { probe, table }
    }

    /// The prepared probe.
    pub fn probe(&self) -> &PreparedTemplate {
        &self.probe
    }

    /// The calibrated score of `candidate` (see [`crate::calibration`]): `-10 * log10(FMR)`, 0 for nothing in
    /// common.
    pub fn score(&self, candidate: &PreparedTemplate) -> f32 {
        calibrate(self.raw_score(candidate))
    }

    /// [`Matcher::score`] with caller-provided working memory (for loops over many candidates).
    pub fn score_with(&self, candidate: &PreparedTemplate, scratch: &mut Scratch) -> f32 {
        calibrate(self.raw_score_with(candidate, scratch))
    }

    /// The raw similarity to `candidate`: 0 for nothing in common up to 100 for identical templates.
    pub fn raw_score(&self, candidate: &PreparedTemplate) -> f32 {
        self.raw_score_with(candidate, &mut Scratch::default())
    }

    /// [`Matcher::raw_score`] with caller-provided working memory (for loops over many candidates).
    pub fn raw_score_with(&self, candidate: &PreparedTemplate, scratch: &mut Scratch) -> f32 {
        raw_score(self, candidate, scratch).unwrap_or(0.0)
    }
}

/// Calibrated score of two prepared templates (see [`Matcher::score`]); prepares `a` as a probe, so a 1:N search
/// should build one [`Matcher`] instead.
pub fn compare(a: &PreparedTemplate, b: &PreparedTemplate) -> f32 {
    Matcher::from_prepared(a.clone()).score(b)
}

fn raw_score(m: &Matcher, candidate: &PreparedTemplate, scratch: &mut Scratch) -> Option<f32> {
    let probe = &m.probe;
    if probe.len() < 2 || candidate.len() < 2 {
        return None;
    }
    scratch
        .links
        .find(&m.table, probe.len(), &candidate.edges, candidate.len());
    if scratch.links.is_empty() {
        return None;
    }
    grow_best(scratch, probe.len(), candidate.len());
    if scratch.best.pairs.len() < MIN_GROWN {
        return None;
    }
    let (transform, which) = align(probe, candidate, scratch)?;
    Some(overlap_score(
        probe,
        candidate,
        &scratch.pairings[which],
        &transform,
    ))
}

/// Grows pairings from the best roots (skipping roots already reached from a better one) and keeps the largest in
/// `scratch.best`.
fn grow_best(scratch: &mut Scratch, n_probe: usize, n_candidate: usize) {
    let Scratch {
        links,
        roots,
        growth,
        best,
        covered,
        ..
    } = scratch;
    links.roots(ROOTS, roots);
    growth.reset(n_probe, n_candidate);
    best.reset(n_probe, n_candidate);
    covered.clear();
    covered.resize(n_probe, u8::MAX);
    for &(_, a, i) in roots.iter() {
        if covered[usize::from(a)] == i {
            continue;
        }
        links.grow((a, i), growth);
        for &(pa, pi) in &growth.pairs {
            covered[usize::from(pa)] = pi;
        }
        if growth.beats(best) {
            std::mem::swap(growth, best);
        }
    }
}

/// The global pairing under the transform fitted to the best growth (`scratch.pairings[0]`), refitted once into
/// `scratch.pairings[1]` when promising; returns the better one's transform and index.
fn align(
    probe: &PreparedTemplate,
    candidate: &PreparedTemplate,
    scratch: &mut Scratch,
) -> Option<(Rigid, usize)> {
    let sides = (&probe.points[..], &candidate.points[..], &candidate.grid);
    let Scratch {
        best,
        fit,
        order,
        pairings,
        ..
    } = scratch;
    let [first, second] = pairings;
    second.clear();
    let (transform, anchor) = fit_transform(probe, candidate, best.pairs.iter().copied(), fit)?;
    pair_up(sides, &transform, anchor, order, first);
    if first.count < MIN_TO_REFIT {
        return Some((transform, 0));
    }
    let pairs = first.pairs().map(|(a, i)| (a as u8, i as u8));
    let Some((refit, anchor)) = fit_transform(probe, candidate, pairs, fit) else {
        return Some((transform, 0));
    };
    pair_up(sides, &refit, anchor, order, second);
    Some(if second.weight > first.weight {
        (refit, 1)
    } else {
        (transform, 0)
    })
}

/// The least-squares rigid transform taking the probe side of `pairs` onto the candidate side, and the probe-side
/// centroid; `fit` is scratch.
fn fit_transform(
    probe: &PreparedTemplate,
    candidate: &PreparedTemplate,
    pairs: impl Iterator<Item = (u8, u8)>,
    fit: &mut Vec<PointPair>,
) -> Option<(Rigid, (f32, f32))> {
    fit.clear();
    fit.extend(pairs.map(|(a, i)| {
        let (p, c) = (
            &probe.points[usize::from(a)],
            &candidate.points[usize::from(i)],
        );
        ((p.x, p.y), (c.x, c.y))
    }));
    let transform = Rigid::fit(fit.iter().copied())?;
    let n = fit.len() as f32;
    let (sx, sy) = fit
        .iter()
        .fold((0.0, 0.0), |(sx, sy), ((x, y), _)| (sx + x, sy + y));
    Some((transform, (sx / n, sy / n)))
}

/// `100 * w^2 / (a_probe * a_candidate)` (see the module docs).
fn overlap_score(
    probe: &PreparedTemplate,
    candidate: &PreparedTemplate,
    pairing: &Pairing,
    transform: &Rigid,
) -> f32 {
    let inverse = transform.inverse();
    let inside = |points: &[Point], area: &Hull, moved: &Rigid| {
        points
            .iter()
            .filter(|p| area.contains(moved.apply(p.x, p.y), OVERLAP_MARGIN))
            .count()
    };
    let area =
        |overlap: usize, n: usize| overlap.max(OVERLAP_FLOOR).max(pairing.count).min(n) as f32;
    let a_probe = area(
        inside(&probe.points, &candidate.hull, transform),
        probe.len(),
    );
    let a_candidate = area(
        inside(&candidate.points, &probe.hull, &inverse),
        candidate.len(),
    );
    100.0 * pairing.weight * pairing.weight / (a_probe * a_candidate)
}
