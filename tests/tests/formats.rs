//! End to end: a station publishing a raw ANSI/NIST-ITL transaction instead of JSON.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use hotspot_device_protocols::ansi_nist;
use hotspot_device_protocols::station::{Decision, FingerFormat, Source};
use hotspot_e2e::{BrokerSetup, World, free_tcp_port, station, wait_status};

fn shared_file(rel: &str) -> Option<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(rel);
    let bytes = std::fs::read(&path).ok();
    if bytes.is_none() {
        eprintln!("skipping: ../shared/data not found ({})", path.display());
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_ansi_nist_transaction_is_matched_and_forwarded_once() {
    let Some(an2) = shared_file("ansi-nist/jnbis/type-9-14-m1.an2") else {
        return;
    };
    let w = World::new(hotspot_e2e::bins!());

    // Central ops enrol the person in that transaction from its Type-9 minutiae (as a template file).
    let (expected, _) =
        ansi_nist::capture_from_transaction("desk-n", &an2, time::OffsetDateTime::now_utc())
            .unwrap();
    let finger = expected
        .fingers
        .iter()
        .find(|f| f.format == FingerFormat::Iso19794_2)
        .expect("a template");
    std::fs::write(w.path("an2k.iso"), &finger.data).unwrap();
    std::fs::write(
        w.path("an2k.jsonl"),
        format!(
            "{{\"subject_id\":\"AN2K-1\",\"lists\":[\"watchlist\"],\"fingers\":[{{\"position\":{},\"format\":\"iso19794-2\",\"path\":\"an2k.iso\"}}]}}\n",
            finger.position
        ),
    )
    .unwrap();
    let out = w.import(&w.path("an2k.jsonl"));
    assert!(out.contains("gallery version 2"), "{out}");

    let (central, central_port) = w.central(0);
    let broker = BrokerSetup::Embedded(free_tcp_port());
    let gw = w.gateway(&w.gateway_config(&broker, central_port));
    // Central signs the gallery's watchlist (now 9 subjects) as version 1 when it starts.
    wait_status(gw.ready["metrics"].as_str().unwrap(), |s| {
        s["watchlist_version"] == 1 && s["watchlist_subjects"] == 9
    })
    .await;
    let mut s = station(broker.port(), "desk-n").await;

    s.send_raw(an2.clone()).await.unwrap();
    let (mut local, mut remote) = (None, None);
    while local.is_none() || remote.is_none() {
        let r = s
            .next_result(Duration::from_secs(60))
            .await
            .expect("results for the transaction");
        assert_eq!(
            r.capture_id,
            Some(expected.capture_id),
            "the id derives from station + TCN: {r:?}"
        );
        match r.source {
            Source::Local => local = Some(r),
            Source::Central => remote = Some(r),
        }
    }
    let local = local.unwrap();
    assert_eq!(local.decision, Decision::Hit, "{local:?}");
    assert_eq!(local.candidates[0].subject_id, "AN2K-1");
    assert_eq!(remote.unwrap().decision, Decision::Hit);

    // The same transaction again is a re-send: the stored answers come back, central is not asked twice.
    s.send_raw(an2).await.unwrap();
    let again = s.next_result(Duration::from_secs(20)).await.unwrap();
    assert_eq!(again.capture_id, Some(expected.capture_id));
    // Garbage that starts like a transaction is rejected with a reason, and changes nothing else.
    s.send_raw(b"1.001:17\x1d1.002:0400\x1d".to_vec())
        .await
        .unwrap();
    let mut rejected = None;
    while rejected.is_none() {
        let r = s.next_result(Duration::from_secs(20)).await.unwrap();
        if r.decision == Decision::Rejected {
            rejected = Some(r);
        }
    }
    assert!(
        rejected
            .unwrap()
            .reason
            .unwrap()
            .starts_with("ANSI/NIST-ITL")
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    central.stop();
    let report = w.central_report();
    assert_eq!(report["answered"], 1, "{report}");
}
