//! Edges: each minutia described by its nearest neighbours, in terms that do not change when the finger is rotated
//! or shifted (distance, bearing of the neighbour seen from the minutia's own direction, and the neighbour's
//! direction relative to it). Two edges of similar shape in two templates suggest that their two end minutiae are
//! the same two points of the same finger.
//!
//! Edge shapes are quantised into [`CELLS`] hash cells so that a probe can find the similar edges of a candidate
//! by lookup instead of by trying every pair (see `table.rs`).

use crate::geometry::{Turn, turn, turn_diff, turn_tolerance};

/// Neighbours a probe relates each minutia to.
pub(crate) const PROBE_NEIGHBOURS: usize = 7;
/// Neighbours a candidate relates each minutia to: fewer than the probe's, so that a candidate's edge, looked up in
/// the probe's table, very likely finds its counterpart even when a few minutiae are missing or spurious.
pub(crate) const CANDIDATE_NEIGHBOURS: usize = 5;
/// Neighbours closer than this (pixels at 500 ppi) are ignored: they are usually extraction noise.
const MIN_LENGTH: f32 = 6.0;
/// Neighbours farther than this are ignored: distortion makes far geometry unreliable.
const MAX_LENGTH: f32 = 160.0;
/// Length tolerance between two edges: a fixed part plus a share of the length (skin stretches).
const LENGTH_TOLERANCE: f32 = 5.0;
const LENGTH_TOLERANCE_SHARE: f32 = 0.06;
/// Angle tolerance for bearings and relative directions (0.22 rad, about 12.6 degrees).
pub(crate) const ANGLE_TOLERANCE: Turn = turn_tolerance(0.22);

/// Length bins: `ln(tolerance(length)) / share`, so that one bin spans about one tolerance at any length.
const LENGTH_BINS: usize = 24;
/// Angle bins per full turn (22.5 degrees each, close to the tolerance).
const ANGLE_BINS: usize = 16;
const ANGLE_SHIFT: u32 = 12;
/// Edge lengths are stored in steps of 1/16 pixel.
const LENGTH_STEPS: f32 = 16.0;
/// Number of hash cells.
pub(crate) const CELLS: usize = LENGTH_BINS * ANGLE_BINS * ANGLE_BINS;

/// A minutia in the working frame (y up).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    pub x: f32,
    pub y: f32,
    /// Direction as a [`Turn`].
    pub dir: Turn,
}

impl Point {
    /// A point from a position and a direction in radians.
    pub(crate) fn new(x: f32, y: f32, angle: f32) -> Self {
        Self {
            x,
            y,
            dir: turn(angle),
        }
    }
}

/// One neighbour `to` as seen from the reference minutia `from`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Edge {
    pub from: u8,
    pub to: u8,
    /// Hash cell of the shape.
    pub cell: u16,
    /// Distance in 1/16 pixels.
    pub length: u16,
    /// Direction from the reference to the neighbour, relative to the reference's direction.
    pub bearing: Turn,
    /// Neighbour's direction relative to the reference's direction.
    pub relative: Turn,
}

fn tolerance(length: f32) -> f32 {
    LENGTH_TOLERANCE + LENGTH_TOLERANCE_SHARE * length
}

/// Length bin of `length` (clamped into range).
fn length_bin(length: f32) -> usize {
    let origin = LENGTH_TOLERANCE.ln() / LENGTH_TOLERANCE_SHARE;
    let u = tolerance(length.max(0.0)).ln() / LENGTH_TOLERANCE_SHARE - origin;
    (u.max(0.0) as usize).min(LENGTH_BINS - 1)
}

fn cell_of(length_bin: usize, bearing_bin: usize, relative_bin: usize) -> u16 {
    ((length_bin * ANGLE_BINS + bearing_bin) * ANGLE_BINS + relative_bin) as u16
}

impl Edge {
    /// The hash cell of this edge's shape.
    fn cell(&self) -> u16 {
        cell_of(
            length_bin(self.length()),
            usize::from(self.bearing >> ANGLE_SHIFT),
            usize::from(self.relative >> ANGLE_SHIFT),
        )
    }

    /// Every cell holding a shape this edge would match (its tolerance box), for the probe's table.
    pub(crate) fn cells_within_tolerance(&self, out: &mut Vec<u16>) {
        let length = self.length();
        let t = tolerance(length);
        let (lo, hi) = (length_bin(length - t), length_bin(length + t));
        let angle_bins = |a: Turn| {
            let first = a.wrapping_sub(ANGLE_TOLERANCE) >> ANGLE_SHIFT;
            let last = a.wrapping_add(ANGLE_TOLERANCE) >> ANGLE_SHIFT;
            let span = (last.wrapping_sub(first) as usize) % ANGLE_BINS;
            (0..=span).map(move |k| (usize::from(first) + k) % ANGLE_BINS)
        };
        for l in lo..=hi {
            for b in angle_bins(self.bearing) {
                for r in angle_bins(self.relative) {
                    out.push(cell_of(l, b, r));
                }
            }
        }
    }

    /// How well `other` (a candidate's edge) agrees with this (a probe's) edge, in (0, 1], or 0 outside the
    /// tolerance: agreement falls linearly to 0 at the tolerance, in length, bearing and relative direction alike.
    /// Computed without branches: most probe edges looked up are outside the tolerance, and unpredictable
    /// branches would cost more than the arithmetic.
    /// The reference definition: comparisons use [`FiledEdge::similarity`], tested to agree bit for bit.
    #[cfg(test)]
    pub(crate) fn similarity(&self, other: &Edge) -> f32 {
        let db = f32::from(turn_diff(self.bearing, other.bearing));
        let dr = f32::from(turn_diff(self.relative, other.relative));
        let length = self.length();
        let dl = (other.length() - length).abs();
        let a = 1.0 / f32::from(ANGLE_TOLERANCE);
        let closeness = |d: f32, scale: f32| (1.0 - d * scale).max(0.0);
        closeness(dl, 1.0 / tolerance(length)) * closeness(db, a) * closeness(dr, a)
    }
}

/// A probe edge as filed in the probe's table (`table.rs`), with the terms of [`Edge::similarity`] that depend only
/// on the probe edge computed once per probe instead of once per lookup (the length in pixels and the inverse of its
/// tolerance, which was a division in the hot loop).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct FiledEdge {
    /// Length in pixels ([`Edge::length`]).
    pub length: f32,
    /// `1 / tolerance(length)`.
    pub inverse_tolerance: f32,
    pub bearing: Turn,
    pub relative: Turn,
    pub from: u8,
    pub to: u8,
}

impl FiledEdge {
    pub(crate) fn new(e: &Edge) -> Self {
        let length = e.length();
        Self {
            length,
            inverse_tolerance: 1.0 / tolerance(length),
            bearing: e.bearing,
            relative: e.relative,
            from: e.from,
            to: e.to,
        }
    }

    /// Exactly [`Edge::similarity`] of the probe edge this was filed from with a candidate edge of this `bearing`,
    /// `relative` direction and `length` (pixels), the same operations in the same order (bit-identical result;
    /// `tests::filed_similarity_is_bit_identical`). Branch-free, like the original.
    #[inline]
    pub(crate) fn similarity(&self, bearing: Turn, relative: Turn, length: f32) -> f32 {
        let db = f32::from(turn_diff(self.bearing, bearing));
        let dr = f32::from(turn_diff(self.relative, relative));
        let dl = (length - self.length).abs();
        let a = 1.0 / f32::from(ANGLE_TOLERANCE);
        let closeness = |d: f32, scale: f32| (1.0 - d * scale).max(0.0);
        closeness(dl, self.inverse_tolerance) * closeness(db, a) * closeness(dr, a)
    }
}

impl Edge {
    /// Length in pixels.
    #[inline]
    pub(crate) fn length(&self) -> f32 {
        f32::from(self.length) / LENGTH_STEPS
    }

    /// The edge from `points[from]` to `points[to]`.
    pub(crate) fn between(points: &[Point], from: usize, to: usize) -> Edge {
        let (me, other) = (&points[from], &points[to]);
        let (dx, dy) = (other.x - me.x, other.y - me.y);
        let mut edge = Edge {
            from: from as u8,
            to: to as u8,
            cell: 0,
            length: ((dx * dx + dy * dy).sqrt() * LENGTH_STEPS)
                .round()
                .min(65535.0) as u16,
            bearing: turn(dy.atan2(dx)).wrapping_sub(me.dir),
            relative: other.dir.wrapping_sub(me.dir),
        };
        edge.cell = edge.cell();
        edge
    }
}

/// A candidate's edge as a 1:N index stores it: an [`Edge`] without its cell, which [`StoredEdge::cell`] gives
/// back from the shape, and with its two directions kept to 1/1024 turn: 6 bytes instead of 10, on about 140
/// edges per enrolled finger (a 100k-subject watchlist holds about 140 million).
///
/// The shape is one 32-bit word, kept as two 16-bit halves so that the edge needs no 4-byte alignment (an array of
/// them has no padding): the length in 1/16 pixels in the low 12 bits (edges are at most [`MAX_LENGTH`] long),
/// then the bearing's and the relative direction's top 10 bits. The dropped low bits are given back as the middle
/// of the step they cut (an error of at most 1/2048 turn, 0.18 degrees, against an [`ANGLE_TOLERANCE`] of about
/// 12.6 degrees), and the hash cell, which uses only the top 4 bits of each direction, is exactly [`Edge`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct StoredEdge {
    pub from: u8,
    pub to: u8,
    shape: [u16; 2],
}

/// Bits of a [`StoredEdge`]'s length (1/16 pixels, up to 255.9 pixels, beyond [`MAX_LENGTH`]).
const STORED_LENGTH_BITS: u32 = 12;
/// Bits of each of a [`StoredEdge`]'s directions.
const STORED_ANGLE_BITS: u32 = 10;
/// The low bits of a [`Turn`] a [`StoredEdge`] drops.
const STORED_ANGLE_DROP: u32 = 16 - STORED_ANGLE_BITS;

/// Length bins by length in 1/16 pixels, for lengths up to [`MAX_LENGTH`] (every neighbour edge).
static BIN_OF_LENGTH: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    (0..=(MAX_LENGTH * LENGTH_STEPS) as u16)
        .map(|l| length_bin(f32::from(l) / LENGTH_STEPS) as u8)
        .collect()
});

/// The table [`StoredEdge::cell`] takes (fetch it once per comparison, not once per edge).
pub(crate) fn length_bins() -> &'static [u8] {
    &BIN_OF_LENGTH
}

impl StoredEdge {
    /// `e` as stored: its length clamped to 12 bits (never reached by an edge of [`neighbour_pairs`]), its
    /// directions cut to their top 10 bits.
    pub(crate) fn new(e: &Edge) -> Self {
        let length = u32::from(e.length).min((1 << STORED_LENGTH_BITS) - 1);
        let angle = |a: Turn| u32::from(a) >> STORED_ANGLE_DROP;
        let word = length
            | angle(e.bearing) << STORED_LENGTH_BITS
            | angle(e.relative) << (STORED_LENGTH_BITS + STORED_ANGLE_BITS);
        Self {
            from: e.from,
            to: e.to,
            shape: [word as u16, (word >> 16) as u16],
        }
    }

    #[inline]
    fn word(&self) -> u32 {
        u32::from(self.shape[0]) | u32::from(self.shape[1]) << 16
    }

    /// Length in 1/16 pixels.
    #[inline]
    fn length_steps(&self) -> u16 {
        (self.word() & ((1 << STORED_LENGTH_BITS) - 1)) as u16
    }

    /// Length in pixels (as [`Edge::length`]).
    #[inline]
    pub(crate) fn length(&self) -> f32 {
        f32::from(self.length_steps()) / LENGTH_STEPS
    }

    /// The direction stored `shift` bits up, as the middle of its 1/1024-turn step.
    #[inline]
    fn angle(&self, shift: u32) -> Turn {
        let top = (self.word() >> shift) & ((1 << STORED_ANGLE_BITS) - 1);
        (top << STORED_ANGLE_DROP | 1 << (STORED_ANGLE_DROP - 1)) as Turn
    }

    /// Direction from the reference to the neighbour, relative to the reference's direction ([`Edge::bearing`]).
    #[inline]
    pub(crate) fn bearing(&self) -> Turn {
        self.angle(STORED_LENGTH_BITS)
    }

    /// The neighbour's direction relative to the reference's ([`Edge::relative`]).
    #[inline]
    pub(crate) fn relative(&self) -> Turn {
        self.angle(STORED_LENGTH_BITS + STORED_ANGLE_BITS)
    }

    /// The hash cell, exactly [`Edge`]'s: the length's bin from `bins` ([`length_bins`]), computed for lengths
    /// beyond it.
    #[inline]
    pub(crate) fn cell(&self, bins: &[u8]) -> u16 {
        let length_bin = bins
            .get(usize::from(self.length_steps()))
            .map_or_else(|| length_bin(self.length()), |&b| usize::from(b));
        cell_of(
            length_bin,
            usize::from(self.bearing() >> ANGLE_SHIFT),
            usize::from(self.relative() >> ANGLE_SHIFT),
        )
    }
}

/// A minutia as a 1:N index stores it: at the template codec's precision (quarter pixels, `crate::codec`), 6
/// bytes instead of 12. Exact for templates decoded from the codec, which is how watchlists are stored.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct QuarterPoint {
    /// Column, quarter pixels.
    x: u16,
    /// Row (y down, as in the template), quarter pixels.
    y: u16,
    dir: Turn,
}

impl QuarterPoint {
    /// `p` rounded to quarter pixels, coordinates clamped to the codec's range (0 to 16383.75 pixels).
    pub(crate) fn new(p: &Point) -> Self {
        let quarter = |v: f32| (v * 4.0).round().clamp(0.0, 65535.0) as u16;
        Self {
            x: quarter(p.x),
            y: quarter(-p.y),
            dir: p.dir,
        }
    }

    /// The working-frame point.
    #[inline]
    pub(crate) fn point(&self) -> Point {
        Point {
            x: f32::from(self.x) * 0.25,
            y: -(f32::from(self.y) * 0.25),
            dir: self.dir,
        }
    }
}

/// Every pair of minutiae where one is among the other's `neighbours` nearest usable neighbours, once each, as
/// `(lower index, higher index, rank)`, sorted by indices; `rank` is the better of the two ranks (0 = nearest).
/// `points` holds at most 255 minutiae.
pub(crate) fn neighbour_pairs(points: &[Point], neighbours: usize) -> Vec<(u8, u8, u8)> {
    let mut pairs: Vec<(u8, u8, u8)> = Vec::with_capacity(points.len() * neighbours);
    let mut near: Vec<(f32, usize)> = Vec::with_capacity(points.len());
    let (min2, max2) = (MIN_LENGTH * MIN_LENGTH, MAX_LENGTH * MAX_LENGTH);
    for (i, me) in points.iter().enumerate() {
        near.clear();
        for (j, other) in points.iter().enumerate() {
            let d2 = (other.x - me.x).powi(2) + (other.y - me.y).powi(2);
            if j != i && (min2..=max2).contains(&d2) {
                near.push((d2, j));
            }
        }
        let k = neighbours.min(near.len());
        if k < near.len() {
            near.select_nth_unstable_by(k, |a, b| a.0.total_cmp(&b.0));
        }
        near.truncate(k);
        near.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        pairs.extend(
            near.iter()
                .enumerate()
                .map(|(rank, &(_, j))| (i.min(j) as u8, i.max(j) as u8, rank as u8)),
        );
    }
    // Sorted by pair then rank, so that dedup keeps each pair's best rank.
    pairs.sort_unstable();
    pairs.dedup_by_key(|p| (p.0, p.1));
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table's precomputed similarity must agree bit for bit with [`Edge::similarity`], so that scores do not
    /// change: edges of every length step and turn class, near and far from each other.
    #[test]
    fn filed_similarity_is_bit_identical() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let edge = |r: u64| Edge {
            from: 0,
            to: 1,
            cell: 0,
            length: (r % 3000) as u16,
            bearing: (r >> 16) as u16,
            relative: (r >> 32) as u16,
        };
        for k in 0..1_000_000u32 {
            let p = edge(next());
            let mut c = edge(next());
            if k % 2 == 0 {
                // Close shapes, so that most pairs agree somewhat.
                let r = next();
                c.length = p.length.wrapping_add((r % 200) as u16).wrapping_sub(100);
                c.bearing = p
                    .bearing
                    .wrapping_add((r >> 16) as u16 % 6000)
                    .wrapping_sub(3000);
                c.relative = p
                    .relative
                    .wrapping_add((r >> 32) as u16 % 6000)
                    .wrapping_sub(3000);
            }
            let slow = p.similarity(&c);
            let fast = FiledEdge::new(&p).similarity(c.bearing, c.relative, c.length());
            assert_eq!(slow.to_bits(), fast.to_bits(), "{p:?} {c:?}");
        }
    }

    /// A stored edge is 6 bytes with no padding, keeps the length exactly and each direction within half its
    /// 1/1024-turn step, and files under exactly the cell of the edge it was made from: every edge between the
    /// points of a grid of positions and directions, so every length up to [`MAX_LENGTH`] and every direction
    /// class occurs.
    #[test]
    fn stored_edges_keep_the_cell_and_nearly_the_shape() {
        assert_eq!(std::mem::size_of::<StoredEdge>(), 6);
        assert_eq!(std::mem::size_of::<[StoredEdge; 4]>(), 24);
        let points: Vec<Point> = (0..400)
            .map(|k| {
                let (col, row) = ((k % 20) as f32, (k / 20) as f32);
                Point::new(col * 8.3 + row * 0.37, row * 8.1, k as f32 * 0.731)
            })
            .collect();
        let bins = length_bins();
        let mut checked = 0;
        for (i, j, _) in neighbour_pairs(&points, 40) {
            for (from, to) in [(i, j), (j, i)] {
                let e = Edge::between(&points, usize::from(from), usize::from(to));
                let stored = StoredEdge::new(&e);
                assert_eq!((stored.from, stored.to), (e.from, e.to));
                assert_eq!(stored.length().to_bits(), e.length().to_bits(), "{e:?}");
                assert!(turn_diff(stored.bearing(), e.bearing) <= 32, "{e:?}");
                assert!(turn_diff(stored.relative(), e.relative) <= 32, "{e:?}");
                assert_eq!(stored.cell(bins), e.cell, "{e:?}");
                checked += 1;
            }
        }
        assert!(checked > 10_000, "{checked}");
        // Directions at both ends of the range, and a length past the bin table.
        for a in [0u16, 1, 63, 64, 65535, 32768] {
            let e = Edge {
                from: 1,
                to: 2,
                cell: 0,
                length: 4000,
                bearing: a,
                relative: a.wrapping_add(12345),
            };
            let stored = StoredEdge::new(&e);
            assert!(turn_diff(stored.bearing(), e.bearing) <= 32);
            assert!(turn_diff(stored.relative(), e.relative) <= 32);
            assert_eq!(stored.length().to_bits(), e.length().to_bits());
            assert_eq!(stored.cell(bins), e.cell());
        }
    }
}
