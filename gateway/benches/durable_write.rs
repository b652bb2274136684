//! What the durable write before the MQTT acknowledgement costs: `insert_capture` + `flush` (fsync) against
//! `insert_capture` alone, on this machine's disk, for a 2-finger template capture and a 10-finger image capture.
//! Prints a table of measured latencies and their ratio to the unflushed baseline measured in the same run.
//!
//! `cargo bench -p hotspot-gateway --bench durable_write` (set `BENCH_DIR` to measure another disk).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use hotspot_device_protocols::station::{Capture, Finger, FingerFormat, Purpose};
use hotspot_gateway::crypto::PayloadKey;
use hotspot_gateway::store::Store;
use rand::Rng as _;

fn capture(fingers: usize, bytes_per_finger: usize) -> Capture {
    let mut rng = rand::rng();
    Capture {
        capture_id: uuid::Uuid::new_v4(),
        captured_at: time::OffsetDateTime::now_utc(),
        operator: "bench".into(),
        purpose: Purpose::Screen,
        fingers: (1..=fingers as u8)
            .map(|position| {
                let mut data = vec![0u8; bytes_per_finger];
                rng.fill(&mut data[..]);
                Finger {
                    position,
                    format: FingerFormat::Wsq,
                    data,
                }
            })
            .collect(),
        face: None,
        enrolment: None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn run(
    store: &Store,
    rt: &tokio::runtime::Runtime,
    n: usize,
    fingers: usize,
    size: usize,
    flush: bool,
) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let c = capture(fingers, size);
        let t = Instant::now();
        store.insert_capture("bench", 0, &c).unwrap();
        if flush {
            rt.block_on(store.flush()).unwrap();
        }
        out.push(t.elapsed());
    }
    out.sort();
    out
}

fn main() {
    let base = std::env::var_os("BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).unwrap();
    let key = PayloadKey::load_or_create(&dir.path().join("k")).unwrap();
    let store = Store::open(dir.path(), key).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!(
        "| capture | n | no flush p50 | no flush p99 | flush p50 | flush p99 | p99 added by flush | ratio p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, fingers, size, n) in [
        ("2 templates, 1 KiB", 2, 512, 400),
        ("10 WSQ, 400 KiB", 10, 40 * 1024, 200),
    ] {
        let base = run(&store, &rt, n, fingers, size, false);
        let durable = run(&store, &rt, n, fingers, size, true);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let (b50, b99) = (percentile(&base, 0.5), percentile(&base, 0.99));
        let (d50, d99) = (percentile(&durable, 0.5), percentile(&durable, 0.99));
        println!(
            "| {name} | {n} | {:.3} ms | {:.3} ms | {:.3} ms | {:.3} ms | {:.3} ms | {:.1}x |",
            ms(b50),
            ms(b99),
            ms(d50),
            ms(d99),
            ms(d99.saturating_sub(b99)),
            ms(d99) / ms(b99).max(1e-6)
        );
    }
}
