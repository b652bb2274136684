//! End to end: central ops publish a signed decoder plugin; the gateway fetches it, self-tests it and installs it;
//! a station that speaks only its vendor format publishes on its vendor topic and gets the local and central
//! answers; a plugin built for another contract version is refused (reported to central) and the installed one
//! keeps working; a payload for a decoder that is not installed gets a clear rejection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use base64::Engine as _;
use hotspot_device_protocols::station::{Decision, Source};
use hotspot_e2e::{
    BrokerSetup, TEST_UPLINK, World, free_tcp_port, plugins_dir, run_cli, station,
    wait_file_contains, wait_status,
};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An Acme FS-200 payload (docs/plugins.md) with one right-index print.
fn vendor_payload(txn: uuid::Uuid, iso: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "fmt": "acme-fs200/1", "txn": txn.to_string(), "ts": 1_795_946_400, "user": "officer-7", "mode": "S",
        "prints": [{"f": "R2", "t": "ISO", "hex": hex(iso)}],
    }))
    .unwrap()
}

/// The gateway row of `fleet status` once `pred` holds for it (60 s at most).
async fn wait_gateway(w: &World, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let rows = w
        .wait_fleet(Duration::from_secs(60), |f| f.iter().any(&pred))
        .await;
    rows.into_iter().find(|g| pred(g)).unwrap()
}

fn publish(w: &World, wasm: &std::path::Path, self_test: bool) -> String {
    publish_as(
        w,
        "acme-fs200",
        "decoder",
        wasm,
        self_test.then_some("selftest"),
    )
}

/// `plugin publish` of `wasm` as plugin `name` of `world`, with the self-test `<case>-in.json` / `<case>-out.json`.
fn publish_as(
    w: &World,
    name: &str,
    world: &str,
    wasm: &std::path::Path,
    case: Option<&str>,
) -> String {
    let mut args = vec![
        "plugin".to_owned(),
        "publish".into(),
        "--data-dir".into(),
        w.path("central").display().to_string(),
        "--key".into(),
        w.path("keys").display().to_string(),
        "--name".into(),
        name.into(),
        "--world".into(),
        world.into(),
        "--wasm".into(),
        wasm.display().to_string(),
    ];
    if let Some(case) = case {
        args.extend([
            "--self-test-input".into(),
            w.path(&format!("{case}-in.json")).display().to_string(),
            "--self-test-expected".into(),
            w.path(&format!("{case}-out.json")).display().to_string(),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_cli(w.bins.central, &args)
}

/// An ISO/IEC 19794-2:2005 record of finger 1 with quality 70 and 20 minutiae (for self-tests).
fn iso_record() -> Vec<u8> {
    let mut r = b"FMR\0 20\0".to_vec();
    r.extend_from_slice(&(24u32 + 4 + 6 * 20 + 2).to_be_bytes());
    r.extend_from_slice(&[0, 0, 1, 244, 1, 244, 0, 197, 0, 197, 1, 0]);
    r.extend_from_slice(&[1, 0, 70, 20]);
    for i in 0..20u8 {
        r.extend_from_slice(&[0x40, 10 + i, 0, 20 + i, 3 * i, 60]);
    }
    r.extend_from_slice(&[0, 0]);
    r
}

/// Self-tests for the example quality and policy plugins: a one-finger screening capture; the quality plugin
/// scores the record's quality byte without warnings, the policy leaves a no-hit as it is without alerts.
fn write_check_self_tests(w: &World) {
    let capture = serde_json::json!({
        "capture_id": "6f1c2f0e-8a53-4a57-9a36-0b7f3f1d9c11", "captured_at": "2026-11-29T10:00:00Z",
        "operator": "officer-7", "purpose": "screen",
        "fingers": [{"position": 1, "format": "iso19794-2",
                     "data": base64::engine::general_purpose::STANDARD.encode(iso_record())}],
    });
    let write = |name: &str, v: serde_json::Value| {
        std::fs::write(w.path(name), serde_json::to_vec(&v).unwrap()).unwrap()
    };
    write("quality-in.json", capture.clone());
    write(
        "quality-out.json",
        serde_json::json!({"fingers": [{"position": 1, "score": 70}], "face": null, "warnings": []}),
    );
    write(
        "policy-in.json",
        serde_json::json!({
            "station_id": "desk-1", "capture": capture, "now": "2026-11-29T10:00:00Z",
            "local": {"capture_id": "6f1c2f0e-8a53-4a57-9a36-0b7f3f1d9c11", "source": "local",
                      "decision": "no_hit", "candidates": [], "reason": null, "watchlist_version": 1,
                      "latency_ms": 3},
        }),
    );
    write(
        "policy-out.json",
        serde_json::json!({"decision": "no_hit", "reason": null, "alerts": []}),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_decoder_plugin_is_rolled_out_and_decodes_vendor_payloads() {
    let Some(plugins) = plugins_dir() else {
        return;
    };
    let w = World::new(hotspot_e2e::bins!());
    // P000 is on the watchlist; its ISO record is in the world folder.
    let iso = std::fs::read(w.path("P000.iso")).unwrap();
    // The self-test shipped with the plugin: a sample payload and the capture it must become.
    let sample = uuid::Uuid::new_v4();
    std::fs::write(w.path("selftest-in.json"), vendor_payload(sample, &iso)).unwrap();
    write_check_self_tests(&w);
    let expected = serde_json::json!({
        "capture_id": sample.to_string(), "captured_at": "2026-11-29T10:00:00Z", "operator": "officer-7",
        "purpose": "screen",
        "fingers": [{"position": 2, "format": "iso19794-2",
                     "data": base64::engine::general_purpose::STANDARD.encode(&iso)}],
    });
    std::fs::write(
        w.path("selftest-out.json"),
        serde_json::to_vec(&expected).unwrap(),
    )
    .unwrap();
    let out = publish(&w, &plugins.join("vendor-decoder.wasm"), true);
    assert!(out.contains("\"published\":1"), "{out}");

    let (_central, port) = w.central(0);
    let broker = BrokerSetup::Embedded(free_tcp_port());
    let cfg = w.gateway_config_with(
        &broker,
        port,
        TEST_UPLINK,
        "[plugins]\nbackend = \"pulley\"",
    );
    let gw = w.gateway(&cfg);
    let console = gw.ready["metrics"].as_str().unwrap().to_owned();
    wait_status(&console, |s| s["watchlist_version"] == 1).await;
    let g = wait_gateway(&w, |g| g["plugins"].to_string().contains("acme-fs200")).await;
    assert_eq!(g["plugins"][0]["version"], 1, "{g}");

    // A station speaking only the vendor format.
    let mut s = station(broker.port(), "acme-desk").await;
    let txn = uuid::Uuid::new_v4();
    s.send_vendor("acme-fs200", vendor_payload(txn, &iso))
        .await
        .unwrap();
    let (mut local, mut central) = (None, None);
    while local.is_none() || central.is_none() {
        let r = s
            .next_result(Duration::from_secs(60))
            .await
            .expect("results for the vendor payload");
        assert_eq!(r.capture_id, Some(txn), "{r:?}");
        match r.source {
            Source::Local => local = Some(r),
            Source::Central => central = Some(r),
        }
    }
    let local = local.unwrap();
    assert_eq!(local.decision, Decision::Hit, "{local:?}");
    assert_eq!(local.candidates[0].subject_id, w.watchlist[0].0);
    assert_eq!(central.unwrap().decision, Decision::Hit);

    // No such decoder: a rejection naming it.
    s.send_vendor("other-vendor", vendor_payload(uuid::Uuid::new_v4(), &iso))
        .await
        .unwrap();
    let r = s.next_result(Duration::from_secs(30)).await.unwrap();
    assert_eq!(r.decision, Decision::Rejected, "{r:?}");
    assert!(
        r.reason.as_deref().unwrap_or("").contains("other-vendor"),
        "{r:?}"
    );

    // A component built for contract 2.0.0 as version 2: refused at install, reported, v1 keeps decoding.
    let out = publish(&w, &plugins.join("hostile-wrong-wit.wasm"), true);
    assert!(out.contains("\"published\":2"), "{out}");
    let g = wait_gateway(&w, |g| g["refusals_total"].as_u64() >= Some(1)).await;
    assert_eq!(g["plugins"][0]["version"], 1, "{g}");
    let txn2 = uuid::Uuid::new_v4();
    s.send_vendor("acme-fs200", vendor_payload(txn2, &iso))
        .await
        .unwrap();
    let r = loop {
        let r = s.next_result(Duration::from_secs(60)).await.unwrap();
        if r.capture_id == Some(txn2) && r.source == Source::Local {
            break r;
        }
    };
    assert_eq!(r.decision, Decision::Hit, "{r:?}");
    wait_file_contains(
        &w.path("gateway/audit.log"),
        &["plugin.installed", "plugin.refused"],
    )
    .await;

    // A quality and a policy plugin: a hit now carries the policy's alert for the station, and the console lists
    // the alert it routed there.
    for (name, world, wasm) in [
        ("basic-quality", "quality", "quality-basic.wasm"),
        ("basic-policy", "policy", "policy-basic.wasm"),
    ] {
        let out = publish_as(&w, name, world, &plugins.join(wasm), Some(world));
        assert!(out.contains("\"published\":1"), "{out}");
    }
    wait_gateway(&w, |g| {
        let p = g["plugins"].to_string();
        p.contains("basic-quality") && p.contains("basic-policy")
    })
    .await;
    let txn3 = uuid::Uuid::new_v4();
    s.send_vendor("acme-fs200", vendor_payload(txn3, &iso))
        .await
        .unwrap();
    let r = loop {
        let r = s.next_result(Duration::from_secs(60)).await.unwrap();
        if r.capture_id == Some(txn3) && r.source == Source::Local {
            break r;
        }
    };
    assert_eq!(r.decision, Decision::Hit, "{r:?}");
    let reason = r.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("ALERT") && reason.contains("secondary inspection"),
        "{r:?}"
    );
    let st = wait_status(&console, |s| {
        s["alerts_recent"]
            .to_string()
            .contains("HIT at station acme-desk")
    })
    .await;
    assert_eq!(st["plugins"].as_array().unwrap().len(), 3, "{st}");
    wait_file_contains(&w.path("gateway/audit.log"), &["plugin.alert"]).await;
}
