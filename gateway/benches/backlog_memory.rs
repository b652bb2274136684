//! What a backlog of captures costs in memory: the gateway's store (payloads in files beside sled) against the
//! same sealed payloads kept as values in a sled tree (how the store kept them before), measured in this process one
//! after the other, with the allocator's free memory given back before each reading. Also the metadata a store
//! keeps per answered capture (records and results, payload purged), over ten times as many captures. Prints resident memory after writing and
//! again right after reopening, and the ratio to the sled baseline.
//!
//! `cargo bench -p hotspot-gateway --bench backlog_memory` (set `BENCH_CAPTURES`, default 3000 of 200 KiB).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use hotspot_device_protocols::station::{
    Capture, CaptureResult, Decision, Finger, FingerFormat, Purpose, Source,
};
use hotspot_gateway::crypto::PayloadKey;
use hotspot_gateway::memory::release_freed_memory;
use hotspot_gateway::store::{Priority, Retention, Store};

const PAYLOAD_BYTES: usize = 200 * 1024;

/// Resident memory, MiB, after the allocator gave back what it could.
fn rss_mib() -> f64 {
    release_freed_memory();
    hotspot_gateway::memory::resident_bytes().unwrap() as f64 / (1024.0 * 1024.0)
}

fn capture(i: usize, bytes: usize) -> Capture {
    Capture {
        capture_id: uuid::Uuid::new_v4(),
        captured_at: time::OffsetDateTime::UNIX_EPOCH,
        operator: "bench".into(),
        purpose: Purpose::Screen,
        fingers: vec![Finger {
            position: 2,
            format: FingerFormat::Wsq,
            data: vec![(i % 251) as u8; bytes],
        }],
        face: None,
        enrolment: None,
    }
}

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, PayloadKey::load_or_create(&dir.join("key")).unwrap()).unwrap()
}

/// `(after writing, after reopening)`, MiB above `base`.
fn sled_values(n: usize, base: f64) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let key = PayloadKey::load_or_create(&dir.path().join("key")).unwrap();
    let written = {
        let db = sled::Config::new()
            .path(dir.path().join("db"))
            .cache_capacity(64 * 1024 * 1024)
            .open()
            .unwrap();
        let tree = db.open_tree("captures").unwrap();
        for i in 0..n {
            let c = capture(i, PAYLOAD_BYTES);
            let plain = postcard::to_stdvec(&c).unwrap();
            let sealed = key.seal(c.capture_id.as_bytes(), &plain).unwrap();
            tree.insert(c.capture_id.as_bytes(), sealed).unwrap();
        }
        db.flush().unwrap();
        rss_mib() - base
    };
    let db = sled::Config::new()
        .path(dir.path().join("db"))
        .cache_capacity(64 * 1024 * 1024)
        .open()
        .unwrap();
    assert_eq!(db.open_tree("captures").unwrap().len(), n);
    (written, rss_mib() - base)
}

fn store_backlog(n: usize, base: f64) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let written = {
        let s = open(dir.path());
        for i in 0..n {
            s.insert_capture("desk-1", 1, &capture(i, PAYLOAD_BYTES))
                .unwrap();
        }
        rss_mib() - base
    };
    let s = open(dir.path());
    assert_eq!(s.pending_local().unwrap().len(), n);
    (written, rss_mib() - base)
}

fn store_answered(n: usize, base: f64) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let keep = Retention {
        payload_ms: 0,
        metadata_ms: 90 * 86_400_000,
    };
    let written = {
        let s = open(dir.path());
        for i in 0..n {
            let c = capture(i, 1000);
            let id = c.capture_id;
            s.insert_capture("desk-1", 1, &c).unwrap();
            let result = |source| CaptureResult {
                capture_id: Some(id),
                source,
                decision: Decision::NoHit,
                candidates: vec![],
                reason: None,
                watchlist_version: 3,
                latency_ms: 700,
            };
            let key = s
                .record_local(id, &result(Source::Local), Priority::Screen)
                .unwrap()
                .unwrap();
            s.record_central(&key, id, &result(Source::Central), keep)
                .unwrap();
        }
        rss_mib() - base
    };
    let s = open(dir.path());
    assert_eq!(s.backlog(), 0);
    (written, rss_mib() - base)
}

fn main() {
    let n: usize = std::env::var("BENCH_CAPTURES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let base = rss_mib();
    let sled = sled_values(n, base);
    let files = store_backlog(n, rss_mib());
    // Ten times as many answered captures, so that sled's fixed overhead weighs little in the per-capture figure.
    let answered = 10 * n;
    let meta = store_answered(answered, rss_mib());
    println!(
        "{n} captures; resident memory above the process's own, MiB (payload {} KiB each)\n",
        PAYLOAD_BYTES / 1024
    );
    println!("| what | after writing | after reopening | ratio to sled, reopened |");
    println!("|---|---|---|---|");
    for (what, (w, r)) in [
        ("backlog, payloads as sled values (before)", sled),
        ("backlog, payloads as files (the store)", files),
        (
            "10x as many answered captures, metadata only (the store)",
            meta,
        ),
    ] {
        println!(
            "| {what} | {w:.1} | {r:.1} | {:.3}x |",
            r / sled.1.max(f64::MIN_POSITIVE)
        );
    }
    println!(
        "\nmetadata per answered capture: {:.2} KiB after writing, {:.2} KiB after reopening",
        meta.0 * 1024.0 / answered as f64,
        meta.1 * 1024.0 / answered as f64
    );
}
