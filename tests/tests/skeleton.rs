//! End-to-end tests of the walking skeleton: real processes on loopback (central, gateway, embedded rumqttd or
//! mosquitto), real QUIC with mutual TLS, real sled on disk.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use hotspot_device_protocols::station::{Decision, GATEWAY_STATUS_TOPIC};
use hotspot_e2e::{BrokerSetup, Tracker, World, free_tcp_port, mosquitto, station};

const LONG: Duration = Duration::from_secs(60);
const RESEND: Duration = Duration::from_secs(5);

fn all_answered(t: &Tracker) -> bool {
    t.complete()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hit_no_hit_and_malformed_with_the_embedded_broker() {
    let mut w = World::new(hotspot_e2e::bins!());
    let (_central, central_port) = w.central(0);
    let broker = BrokerSetup::Embedded(free_tcp_port());
    let _gw = w.gateway(&w.gateway_config(&broker, central_port));
    let mut s = station(broker.port(), "desk-a").await;
    // Let the gateway fetch the watchlist.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut t = Tracker::default();
    let hit = w.watchlist_capture(3);
    let central_only = w.central_only_capture(1);
    let stranger = w.stranger_capture();
    let (hit_id, co_id, st_id) = (hit.capture_id, central_only.capture_id, stranger.capture_id);
    for c in [hit, central_only, stranger] {
        t.send(&s, c).await;
    }
    assert!(
        t.pump(&mut s, LONG, RESEND, all_answered).await,
        "not all answered: {t:#?}"
    );

    let (_, local, central, _) = &t.captures[&hit_id];
    let (local, central) = (local.as_ref().unwrap(), central.as_ref().unwrap());
    assert_eq!(local.decision, Decision::Hit, "{local:?}");
    assert_eq!(local.candidates[0].subject_id, "P003");
    assert!(local.watchlist_version >= 1);
    assert_eq!(central.decision, Decision::Hit);
    assert_eq!(central.candidates[0].subject_id, "P003");

    let (_, local, central, _) = &t.captures[&co_id];
    assert_eq!(
        local.as_ref().unwrap().decision,
        Decision::NoHit,
        "not on the watchlist"
    );
    let central = central.as_ref().unwrap();
    assert_eq!(
        central.decision,
        Decision::Hit,
        "central knows the whole gallery"
    );
    assert_eq!(central.candidates[0].subject_id, "P009");

    let (_, local, central, _) = &t.captures[&st_id];
    assert_eq!(local.as_ref().unwrap().decision, Decision::NoHit);
    assert_eq!(central.as_ref().unwrap().decision, Decision::NoHit);

    // Malformed: unreadable id, then a readable id with a bad field, then a template that does not parse.
    s.send_raw(b"{\"capture_id\": 12, \"fingers\": [".to_vec())
        .await
        .unwrap();
    let r = s
        .next_result(Duration::from_secs(10))
        .await
        .expect("rejection for unreadable JSON");
    assert_eq!(r.decision, Decision::Rejected);
    assert_eq!(r.capture_id, None);
    assert!(
        r.reason.as_deref().unwrap().contains("not valid JSON"),
        "{r:?}"
    );

    let mut bad = w.stranger_capture();
    bad.fingers[0].position = 11;
    s.send(&bad).await.unwrap();
    let r = s
        .next_result(Duration::from_secs(10))
        .await
        .expect("rejection for a bad position");
    assert_eq!(
        (r.decision, r.capture_id),
        (Decision::Rejected, Some(bad.capture_id))
    );
    assert!(
        r.reason.as_deref().unwrap().contains("fingers[0].position"),
        "{r:?}"
    );

    let mut garbage = w.stranger_capture();
    garbage.fingers[0].data = b"FMR\0 20\0 not really a template".to_vec();
    s.send(&garbage).await.unwrap();
    let r = s
        .next_result(Duration::from_secs(10))
        .await
        .expect("rejection for a bad template");
    assert_eq!(
        (r.decision, r.capture_id),
        (Decision::Rejected, Some(garbage.capture_id))
    );
    assert!(
        r.reason.as_deref().unwrap().contains("fingers[0].data"),
        "{r:?}"
    );

    // The gateway still works after all that.
    let again = w.watchlist_capture(5);
    let again_id = again.capture_id;
    t.send(&s, again).await;
    assert!(t.pump(&mut s, LONG, RESEND, all_answered).await);
    assert_eq!(
        t.captures[&again_id].1.as_ref().unwrap().decision,
        Decision::Hit
    );
}

/// The local match runs while the capture is being stored; a capture the gateway cannot store gets its rejection
/// and never a local answer (the answer is dropped, not published ahead of a capture that was not kept), and the
/// same capture sent again once storage works is matched and answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_that_cannot_be_stored_gets_no_local_answer() {
    let mut w = World::new(hotspot_e2e::bins!());
    let (_central, central_port) = w.central(0);
    let broker = BrokerSetup::Embedded(free_tcp_port());
    let _gw = w.gateway(&w.gateway_config(&broker, central_port));
    let mut s = station(broker.port(), "desk-f").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Storage breaks: the payload folder becomes a file, so the capture's sealed payload cannot be written.
    let payloads = w.path("gateway/payloads");
    let aside = w.path("gateway/payloads.aside");
    std::fs::rename(&payloads, &aside).unwrap();
    std::fs::write(&payloads, b"not a folder").unwrap();
    let hit = w.watchlist_capture(2);
    s.send(&hit).await.unwrap();
    let r = s
        .next_result(LONG)
        .await
        .expect("a rejection for the capture");
    assert_eq!(
        (r.capture_id, r.decision),
        (Some(hit.capture_id), Decision::Rejected),
        "{r:?}"
    );
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .contains("gateway storage failure"),
        "{r:?}"
    );
    // The match was already under way when storing failed: its answer must not follow.
    let late = s.next_result(Duration::from_secs(5)).await;
    assert!(late.is_none(), "answer for a capture not stored: {late:?}");

    // Storage works again: the station sends the capture again and gets both answers.
    std::fs::remove_file(&payloads).unwrap();
    std::fs::rename(&aside, &payloads).unwrap();
    let mut t = Tracker::default();
    t.send(&s, hit.clone()).await;
    assert!(t.pump(&mut s, LONG, RESEND, all_answered).await, "{t:#?}");
    let (_, local, central, _) = &t.captures[&hit.capture_id];
    assert_eq!(local.as_ref().unwrap().decision, Decision::Hit);
    assert_eq!(local.as_ref().unwrap().candidates[0].subject_id, "P002");
    assert_eq!(central.as_ref().unwrap().decision, Decision::Hit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uplink_down_then_up_delivers_central_answers_later() {
    let mut w = World::new(hotspot_e2e::bins!());
    let (central, central_port) = w.central(0);
    let broker = BrokerSetup::Embedded(free_tcp_port());
    let _gw = w.gateway(&w.gateway_config(&broker, central_port));
    let mut s = station(broker.port(), "desk-b").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    central.kill9();

    // With central gone, local answers still come, and fast.
    let mut t = Tracker::default();
    for i in 0..4 {
        let c = w.watchlist_capture(i);
        t.send(&s, c).await;
    }
    let locals = |t: &Tracker| t.locally_answered() == 4;
    assert!(
        t.pump(&mut s, LONG, RESEND, locals).await,
        "local answers must not wait for the uplink"
    );
    assert!(
        t.captures
            .values()
            .all(|(_, l, c, _)| { l.as_ref().unwrap().decision == Decision::Hit && c.is_none() })
    );

    // Central returns on the same port: the queued captures are delivered and answered.
    let (central, _) = w.central(central_port);
    assert!(
        t.pump(&mut s, LONG, Duration::from_secs(30), all_answered)
            .await,
        "{t:#?}"
    );
    assert!(
        t.captures
            .values()
            .all(|(_, _, c, _)| c.as_ref().unwrap().decision == Decision::Hit)
    );
    central.stop();
    let report = w.central_report();
    assert_eq!(report["answered"], 4, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_captures_survive_a_gateway_kill_and_reach_central_after_restart() {
    let mut w = World::new(hotspot_e2e::bins!());
    let (central, central_port) = w.central(0);
    let broker = BrokerSetup::Embedded(free_tcp_port());
    let config = w.gateway_config(&broker, central_port);
    let gw = w.gateway(&config);
    let mut s = station(broker.port(), "desk-c").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    central.kill9();

    let mut t = Tracker::default();
    for i in 0..5 {
        let c = w.watchlist_capture(i % w.watchlist.len());
        t.send(&s, c).await;
    }
    let locals = |t: &Tracker| t.locally_answered() == 5;
    assert!(t.pump(&mut s, LONG, RESEND, locals).await);

    // Every capture was acknowledged (it has a local answer). Kill the gateway hard, then bring both back.
    gw.kill9();
    let _gw = w.gateway(&config);
    let (central, _) = w.central(central_port);
    assert!(
        t.pump(&mut s, LONG, Duration::from_secs(20), all_answered)
            .await,
        "{t:#?}"
    );
    central.stop();
    let report = w.central_report();
    assert_eq!(
        report["answered"], 5,
        "each capture exactly once at central: {report}"
    );
    let ids: std::collections::BTreeSet<String> = report["captures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[0].as_str().unwrap().to_owned())
        .collect();
    let sent: std::collections::BTreeSet<String> =
        t.captures.keys().map(ToString::to_string).collect();
    assert_eq!(ids, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_stream_of_captures_loses_nothing() {
    let mut w = World::new(hotspot_e2e::bins!());
    let (central, central_port) = w.central(0);
    let broker = BrokerSetup::Embedded(free_tcp_port());
    let config = w.gateway_config(&broker, central_port);
    let gw = w.gateway(&config);
    let mut s = station(broker.port(), "desk-d").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut t = Tracker::default();
    for i in 0..12 {
        let c = if i % 3 == 0 {
            w.stranger_capture()
        } else {
            w.watchlist_capture(i % 8)
        };
        t.send(&s, c).await;
        if i == 6 {
            gw.kill9();
            break;
        }
    }
    let _gw = w.gateway(&config);
    // The station keeps going after the restart, re-sending what got no answer (station protocol rule).
    for i in 0..5 {
        let c = w.watchlist_capture(i);
        t.send(&s, c).await;
    }
    assert!(t.pump(&mut s, LONG, RESEND, all_answered).await, "{t:#?}");
    central.stop();
    let report = w.central_report();
    assert_eq!(
        report["answered"].as_u64().unwrap(),
        t.captures.len() as u64,
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_keeps_captures_published_while_the_gateway_is_down() {
    if !hotspot_e2e::have_mosquitto() {
        return;
    }
    let mut w = World::new(hotspot_e2e::bins!());
    let (_mosquitto, port) = mosquitto(w.dir.path()).unwrap();
    let (central, central_port) = w.central(0);
    let config = w.gateway_config(&BrokerSetup::External(port), central_port);
    let gw = w.gateway(&config);
    let mut s = station(port, "desk-e").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut t = Tracker::default();
    let first = w.watchlist_capture(2);
    let first_id = first.capture_id;
    t.send(&s, first).await;
    assert!(t.pump(&mut s, LONG, RESEND, all_answered).await);
    assert_eq!(
        t.captures[&first_id].1.as_ref().unwrap().decision,
        Decision::Hit
    );

    // The gateway dies; stations keep publishing; mosquitto acknowledges and keeps them for the gateway's session.
    gw.kill9();
    for i in 0..4 {
        let c = if i == 0 {
            w.stranger_capture()
        } else {
            w.watchlist_capture(i)
        };
        t.send(&s, c).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _gw = w.gateway(&config);
    // No re-sends here: everything must come from the broker's persistent session.
    assert!(
        t.pump(&mut s, LONG, Duration::from_secs(3600), all_answered)
            .await,
        "{t:#?}"
    );

    // The gateway's retained status is on the broker.
    let status = retained(port, GATEWAY_STATUS_TOPIC).await;
    assert_eq!(status["site_id"], "gw-1", "{status}");
    central.stop();
    assert_eq!(w.central_report()["answered"], 5);
}

async fn retained(port: u16, topic: &str) -> serde_json::Value {
    let mut o = rumqttc::MqttOptions::new("status-reader", "127.0.0.1", port);
    o.set_max_packet_size(1 << 20, 1 << 20);
    // Stations authenticate: the reader is one, with its certificate (it may read the gateway status).
    if let Some(tls) = hotspot_e2e::station_tls(port, "status-reader") {
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls),
        ));
    }
    let (c, mut ev) = rumqttc::AsyncClient::new(o, 10);
    c.subscribe(topic, rumqttc::QoS::AtLeastOnce).await.unwrap();
    let read = async {
        loop {
            if let Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) = ev.poll().await {
                return serde_json::from_slice(&p.payload).unwrap();
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("retained status")
}
