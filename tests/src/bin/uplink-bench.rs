//! Store-and-forward benchmark over degraded links: for each link profile, how fast the gateway drains a backlog
//! after an outage, what share of the link's rate it uses, how long a capture takes to reach central and come
//! back with central's answer, and how many bytes a queued capture takes on disk.
//!
//! ```sh
//! cargo build --release -p hotspot-e2e --bins
//! target/release/uplink-bench            # full profiles (about 10 minutes)
//! target/release/uplink-bench --quick    # shorter phases and blackout cycle (about 3 minutes)
//! target/release/uplink-bench --quick --congestion cubic --only clean
//! ```
//! Real processes (central, gateway with its embedded broker) on loopback; the uplink runs through the in-process
//! UDP proxy of `hotspot_e2e::udp_proxy`. Prints a Markdown table and one JSON line per profile.

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

/// A 10-finger capture of ~250 KB of incompressible image data (what a ten-print station sends).
fn big_capture(rng: &mut impl rand::Rng) -> Capture {
    let fingers = (1..=10)
        .map(|position| {
            let mut data = vec![0u8; 25 * 1024];
            rng.fill(&mut data[..]);
            Finger {
                position,
                format: FingerFormat::Wsq,
                data,
            }
        })
        .collect();
    hotspot_gateway::station_sim::new_capture(
        fingers,
        hotspot_device_protocols::station::Purpose::Screen,
    )
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
    goodput_mib_s: f64,
    goodput_fraction: Option<f64>,
    p50_s: f64,
    p99_s: f64,
    disk_per_capture: f64,
    wire_overhead: f64,
}

async fn run(bins: Bins, p: &Profile, quick: bool, congestion: &str) -> Row {
    let mut rng = rand::rng();
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
    let console = gw.ready["console"].as_str().unwrap().to_owned();
    let mut s = station(broker.port(), "bench-1").await;

    // Phase A: queue a backlog during an outage, then drain it.
    let n = if quick { 24 } else { 60 };
    proxy.set(|l| l.blackout = true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let disk_before = status(&console)["disk_used_bytes"].as_u64().unwrap_or(0);
    let mut sent = HashMap::new();
    let mut payload = 0;
    for _ in 0..n {
        let c = big_capture(&mut rng);
        payload += capture_bytes(&c);
        s.send(&c).await.unwrap();
        sent.insert(c.capture_id, Instant::now());
    }
    let deadline = Instant::now() + Duration::from_secs(120);
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
    collect(&mut s, &sent, Duration::from_secs(600), &mut arrived).await;
    let drain = arrived
        .values()
        .max()
        .map_or(f64::NAN, |t| t.duration_since(start).as_secs_f64());
    let (up_after, _) = proxy.counters();
    let wire = (up_after.delivered_bytes - up_before.delivered_bytes) as f64;
    let goodput = payload as f64 / drain;
    let fraction = p.link.rate_bps.map(|r| goodput * 8.0 / r as f64);

    // Phase B: a steady stream (2 captures/s), with the profile's blackouts if any.
    let phase = if p.blackouts.is_some() {
        if quick {
            Duration::from_secs(45)
        } else {
            Duration::from_secs(300)
        }
    } else if quick {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(30)
    };
    let mut sent_b = HashMap::new();
    let t0 = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut arrived_b = HashMap::new();
    while t0.elapsed() < phase {
        tick.tick().await;
        if let Some((every, dark)) = p.blackouts {
            let in_cycle =
                Duration::from_secs_f64(t0.elapsed().as_secs_f64() % every.as_secs_f64());
            let dark_now = in_cycle >= every - dark;
            proxy.set(|l| l.blackout = dark_now);
        }
        let c = big_capture(&mut rng);
        s.send(&c).await.unwrap();
        sent_b.insert(c.capture_id, Instant::now());
        collect(&mut s, &sent_b, Duration::from_millis(1), &mut arrived_b).await;
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
        goodput_mib_s: goodput / (1024.0 * 1024.0),
        goodput_fraction: fraction,
        p50_s: percentile(&mut lat, 0.5),
        p99_s: percentile(&mut lat, 0.99),
        disk_per_capture: (disk_after.saturating_sub(disk_before)) as f64 / n as f64,
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
        "| link | backlog drained | goodput | share of link rate | capture -> central answer p50 | p99 | disk per queued capture |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!("(congestion control: {congestion})");
    for p in profiles(quick) {
        if only.as_deref().is_some_and(|o| !p.name.starts_with(o)) {
            continue;
        }
        let r = rt.block_on(run(bins, &p, quick, &congestion));
        println!(
            "| {} | {:.1} captures/s | {:.2} MiB/s | {} | {:.2} s | {:.2} s | {:.0} KiB (payload 250 KiB) |",
            r.name,
            r.drained_per_s,
            r.goodput_mib_s,
            r.goodput_fraction
                .map_or("-".to_owned(), |f| format!("{:.0}%", f * 100.0)),
            r.p50_s,
            r.p99_s,
            r.disk_per_capture / 1024.0,
        );
        eprintln!(
            "{}",
            serde_json::json!({
                "link": r.name, "drained_per_s": r.drained_per_s, "goodput_mib_s": r.goodput_mib_s,
                "goodput_fraction": r.goodput_fraction, "p50_s": r.p50_s, "p99_s": r.p99_s,
                "disk_bytes_per_capture": r.disk_per_capture, "wire_bytes_per_payload_byte": r.wire_overhead,
            })
        );
    }
}
