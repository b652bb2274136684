//! End to end: a signed watchlist rollout to two gateways, one of them offline during two publishes; both
//! converge (the offline one through the deltas it missed), and central's fleet view shows it. A bundle signed by a
//! key the gateways do not trust is refused, the installed watchlist stays, and the refusal reaches the audit log
//! and central's fleet view.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use hotspot_device_protocols::bundle::{self, Body, Payload, SigningKey};
use hotspot_e2e::{
    BrokerSetup, TEST_UPLINK, World, free_tcp_port, run_cli, wait_file_contains, wait_status,
};

/// Adds watchlist subject `id` (a copy of P000's finger) through the real import command.
fn add_subject(w: &World, id: &str) {
    let manifest = w.path(&format!("{id}.jsonl"));
    std::fs::write(
        &manifest,
        format!(
            "{{\"subject_id\":\"{id}\",\"lists\":[\"watchlist\"],\"fingers\":[{{\"position\":2,\"format\":\"iso19794-2\",\"path\":\"P000.iso\"}}]}}\n"
        ),
    )
    .unwrap();
    w.import(&manifest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_converges_and_forged_bundles_are_refused() {
    let w = World::new(hotspot_e2e::bins!());
    w.issue_gateway("gw-2");
    let (_central, port) = w.central(0);
    let start = |name: &str| {
        let broker = BrokerSetup::Embedded(free_tcp_port());
        let cfg = w.gateway_config_named(name, &broker, port, TEST_UPLINK, "");
        let gw = w.gateway(&cfg);
        let console = gw.ready["metrics"].as_str().unwrap().to_owned();
        (gw, console)
    };
    let (_gw1, console1) = start("gw-1");
    let (gw2, console2) = start("gw-2");
    for c in [&console1, &console2] {
        let s = wait_status(c, |s| s["watchlist_version"] == 1).await;
        assert_eq!(s["watchlist_subjects"], 8);
        assert_eq!(s["watchlist"]["stale"], false, "{s}");
        assert!(s["alarms"].as_array().unwrap().is_empty(), "{s}");
    }

    // gw-2 goes offline; two publishes happen meanwhile (central signs on every gallery change).
    gw2.stop();
    add_subject(&w, "N001");
    wait_status(&console1, |s| s["watchlist_version"] == 2).await;
    add_subject(&w, "N002");
    let s1 = wait_status(&console1, |s| s["watchlist_version"] == 3).await;
    assert_eq!(s1["watchlist_subjects"], 10);
    let bundles = w.path("central/bundles/watchlist");
    for v in 2..=3 {
        assert!(bundles.join(format!("{v:020}.delta")).is_file());
    }
    let f = w.fleet();
    let gw2_row = f.iter().find(|g| g["gateway"] == "gw-2").unwrap();
    assert_eq!(gw2_row["watchlist_version"], 1);
    assert_eq!(gw2_row["behind"], true);

    // gw-2 comes back: it fetches the two deltas it missed and converges.
    let (_gw2, console2) = start("gw-2");
    let s2 = wait_status(&console2, |s| s["watchlist_version"] == 3).await;
    assert_eq!(s2["watchlist_subjects"], 10);
    wait_file_contains(&w.path("gw-2/audit.log"), &["watchlist-delta"]).await;
    w.wait_fleet(Duration::from_secs(30), |f| {
        f.len() == 2
            && f.iter()
                .all(|g| g["watchlist_version"] == 3 && g["behind"] == false)
    })
    .await;

    // A bundle signed by a key nobody trusts, put where central serves from: announced, fetched, refused.
    run_cli(
        w.bins.central,
        &["keys", "init", "--dir", w.path("rogue").to_str().unwrap()],
    );
    let rogue =
        SigningKey::from_pkcs8(&std::fs::read(w.path("rogue/signing.key")).unwrap()).unwrap();
    let forged = Payload {
        version: 4,
        created_at_ms: 1,
        content_hash: bundle::content_hash(&[]),
        body: Body::WatchlistSnapshot { entries: vec![] },
    };
    std::fs::write(
        bundles.join(format!("{:020}.snapshot", 4)),
        bundle::sign(&forged, &rogue).unwrap(),
    )
    .unwrap();
    let f = w
        .wait_fleet(Duration::from_secs(30), |f| {
            f.iter().all(|g| {
                g["refusals_total"].as_u64() >= Some(1)
                    && g["events"]
                        .to_string()
                        .contains("bundle signed by unknown key")
            })
        })
        .await;
    assert_eq!(f.len(), 2);
    for c in [&console1, &console2] {
        let s = wait_status(c, |_| true).await;
        assert_eq!(s["watchlist_version"], 3, "the installed watchlist stays");
        assert_eq!(s["watchlist_subjects"], 10);
    }
    for log in ["gateway/audit.log", "gw-2/audit.log"] {
        wait_file_contains(&w.path(log), &["watchlist.refused", "unknown key"]).await;
    }
}
