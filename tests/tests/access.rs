//! End-to-end tests of station access control (DESIGN.md guarantee 6): stations authenticate to the broker with
//! certificates from the gateway's station CA (`hotspot-gateway station add`), and the broker itself, the embedded
//! one and mosquitto with the shipped ACL file, lets a station publish only as itself and read only its own
//! results. Revocation (`station revoke`) shuts a station out; every issue, revocation and refusal is audited.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, Instant};

use hotspot_device_protocols::station::{
    Decision, GATEWAY_STATUS_TOPIC, Source, captures_topic, results_topic, vendor_topic,
};
use hotspot_e2e::{
    BrokerSetup, Tracker, World, free_tcp_port, have_mosquitto, mosquitto, mosquitto_on, run_cli,
    station, wait_file_contains,
};
use hotspot_gateway::station_sim::{SimLog, SimStation};
use hotspot_gateway::stations::{self, Identity, StationCa};
use rumqttc::SubscribeReasonCode;

const LONG: Duration = Duration::from_secs(60);
const RESEND: Duration = Duration::from_secs(5);

/// Polls `s`'s log until `pred` holds; panics with the log after `within`.
async fn wait_log(s: &SimStation, within: Duration, pred: impl Fn(&SimLog) -> bool) -> SimLog {
    let deadline = Instant::now() + within;
    loop {
        let log = s.log();
        if pred(&log) {
            return log;
        }
        assert!(Instant::now() < deadline, "{} never matched: {log:?}", s.id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Station A tries to read B's results and to publish as B; B and A still work; A sees nothing of B, and the
/// gateway never processes A's forged capture. `refuses_subscriptions`: the embedded broker answers a forbidden
/// subscription with the failure code; mosquitto 2.0 grants it and then checks its read rights on every message it
/// would deliver (so nothing arrives either).
async fn stations_are_kept_apart(w: &mut World, port: u16, refuses_subscriptions: bool) {
    let mut a = station(port, "desk-a").await;
    let mut b = station(port, "desk-b").await;
    // Let the gateway fetch the watchlist.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // A asks for B's results, for everything, for every station's results; and for the gateway status, which
    // every station may read (retained).
    for f in [
        results_topic("desk-b").as_str(),
        "#",
        "hotspot/v1/stations/+/results",
        GATEWAY_STATUS_TOPIC,
    ] {
        a.subscribe_raw(f).await.unwrap();
    }
    let log = wait_log(&a, Duration::from_secs(10), |l| {
        l.subacks.len() >= 5 && l.received.iter().any(|(t, _)| t == GATEWAY_STATUS_TOPIC)
    })
    .await;
    let codes: Vec<&Vec<SubscribeReasonCode>> = log.subacks.iter().skip(1).collect();
    let forbidden = if refuses_subscriptions {
        SubscribeReasonCode::Failure
    } else {
        SubscribeReasonCode::Success(rumqttc::QoS::AtLeastOnce)
    };
    assert_eq!(
        codes,
        [
            &vec![forbidden],
            &vec![forbidden],
            &vec![forbidden],
            &vec![SubscribeReasonCode::Success(rumqttc::QoS::AtLeastOnce)],
        ],
        "A's subscriptions to B's results, # and +/results; the gateway status is allowed"
    );

    // B gets its answers.
    let mut tb = Tracker::default();
    let hit = w.watchlist_capture(2);
    let b_id = hit.capture_id;
    tb.send(&b, hit).await;
    assert!(
        tb.pump(&mut b, LONG, RESEND, Tracker::complete).await,
        "{tb:#?}"
    );
    let local = tb.captures[&b_id].1.as_ref().unwrap();
    assert_eq!(
        (local.decision, local.candidates[0].subject_id.as_str()),
        (Decision::Hit, "P002")
    );

    // A publishes a capture (and a vendor payload) as B.
    let forged = w.watchlist_capture(4);
    let forged_id = forged.capture_id;
    a.publish_raw(
        &captures_topic("desk-b"),
        serde_json::to_vec(&forged).unwrap(),
    )
    .await
    .unwrap();
    a.publish_raw(&vendor_topic("desk-b", "acme"), b"ACME1 forged".to_vec())
        .await
        .unwrap();

    // A's own captures still go through, end to end.
    let mut ta = Tracker::default();
    let own = w.watchlist_capture(5);
    let a_id = own.capture_id;
    ta.send(&a, own).await;
    assert!(
        ta.pump(&mut a, LONG, RESEND, Tracker::complete).await,
        "{ta:#?}"
    );
    assert_eq!(
        ta.captures[&a_id].1.as_ref().unwrap().decision,
        Decision::Hit
    );

    // Nobody ever gets a result for the forged capture.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        for s in [&mut a, &mut b] {
            if let Some(r) = s.next_result(Duration::from_millis(100)).await {
                assert_ne!(
                    r.capture_id,
                    Some(forged_id),
                    "forged capture answered: {r:?}"
                );
                assert_ne!(r.decision, Decision::Rejected, "{r:?}");
            }
        }
    }

    // A received its own results and the gateway status, and nothing of B's.
    let log = a.log();
    for (topic, payload) in &log.received {
        assert!(
            topic == &results_topic("desk-a") || topic == GATEWAY_STATUS_TOPIC,
            "A received a message on {topic}"
        );
        let text = String::from_utf8_lossy(payload);
        assert!(
            !text.contains(&b_id.to_string()),
            "A saw B's capture: {text}"
        );
    }
    let own_results = log
        .received
        .iter()
        .filter(|(t, _)| t == &results_topic("desk-a"))
        .count();
    assert!(own_results >= 2, "{log:?}");
    assert!(
        tb.captures[&b_id].2.as_ref().unwrap().source == Source::Central,
        "B got central's answer too"
    );

    // The gateway processed (and audited) B's and A's captures, and never saw the forged one.
    let audit = wait_file_contains(
        &w.path("gateway/audit.log"),
        &[&b_id.to_string(), &a_id.to_string()],
    )
    .await;
    assert!(
        !audit.contains(&forged_id.to_string()),
        "the forged capture reached the gateway"
    );
}

/// The station CA's certificate(s), for clients that should get as far as presenting (or not) a certificate.
fn station_ca(w: &World) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    hotspot_central::pki::load_certs(&w.path("gateway/stations/ca.pem")).unwrap()
}

/// Clients without a valid certificate never get a session: none at all, plain MQTT on the TLS port, and a
/// well-formed certificate for an existing station id from another CA.
async fn strangers_cannot_connect(w: &World, port: u16) -> Vec<SimStation> {
    let none = stations::client_config(station_ca(w), None).unwrap();
    let other = StationCa::open_or_create(&w.path("other-ca")).unwrap();
    let issued = other.issue("desk-a").unwrap();
    let foreign = {
        use rustls::pki_types::pem::PemObject as _;
        Identity {
            chain: vec![
                rustls::pki_types::CertificateDer::from_pem_slice(issued.cert_pem.as_bytes())
                    .unwrap(),
            ],
            key: rustls::pki_types::PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())
                .unwrap(),
        }
    };
    let foreign = stations::client_config(station_ca(w), Some(foreign)).unwrap();
    vec![
        SimStation::connect_with("127.0.0.1", port, "desk-none", Some(none)),
        SimStation::connect("127.0.0.1", port, "desk-plain"),
        SimStation::connect_with("127.0.0.1", port, "desk-a", Some(foreign)),
    ]
}

async fn assert_never_connected(clients: &[SimStation], within: Duration) {
    tokio::time::sleep(within).await;
    for c in clients {
        let log = c.log();
        assert_eq!(log.connections, 0, "{} got a session: {log:?}", c.id);
        assert!(log.received.is_empty(), "{log:?}");
    }
}

fn station_cli(w: &World, config: &Path, args: &[&str]) -> String {
    let mut all = vec!["station"];
    all.extend_from_slice(&args[..1]);
    all.extend_from_slice(&["--config", config.to_str().unwrap()]);
    all.extend_from_slice(&args[1..]);
    run_cli(w.bins.gateway, &all)
}

fn listed(w: &World, config: &Path) -> Vec<serde_json::Value> {
    station_cli(w, config, &["list"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_broker_keeps_stations_apart_and_shuts_out_strangers() {
    let mut w = World::new(hotspot_e2e::bins!());
    let (_central, central_port) = w.central(0);
    let broker = BrokerSetup::Embedded(free_tcp_port());
    let config = w.gateway_config(&broker, central_port);
    let _gw = w.gateway(&config);
    let port = broker.port();

    let mut strangers = strangers_cannot_connect(&w, port).await;
    // rumqttd's own listener is on loopback and wants the gateway's internal credential: a client on the box
    // itself gets no session there either.
    let cfg = hotspot_gateway::config::Config::load(&config).unwrap();
    let internal: std::net::SocketAddr = cfg.broker.listen.as_deref().unwrap().parse().unwrap();
    assert!(internal.ip().is_loopback());
    strangers.push(SimStation::connect(
        "127.0.0.1",
        internal.port(),
        "desk-local",
    ));
    // A certificate from the right CA that was never issued to a station (the gateway's own identity for an
    // external broker) is refused by the embedded broker.
    let ca = StationCa::open_or_create(&w.path("gateway/stations")).unwrap();
    let unlisted =
        stations::client_config(station_ca(&w), Some(ca.gateway_identity().unwrap())).unwrap();
    strangers.push(SimStation::connect_with(
        "127.0.0.1",
        port,
        "desk-unlisted",
        Some(unlisted),
    ));

    stations_are_kept_apart(&mut w, port, true).await;
    assert_never_connected(&strangers, Duration::from_secs(1)).await;

    // Revocation: a working station is dropped at once and cannot come back.
    let mut r = station(port, "desk-r").await;
    let mut tr = Tracker::default();
    tr.send(&r, w.stranger_capture()).await;
    assert!(
        tr.pump(&mut r, LONG, RESEND, |t| t.locally_answered() == 1)
            .await
    );
    let out = station_cli(&w, &config, &["revoke", "--id", "desk-r"]);
    assert!(out.contains("revoked"), "{out}");
    let log = wait_log(&r, Duration::from_secs(10), |l| l.last_error.is_some()).await;
    assert_eq!(log.connections, 1, "{log:?}");
    let late = w.stranger_capture();
    r.send(&late).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(r.log().connections, 1, "revoked station reconnected");
    while let Some(res) = r.next_result(Duration::from_secs(1)).await {
        assert_ne!(res.capture_id, Some(late.capture_id), "{res:?}");
    }
    let rows = listed(&w, &config);
    let status = |id: &str| -> Vec<String> {
        rows.iter()
            .filter(|v| v["station_id"] == id)
            .map(|v| v["status"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(status("desk-r"), ["revoked"]);
    assert_eq!(status("desk-a"), ["active"]);
    // A re-issue for a station with an active certificate is refused.
    let dup = std::process::Command::new(w.bins.gateway)
        .args(["station", "add", "--config", config.to_str().unwrap()])
        .args(["--id", "desk-a", "--out", w.path("dup").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already has an active certificate"));

    // Every issue, refusal and revocation is in the audit log, whose chain (the CLI wrote into it while the
    // gateway ran) is intact.
    let audit = wait_file_contains(
        &w.path("gateway/audit.log"),
        &[
            "\"action\":\"station.issued\",\"subject\":\"desk-a\"",
            "\"action\":\"station.revoked\",\"subject\":\"desk-r\"",
            "\"actor\":\"station:desk-r\",\"action\":\"station.disconnected\"",
            "\"actor\":\"station:desk-r\",\"action\":\"station.refused\"",
            "\"actor\":\"station:desk-a\",\"action\":\"station.denied\",\"subject\":\"hotspot/v1/stations/desk-b/captures\"",
            "\"actor\":\"station:desk-a\",\"action\":\"station.denied\",\"subject\":\"#\"",
            "\"actor\":\"unknown\",\"action\":\"station.refused\"",
            "no client certificate",
            "invalid certificate",
            "certificate not issued to a station",
        ],
    )
    .await;
    assert!(!audit.contains(&late.capture_id.to_string()));
    let out = run_cli(
        w.bins.gateway,
        &["audit", "verify", "--config", config.to_str().unwrap()],
    );
    assert!(out.contains("chain intact"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_keeps_stations_apart_and_shuts_out_strangers() {
    if !have_mosquitto() {
        return;
    }
    let mut w = World::new(hotspot_e2e::bins!());
    let (_central, central_port) = w.central(0);
    let (mosq, port) = mosquitto(w.dir.path()).unwrap();
    let config = w.gateway_config(&BrokerSetup::External(port), central_port);
    let _gw = w.gateway(&config);

    let strangers = strangers_cannot_connect(&w, port).await;
    stations_are_kept_apart(&mut w, port, false).await;
    assert_never_connected(&strangers, Duration::from_secs(1)).await;

    // Revocation: mosquitto reads the revocation list when it starts (`systemctl restart hotspot-mosquitto`).
    let r = station(port, "desk-r").await;
    let out = station_cli(&w, &config, &["revoke", "--id", "desk-r"]);
    assert!(out.contains("revoked"), "{out}");
    mosq.stop();
    let (_mosq, _) = mosquitto_on(w.dir.path(), port, true).unwrap();
    let mut a = station(port, "desk-a").await;
    let mut ta = Tracker::default();
    ta.send(&a, w.watchlist_capture(1)).await;
    assert!(
        ta.pump(&mut a, LONG, RESEND, Tracker::complete).await,
        "{ta:#?}"
    );
    let log = r.log();
    assert_eq!(
        log.connections, 1,
        "the revoked station got back in: {log:?}"
    );
    assert!(log.last_error.is_some(), "{log:?}");

    let audit = wait_file_contains(
        &w.path("gateway/audit.log"),
        &[
            "\"action\":\"station.issued\",\"subject\":\"desk-r\"",
            "\"action\":\"station.revoked\",\"subject\":\"desk-r\"",
        ],
    )
    .await;
    assert!(audit.contains("capture.accepted"));
    let out = run_cli(
        w.bins.gateway,
        &["audit", "verify", "--config", config.to_str().unwrap()],
    );
    assert!(out.contains("chain intact"), "{out}");
}
