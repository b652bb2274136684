//! End to end: enrolments at the post become contributions at central, quality-gated and counted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use hotspot_device_protocols::enrolment::Enrolment;
use hotspot_device_protocols::station::{Capture, Decision, Purpose};
use hotspot_e2e::{BrokerSetup, Tracker, World, free_tcp_port, run_cli, station, wait_status};

const LONG: Duration = Duration::from_secs(60);
const RESEND: Duration = Duration::from_secs(5);

fn declarations() -> Enrolment {
    serde_json::from_value(serde_json::json!({
        "family_name": "DOE", "given_names": "JANE", "date_of_birth": "1990-04-17", "sex": "F",
        "nationality": "KEN", "document": {"type": "P", "number": "A1234567", "issuer": "KEN"},
        "encounter": {"place": "Namanga border post", "reason": "entry_refused"},
        "legal_basis": "Immigration Act s.12(3)"
    }))
    .unwrap()
}

fn as_enrolment(mut c: Capture) -> Capture {
    c.purpose = Purpose::Enrol;
    c.enrolment = Some(declarations());
    c
}

fn contributions(w: &World, status: &str) -> Vec<serde_json::Value> {
    let dir = w.path("central");
    let out = run_cli(
        w.bins.central,
        &[
            "contributions",
            "list",
            "--data-dir",
            dir.to_str().unwrap(),
            "--status",
            status,
        ],
    );
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolment_becomes_searchable_at_central_after_acceptance() {
    let mut w = World::new(hotspot_e2e::bins!());
    let (central, central_port) = w.central(0);
    let broker = BrokerSetup::Embedded(free_tcp_port());
    let gw = w.gateway(&w.gateway_config(&broker, central_port));
    let console = gw.ready["metrics"].as_str().unwrap().to_owned();
    wait_status(&console, |s| s["watchlist_version"] == 1).await;
    let mut a = station(broker.port(), "desk-enrol").await;
    let mut b = station(broker.port(), "desk-screen").await;

    // Refusals at the desk: no declarations; too few minutiae (named per finger).
    let mut t = Tracker::default();
    let person = w.new_person();
    let mut bare = w.capture_of(&person);
    bare.purpose = Purpose::Enrol;
    a.send(&bare).await.unwrap();
    let r = a.next_result(Duration::from_secs(10)).await.unwrap();
    assert_eq!(r.decision, Decision::Rejected);
    assert!(r.reason.unwrap().contains("`enrolment` is required"));
    let mut poor = as_enrolment(w.capture_of(&person));
    let record =
        hotspot_device_protocols::template::parse_iso19794_2(&poor.fingers[0].data).unwrap();
    let mut few = record.clone();
    few.views[0].minutiae.truncate(7);
    poor.fingers[0].data = hotspot_device_protocols::template::encode_iso19794_2(&few).unwrap();
    a.send(&poor).await.unwrap();
    let r = a.next_result(Duration::from_secs(10)).await.unwrap();
    assert_eq!(r.decision, Decision::Rejected);
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .contains("finger 2: 7 minutiae"),
        "{r:?}"
    );

    // A good enrolment: screened locally and centrally, then a pending contribution with a receipt.
    let enrol = as_enrolment(w.capture_of(&person));
    let enrol_id = enrol.capture_id;
    t.send(&a, enrol).await;
    assert!(t.pump(&mut a, LONG, RESEND, Tracker::complete).await);
    let central_result = t.captures[&enrol_id].2.clone().unwrap();
    assert_eq!(central_result.decision, Decision::NoHit);
    assert!(
        central_result
            .reason
            .as_deref()
            .unwrap()
            .contains("contribution C-"),
        "{central_result:?}"
    );
    let pending = contributions(&w, "pending");
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["enrolment"]["family_name"], "DOE");
    assert_eq!(pending[0]["gateway"], "gw-1");
    let id = pending[0]["id"].as_str().unwrap().to_owned();

    // Before acceptance a later screening elsewhere does not find her; after acceptance central does.
    let dir = w.path("central");
    let out = run_cli(
        w.bins.central,
        &[
            "contributions",
            "accept",
            "--data-dir",
            dir.to_str().unwrap(),
            "--id",
            &id,
        ],
    );
    assert!(out.contains("gallery version 2"), "{out}");
    // The accepted record can be passed on as an INT-I ATP transaction: its declarations and one Type-9
    // minutiae record per enrolled finger.
    let atp = w.path("atp.xml");
    let out = run_cli(
        w.bins.central,
        &[
            "contributions",
            "export",
            "--data-dir",
            dir.to_str().unwrap(),
            "--id",
            &id,
            "--out",
            atp.to_str().unwrap(),
            "--originator",
            "KEN01:Namanga border post:KEN",
        ],
    );
    assert!(out.contains("INT-I ATP"), "{out}");
    let xml = std::fs::read(&atp).unwrap();
    let package = hotspot_device_protocols::int_i::parse_package(&xml).unwrap();
    assert_eq!(package.info.category, "ATP");
    assert_eq!(package.info.control_number.as_deref(), Some(id.as_str()));
    assert_eq!(package.info.originator.as_deref(), Some("KEN01"));
    let fingers = pending[0]["fingers"].as_array().unwrap().len();
    assert!(fingers > 0);
    assert_eq!(package.records.iter().filter(|&&r| r == 9).count(), fingers);
    assert!(String::from_utf8_lossy(&xml).contains(">DOE</nc:PersonSurName>"));
    tokio::time::sleep(Duration::from_millis(1500)).await; // central reloads its gallery
    let mut tb = Tracker::default();
    let screen = w.capture_of(&person);
    let screen_id = screen.capture_id;
    tb.send(&b, screen).await;
    assert!(tb.pump(&mut b, LONG, RESEND, Tracker::complete).await);
    let (_, local, remote, _) = &tb.captures[&screen_id];
    assert_eq!(
        local.as_ref().unwrap().decision,
        Decision::NoHit,
        "not on the watchlist"
    );
    let remote = remote.as_ref().unwrap();
    assert_eq!(remote.decision, Decision::Hit, "{remote:?}");
    assert_eq!(remote.candidates[0].subject_id, id);

    // An enrolment made while the uplink is down is delivered after it returns, exactly once.
    central.kill9();
    let other = w.new_person();
    let offline = as_enrolment(w.capture_of(&other));
    let offline_id = offline.capture_id;
    t.send(&a, offline).await;
    let local_only = |t: &Tracker| t.captures[&offline_id].1.is_some();
    assert!(t.pump(&mut a, LONG, RESEND, local_only).await);
    let (central, _) = w.central(central_port);
    assert!(
        t.pump(&mut a, LONG, Duration::from_secs(30), Tracker::complete)
            .await,
        "{t:#?}"
    );
    assert_eq!(contributions(&w, "pending").len(), 1);

    // Counters: at the gateway (status topic / console) and at central.
    // After central's restart the gateway's hello brings back central's review: one accepted so far.
    let s = wait_status(&console, |s| {
        s["contributions"]["forwarded"] == 2 && s["contributions"]["accepted"] == 1
    })
    .await;
    assert_eq!(s["contributions"]["rejected_review"], 0, "{s}");
    assert_eq!(s["contributions"]["enrolled"], 2, "{s}");
    assert_eq!(s["contributions"]["rejected_quality"], 1, "{s}");
    assert_eq!(s["contributions"]["pending"], 0, "{s}");
    let stats = run_cli(
        w.bins.central,
        &[
            "contributions",
            "stats",
            "--data-dir",
            dir.to_str().unwrap(),
        ],
    );
    let row: serde_json::Value = serde_json::from_str(stats.lines().next().unwrap()).unwrap();
    assert_eq!(
        (
            row["received"].as_u64(),
            row["accepted"].as_u64(),
            row["pending"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    // The same counts on central's fleet view, beside the gateway's versions and backlog.
    let fleet = run_cli(
        w.bins.central,
        &["fleet", "status", "--data-dir", dir.to_str().unwrap()],
    );
    let gw: serde_json::Value = serde_json::from_str(fleet.lines().next().unwrap()).unwrap();
    assert_eq!(gw["gateway"], "gw-1", "{gw}");
    assert_eq!(gw["contributions"][0]["received"], 2, "{gw}");
    assert_eq!(gw["contributions"][0]["accepted"], 1, "{gw}");
    central.stop();
    assert_eq!(w.central_report()["answered"], 3);
}
