//! The 1:N face index: exact search over int8-quantised embeddings.
//!
//! Every entry is compared (no approximate structure: graph indexes such as HNSW lose recall at the moderate
//! similarities real faces give, and a missed watchlist hit is the worst error here). Each embedding is stored as
//! 128 `i8` with one `f32` scale (`value ~= q * scale`, `scale = max|value| / 127`), so a comparison is an integer
//! dot product that the compiler vectorises, and a million entries take 136 MB (with scales and subject numbers).
//! The cosine estimate `dot(q_probe, q_entry) * scale_probe * scale_entry` is within 0.01 of the `f32` cosine
//! (tested).
//!
//! A subject may have several entries (several enrolment photos); search returns each subject once, with its best
//! entry's score. Large indexes are scanned on several threads ([`FaceIndex::with_threads`]), each keeping its own
//! top-k, merged at the end. The index is immutable: build a new one aside and swap it in.

use std::collections::HashMap;
use std::num::NonZeroUsize;

use super::embedding::{EMBEDDING_DIM, Embedding};

/// Below this many entries a search stays on the calling thread (spawning costs more than it saves).
const PARALLEL_MIN_ENTRIES: usize = 32_768;

/// An immutable, exactly searched set of `(subject_id, embedding)` entries.
#[derive(Debug, Clone)]
pub struct FaceIndex {
    /// Subject ids, one after the other: subject `s` is `names[name_end[s - 1]..name_end[s]]` (one allocation for
    /// all, so that a large index leaves no small blocks scattered over the heap).
    names: String,
    name_end: Vec<usize>,
    /// Subject numbers sorted by subject id (binary search by id).
    by_name: Vec<u32>,
    /// Subject (number) of each entry.
    owner: Vec<u32>,
    /// `EMBEDDING_DIM` quantised components per entry, entry after entry.
    vectors: Vec<i8>,
    scales: Vec<f32>,
    /// Entries of subject `s` are `entries[entries_start[s]..entries_start[s + 1]]`.
    entries_start: Vec<u32>,
    entries: Vec<u32>,
    threads: NonZeroUsize,
}

impl FaceIndex {
    /// Builds the index; entries with the same subject id are grouped under that subject.
    pub fn build(entries: Vec<(String, Embedding)>) -> Self {
        let mut subjects: Vec<String> = Vec::new();
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut owner = Vec::with_capacity(entries.len());
        let mut vectors = Vec::with_capacity(entries.len() * EMBEDDING_DIM);
        let mut scales = Vec::with_capacity(entries.len());
        for (subject, embedding) in entries {
            let next = u32::try_from(subjects.len()).unwrap_or(u32::MAX);
            let id = *ids.entry(subject.clone()).or_insert_with(|| {
                subjects.push(subject);
                next
            });
            let (q, scale) = embedding.quantise();
            owner.push(id);
            vectors.extend_from_slice(&q);
            scales.push(scale);
        }
        drop(ids);
        // Entries by subject (counting sort of the owners).
        let mut entries_start = vec![0u32; subjects.len() + 1];
        for &o in &owner {
            if let Some(c) = entries_start.get_mut(o as usize + 1) {
                *c += 1;
            }
        }
        for k in 0..subjects.len() {
            entries_start[k + 1] += entries_start[k];
        }
        let mut next = entries_start.clone();
        let mut by_subject = vec![0u32; owner.len()];
        for (e, &o) in owner.iter().enumerate() {
            if let (Some(slot), Ok(e)) = (next.get_mut(o as usize), u32::try_from(e)) {
                if let Some(place) = by_subject.get_mut(*slot as usize) {
                    *place = e;
                }
                *slot += 1;
            }
        }
        let mut by_name: Vec<u32> = (0..subjects.len())
            .filter_map(|k| u32::try_from(k).ok())
            .collect();
        by_name.sort_unstable_by(|&a, &b| subjects[a as usize].cmp(&subjects[b as usize]));
        let mut names = String::with_capacity(subjects.iter().map(String::len).sum());
        let mut name_end = Vec::with_capacity(subjects.len());
        for s in &subjects {
            names.push_str(s);
            name_end.push(names.len());
        }
        let threads = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
        Self {
            names,
            name_end,
            by_name,
            owner,
            vectors,
            scales,
            entries_start,
            entries: by_subject,
            threads,
        }
    }

    /// The cosine estimate of `probe` with one subject's best entry, as [`FaceIndex::search`] computes it; `None`
    /// if the subject has no face in the index.
    pub fn cosine_for(&self, subject_id: &str, probe: &Embedding) -> Option<f32> {
        let id = self.number_of(subject_id)?;
        let (q, scale) = probe.quantise();
        let (from, to) = (
            *self.entries_start.get(id as usize)? as usize,
            *self.entries_start.get(id as usize + 1)? as usize,
        );
        self.entries
            .get(from..to)?
            .iter()
            .filter_map(|&e| {
                let e = e as usize;
                let row = self
                    .vectors
                    .get(e * EMBEDDING_DIM..(e + 1) * EMBEDDING_DIM)?;
                Some(dot(&q, row) as f32 * self.scales.get(e)? * scale)
            })
            .reduce(f32::max)
    }

    /// Subject number `s`'s id.
    fn name(&self, s: u32) -> &str {
        let s = s as usize;
        let from = match s.checked_sub(1) {
            Some(p) => self.name_end.get(p).copied().unwrap_or(0),
            None => 0,
        };
        let to = self.name_end.get(s).copied().unwrap_or(from);
        self.names.get(from..to).unwrap_or("")
    }

    /// The number of the subject with this id.
    fn number_of(&self, subject_id: &str) -> Option<u32> {
        let at = self
            .by_name
            .binary_search_by(|&s| self.name(s).cmp(subject_id))
            .ok()?;
        self.by_name.get(at).copied()
    }

    /// Sets how many threads a large search may use (default: the machine's available parallelism).
    pub fn with_threads(mut self, threads: NonZeroUsize) -> Self {
        self.threads = threads;
        self
    }

    /// Number of entries (embeddings).
    pub fn len(&self) -> usize {
        self.scales.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.scales.is_empty()
    }

    /// Number of distinct subjects.
    pub fn subjects(&self) -> usize {
        self.name_end.len()
    }

    /// The `k` subjects most similar to `probe`, best first, each with its best entry's cosine estimate.
    pub fn search(&self, probe: &Embedding, k: usize) -> Vec<(String, f32)> {
        if k == 0 || self.is_empty() {
            return Vec::new();
        }
        let (q, scale) = probe.quantise();
        let n = self.len();
        let threads = if n < PARALLEL_MIN_ENTRIES {
            1
        } else {
            self.threads.get().min(n)
        };
        let mut top = if threads == 1 {
            self.scan(&q, 0..n, k)
        } else {
            let chunk = n.div_ceil(threads);
            let partials: Vec<TopK> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let range = (t * chunk).min(n)..((t + 1) * chunk).min(n);
                        s.spawn(|| self.scan(&q, range, k))
                    })
                    .collect();
                // A scan does not panic (no indexing outside its range); if one did, its part is dropped.
                handles.into_iter().filter_map(|h| h.join().ok()).collect()
            });
            let mut merged = TopK::new(k);
            for part in partials {
                for (owner, score) in part.items {
                    merged.offer(owner, score);
                }
            }
            merged
        };
        top.items.sort_by(|a, b| b.1.total_cmp(&a.1));
        top.items
            .into_iter()
            .map(|(owner, score)| (self.name(owner).to_owned(), score * scale))
            .collect()
    }

    /// Scores the entries in `range`; scores are not yet multiplied by the probe's scale. Uses AVX2 when the CPU
    /// has it (checked at run time; the binary itself targets baseline x86-64).
    #[allow(unsafe_code)]
    fn scan(&self, q: &[i8; EMBEDDING_DIM], range: std::ops::Range<usize>, k: usize) -> TopK {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: `scan_avx2` only needs AVX2, which the CPU has (detected just above).
            return unsafe { self.scan_avx2(q, range, k) };
        }
        self.scan_portable(q, range, k)
    }

    /// [`FaceIndex::scan_portable`] compiled for AVX2: the same code, which LLVM vectorises on 256-bit registers
    /// (`vpmovsxbw` + `vpmaddwd`) instead of SSE2's 128-bit emulation of the widening.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn scan_avx2(&self, q: &[i8; EMBEDDING_DIM], range: std::ops::Range<usize>, k: usize) -> TopK {
        self.scan_portable(q, range, k)
    }

    #[inline(always)]
    fn scan_portable(
        &self,
        q: &[i8; EMBEDDING_DIM],
        range: std::ops::Range<usize>,
        k: usize,
    ) -> TopK {
        let mut top = TopK::new(k);
        let rows = self.vectors[range.start * EMBEDDING_DIM..range.end * EMBEDDING_DIM]
            .chunks_exact(EMBEDDING_DIM);
        for ((row, &scale), &owner) in rows
            .zip(&self.scales[range.clone()])
            .zip(&self.owner[range])
        {
            let score = dot(q, row) as f32 * scale;
            if score > top.floor {
                top.offer(owner, score);
            }
        }
        top
    }
}

/// Integer dot product of two quantised vectors (`|sum| <= 128 * 127 * 127`, no overflow).
#[inline(always)]
fn dot(a: &[i8; EMBEDDING_DIM], b: &[i8]) -> i32 {
    // Widening to i16 products summed in i32 lets LLVM use pmaddwd.
    a.iter()
        .zip(b)
        .map(|(&x, &y)| i32::from(i16::from(x) * i16::from(y)))
        .sum()
}

/// The best `k` distinct subjects seen so far.
#[derive(Debug)]
struct TopK {
    k: usize,
    items: Vec<(u32, f32)>,
    /// Scores at or below this cannot enter (the k-th best once full).
    floor: f32,
}

impl TopK {
    fn new(k: usize) -> Self {
        Self {
            k,
            items: Vec::with_capacity(k + 1),
            floor: f32::NEG_INFINITY,
        }
    }

    fn offer(&mut self, owner: u32, score: f32) {
        if let Some(item) = self.items.iter_mut().find(|(o, _)| *o == owner) {
            item.1 = item.1.max(score);
        } else if self.items.len() < self.k {
            self.items.push((owner, score));
        } else if let Some(worst) = self.items.iter_mut().min_by(|a, b| a.1.total_cmp(&b.1))
            && score > worst.1
        {
            *worst = (owner, score);
        }
        if self.items.len() == self.k {
            self.floor = self.items.iter().map(|i| i.1).fold(f32::INFINITY, f32::min);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, unsafe_code)]
mod tests {
    use super::*;

    #[test]
    fn the_avx2_scan_equals_the_portable_scan() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 2001) as f32 / 1000.0 - 1.0
        };
        let entries: Vec<(String, Embedding)> = (0..3000)
            .map(|i| {
                let v: [f32; EMBEDDING_DIM] = std::array::from_fn(|_| next());
                (format!("s{}", i % 1000), Embedding::from_raw(&v).unwrap())
            })
            .collect();
        let probe = entries[1234].1.clone();
        let index = FaceIndex::build(entries);
        let (q, _) = probe.quantise();
        let portable = index.scan_portable(&q, 0..index.len(), 20);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is present (checked just above).
            let avx2 = unsafe { index.scan_avx2(&q, 0..index.len(), 20) };
            assert_eq!(avx2.items, portable.items);
        }
        assert_eq!(portable.items.len(), 20);
    }
}
