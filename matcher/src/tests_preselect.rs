//! Pre-selection evaluation: could a cheaper score pick, for a 1:N search, the small share of candidates worth a full
//! comparison without losing mates? For every FVC2002 sample (the extracted templates and the ISO ones), every other
//! sample is scored by each candidate pre-selection score and by the full comparison; a mate pair "needs" the share
//! of non-mates scoring at least as high as it does (its penetration rate), and the table gives, for the mates whose
//! full score would count (at least 40: a hit on a small watchlist; at least 60: 10 000 subjects and more), the share
//! that a pre-selection keeping the best 1, 2, 5, 10, 20 or 30% would have lost (the pre-selection error).
//!
//! Scores compared: link counts (agreeing edge pairs; their agreements summed; either divided by the square root of
//! the candidate's edges: costs about half a comparison), the best root's support and the 8 best summed (three
//! fifths), and the largest grown pairing (four fifths: what the comparison does before alignment). Results and
//! conclusion in `docs/benchmark.md` ("Pre-selection").
//! `cargo test --release -p hotspot-matcher --lib preselection_evaluation -- --ignored --nocapture`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rayon::prelude::*;

use crate::compare::{Matcher, Scratch, early_stages};
use crate::edges::{self, StoredEdge};
use crate::tests_fvc::{Sample, data_dir, extract_images, iso_templates};

/// What each pre-selection score saw of one pair.
#[derive(Clone, Copy, Debug, Default)]
struct Pair {
    mate: bool,
    full: f32,
    kept: u32,
    agreement: f32,
    n_edges: u32,
    best_root: f32,
    roots: f32,
    grown: usize,
}

/// Agreeing (probe, candidate) edge pairs and their summed agreement, as `Links::find` finds them.
fn links(m: &Matcher, edges: &[StoredEdge]) -> (u32, f32) {
    let bins = edges::length_bins();
    let (mut kept, mut sum) = (0, 0.0);
    for ce in edges {
        for pe in m.table().edges(ce.cell(bins)) {
            let a = pe.similarity(ce.bearing(), ce.relative(), ce.length());
            if a > 0.0 {
                kept += 1;
                sum += a;
            }
        }
    }
    (kept, sum)
}

type Score = fn(&Pair) -> f64;

const SCORES: [(&str, Score); 7] = [
    ("links", |p| f64::from(p.kept)),
    ("agreement", |p| f64::from(p.agreement)),
    ("links/sqrt(edges)", |p| {
        f64::from(p.kept) / f64::from(p.n_edges.max(1)).sqrt()
    }),
    ("agreement/sqrt(edges)", |p| {
        f64::from(p.agreement) / f64::from(p.n_edges.max(1)).sqrt()
    }),
    ("best root", |p| f64::from(p.best_root)),
    ("8 best roots", |p| f64::from(p.roots)),
    // Ties in size broken by the roots' support.
    ("grown pairing", |p| {
        p.grown as f64 + f64::from(p.roots) * 1e-3
    }),
];

const PENETRATION: [f64; 6] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3];

fn pairs(samples: &[Sample]) -> Vec<Vec<Pair>> {
    (0..samples.len())
        .into_par_iter()
        .map(|p| {
            let m = Matcher::from_prepared(samples[p].prepared.clone());
            let mut scratch = Scratch::default();
            (0..samples.len())
                .filter(|&g| g != p)
                .map(|g| {
                    let candidate = &samples[g].prepared;
                    let edges = candidate.clone().into_parts().1;
                    let (kept, agreement) = links(&m, &edges);
                    let (best_root, roots, grown) = early_stages(&m, candidate, &mut scratch);
                    Pair {
                        mate: samples[g].same_finger(&samples[p]),
                        full: m.score_with(candidate, &mut scratch),
                        kept,
                        agreement,
                        n_edges: edges.len() as u32,
                        best_root,
                        roots,
                        grown,
                    }
                })
                .collect()
        })
        .collect()
}

/// Pre-selection error at each of [`PENETRATION`] for `score`, over the mates scoring at least `min_full`.
fn misses(rows: &[Vec<Pair>], score: Score, min_full: f32) -> Vec<f64> {
    let mut needed = Vec::new();
    for row in rows {
        let non_mates: Vec<f64> = row.iter().filter(|p| !p.mate).map(score).collect();
        for p in row.iter().filter(|p| p.mate && p.full >= min_full) {
            let s = score(p);
            let above = non_mates.iter().filter(|&&x| x >= s).count();
            needed.push(above as f64 / non_mates.len() as f64);
        }
    }
    PENETRATION
        .iter()
        .map(|&pen| needed.iter().filter(|&&n| n > pen).count() as f64 / needed.len() as f64)
        .collect()
}

#[test]
#[ignore = "evaluation run: compares all 320 x 320 pairs twice; run in release with --ignored --nocapture"]
fn preselection_evaluation() {
    let Some(dir) = data_dir() else { return };
    for (name, samples) in [
        ("extracted", extract_images(&dir, 8)),
        ("ISO", iso_templates().unwrap()),
    ] {
        let rows = pairs(&samples);
        for min_full in [40.0f32, 60.0] {
            println!(
                "\n{name} templates, mates scoring >= {min_full}: pre-selection error at penetration {PENETRATION:?}"
            );
            println!("| score | 1% | 2% | 5% | 10% | 20% | 30% |\n|---|---|---|---|---|---|---|");
            let mut by_score = Vec::new();
            for (label, score) in SCORES {
                let m = misses(&rows, score, min_full);
                let cells: Vec<String> = m.iter().map(|v| format!("{:.2}%", v * 100.0)).collect();
                println!("| {label} | {} |", cells.join(" | "));
                by_score.push(m);
            }
            // What the evaluation concluded must still hold: growth, the expensive stage, is the only score that
            // keeps its error under 1% at 10% penetration; link counts lose more than it at every penetration.
            let grown = &by_score[SCORES.len() - 1];
            assert!(grown[3] < 0.01, "{grown:?}");
            for links in &by_score[..4] {
                assert!(
                    links.iter().zip(grown).all(|(l, g)| l >= g),
                    "{links:?} {grown:?}"
                );
            }
        }
    }
}
