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
use crate::edges::{self, Edge, Point, QuarterPoint, StoredEdge};
use crate::geometry::Rigid;
use crate::grow::{Growth, Links};
use crate::region::{self, Hull};
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

/// A template made ready for comparison: working-frame minutiae, their edges and their convex hull's vertices. Kept
/// compact (exactly sized; the area's edges and the position grid are made when an alignment needs them), since a
/// 1:N index holds one per enrolled finger.
#[derive(Debug, Clone, Default)]
pub struct PreparedTemplate {
    points: Vec<Point>,
    /// Edges between candidate neighbours ([`edges::CANDIDATE_NEIGHBOURS`]), one way, sorted by cell.
    edges: Vec<StoredEdge>,
    /// The convex hull's vertices, as indices into `points`.
    hull: Vec<u8>,
}

/// A candidate's minutiae: full precision (a [`PreparedTemplate`]) or as a 1:N index stores them.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CandidatePoints<'a> {
    Full(&'a [Point]),
    Quarter(&'a [QuarterPoint]),
}

impl CandidatePoints<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Full(p) => p.len(),
            Self::Quarter(p) => p.len(),
        }
    }

    /// The working-frame points into `out`.
    fn fill(&self, out: &mut Vec<Point>) {
        out.clear();
        match self {
            Self::Full(p) => out.extend_from_slice(p),
            Self::Quarter(p) => out.extend(p.iter().map(QuarterPoint::point)),
        }
    }
}

/// A prepared candidate's minutiae and edges, wherever they are stored (a [`PreparedTemplate`], or the 1:N
/// index's shared arrays).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CandidateRef<'a> {
    pub points: CandidatePoints<'a>,
    pub edges: &'a [StoredEdge],
    /// The convex hull's vertices, as indices into `points`.
    pub hull: &'a [u8],
}

/// The working-frame minutiae of `t` (only its first 255 minutiae are used).
fn working_points(t: &Template) -> Vec<Point> {
    t.minutiae
        .iter()
        .take(MAX_MINUTIAE)
        .map(|m| Point::new(m.x, -m.y, m.angle))
        .collect()
}

/// The candidate edges of `points`: one per pair within [`edges::CANDIDATE_NEIGHBOURS`], from the lower index,
/// sorted by cell so that a candidate's lookups walk the probe's table forwards.
fn candidate_edges(points: &[Point]) -> Vec<StoredEdge> {
    let mut edges: Vec<Edge> = edges::neighbour_pairs(points, edges::PROBE_NEIGHBOURS)
        .into_iter()
        .filter(|&(_, _, rank)| usize::from(rank) < edges::CANDIDATE_NEIGHBOURS)
        .map(|(i, j, _)| Edge::between(points, usize::from(i), usize::from(j)))
        .collect();
    edges.sort_unstable_by_key(|e| e.cell);
    edges.iter().map(StoredEdge::new).collect()
}

impl PreparedTemplate {
    /// Prepares `t` (only its first 255 minutiae are used).
    pub fn new(t: &Template) -> Self {
        let points = working_points(t);
        let edges = candidate_edges(&points);
        let xy: Vec<(f32, f32)> = points.iter().map(|p| (p.x, p.y)).collect();
        let hull = region::vertex_indices(&xy);
        Self {
            points,
            edges,
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

    /// Bytes this template holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(self.points.as_slice())
            + std::mem::size_of_val(self.edges.as_slice())
            + self.hull.len()
    }

    pub(crate) fn candidate(&self) -> CandidateRef<'_> {
        CandidateRef {
            points: CandidatePoints::Full(&self.points),
            edges: &self.edges,
            hull: &self.hull,
        }
    }

    pub(crate) fn into_parts(self) -> (Vec<Point>, Vec<StoredEdge>, Vec<u8>) {
        (self.points, self.edges, self.hull)
    }
}

/// A probe made ready to be compared with many candidates.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    probe: PreparedTemplate,
    hull: Hull,
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
    /// The candidate's working-frame points, grid and area, made when an alignment needs them.
    points: Vec<Point>,
    grid: Grid,
    hull: Hull,
    cells: Vec<usize>,
}

impl Matcher {
    /// Prepares `probe`.
    pub fn new(probe: &Template) -> Self {
        Self::from_prepared(PreparedTemplate::new(probe))
    }

    /// Wraps an already prepared probe.
    pub fn from_prepared(probe: PreparedTemplate) -> Self {
        // The probe files its candidate edges and the further pairs up to [`edges::PROBE_NEIGHBOURS`], each in
        // both directions.
        let further: Vec<Edge> = edges::neighbour_pairs(&probe.points, edges::PROBE_NEIGHBOURS)
            .into_iter()
            .filter(|&(_, _, rank)| usize::from(rank) >= edges::CANDIDATE_NEIGHBOURS)
            .map(|(i, j, _)| Edge::between(&probe.points, usize::from(i), usize::from(j)))
            .collect();
        let both: Vec<Edge> = probe
            .edges
            .iter()
            .map(|e| (e.from, e.to))
            .chain(further.iter().map(|e| (e.from, e.to)))
            .flat_map(|(i, j)| {
                let (i, j) = (usize::from(i), usize::from(j));
                [
                    Edge::between(&probe.points, i, j),
                    Edge::between(&probe.points, j, i),
                ]
            })
            .collect();
        let table = Table::new(&both);
        let mut hull = Hull::default();
        set_hull(&mut hull, &probe.points, &probe.hull);
        Self { probe, hull, table }
    }

    /// The prepared probe.
    pub fn probe(&self) -> &PreparedTemplate {
        &self.probe
    }

    /// The probe's edge table (the pre-selection evaluation looks edges up in it).
    #[cfg(test)]
    pub(crate) fn table(&self) -> &Table {
        &self.table
    }

    /// The calibrated score of `candidate` (see [`crate::calibration`]): `-10 * log10(FMR)`, 0 for nothing in
    /// common.
    pub fn score(&self, candidate: &PreparedTemplate) -> f32 {
        calibrate(self.raw_score(candidate))
    }

    /// [`Matcher::score`] with caller-provided working memory (for loops over many candidates).
    pub fn score_with(&self, candidate: &PreparedTemplate, scratch: &mut Scratch) -> f32 {
        self.score_candidate(candidate.candidate(), scratch)
    }

    pub(crate) fn score_candidate(
        &self,
        candidate: CandidateRef<'_>,
        scratch: &mut Scratch,
    ) -> f32 {
        calibrate(raw_score(self, candidate, scratch).unwrap_or(0.0))
    }

    /// The raw similarity to `candidate`: 0 for nothing in common up to 100 for identical templates.
    pub fn raw_score(&self, candidate: &PreparedTemplate) -> f32 {
        self.raw_score_with(candidate, &mut Scratch::default())
    }

    /// [`Matcher::raw_score`] with caller-provided working memory (for loops over many candidates).
    pub fn raw_score_with(&self, candidate: &PreparedTemplate, scratch: &mut Scratch) -> f32 {
        raw_score(self, candidate.candidate(), scratch).unwrap_or(0.0)
    }
}

/// Calibrated score of two prepared templates (see [`Matcher::score`]); prepares `a` as a probe, so a 1:N search
/// should build one [`Matcher`] instead.
pub fn compare(a: &PreparedTemplate, b: &PreparedTemplate) -> f32 {
    Matcher::from_prepared(a.clone()).score(b)
}

fn raw_score(m: &Matcher, candidate: CandidateRef<'_>, scratch: &mut Scratch) -> Option<f32> {
    let probe = &m.probe;
    let n_candidate = candidate.points.len();
    if probe.len() < 2 || n_candidate < 2 {
        return None;
    }
    if !grow_pairing(m, candidate, scratch) || scratch.best.pairs.len() < MIN_GROWN {
        return None;
    }
    let mut points = std::mem::take(&mut scratch.points);
    candidate.points.fill(&mut points);
    scratch.grid.set(&points, &mut scratch.cells);
    let aligned = align(&probe.points, &points, scratch);
    let score = aligned.map(|(transform, which)| {
        set_hull(&mut scratch.hull, &points, candidate.hull);
        overlap_score(
            (&probe.points, &m.hull),
            (&points, &scratch.hull),
            &scratch.pairings[which],
            &transform,
        )
    });
    scratch.points = points;
    score
}

/// Steps 2 and 3 (module docs): finds the links, the roots (`scratch.roots`) and the largest pairing grown from them
/// (`scratch.best`); `false` when there is no link (and nothing else was done).
fn grow_pairing(m: &Matcher, candidate: CandidateRef<'_>, scratch: &mut Scratch) -> bool {
    let n_candidate = candidate.points.len();
    scratch
        .links
        .find(&m.table, m.probe.len(), candidate.edges, n_candidate);
    if scratch.links.is_empty() {
        return false;
    }
    grow_best(scratch, m.probe.len(), n_candidate);
    true
}

/// Makes `hull` the area of `points` whose vertices are `points[vertices]` ([`region::vertex_indices`]).
fn set_hull(hull: &mut Hull, points: &[Point], vertices: &[u8]) {
    hull.set(
        vertices
            .iter()
            .filter_map(|&k| points.get(usize::from(k)).map(|p| (p.x, p.y))),
    );
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
/// `scratch.pairings[1]` when promising; returns the better one's transform and index. `scratch.grid` holds the
/// candidate's grid.
fn align(probe: &[Point], candidate: &[Point], scratch: &mut Scratch) -> Option<(Rigid, usize)> {
    let Scratch {
        best,
        fit,
        order,
        pairings,
        grid,
        ..
    } = scratch;
    let sides = (probe, candidate, &*grid);
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
    probe: &[Point],
    candidate: &[Point],
    pairs: impl Iterator<Item = (u8, u8)>,
    fit: &mut Vec<PointPair>,
) -> Option<(Rigid, (f32, f32))> {
    fit.clear();
    fit.extend(pairs.map(|(a, i)| {
        let (p, c) = (&probe[usize::from(a)], &candidate[usize::from(i)]);
        ((p.x, p.y), (c.x, c.y))
    }));
    let transform = Rigid::fit(fit.iter().copied())?;
    let n = fit.len() as f32;
    let (sx, sy) = fit
        .iter()
        .fold((0.0, 0.0), |(sx, sy), ((x, y), _)| (sx + x, sy + y));
    Some((transform, (sx / n, sy / n)))
}

/// `100 * w^2 / (a_probe * a_candidate)` (see the module docs); each side as its minutiae and area.
fn overlap_score(
    (probe, probe_hull): (&[Point], &Hull),
    (candidate, candidate_hull): (&[Point], &Hull),
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
    let a_probe = area(inside(probe, candidate_hull, transform), probe.len());
    let a_candidate = area(inside(candidate, probe_hull, &inverse), candidate.len());
    100.0 * pairing.weight * pairing.weight / (a_probe * a_candidate)
}

/// What the stages before alignment find, for the pre-selection evaluation (`tests_preselect.rs`): the best root's
/// support, the summed support of the [`ROOTS`] best, and the size of the largest grown pairing.
#[cfg(test)]
pub(crate) fn early_stages(
    m: &Matcher,
    candidate: &PreparedTemplate,
    scratch: &mut Scratch,
) -> (f32, f32, usize) {
    if !grow_pairing(m, candidate.candidate(), scratch) {
        return (0.0, 0.0, 0);
    }
    let best = scratch.roots.first().map_or(0.0, |r| r.0);
    let sum = scratch.roots.iter().map(|r| r.0).sum();
    (best, sum, scratch.best.pairs.len())
}
