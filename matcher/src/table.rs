//! The probe's edge hash table: every probe edge filed under each hash cell its tolerance box touches, so that a
//! candidate edge finds all probe edges it may match with one lookup of its own cell. Built once per probe and
//! reused against every candidate of a 1:N search; candidates store only their edges and cells.

use crate::edges::{CELLS, Edge, FiledEdge};

/// Probe edges by hash cell (compressed rows: `entries[offsets[c]..offsets[c + 1]]` are the indices into `edges` of
/// cell `c`'s edges). Entries are 2-byte indices rather than copies so that the whole table (a typical probe files
/// about 5 000 entries) and its few hundred edges stay in the L1 cache during a 1:N search; copied edges made a
/// table several times that size, and its loads the slowest part of the lookups.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    offsets: Vec<u16>,
    entries: Vec<u16>,
    /// The probe's edges in the form that compares fastest.
    edges: Vec<FiledEdge>,
}

impl Table {
    /// Files `edges` under their tolerance cells.
    pub(crate) fn new(edges: &[Edge]) -> Self {
        let mut filed: Vec<(u16, u16)> = Vec::with_capacity(edges.len() * 16);
        let mut cells = Vec::with_capacity(27);
        for (k, e) in edges.iter().enumerate() {
            cells.clear();
            e.cells_within_tolerance(&mut cells);
            filed.extend(cells.iter().map(|&c| (c, k as u16)));
        }
        // Offsets are 16-bit: a (rare, very crowded) probe beyond that many entries keeps the first ones, its
        // last minutiae's edges going unfiled rather than overflowing.
        filed.truncate(usize::from(u16::MAX));
        let mut offsets = vec![0u16; CELLS + 1];
        for &(c, _) in &filed {
            offsets[usize::from(c) + 1] += 1;
        }
        for c in 0..CELLS {
            offsets[c + 1] = offsets[c + 1].saturating_add(offsets[c]);
        }
        let mut next = offsets.clone();
        let mut entries = vec![0u16; filed.len()];
        for &(c, k) in &filed {
            let slot = &mut next[usize::from(c)];
            if let Some(e) = entries.get_mut(usize::from(*slot)) {
                *e = k;
            }
            *slot += 1;
        }
        let edges = edges.iter().map(FiledEdge::new).collect();
        Self {
            offsets,
            entries,
            edges,
        }
    }

    /// Number of probe edges filed under `cell`.
    pub(crate) fn count(&self, cell: u16) -> usize {
        self.cell(cell).len()
    }

    /// Probe edges filed under `cell`.
    pub(crate) fn edges(&self, cell: u16) -> impl Iterator<Item = &FiledEdge> + '_ {
        self.cell(cell)
            .iter()
            .filter_map(|&k| self.edges.get(usize::from(k)))
    }

    /// Indices of the probe edges filed under `cell`.
    fn cell(&self, cell: u16) -> &[u16] {
        let c = usize::from(cell);
        match (self.offsets.get(c), self.offsets.get(c + 1)) {
            (Some(&a), Some(&b)) => self
                .entries
                .get(usize::from(a)..usize::from(b))
                .unwrap_or(&[]),
            _ => &[],
        }
    }
}
