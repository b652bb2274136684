//! What installing a signed watchlist costs on the gateway: time and peak memory to apply a 100k-subject snapshot
//! (10 fingers + a face embedding each) and a 1k-subject delta, through the real path (verify the signature, apply,
//! build both indexes aside, seal and fsync the content file, swap), and the latency of 1:N searches running while
//! the swap happens, against the same searches with nothing else running (the baseline, measured in the same run).
//!
//! `cargo bench -p hotspot-gateway --bench watchlist_update` (`BENCH_SUBJECTS=N` for another size; `BENCH_DIR` for
//! another disk). Peak memory is the process's VmHWM after resetting it (`/proc/self/clear_refs`), minus the
//! resident size before the step.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hotspot_device_protocols::bundle::{
    Body, DeltaOp, Payload, SigningKey, TrustedKeys, WatchlistContent, WatchlistEntry,
    content_hash, sign,
};
use hotspot_gateway::crypto::PayloadKey;
use hotspot_gateway::watchlist::Watchlist;
use hotspot_matcher::face::{EMBEDDING_DIM, Embedding};
use hotspot_matcher::{Minutia, MinutiaKind, Template};

fn template(rng: &mut impl rand::Rng) -> Template {
    let n = rng.random_range(30..50);
    Template {
        minutiae: (0..n)
            .map(|_| Minutia {
                x: rng.random_range(20.0..380.0),
                y: rng.random_range(20.0..480.0),
                angle: rng.random_range(0.0..std::f32::consts::TAU),
                kind: if rng.random_bool(0.5) {
                    MinutiaKind::RidgeEnding
                } else {
                    MinutiaKind::Bifurcation
                },
                quality: 60,
            })
            .collect(),
    }
}

fn entry(id: usize, rng: &mut impl rand::Rng) -> WatchlistEntry {
    let mut v = [0f32; EMBEDDING_DIM];
    for x in &mut v {
        *x = rng.random_range(-1.0..1.0);
    }
    WatchlistEntry {
        subject_id: format!("S{id:07}"),
        fingers: (1..=10u8)
            .map(|p| (p, template(&mut *rng).encode()))
            .collect(),
        face: Embedding::from_raw(&v).map(|e| e.encode()),
        expires_at_ms: None,
    }
}

fn rss_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    hotspot_gateway::memory::status_kib(&s, field).unwrap_or(0)
}

fn reset_peak() {
    // "5" resets VmHWM to the current RSS (Linux >= 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Step {
    name: String,
    took: Duration,
    peak_extra_mib: f64,
    resident_mib: f64,
}

fn measure(name: &str, f: impl FnOnce()) -> Step {
    let before = rss_kib("VmRSS:");
    reset_peak();
    let t = Instant::now();
    f();
    let took = t.elapsed();
    let peak = rss_kib("VmHWM:");
    Step {
        name: name.into(),
        took,
        peak_extra_mib: peak.saturating_sub(before) as f64 / 1024.0,
        resident_mib: rss_kib("VmRSS:") as f64 / 1024.0,
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

/// Runs 1-finger searches back to back on one thread until `stop`; returns their latencies.
fn searcher(
    w: Arc<Watchlist>,
    probe: Vec<(u8, Template)>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Duration>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            let installed = w.current();
            let c = installed.index.search(&probe, 10);
            std::hint::black_box(c);
            out.push(t.elapsed());
        }
        out
    })
}

fn main() {
    let n: usize = std::env::var("BENCH_SUBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = match std::env::var_os("BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let rng_key = ring::rand::SystemRandom::new();
    let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng_key).unwrap();
    let key = SigningKey::from_pkcs8(doc.as_ref()).unwrap();
    let trusted = TrustedKeys::parse(&[key.public_key_text()]).unwrap();
    let pk = Arc::new(PayloadKey::load_or_create(&dir.path().join("payload.key")).unwrap());
    let w = Arc::new(Watchlist::new(trusted, dir.path(), pk, 86_400_000));

    println!("generating {n} subjects (10 fingers + face each)...");
    let mut rng = rand::rng();
    let entries: Vec<WatchlistEntry> = (0..n).map(|i| entry(i, &mut rng)).collect();
    let snapshot = Payload {
        version: 1,
        created_at_ms: 1,
        content_hash: content_hash(&entries),
        body: Body::WatchlistSnapshot {
            entries: entries.clone(),
        },
    };
    let snapshot_bundle = sign(&snapshot, &key).unwrap();
    drop(snapshot);

    // 1k-subject delta: 500 replaced, 250 added, 250 removed.
    let mut next: std::collections::BTreeMap<String, WatchlistEntry> = entries
        .iter()
        .map(|e| (e.subject_id.clone(), e.clone()))
        .collect();
    let mut ops = Vec::new();
    for i in 0..500 {
        let e = entry(i * (n / 500).max(1), &mut rng);
        next.insert(e.subject_id.clone(), e.clone());
        ops.push(DeltaOp::Replace(e));
    }
    for i in 0..250 {
        let e = entry(n + i, &mut rng);
        next.insert(e.subject_id.clone(), e.clone());
        ops.push(DeltaOp::Add(e));
    }
    for i in 0..250 {
        let id = format!("S{:07}", n - 1 - i * 3);
        next.remove(&id);
        ops.push(DeltaOp::Remove { subject_id: id });
    }
    let base = WatchlistContent {
        version: 1,
        created_at_ms: 1,
        entries: entries
            .into_iter()
            .map(|e| (e.subject_id.clone(), e))
            .collect(),
    };
    let delta = Payload {
        version: 2,
        created_at_ms: 2,
        content_hash: content_hash(next.values()),
        body: Body::WatchlistDelta {
            base_version: 1,
            base_hash: base.hash(),
            ops,
        },
    };
    let delta_bundle = sign(&delta, &key).unwrap();
    drop((base, delta, next));
    println!(
        "snapshot bundle {:.1} MiB, delta bundle {:.2} MiB",
        snapshot_bundle.len() as f64 / 1048576.0,
        delta_bundle.len() as f64 / 1048576.0
    );

    let mut steps = Vec::new();
    steps.push(measure(&format!("{n}-subject snapshot"), || {
        w.apply_bundles(std::slice::from_ref(&snapshot_bundle), 10)
            .unwrap();
    }));
    drop(snapshot_bundle);

    // Searches with nothing else running (baseline), then during the delta's apply and swap.
    let probe = vec![(1u8, template(&mut rng))];
    let stop = Arc::new(AtomicBool::new(false));
    let h = searcher(w.clone(), probe.clone(), stop.clone());
    std::thread::sleep(Duration::from_secs(8));
    stop.store(true, Ordering::Relaxed);
    let mut idle = h.join().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let h = searcher(w.clone(), probe, stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    steps.push(measure("1k-subject delta (searching meanwhile)", || {
        w.apply_bundles(std::slice::from_ref(&delta_bundle), 20)
            .unwrap();
    }));
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let mut during = h.join().unwrap();
    assert_eq!(w.current().version, 2);

    println!();
    println!("| step | time (s) | peak extra memory (MiB) | resident after (MiB) |");
    println!("|---|---|---|---|");
    for s in &steps {
        println!(
            "| {} | {:.2} | {:.0} | {:.0} |",
            s.name,
            s.took.as_secs_f64(),
            s.peak_extra_mib,
            s.resident_mib
        );
    }
    idle.sort();
    during.sort();
    println!();
    println!("1-finger 1:N search over {n} subjects (10 fingers each), one thread:");
    println!("| | searches | p50 (ms) | p99 (ms) | max (ms) | p50 ratio |");
    println!("|---|---|---|---|---|---|");
    let (i50, d50) = (pct(&idle, 0.5), pct(&during, 0.5));
    println!(
        "| idle (baseline) | {} | {:.1} | {:.1} | {:.1} | 1.00 |",
        idle.len(),
        i50,
        pct(&idle, 0.99),
        pct(&idle, 1.0)
    );
    println!(
        "| during the delta apply + swap | {} | {:.1} | {:.1} | {:.1} | {:.2} |",
        during.len(),
        d50,
        pct(&during, 0.99),
        pct(&during, 1.0),
        d50 / i50
    );
}
