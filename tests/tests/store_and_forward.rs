//! Store-and-forward under stress: broker restarts, a degraded and flapping uplink, gateway kills, central
//! restarts, a full disk. Real processes on loopback; the uplink runs through an in-process UDP proxy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::Duration;

use hotspot_device_protocols::station::{Decision, Finger, FingerFormat, Purpose};
use hotspot_e2e::udp_proxy::{LinkProfile, UdpProxy};
use hotspot_e2e::{
    BrokerSetup, Tracker, World, have_mosquitto, mosquitto, mosquitto_on, station, wait_status,
};
use hotspot_gateway::station_sim::new_capture;
use rand::{Rng as _, SeedableRng as _};

const LONG: Duration = Duration::from_secs(90);
const NO_RESEND: Duration = Duration::from_secs(3600);

fn central_set(report: &serde_json::Value) -> BTreeSet<String> {
    report["captures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[0].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_reconnects_and_resubscribes_after_the_broker_restarts() {
    if !have_mosquitto() {
        return;
    }
    let mut w = World::new(hotspot_e2e::bins!());
    let port = hotspot_e2e::free_tcp_port();
    // No persistence: the restarted broker has forgotten every session and subscription.
    let (broker, _) = mosquitto_on(w.dir.path(), port, false).unwrap();
    let (_central, central_port) = w.central(0);
    let gw = w.gateway(&w.gateway_config(&BrokerSetup::External(port), central_port));
    let console = gw.ready["metrics"].as_str().unwrap().to_owned();
    wait_status(&console, |s| {
        s["mqtt_connected"] == true && s["watchlist_version"] == 1
    })
    .await;

    broker.kill9();
    wait_status(&console, |s| s["mqtt_connected"] == false).await;
    let (_broker, _) = mosquitto_on(w.dir.path(), port, false).unwrap();
    wait_status(&console, |s| s["mqtt_connected"] == true).await;

    let mut s = station(port, "desk-r").await;
    let mut t = Tracker::default();
    let c = w.watchlist_capture(1);
    let id = c.capture_id;
    t.send(&s, c).await;
    assert!(
        t.pump(&mut s, LONG, NO_RESEND, Tracker::complete).await,
        "no answer: the gateway did not re-subscribe"
    );
    assert_eq!(t.captures[&id].1.as_ref().unwrap().decision, Decision::Hit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_kills_flaps_and_restarts_lose_nothing_and_duplicate_nothing() {
    if !have_mosquitto() {
        return;
    }
    let mut w = World::new(hotspot_e2e::bins!());
    let (_mosquitto, port) = mosquitto(w.dir.path()).unwrap();
    let (mut central, central_port) = w.central(0);
    let proxy = UdpProxy::start(
        0,
        ([127, 0, 0, 1], central_port).into(),
        LinkProfile::default(),
    )
    .await
    .unwrap();
    let config = w.gateway_config(&BrokerSetup::External(port), proxy.listen.port());
    let mut gw = Some(w.gateway(&config));
    let mut s = station(port, "desk-x").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut t = Tracker::default();
    // The chaos is drawn from a seed the failure message names; HOTSPOT_CHAOS_SEED replays its sequence of kills,
    // blackouts and restarts (not the exact timing).
    let seed = std::env::var("HOTSPOT_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut central_up = true;
    for round in 0..8 {
        for i in 0..4 {
            let c = if (round + i) % 3 == 0 {
                w.stranger_capture()
            } else {
                w.watchlist_capture((round + i) % 8)
            };
            t.send(&s, c).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
        match rng.random_range(0..5) {
            0 | 1 => {
                // kill -9 the gateway at a random moment, restart it after a random pause
                if let Some(g) = gw.take() {
                    g.kill9();
                }
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..500))).await;
                gw = Some(w.gateway(&config));
            }
            2 => proxy.set(|p| p.blackout = !p.blackout),
            3 => proxy.set(|p| {
                p.delay = Duration::from_millis(rng.random_range(0..60));
                p.loss = rng.random_range(0.0..0.05);
            }),
            _ => {
                if central_up {
                    central.kill9_in_place();
                } else {
                    central = w.central(central_port).0;
                }
                central_up = !central_up;
            }
        }
        // Drain what has arrived so far, without waiting.
        t.pump(&mut s, Duration::from_millis(200), NO_RESEND, |_| false)
            .await;
    }
    // Heal everything; every capture must now get both answers, from the broker's persistent session alone.
    proxy.set(|p| *p = LinkProfile::default());
    if !central_up {
        central = w.central(central_port).0;
    }
    assert!(gw.is_some());
    if !t.pump(&mut s, LONG, NO_RESEND, Tracker::complete).await {
        let missing = t.missing();
        let ids: Vec<String> = missing.iter().map(|(id, _, _)| id.to_string()).collect();
        panic!(
            "incomplete with HOTSPOT_CHAOS_SEED={seed}: (capture, local answer, central answer) {missing:?}\n\
             log lines about them:\n{}",
            w.log_lines_mentioning(&ids)
        );
    }
    central.stop();
    let report = w.central_report();
    let sent: BTreeSet<String> = t.captures.keys().map(ToString::to_string).collect();
    assert_eq!(
        central_set(&report),
        sent,
        "central must hold exactly the captures sent: {report}"
    );
    assert_eq!(report["answered"].as_u64().unwrap(), sent.len() as u64);
    eprintln!(
        "chaos: {} captures, {} repeated results seen by the station, central duplicates absorbed: {}",
        sent.len(),
        t.repeats,
        report["duplicates_received"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_new_captures_loudly_and_keeps_the_accepted_ones() {
    // A real finger image (TIFF), padded after its image data with 3 MiB of incompressible bytes that TIFF readers
    // skip (the image is found through its offsets): big captures that the matcher still reads.
    let tiff_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/fingerprints/fvc2002/DB1_B/101_1.tif"
    );
    let Ok(tiff) = std::fs::read(tiff_path) else {
        eprintln!("SKIPPED: {tiff_path} not found");
        return;
    };
    let mut w = World::new(hotspot_e2e::bins!());
    let (central, central_port) = w.central(0);
    let broker = BrokerSetup::Embedded(hotspot_e2e::free_tcp_port());
    let config = w.gateway_config_with(
        &broker,
        central_port,
        hotspot_e2e::TEST_UPLINK,
        "quota_bytes = 16777216",
    );
    let gw = w.gateway(&config);
    let console = gw.ready["metrics"].as_str().unwrap().to_owned();
    let mut s = station(broker.port(), "desk-q").await;
    wait_status(&console, |st| st["watchlist_version"] == 1).await;
    // Central goes away once the watchlist is in, so that the captures stay queued: central's answer purges a
    // payload (and deletes its file), and only a backlog fills a disk.
    central.stop();
    wait_status(&console, |st| st["uplink"] == "down").await;

    let mut rng = rand::rng();
    let mut t = Tracker::default();
    let mut refused = None;
    for _ in 0..20 {
        // 3 MiB of incompressible bytes, plus a matchable template.
        let mut padding = vec![0u8; 3 * 1024 * 1024];
        rng.fill(&mut padding[..]);
        let mut data = tiff.clone();
        data.extend_from_slice(&padding);
        let mut c = w.watchlist_capture(0);
        c.fingers.push(Finger {
            position: 7,
            format: FingerFormat::Tiff,
            data,
        });
        let id = c.capture_id;
        t.send(&s, c).await;
        while t.captures[&id].1.is_none() {
            let r = s
                .next_result(Duration::from_secs(20))
                .await
                .expect("a local answer");
            t.record(r);
        }
        let r = t.captures[&id].1.clone().unwrap();
        if r.decision == Decision::Rejected {
            refused = Some((id, r));
            break;
        }
        // Let the disk watcher see the growth.
        tokio::time::sleep(Duration::from_millis(2200)).await;
    }
    let (refused_id, r) = refused.expect("the quota must be reached within 20 captures of 3 MiB");
    let reason = r.reason.unwrap();
    assert!(reason.starts_with("storage full"), "{reason}");
    assert!(
        reason.contains("local watchlist answer: hit (P000"),
        "the officer still gets the answer: {reason}"
    );
    assert_eq!(r.candidates[0].subject_id, "P000");
    let status = wait_status(&console, |st| !st["alarms"].as_array().unwrap().is_empty()).await;
    assert!(
        status["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "disk_quota_full"),
        "{status}"
    );

    t.captures.remove(&refused_id);
    let accepted = t.captures.len();
    assert!(
        accepted >= 2,
        "some captures fit before the quota: {accepted}"
    );
    let (central, _) = w.central(central_port);
    assert!(
        t.pump(&mut s, LONG, NO_RESEND, Tracker::complete).await,
        "{t:#?}"
    );
    central.stop();
    let report = w.central_report();
    let sent: BTreeSet<String> = t.captures.keys().map(ToString::to_string).collect();
    assert_eq!(
        central_set(&report),
        sent,
        "every accepted capture reached central, the refused one did not"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_lossy_link_shows_degraded_then_up_and_still_delivers() {
    let mut w = World::new(hotspot_e2e::bins!());
    let (central, central_port) = w.central(0);
    let proxy = UdpProxy::start(
        0,
        ([127, 0, 0, 1], central_port).into(),
        LinkProfile::default(),
    )
    .await
    .unwrap();
    let broker = BrokerSetup::Embedded(hotspot_e2e::free_tcp_port());
    let config = w.gateway_config(&broker, proxy.listen.port());
    // A degraded threshold the proxy's delay will cross.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "request_timeout_ms = 5000",
        "request_timeout_ms = 5000\ndegraded_rtt_ms = 300",
    );
    std::fs::write(&config, text).unwrap();
    let gw = w.gateway(&config);
    let console = gw.ready["metrics"].as_str().unwrap().to_owned();
    wait_status(&console, |st| {
        st["uplink"] == "up" && st["watchlist_version"] == 1
    })
    .await;

    proxy.set(|p| {
        p.delay = Duration::from_millis(250);
        p.loss = 0.02;
    });
    let st = wait_status(&console, |st| st["uplink"] == "degraded").await;
    assert!(st["link"]["rtt_ms"].as_u64().unwrap() >= 300, "{st}");

    let mut s = station(broker.port(), "desk-l").await;
    let mut t = Tracker::default();
    for i in 0..6 {
        let c = new_capture(w.watchlist_capture(i).fingers, Purpose::Screen);
        t.send(&s, c).await;
    }
    assert!(
        t.pump(&mut s, LONG, NO_RESEND, Tracker::complete).await,
        "{t:#?}"
    );

    proxy.set(|p| *p = LinkProfile::default());
    wait_status(&console, |st| st["uplink"] == "up").await;
    central.stop();
    assert_eq!(w.central_report()["answered"], 6);
}
