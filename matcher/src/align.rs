//! Global consistency of one alignment: move the probe's minutiae with a rigid transform and pair each with the
//! nearest free candidate minutia that agrees in position and direction (one-to-one, greedy, working outwards from
//! the anchor where the alignment is most accurate). Candidate minutiae are looked up in a coarse grid.

use crate::edges::Point;
use crate::geometry::{Rigid, Turn, turn, turn_diff, turn_tolerance};

/// Position tolerance (pixels at 500 ppi) at the anchor.
const DISTANCE_TOLERANCE: f32 = 12.0;
/// Extra position tolerance per pixel of distance from the anchor (skin distortion grows outwards).
const DISTANCE_TOLERANCE_SLOPE: f32 = 0.06;
/// Direction tolerance (pi/6 radians, 30 degrees).
const ANGLE_TOLERANCE: Turn = turn_tolerance(std::f32::consts::PI / 6.0);
/// Side of a grid cell, pixels.
const CELL: f32 = 24.0;

/// The minutia pairs found under one transform.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pairing {
    /// `(probe index, candidate index)` of each pair.
    pairs: Vec<(u8, u8)>,
    /// Number of pairs.
    pub count: usize,
    /// Sum over pairs of the closeness in position and direction, each pair worth at most 1.
    pub weight: f32,
}

impl Pairing {
    /// Empties the pairing.
    pub(crate) fn clear(&mut self) {
        self.pairs.clear();
        self.count = 0;
        self.weight = 0.0;
    }

    /// The pairs as indices.
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.pairs
            .iter()
            .map(|&(p, c)| (usize::from(p), usize::from(c)))
    }
}

/// A template's minutiae bucketed by position.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Grid {
    x0: f32,
    y0: f32,
    cols: usize,
    rows: usize,
    /// Points of cell `c` are `items[start[c]..start[c + 1]]`.
    start: Vec<u16>,
    items: Vec<u8>,
}

impl Grid {
    /// Makes this the grid of `points` (at most 255), reusing its buffers; `cells` is scratch (for the many
    /// candidates of a 1:N search, whose grids are made only when an alignment needs them).
    pub(crate) fn set(&mut self, points: &[Point], cells: &mut Vec<usize>) {
        self.start.clear();
        self.items.clear();
        if points.is_empty() {
            (self.x0, self.y0, self.cols, self.rows) = (0.0, 0.0, 0, 0);
            return;
        }
        let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for p in points {
            x0 = x0.min(p.x);
            y0 = y0.min(p.y);
            x1 = x1.max(p.x);
            y1 = y1.max(p.y);
        }
        // Non-finite or huge coordinates collapse into one cell rather than a huge grid.
        let span = |a: f32, b: f32| {
            let n = ((b - a) / CELL).floor();
            if n.is_finite() && (0.0..256.0).contains(&n) {
                n as usize + 1
            } else {
                1
            }
        };
        let (cols, rows) = (span(x0, x1), span(y0, y1));
        (self.x0, self.y0, self.cols, self.rows) = (x0, y0, cols, rows);
        self.start.resize(cols * rows + 1, 0);
        self.items.resize(points.len(), 0);
        cells.clear();
        cells.extend(points.iter().map(|p| self.cell_of(p.x, p.y)));
        for &c in cells.iter() {
            self.start[c + 1] += 1;
        }
        for c in 0..cols * rows {
            self.start[c + 1] += self.start[c];
        }
        // Fill each cell from its end backwards (`start[c + 1]` counts down to `start[c]`), visiting points in
        // reverse so that each cell keeps them in index order.
        for (i, &c) in cells.iter().enumerate().rev() {
            self.start[c + 1] -= 1;
            self.items[usize::from(self.start[c + 1])] = i as u8;
        }
        // `start[c + 1]` now holds cell c's first slot: shift back, the end being the number of points.
        self.start.rotate_left(1);
        self.start[cols * rows] = points.len() as u16;
    }

    fn column(&self, x: f32) -> usize {
        (((x - self.x0) / CELL).max(0.0) as usize).min(self.cols - 1)
    }

    fn row(&self, y: f32) -> usize {
        (((y - self.y0) / CELL).max(0.0) as usize).min(self.rows - 1)
    }

    fn cell_of(&self, x: f32, y: f32) -> usize {
        self.row(y) * self.cols + self.column(x)
    }

    /// The runs of `items` holding the points that may lie within `r` of `(x, y)`: one per grid row, each
    /// `start[row * cols + c0]..start[row * cols + c1 + 1]`, as `(first row, last row, c0, c1)`; empty (first row
    /// past the last) when `(x, y)` is not near the grid.
    fn near(&self, x: f32, y: f32, r: f32) -> (usize, usize, usize, usize) {
        let outside = self.cols == 0
            || x + r < self.x0
            || y + r < self.y0
            || x - r > self.x0 + self.cols as f32 * CELL
            || y - r > self.y0 + self.rows as f32 * CELL
            || !(x.is_finite() && y.is_finite());
        if outside {
            (1, 0, 1, 0)
        } else {
            (
                self.row(y - r),
                self.row(y + r),
                self.column(x - r),
                self.column(x + r),
            )
        }
    }

    /// The points of one row's run of [`Grid::near`].
    fn run(&self, row: usize, c0: usize, c1: usize) -> &[u8] {
        let (from, to) = (row * self.cols + c0, row * self.cols + c1 + 1);
        match (self.start.get(from), self.start.get(to)) {
            (Some(&from), Some(&to)) => self
                .items
                .get(usize::from(from)..usize::from(to))
                .unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// Pairs `probe` (moved by `transform`) with `candidate` (bucketed in `grid`) into `pairing`, visiting probe
/// minutiae by distance from `anchor` (a probe-frame point); `order` is scratch. Both sides hold at most 255
/// minutiae.
pub(crate) fn pair_up(
    (probe, candidate, grid): (&[Point], &[Point], &Grid),
    transform: &Rigid,
    anchor: (f32, f32),
    order: &mut Vec<u32>,
    pairing: &mut Pairing,
) {
    // Radius (1/16 px, saturating) in the high bits, index in the low byte: sorting the keys sorts by radius.
    order.clear();
    order.extend(probe.iter().enumerate().map(|(i, p)| {
        let r = ((p.x - anchor.0).powi(2) + (p.y - anchor.1).powi(2)).sqrt();
        ((r * 16.0).min(16_777_215.0) as u32) << 8 | i as u32
    }));
    order.sort_unstable();
    let rotation = turn(transform.angle);
    let mut used = [false; 256];
    pairing.pairs.clear();
    pairing.count = 0;
    pairing.weight = 0.0;
    for &key in order.iter() {
        let i = (key & 0xff) as usize;
        let p = &probe[i];
        let (x, y) = transform.apply(p.x, p.y);
        let dir = p.dir.wrapping_add(rotation);
        let tolerance = DISTANCE_TOLERANCE + DISTANCE_TOLERANCE_SLOPE * (key >> 8) as f32 / 16.0;
        let mut best: Option<(usize, f32)> = None;
        let (r0, r1, c0, c1) = grid.near(x, y, tolerance);
        for row in r0..=r1 {
            for &j in grid.run(row, c0, c1) {
                let j = usize::from(j);
                let Some(c) = candidate.get(j) else { continue };
                let d2 = (c.x - x) * (c.x - x) + (c.y - y) * (c.y - y);
                if !used[j]
                    && d2 < tolerance * tolerance
                    && best.is_none_or(|(_, b)| d2 < b)
                    && turn_diff(dir, c.dir) < ANGLE_TOLERANCE
                {
                    best = Some((j, d2));
                }
            }
        }
        if let Some((j, d2)) = best {
            used[j] = true;
            let da = f32::from(turn_diff(dir, candidate[j].dir)) / f32::from(ANGLE_TOLERANCE);
            let closeness = (1.0 - d2.sqrt() / tolerance) * (1.0 - da);
            pairing.pairs.push((i as u8, j as u8));
            pairing.count += 1;
            pairing.weight += 0.5 + 0.5 * closeness;
        }
    }
}
