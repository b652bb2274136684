//! Links and pairing growth.
//!
//! A **link** is a probe edge `a -> b` whose shape agrees with a candidate edge `i -> j`: if `a` is `i`, then `b`
//! is probably `j`. Links are found through the probe's hash table (`table.rs`). Each minutia pair `(a, i)`
//! collects the agreement of its links as **support** (how alike the two neighbourhoods are); the best supported
//! pairs are the **roots** tried as starting points.
//!
//! From a root, the pairing **grows** best link first: pop the strongest pending link, pair its two ends if both
//! are free, and queue that new pair's own links. Following links from pair to pair tolerates the skin's elastic
//! distortion (every step is checked locally), and costs only the links actually reached.
//!
//! All buffers live in [`Links`] and [`Growth`] and are reused from one comparison to the next.

use std::collections::BinaryHeap;

use crate::edges::{self, StoredEdge};
use crate::table::Table;

const FREE: u8 = u8::MAX;

/// One link, stored under its probe reference minutia `a`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Link {
    /// Candidate reference minutia.
    i: u8,
    /// Probe neighbour.
    b: u8,
    /// Candidate neighbour.
    j: u8,
    /// Shape agreement in (0, 1].
    agreement: f32,
}

/// All links between a probe and a candidate, grouped by probe reference minutia, with the support of every
/// minutia pair.
#[derive(Debug, Clone, Default)]
pub(crate) struct Links {
    n_candidate: usize,
    /// `support[a * n_candidate + i]`: summed agreement of the links of pair `(a, i)`.
    support: Vec<f32>,
    /// Links of probe minutia `a` are `links[start[a]..start[a + 1]]`.
    start: Vec<u32>,
    links: Vec<Link>,
    /// Agreeing edge pairs as found, before grouping: `found[..kept]`, each the probe edge's ends `(a, b)` and the
    /// candidate edge's `(i, j)` packed as `a | b << 8 | i << 16 | j << 24`, with the agreement. The rest of the
    /// buffer is room, stale and never read.
    found: Vec<(u32, f32)>,
    kept: usize,
    next: Vec<u32>,
    /// The candidate edges' cells.
    cells: Vec<u16>,
}

impl Links {
    /// Finds every link between the probe edges filed in `table` and `candidate_edges`.
    pub(crate) fn find(
        &mut self,
        table: &Table,
        n_probe: usize,
        candidate_edges: &[StoredEdge],
        n_candidate: usize,
    ) {
        // Each candidate edge's cell, computed once (stored edges carry no cell).
        let bins = edges::length_bins();
        self.cells.clear();
        self.cells
            .extend(candidate_edges.iter().map(|ce| ce.cell(bins)));
        // Every probe edge looked up is written out, but only those that agree are kept (the write index advances
        // by 0 or 1): no unpredictable branch in the hot loop, which does nothing else (supports and links are
        // made from the few kept ones in `group`).
        let looked_up: usize = self.cells.iter().map(|&c| table.count(c)).sum();
        let room = looked_up + 1;
        if self.found.len() < room {
            self.found.resize(room, (0, 0.0));
        }
        let mut kept = 0;
        for (ce, &cell) in candidate_edges.iter().zip(&self.cells) {
            let (bearing, relative, length) = (ce.bearing(), ce.relative(), ce.length());
            let candidate_ends = u32::from(ce.from) << 16 | u32::from(ce.to) << 24;
            for pe in table.edges(cell) {
                let agreement = pe.similarity(bearing, relative, length);
                self.found[kept] = (
                    u32::from(pe.from) | u32::from(pe.to) << 8 | candidate_ends,
                    agreement,
                );
                kept += usize::from(agreement > 0.0);
            }
        }
        self.kept = kept;
        self.group(n_probe, n_candidate);
    }

    /// Supports, and counting sort of the links by probe minutia. Each agreeing edge pair is a link both ways, in
    /// the order found; supports add the agreements in that order too.
    fn group(&mut self, n_probe: usize, n_candidate: usize) {
        let found = &self.found[..self.kept];
        self.n_candidate = n_candidate;
        self.support.clear();
        self.support.resize(n_probe * n_candidate, 0.0);
        self.start.clear();
        self.start.resize(n_probe + 1, 0);
        let ends = |key: u32| {
            let [a, b, i, j] = key.to_le_bytes();
            (
                usize::from(a),
                usize::from(b),
                usize::from(i),
                usize::from(j),
            )
        };
        for &(key, agreement) in found {
            let (a, b, i, j) = ends(key);
            self.support[a * n_candidate + i] += agreement;
            self.support[b * n_candidate + j] += agreement;
            self.start[a + 1] += 1;
            self.start[b + 1] += 1;
        }
        for a in 0..n_probe {
            self.start[a + 1] += self.start[a];
        }
        self.next.clear();
        self.next.extend_from_slice(&self.start);
        self.links.clear();
        self.links.resize(2 * found.len(), Link::default());
        for &(key, agreement) in found {
            let [a, b, i, j] = key.to_le_bytes();
            let slot = &mut self.next[usize::from(a)];
            self.links[*slot as usize] = Link { i, b, j, agreement };
            *slot += 1;
            let slot = &mut self.next[usize::from(b)];
            self.links[*slot as usize] = Link {
                i: j,
                b: a,
                j: i,
                agreement,
            };
            *slot += 1;
        }
    }

    /// Whether no link was found.
    pub(crate) fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// The `count` best supported minutia pairs, best first, as `(support, probe, candidate)` into `top`. Pairs
    /// are visited in link order (probe minutia, then as found); among equal supports the first visited ranks first.
    pub(crate) fn roots(&self, count: usize, top: &mut Vec<(f32, u8, u8)>) {
        top.clear();
        if count == 0 {
            return;
        }
        // Supports of kept links are positive: until `top` is full nothing is below the bar. Once full, the bar
        // (the last root's support) only rises.
        let mut bar = f32::NEG_INFINITY;
        for a in 0..self.start.len().saturating_sub(1) {
            let links = &self.links[self.start[a] as usize..self.start[a + 1] as usize];
            let support = &self.support[a * self.n_candidate..(a + 1) * self.n_candidate];
            // Candidate minutiae paired with `a` in `top` while visiting `a`'s links. A pair's repeats all lie in
            // this run and have its support: one that was put in `top` is marked here, one that was not (or was
            // pushed out since) is below the bar.
            let mut taken = [0u64; 4];
            for l in links {
                let s = support[usize::from(l.i)];
                let (word, bit) = (usize::from(l.i >> 6), 1u64 << (l.i & 63));
                if s <= bar || taken[word] & bit != 0 {
                    continue;
                }
                taken[word] |= bit;
                let at = top.partition_point(|t| t.0 >= s);
                top.insert(at, (s, a as u8, l.i));
                top.truncate(count);
                if top.len() == count {
                    bar = top.last().map_or(f32::NEG_INFINITY, |t| t.0);
                }
            }
        }
    }

    fn links_of(&self, a: u8, i: u8) -> impl Iterator<Item = &Link> {
        let a = usize::from(a);
        self.links[self.start[a] as usize..self.start[a + 1] as usize]
            .iter()
            .filter(move |l| l.i == i)
    }

    /// Grows a pairing from the root `(a, i)` into `growth` (sized for both templates by [`Growth::reset`]).
    pub(crate) fn grow(&self, (a, i): (u8, u8), growth: &mut Growth) {
        growth.probe_pair.fill(FREE);
        growth.candidate_pair.fill(FREE);
        growth.pairs.clear();
        growth.evidence = 0.0;
        growth.pending.clear();
        self.add(a, i, growth);
        while let Some(key) = growth.pending.pop() {
            let (b, j) = ((key >> 8 & 0xff) as u8, (key & 0xff) as u8);
            if growth.probe_pair[usize::from(b)] == FREE
                && growth.candidate_pair[usize::from(j)] == FREE
            {
                growth.evidence += (key >> 16) as f32 / 65535.0;
                self.add(b, j, growth);
            }
        }
    }

    /// Pairs `a` with `i` and queues the pair's links (strongest first: agreement in the high 16 bits).
    fn add(&self, a: u8, i: u8, growth: &mut Growth) {
        growth.probe_pair[usize::from(a)] = i;
        growth.candidate_pair[usize::from(i)] = a;
        growth.pairs.push((a, i));
        for l in self.links_of(a, i) {
            let strength = (l.agreement * 65535.0) as u32;
            growth
                .pending
                .push(strength << 16 | u32::from(l.b) << 8 | u32::from(l.j));
        }
    }
}

/// A grown pairing and the buffers growing it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Growth {
    /// `(probe, candidate)` minutia pairs, root first.
    pub pairs: Vec<(u8, u8)>,
    /// Sum of the agreement of the links that added the pairs.
    pub evidence: f32,
    probe_pair: Vec<u8>,
    candidate_pair: Vec<u8>,
    pending: BinaryHeap<u32>,
}

impl Growth {
    /// Sizes the buffers for templates of `n_probe` and `n_candidate` minutiae.
    pub(crate) fn reset(&mut self, n_probe: usize, n_candidate: usize) {
        self.probe_pair.resize(n_probe, FREE);
        self.probe_pair.truncate(n_probe);
        self.candidate_pair.resize(n_candidate, FREE);
        self.candidate_pair.truncate(n_candidate);
        self.pairs.clear();
        self.evidence = 0.0;
    }

    /// Whether this growth beats `other` (more pairs, then more evidence).
    pub(crate) fn beats(&self, other: &Growth) -> bool {
        (self.pairs.len(), self.evidence) > (other.pairs.len(), other.evidence)
    }
}
