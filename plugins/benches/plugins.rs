//! Per-call cost of plugins on both backends: compile, load from the cache, instantiation alone, decoder calls,
//! a quality call. Ratios are against the Cranelift figures measured in the same run.
//!
//! `HOTSPOT_PLUGINS_DIR=DIR cargo bench -p hotspot-plugins --bench plugins` (after `scripts/build-plugins.sh DIR`).
//! Without the plugins it says so and exits successfully. Prints a Markdown table (the one in docs/plugins.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hotspot_device_protocols::station::Capture;
use hotspot_plugins::*;
use time::OffsetDateTime;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn iso_record(position: u8, minutiae: u8) -> Vec<u8> {
    let len = 24 + 4 + 6 * usize::from(minutiae) + 2;
    let mut r = b"FMR\0 20\0".to_vec();
    r.extend_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
    r.extend_from_slice(&[0, 0, 1, 244, 1, 244, 0, 197, 0, 197, 1, 0]);
    r.extend_from_slice(&[position, 0, 70, minutiae]);
    for i in 0..minutiae {
        r.extend_from_slice(&[0x40, i, 0, i.wrapping_mul(3), i.wrapping_mul(5), 60]);
    }
    r.extend_from_slice(&[0, 0]);
    r
}

/// Acme FS-200 payload: `fingers` ISO records of 40 minutiae, and optionally a photo of `photo_bytes`.
fn payload(fingers: u8, photo_bytes: usize) -> DecodeInput {
    let codes = ["R1", "R2", "R3", "R4", "R5", "L1", "L2", "L3", "L4", "L5"];
    let prints: Vec<_> = (1..=fingers)
        .map(|p| {
            serde_json::json!({"f": codes[usize::from(p - 1)], "t": "ISO", "hex": hex(&iso_record(p, 40))})
        })
        .collect();
    let mut v = serde_json::json!({
        "fmt": "acme-fs200/1", "txn": "6f1c2f0e-8a53-4a57-9a36-0b7f3f1d9c11", "ts": 1_795_946_400_i64,
        "user": "officer-7", "mode": "S", "prints": prints,
    });
    if photo_bytes > 0 {
        let mut photo = vec![0xFF, 0xD8, 0xFF, 0xE0];
        photo.resize(photo_bytes, 0x42);
        v["photo"] = serde_json::json!({"t": "JPG", "hex": hex(&photo)});
    }
    DecodeInput {
        payload: serde_json::to_vec(&v).unwrap(),
        station_id: "st-1".into(),
        received_at: OffsetDateTime::UNIX_EPOCH,
    }
}

/// Mean time per run of `f`: the median of 5 batches, each about `budget / 5` long.
fn per_call(budget: Duration, mut f: impl FnMut()) -> Duration {
    for _ in 0..10 {
        f();
    }
    let started = Instant::now();
    let mut probe = 0u32;
    while started.elapsed() < Duration::from_millis(50) {
        f();
        probe += 1;
    }
    let one = started.elapsed() / probe.max(1);
    let n = u32::try_from((budget.as_nanos() / 5 / one.as_nanos().max(1)).clamp(5, 100_000))
        .unwrap_or(5);
    let mut batches: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed() / n
        })
        .collect();
    batches.sort();
    batches[2]
}

struct Figures {
    compile: Duration,
    cache_load: Duration,
    instantiate: Duration,
    decode_small: Duration,
    decode_photo: Duration,
    quality: Duration,
}

fn measure(dir: &std::path::Path, backend: Backend, budget: Duration) -> Figures {
    let cache = tempfile::tempdir().unwrap();
    let mut config = HostConfig::with_backend(backend);
    config.cache_dir = Some(cache.path().to_path_buf());
    config.call_deadline = Duration::from_secs(5);
    let host = PluginHost::new(config).unwrap();
    let decoder_bytes = std::fs::read(dir.join("vendor-decoder.wasm")).unwrap();
    let quality_bytes = std::fs::read(dir.join("quality-basic.wasm")).unwrap();
    let load = |meta: &str| {
        let t = Instant::now();
        let p = host
            .load::<Decoder>(
                PluginMeta::new(meta, "1.0.0", "decoder-plugin"),
                VerifiedWasm::signature_checked_by_caller(&decoder_bytes),
            )
            .unwrap();
        (p, t.elapsed())
    };
    let (decoder, compile) = load("acme-fs200");
    assert_eq!(decoder.origin(), &CompileOrigin::Compiled);
    let (cached, cache_load) = load("acme-fs200");
    assert_eq!(cached.origin(), &CompileOrigin::CacheHit);
    let quality = host
        .load::<Quality>(
            PluginMeta::new("basic-quality", "1.0.0", "quality-plugin"),
            VerifiedWasm::signature_checked_by_caller(&quality_bytes),
        )
        .unwrap();

    let small = payload(1, 0);
    let photo = payload(10, 64 << 10);
    let capture: Capture = decoder.call(&photo).unwrap();
    assert_eq!(capture.fingers.len(), 10);
    Figures {
        compile,
        cache_load,
        instantiate: per_call(budget, || decoder.instantiate_only().unwrap()),
        decode_small: per_call(budget, || {
            decoder.call(&small).unwrap();
        }),
        decode_photo: per_call(budget, || {
            decoder.call(&photo).unwrap();
        }),
        quality: per_call(budget, || {
            quality.call(&capture).unwrap();
        }),
    }
}

fn main() {
    let Some(dir) = std::env::var_os("HOTSPOT_PLUGINS_DIR").map(PathBuf::from) else {
        println!(
            "plugins bench: HOTSPOT_PLUGINS_DIR is not set (scripts/build-plugins.sh DIR): nothing measured"
        );
        return;
    };
    let budget = Duration::from_millis(
        std::env::var("HOTSPOT_BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2_000),
    );
    let cranelift = measure(&dir, Backend::Cranelift, budget);
    let pulley = measure(&dir, Backend::Pulley, budget);
    let photo_bytes = payload(10, 64 << 10).payload.len();
    println!("| measure | cranelift | pulley | pulley / cranelift |");
    println!("|---|---:|---:|---:|");
    let row = |name: &str, c: Duration, p: Duration, unit: &str| {
        let (cv, pv) = match unit {
            "ms" => (c.as_secs_f64() * 1e3, p.as_secs_f64() * 1e3),
            _ => (c.as_secs_f64() * 1e6, p.as_secs_f64() * 1e6),
        };
        println!(
            "| {name} | {cv:.1} {unit} | {pv:.1} {unit} | {:.2} |",
            pv / cv.max(f64::MIN_POSITIVE)
        );
    };
    row(
        "compile the decoder (load, no cache)",
        cranelift.compile,
        pulley.compile,
        "ms",
    );
    row(
        "load the decoder from the cache",
        cranelift.cache_load,
        pulley.cache_load,
        "ms",
    );
    row(
        "instantiate only (fresh store + instance, per call)",
        cranelift.instantiate,
        pulley.instantiate,
        "µs",
    );
    row(
        "decode: 1 print, 0.2 KiB payload",
        cranelift.decode_small,
        pulley.decode_small,
        "µs",
    );
    row(
        &format!(
            "decode: 10 prints + 64 KiB photo, {} KiB payload",
            photo_bytes / 1024
        ),
        cranelift.decode_photo,
        pulley.decode_photo,
        "µs",
    );
    row(
        "quality: 10 prints + 64 KiB photo",
        cranelift.quality,
        pulley.quality,
        "µs",
    );
    println!();
    println!(
        "instantiation share of a small decode: cranelift {:.0} %, pulley {:.0} %",
        100.0 * cranelift.instantiate.as_secs_f64() / cranelift.decode_small.as_secs_f64(),
        100.0 * pulley.instantiate.as_secs_f64() / pulley.decode_small.as_secs_f64()
    );
}
