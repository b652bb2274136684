//! The binary ridge map and its skeleton: small specks and pores are cleaned from the map, then it is thinned to
//! one-pixel ridges (Zhang-Suen, then removal of the remaining simple points so that every ridge pixel that is not
//! an ending or a fork has exactly two neighbours, which makes the skeleton straightforward to trace).
//!
//! The map is stored with a one-pixel frame of "outside" around it, so that neighbourhoods need no bounds checks;
//! thinning only ever visits pixels on the current ridge border.

/// A pixel value: valley (background), ridge, or the frame outside the image.
const VALLEY: u8 = 0;
const RIDGE: u8 = 1;
const OUTSIDE: u8 = 2;

/// Ridge specks and valley holes smaller than this many pixels are removed / filled.
const MIN_AREA: usize = 30;

/// Neighbour offsets in clockwise order starting north: N, NE, E, SE, S, SW, W, NW.
pub(crate) const NEIGHBOURS: [(isize, isize); 8] = [
    (0, -1),
    (1, -1),
    (1, 0),
    (1, 1),
    (0, 1),
    (-1, 1),
    (-1, 0),
    (-1, -1),
];

/// A binary image with a one-pixel frame.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Binary {
    pub width: usize,
    pub height: usize,
    stride: usize,
    data: Vec<u8>,
}

impl Binary {
    /// The map of `width` x `height` pixels where `ridge(i)` (row-major index) is set.
    pub(crate) fn new(width: usize, height: usize, ridge: impl Fn(usize) -> bool) -> Self {
        let stride = width + 2;
        let mut data = vec![OUTSIDE; stride * (height + 2)];
        for y in 0..height {
            for x in 0..width {
                data[(y + 1) * stride + x + 1] = if ridge(y * width + x) { RIDGE } else { VALLEY };
            }
        }
        Self {
            width,
            height,
            stride,
            data,
        }
    }

    /// Whether `(x, y)` (inside the image) is a ridge pixel.
    pub(crate) fn get(&self, x: usize, y: usize) -> bool {
        self.data[(y + 1) * self.stride + x + 1] == RIDGE
    }

    fn offsets(&self) -> [isize; 8] {
        NEIGHBOURS.map(|(dx, dy)| dy * self.stride as isize + dx)
    }

    /// The 8-bit neighbour pattern at framed index `i` (bit k = [`NEIGHBOURS`]`[k]` is a ridge pixel).
    fn pattern_at(&self, i: usize, offsets: &[isize; 8]) -> u8 {
        let mut p = 0u8;
        for (k, o) in offsets.iter().enumerate() {
            p |= u8::from(self.data[(i as isize + o) as usize] == RIDGE) << k;
        }
        p
    }

    /// The 8-bit neighbour pattern of `(x, y)` (inside the image).
    pub(crate) fn pattern(&self, x: usize, y: usize) -> u8 {
        self.pattern_at((y + 1) * self.stride + x + 1, &self.offsets())
    }

    /// Removes ridge regions (8-connected) and fills valley regions (4-connected, not touching the image edge)
    /// smaller than [`MIN_AREA`].
    pub(crate) fn clean(&mut self) {
        let all = self.offsets();
        let s = self.stride as isize;
        self.remove_small(RIDGE, &all);
        self.remove_small(VALLEY, &[-s, 1, s, -1]);
    }

    fn remove_small(&mut self, value: u8, steps: &[isize]) {
        let mut seen = vec![false; self.data.len()];
        let mut stack = Vec::new();
        let mut region = Vec::new();
        for start in 0..self.data.len() {
            if self.data[start] != value || seen[start] {
                continue;
            }
            seen[start] = true;
            stack.push(start);
            region.clear();
            let mut touches_edge = false;
            while let Some(i) = stack.pop() {
                region.push(i);
                for o in steps {
                    let j = (i as isize + o) as usize;
                    let v = self.data[j];
                    touches_edge |= v == OUTSIDE;
                    if v == value && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
            // A valley region touching the edge is background, never a hole.
            if region.len() < MIN_AREA && (value == RIDGE || !touches_edge) {
                let other = if value == RIDGE { VALLEY } else { RIDGE };
                for &i in &region {
                    self.data[i] = other;
                }
            }
        }
    }

    /// Thins the ridges to a one-pixel skeleton in place.
    pub(crate) fn thin(&mut self) {
        let tables = Tables::new();
        let offsets = self.offsets();
        let s = self.stride as isize;
        let four = [-s, 1, s, -1];
        // Candidates: ridge pixels on the border (a 4-neighbour is not ridge); only they can ever be removed.
        let mut queued = vec![false; self.data.len()];
        let mut candidates: Vec<usize> = (0..self.data.len())
            .filter(|&i| {
                self.data[i] == RIDGE
                    && four
                        .iter()
                        .any(|o| self.data[(i as isize + o) as usize] != RIDGE)
            })
            .collect();
        for &i in &candidates {
            queued[i] = true;
        }
        let mut removable = Vec::new();
        let mut idle_steps = 0;
        let mut step = 0;
        while idle_steps < 2 {
            removable.clear();
            removable.extend(
                candidates.iter().copied().filter(|&i| {
                    tables.zhang_suen[step][usize::from(self.pattern_at(i, &offsets))]
                }),
            );
            for &i in &removable {
                self.data[i] = VALLEY;
            }
            idle_steps = if removable.is_empty() {
                idle_steps + 1
            } else {
                0
            };
            step = 1 - step;
            // Surviving candidates stay; neighbours of removed pixels become border pixels.
            candidates.retain(|&i| {
                let keep = self.data[i] == RIDGE;
                queued[i] = keep;
                keep
            });
            for &i in &removable {
                for o in &offsets {
                    let j = (i as isize + o) as usize;
                    if self.data[j] == RIDGE && !queued[j] {
                        queued[j] = true;
                        candidates.push(j);
                    }
                }
            }
        }
        // Sequentially drop simple points that are not endings, leaving a minimal 8-connected skeleton.
        candidates.sort_unstable();
        for i in candidates {
            if self.data[i] == RIDGE && tables.redundant[usize::from(self.pattern_at(i, &offsets))]
            {
                self.data[i] = VALLEY;
            }
        }
    }
}

/// Per neighbour pattern: the Zhang-Suen deletion rule of each sub-iteration, and redundancy (a simple point with
/// at least two neighbours).
struct Tables {
    zhang_suen: [[bool; 256]; 2],
    redundant: [bool; 256],
}

impl Tables {
    fn new() -> Self {
        let mut zhang_suen = [[false; 256]; 2];
        let mut redundant = [false; 256];
        for p in 0..256usize {
            let bit = |k: usize| (p >> (k % 8)) & 1 == 1;
            let count = p.count_ones();
            let transitions = (0..8).filter(|&k| !bit(k) && bit(k + 1)).count();
            let (n, e, s, w) = (bit(0), bit(2), bit(4), bit(6));
            let base = (2..=6).contains(&count) && transitions == 1;
            zhang_suen[0][p] = base && !(n && e && s) && !(e && s && w);
            zhang_suen[1][p] = base && !(n && e && w) && !(n && s && w);
            redundant[p] = count >= 2 && yokoi_8(p as u8) == 1;
        }
        Self {
            zhang_suen,
            redundant,
        }
    }
}

/// Yokoi's connectivity number for 8-connectivity: the number of ridge components the point joins. 1 means removing
/// the point changes no connection.
fn yokoi_8(p: u8) -> usize {
    // Bits in NEIGHBOURS order: N=0, NE=1, E=2, SE=3, S=4, SW=5, W=6, NW=7; with complements x' = 1 - x:
    // N8 = sum over 4-neighbours k of x'_k - x'_k x'_{k+1} x'_{k+2}.
    let off = |k: usize| u8::from((p >> (k % 8)) & 1 == 0);
    [0usize, 2, 4, 6]
        .iter()
        .map(|&k| usize::from(off(k)) - usize::from(off(k) & off(k + 1) & off(k + 2)))
        .sum()
}
