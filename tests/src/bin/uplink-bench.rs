//! Store-and-forward benchmark over degraded links: for each link profile, how fast the gateway drains a backlog
//! after an outage, what share of the link's rate it uses, how long a capture takes to reach central and come
//! back with central's answer, and how many bytes a queued capture takes on disk.
//!
//! ```sh
//! cargo build --release -p hotspot-e2e --bins
//! target/release/uplink-bench            # full profiles (about 25 minutes)
//! target/release/uplink-bench --quick    # shorter backlog and phases (about 10 minutes; drains too short to judge)
//! target/release/uplink-bench --quick --congestion cubic --only clean
//! ```
//! Real processes (central, gateway with its embedded broker) on loopback; the uplink runs through the in-process
//! UDP proxy of `hotspot_e2e::udp_proxy`. Prints a Markdown table and one JSON line per profile.
//!
//! Each capture is a ten-print of the real WSQ images `fp-1..10.wsq` of `../shared/data/wsq` (396 KiB). Phase A
//! queues a backlog (60 captures; 24 with `--quick`) during a blackout, restores the link and times the drain:
//! "data flowing again" is when 256 KiB more have crossed the proxy than before the link came back (reconnection
//! and loss recovery), "drain goodput" is the rest of the payload over the time from then to the last central
//! answer. Phase B sends one capture every 2.5 s (what the gateway's local extraction of ten fingers sustains on
//! a shared 2-core machine) and times capture -> central answer at the station. Central extracts each distinct
//! content once (its probe cache), so repeated images measure the link and the gateway, not central's CPU: a real
//! central is a data-centre AFIS.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hotspot_device_protocols::station::{Capture, Finger, FingerFormat, Source};
use hotspot_e2e::udp_proxy::{LinkProfile, UdpProxy};
use hotspot_e2e::{Bins, BrokerSetup, World, free_tcp_port, http_get, station};
use hotspot_gateway::station_sim::SimStation;

struct Profile {
    name: &'static str,
    link: LinkProfile,
    /// `(every, for)`: periodic blackouts during the latency phase.
    blackouts: Option<(Duration, Duration)>,
}

fn profiles(quick: bool) -> Vec<Profile> {
    let ms = Duration::from_millis;
    let (every, dark) = if quick {
        (ms(20_000), ms(5_000))
    } else {
        (ms(120_000), ms(30_000))
    };
    vec![
        Profile {
            name: "clean",
            link: LinkProfile::default(),
            blackouts: None,
        },
        Profile {
            name: "50 ms RTT, 1% loss, 10 Mbit/s",
            link: LinkProfile {
                delay: ms(25),
                loss: 0.01,
                rate_bps: Some(10_000_000),
                ..LinkProfile::default()
            },
            blackouts: None,
        },
        Profile {
            name: "300 ms RTT, 3% loss",
            link: LinkProfile {
                delay: ms(150),
                loss: 0.03,
                ..LinkProfile::default()
            },
            blackouts: None,
        },
        Profile {
            name: "10 Mbit/s",
            link: LinkProfile {
                delay: ms(10),
                rate_bps: Some(10_000_000),
                ..LinkProfile::default()
            },
            blackouts: None,
        },
        Profile {
            name: if quick {
                "5 s blackouts every 20 s"
            } else {
                "30 s blackouts every 2 min"
            },
            link: LinkProfile {
                delay: ms(25),
                ..LinkProfile::default()
            },
            blackouts: Some((every, dark)),
        },
    ]
}

/// A ten-print capture: the ten WSQ images `fp-1..10.wsq` of `../shared/data/wsq` (about 420 KiB, what a
/// ten-print station sends); every capture gets its own id.
fn big_capture(wsq: &[Vec<u8>]) -> Capture {
    let fingers = wsq
        .iter()
        .zip(1..)
        .map(|(data, position)| Finger {
            position,
            format: FingerFormat::Wsq,
            data: data.clone(),
        })
        .collect();
    hotspot_gateway::station_sim::new_capture(
        fingers,
        hotspot_device_protocols::station::Purpose::Screen,
    )
}

fn ten_prints() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/wsq");
    (1..=10)
        .map(|i| {
            let p = dir.join(format!("fp-{i}.wsq"));
            std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        })
        .collect()
}

fn capture_bytes(c: &Capture) -> u64 {
    c.fingers.iter().map(|f| f.data.len() as u64).sum()
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn status(console: &str) -> serde_json::Value {
    serde_json::from_str(&http_get(console, "/api/status").1).unwrap_or_default()
}

/// Waits for results until `want` central results for `ids` have arrived; returns arrival times per id.
async fn collect(
    s: &mut SimStation,
    ids: &HashMap<uuid::Uuid, Instant>,
    timeout: Duration,
    out: &mut HashMap<uuid::Uuid, Instant>,
) {
    let deadline = Instant::now() + timeout;
    while out.len() < ids.len() && Instant::now() < deadline {
        if let Some(r) = s.next_result(Duration::from_millis(200)).await
            && r.source == Source::Central
            && let Some(id) = r.capture_id
            && ids.contains_key(&id)
        {
            out.entry(id).or_insert_with(Instant::now);
        }
    }
}

struct Row {
    name: &'static str,
    drained_per_s: f64,
    /// From the link's return until capture data flows again: reconnection and loss recovery.
    resume_s: f64,
    /// Payload over the time from data flowing again to the last central answer.
    goodput_mib_s: f64,
    goodput_fraction: Option<f64>,
    p50_s: f64,
    p99_s: f64,
    disk_per_capture: f64,
    payload_per_capture: f64,
    wire_overhead: f64,
}

async fn run(bins: Bins, p: &Profile, quick: bool, congestion: &str) -> Row {
    let wsq = ten_prints();
    let w = World::new(bins);
    let (central, central_port) = w.central(0);
    let proxy = UdpProxy::start(0, ([127, 0, 0, 1], central_port).into(), p.link.clone())
        .await
        .unwrap();
    let broker = BrokerSetup::Embedded(free_tcp_port());
    // Product defaults, but a short reconnect cap so the drain measures the link, not the backoff.
    let uplink = format!("retry_max_ms = 2000\ncongestion = \"{congestion}\"");
    let config = w.gateway_config_with(&broker, proxy.listen.port(), &uplink, "");
    let gw = w.gateway(&config);
    let console = gw.ready["metrics"].as_str().unwrap().to_owned();
    let mut s = station(broker.port(), "bench-1").await;

    // Phase A: queue a backlog during an outage, then drain it.
    let n = if quick { 24 } else { 60 };
    proxy.set(|l| l.blackout = true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let disk_before = status(&console)["disk_used_bytes"].as_u64().unwrap_or(0);
    let mut sent = HashMap::new();
    let mut payload = 0;
    for _ in 0..n {
        let c = big_capture(&wsq);
        payload += capture_bytes(&c);
        s.send(&c).await.unwrap();
        sent.insert(c.capture_id, Instant::now());
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while status(&console)["backlog"].as_u64().unwrap_or(0) < n as u64 && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await; // let the disk watcher measure
    let disk_after = status(&console)["disk_used_bytes"].as_u64().unwrap_or(0);
    let (up_before, _) = proxy.counters();
    let start = Instant::now();
    proxy.set(|l| *l = p.link.clone());
    let mut arrived = HashMap::new();
    // When capture data starts crossing the link again (more than one capture's worth past the proxy since the
    // link came back): before it, reconnection and loss recovery; after it, the drain proper.
    let mut flowing: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while arrived.len() < sent.len() && Instant::now() < deadline {
        collect(&mut s, &sent, Duration::from_millis(20), &mut arrived).await;
        if flowing.is_none()
            && proxy.counters().0.delivered_bytes - up_before.delivered_bytes > 256 * 1024
        {
            flowing = Some(Instant::now());
        }
    }
    let since_start =
        |t: Option<&Instant>| t.map_or(f64::NAN, |t| t.duration_since(start).as_secs_f64());
    let drain = since_start(arrived.values().max());
    let resume = since_start(flowing.as_ref());
    let (up_after, _) = proxy.counters();
    let wire = (up_after.delivered_bytes - up_before.delivered_bytes) as f64;
    // Drain goodput: payload over the time the link carried it (less the 256 KiB that crossed before `flowing`
    // was seen).
    let goodput = (payload as f64 - 256.0 * 1024.0) / (drain - resume);
    let fraction = p.link.rate_bps.map(|r| goodput * 8.0 / r as f64);

    // Phase B: a steady stream (one capture every 2.5 s), with the profile's blackouts if any.
    let phase = if p.blackouts.is_some() {
        if quick {
            Duration::from_secs(45)
        } else {
            Duration::from_secs(300)
        }
    } else if quick {
        Duration::from_secs(20)
    } else {
        Duration::from_secs(60)
    };
    let mut sent_b = HashMap::new();
    let t0 = Instant::now();
    // One ten-print every 2.5 s: what the gateway's local extraction of ten WSQ fingers sustains on this
    // machine, so that the figure is the link's and not a growing local queue's.
    let interval = Duration::from_millis(2500);
    let mut arrived_b = HashMap::new();
    let mut next_send = Instant::now();
    while t0.elapsed() < phase {
        // Until the next send: results the moment they arrive, and the blackout schedule every 100 ms.
        loop {
            let now = Instant::now();
            if now >= next_send {
                break;
            }
            if let Some((every, dark)) = p.blackouts {
                let in_cycle =
                    Duration::from_secs_f64(t0.elapsed().as_secs_f64() % every.as_secs_f64());
                let dark_now = in_cycle >= every - dark;
                proxy.set(|l| l.blackout = dark_now);
            }
            let wait = (next_send - now).min(Duration::from_millis(100));
            if let Some(r) = s.next_result(wait).await
                && r.source == Source::Central
                && let Some(id) = r.capture_id
                && sent_b.contains_key(&id)
            {
                arrived_b.entry(id).or_insert_with(Instant::now);
            }
        }
        let c = big_capture(&wsq);
        s.send(&c).await.unwrap();
        sent_b.insert(c.capture_id, Instant::now());
        next_send += interval;
    }
    proxy.set(|l| l.blackout = false);
    collect(&mut s, &sent_b, Duration::from_secs(300), &mut arrived_b).await;
    let mut lat: Vec<f64> = arrived_b
        .iter()
        .map(|(id, t)| t.duration_since(sent_b[id]).as_secs_f64())
        .collect();
    let missing = sent_b.len() - arrived_b.len() + sent.len() - arrived.len();
    assert_eq!(
        missing, 0,
        "{}: {missing} captures got no central result",
        p.name
    );
    central.stop();
    drop(gw);
    Row {
        name: p.name,
        drained_per_s: n as f64 / drain,
        resume_s: resume,
        goodput_mib_s: goodput / (1024.0 * 1024.0),
        goodput_fraction: fraction,
        p50_s: percentile(&mut lat, 0.5),
        p99_s: percentile(&mut lat, 0.99),
        disk_per_capture: (disk_after.saturating_sub(disk_before)) as f64 / n as f64,
        payload_per_capture: payload as f64 / n as f64,
        wire_overhead: wire / payload as f64,
    }
}

fn bins() -> Bins {
    let dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    let find = |name: &str| -> &'static str {
        let p = dir.join(name);
        assert!(
            p.exists(),
            "{} missing: run `cargo build --release -p hotspot-e2e --bins` first",
            p.display()
        );
        Box::leak(p.to_string_lossy().into_owned().into_boxed_str())
    };
    Bins {
        gateway: find("e2e-gateway"),
        central: find("e2e-central"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let congestion = value("--congestion").unwrap_or_else(|| "bbr".to_owned());
    let only = value("--only");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let bins = bins();
    println!(
        "| link | backlog drained | data flowing again after the link returns | drain goodput | share of link rate | capture -> central answer p50 | p99 | disk per queued capture |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!("(congestion control: {congestion})");
    for p in profiles(quick) {
        if only.as_deref().is_some_and(|o| !p.name.starts_with(o)) {
            continue;
        }
        let r = rt.block_on(run(bins, &p, quick, &congestion));
        println!(
            "| {} | {:.1} captures/s | {:.2} s | {:.2} MiB/s | {} | {:.2} s | {:.2} s | {:.0} KiB (payload {:.0} KiB) |",
            r.name,
            r.drained_per_s,
            r.resume_s,
            r.goodput_mib_s,
            r.goodput_fraction
                .map_or("-".to_owned(), |f| format!("{:.0}%", f * 100.0)),
            r.p50_s,
            r.p99_s,
            r.disk_per_capture / 1024.0,
            r.payload_per_capture / 1024.0,
        );
        eprintln!(
            "{}",
            serde_json::json!({
                "link": r.name, "drained_per_s": r.drained_per_s, "resume_s": r.resume_s, "goodput_mib_s": r.goodput_mib_s,
                "goodput_fraction": r.goodput_fraction, "p50_s": r.p50_s, "p99_s": r.p99_s,
                "disk_bytes_per_capture": r.disk_per_capture, "wire_bytes_per_payload_byte": r.wire_overhead,
            })
        );
    }
}
