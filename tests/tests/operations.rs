//! End-to-end tests of operating the skeleton: watchlist updates announced by central, the console, check-config.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use hotspot_device_protocols::station::Decision;
use hotspot_e2e::{
    BrokerSetup, Tracker, World, free_tcp_port, http_get, run_cli, station, wait_status,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watchlist_update_is_announced_installed_and_used() {
    let mut w = World::new(hotspot_e2e::bins!());
    let (_central, central_port) = w.central(0);
    let broker = BrokerSetup::Embedded(free_tcp_port());
    let gw = w.gateway(&w.gateway_config(&broker, central_port));
    let console = gw.ready["metrics"].as_str().unwrap().to_owned();
    let status = wait_status(&console, |s| s["watchlist_version"] == 1).await;
    assert_eq!(status["watchlist_subjects"], 8, "{status}");
    let (code, body) = http_get(&console, "/healthz");
    assert_eq!(code, 200, "{body}");
    // The metrics listener (plain HTTP; the console itself is HTTPS with login: tests/console.rs).
    let (code, metrics) = http_get(&console, "/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("hotspot_watchlist_version 1")
            && metrics.contains("hotspot_watchlist_subjects 8"),
        "{metrics}"
    );
    // 8 subjects' fingers: some memory, and not absurdly much (about 1.1 KB per finger).
    let index_bytes: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hotspot_watchlist_index_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no hotspot_watchlist_index_bytes in {metrics}"));
    assert!((1_000..1_000_000).contains(&index_bytes), "{index_bytes}");

    let mut s = station(broker.port(), "desk-f").await;
    let mut t = Tracker::default();
    let before = w.central_only_capture(0);
    let before_id = before.capture_id;
    t.send(&s, before).await;
    assert!(
        t.pump(
            &mut s,
            Duration::from_secs(60),
            Duration::from_secs(5),
            Tracker::complete
        )
        .await
    );
    assert_eq!(
        t.captures[&before_id].1.as_ref().unwrap().decision,
        Decision::NoHit
    );

    // Central ops put P008 on the watchlist while everything runs.
    let manifest = w.path("update.jsonl");
    std::fs::write(
        &manifest,
        r#"{"subject_id":"P008","lists":["watchlist"],"fingers":[{"position":2,"format":"iso19794-2","path":"P008.iso"}]}"#,
    )
    .unwrap();
    let out = w.import(&manifest);
    assert!(out.contains("gallery version 2"), "{out}");
    let status = wait_status(&console, |s| s["watchlist_version"] == 2).await;
    assert_eq!(status["watchlist_subjects"], 9, "{status}");

    let after = w.central_only_capture(0);
    let after_id = after.capture_id;
    t.send(&s, after).await;
    assert!(
        t.pump(
            &mut s,
            Duration::from_secs(60),
            Duration::from_secs(5),
            Tracker::complete
        )
        .await
    );
    let local = t.captures[&after_id].1.as_ref().unwrap();
    assert_eq!(local.decision, Decision::Hit, "{local:?}");
    assert_eq!(
        (
            local.candidates[0].subject_id.as_str(),
            local.watchlist_version
        ),
        ("P008", 2)
    );
}

#[test]
fn check_config_reports_every_error_and_exits_2() {
    let w = World::new(hotspot_e2e::bins!());
    let good = w.gateway_config(&BrokerSetup::Embedded(1883), 4433);
    let out = run_cli(
        w.bins.gateway,
        &["check-config", "--config", good.to_str().unwrap()],
    );
    assert!(out.contains("configuration is valid"), "{out}");

    let text = std::fs::read_to_string(&good)
        .unwrap()
        .replace("gw-1\"", "bad id\"")
        .replace(
            "retry_max_ms = 1000\n[uplink]",
            "retry_max_ms = 10\n[uplink]",
        )
        .replace("gw-1.key", "nope.key");
    let bad = w.path("bad.toml");
    std::fs::write(&bad, text).unwrap();
    let out = std::process::Command::new(w.bins.gateway)
        .args(["check-config", "--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3 error(s)"), "{err}");
    for key in ["site.id", "broker.retry_initial_ms", "uplink.key"] {
        assert!(err.contains(key), "{key} not reported: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_records_who_did_what_and_detects_tampering() {
    let mut w = World::new(hotspot_e2e::bins!());
    let (_central, central_port) = w.central(0);
    let broker = BrokerSetup::Embedded(free_tcp_port());
    let config = w.gateway_config(&broker, central_port);
    let gw = w.gateway(&config);
    wait_status(gw.ready["metrics"].as_str().unwrap(), |s| {
        s["watchlist_version"] == 1
    })
    .await;
    let mut s = station(broker.port(), "desk-g").await;
    let mut t = Tracker::default();
    let c = w.watchlist_capture(4);
    let id = c.capture_id.to_string();
    t.send(&s, c).await;
    assert!(
        t.pump(
            &mut s,
            Duration::from_secs(60),
            Duration::from_secs(5),
            Tracker::complete
        )
        .await
    );
    s.send_raw(b"not json".to_vec()).await.unwrap();
    s.next_result(Duration::from_secs(10))
        .await
        .expect("rejection");
    gw.stop();

    let out = run_cli(
        w.bins.gateway,
        &["audit", "verify", "--config", config.to_str().unwrap()],
    );
    assert!(out.contains("chain intact"), "{out}");
    let log = std::fs::read_to_string(w.path("gateway/audit.log")).unwrap();
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{action} missing: {log}"))
    };
    assert_eq!(find("gateway.started")["actor"], "system");
    assert_eq!(find("watchlist.installed")["subject"], "1");
    let accepted = find("capture.accepted");
    assert_eq!(
        (accepted["actor"].as_str(), accepted["subject"].as_str()),
        (Some("station:desk-g"), Some(id.as_str()))
    );
    assert_eq!(find("result.local")["detail"]["candidates"][0], "P004");
    assert_eq!(find("result.central")["detail"]["decision"], "hit");
    assert!(
        find("capture.rejected")["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    find("gateway.stopped");
    assert!(
        !log.contains("\"data\""),
        "no biometric payload in the audit log"
    );

    std::fs::write(
        w.path("gateway/audit.log"),
        log.replacen("desk-g", "desk-h", 1),
    )
    .unwrap();
    let out = std::process::Command::new(w.bins.gateway)
        .args(["audit", "verify", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken at line"));
}
