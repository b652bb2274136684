//! End to end with faces: central imports faces as embeddings (the photos are not kept), the gateway receives them
//! in the watchlist, and a station's face photo is answered locally and by central; photos that cannot be compared
//! get a reason, photos that are not photos are rejected (also when the capture's finger search had already started).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use hotspot_device_protocols::station::{
    Capture, Decision, Face, FaceFormat, Finger, FingerFormat, Purpose,
};
use hotspot_e2e::{
    BrokerSetup, Tracker, World, faces_dir, free_tcp_port, models_dir, run_cli, station,
};
use hotspot_gateway::station_sim::new_capture;
use hotspot_gateway::synth::{random_finger, to_iso};
use rand::SeedableRng as _;
use rand::rngs::StdRng;

const LONG: Duration = Duration::from_secs(90);
const RESEND: Duration = Duration::from_secs(10);

fn face_capture(data: Vec<u8>) -> Capture {
    let mut c = new_capture(Vec::new(), Purpose::Screen);
    c.face = Some(Face {
        format: FaceFormat::Png,
        data,
    });
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faces_are_matched_locally_and_by_central() {
    let (Some(models), Some(photos)) = (models_dir(), faces_dir()) else {
        return;
    };
    let models = models.to_str().unwrap().to_owned();
    let w = World::new(hotspot_e2e::bins!());
    // Amy and Leonard on the watchlist, Penny known only to central; enrolled from their first photo.
    let mut manifest = String::new();
    for (id, name, list) in [
        ("F001", "amy", "watchlist"),
        ("F002", "leonard", "watchlist"),
        ("F003", "penny", "national"),
    ] {
        let file = photos.join(format!("faceapi-bbt/{name}/{name}1.png"));
        manifest.push_str(&format!(
            "{{\"subject_id\":\"{id}\",\"lists\":[\"{list}\"],\"face\":{{\"format\":\"png\",\"path\":\"{}\"}}}}\n",
            file.display()
        ));
    }
    std::fs::write(w.path("faces.jsonl"), manifest).unwrap();
    let import = |extra: &[&str]| {
        std::process::Command::new(w.bins.central)
            .args(["watchlist", "import", "--data-dir"])
            .arg(w.path("central"))
            .arg("--manifest")
            .arg(w.path("faces.jsonl"))
            .args(extra)
            .output()
            .unwrap()
    };
    // Without models the import is refused, naming the face and the fix; nothing is imported.
    let refused = import(&[]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("--models"), "{err}");
    let ok = import(&["--models", &models]);
    assert!(ok.status.success(), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("3 subject(s)"));

    let (_central, central_port) = w.central_with(0, &["--models", &models]);
    let broker = BrokerSetup::Embedded(free_tcp_port());
    let face_section = format!("[face]\nmodels_dir = \"{models}\"");
    let config = w.gateway_config_with(
        &broker,
        central_port,
        hotspot_e2e::TEST_UPLINK,
        &face_section,
    );
    let out = run_cli(
        w.bins.gateway,
        &["check-config", "--config", config.to_str().unwrap()],
    );
    assert!(out.contains("configuration is valid"), "{out}");
    let gw = w.gateway(&config);
    let mut s = station(broker.port(), "desk-f").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let photo = |rel: &str| std::fs::read(photos.join(rel)).unwrap();
    let amy = face_capture(photo("faceapi-bbt/amy/amy3.png"));
    let penny = face_capture(photo("faceapi-bbt/penny/penny4.png"));
    let grey = {
        let img = hotspot_device_protocols::image::GrayImage {
            width: 160,
            height: 160,
            ppi: None,
            pixels: vec![120; 160 * 160],
        };
        face_capture(hotspot_device_protocols::image::encode_png(&img).unwrap())
    };
    let ids = (amy.capture_id, penny.capture_id, grey.capture_id);
    let mut t = Tracker::default();
    for c in [amy, penny, grey] {
        t.send(&s, c).await;
    }
    assert!(
        t.pump(&mut s, LONG, RESEND, |t| t.complete()).await,
        "{t:#?}"
    );

    let (_, local, central, _) = &t.captures[&ids.0];
    let (local, central) = (local.as_ref().unwrap(), central.as_ref().unwrap());
    assert_eq!(local.decision, Decision::Hit, "{local:?}");
    assert_eq!(local.candidates[0].subject_id, "F001");
    assert_eq!(central.decision, Decision::Hit, "{central:?}");
    assert_eq!(central.candidates[0].subject_id, "F001");

    let (_, local, central, _) = &t.captures[&ids.1];
    let (local, central) = (local.as_ref().unwrap(), central.as_ref().unwrap());
    assert_ne!(
        local.decision,
        Decision::Hit,
        "penny is not on the watchlist: {local:?}"
    );
    // Central knows Penny: she is its first candidate, and at least sent for review (this photo pair scores about
    // FMR 6e-4, in the review band; a hit needs 1e-4).
    assert_ne!(
        central.decision,
        Decision::NoHit,
        "central knows penny: {central:?}"
    );
    assert_eq!(central.candidates[0].subject_id, "F003", "{central:?}");
    assert!(local.candidates.iter().all(|c| c.subject_id != "F003"));

    let (_, local, _, _) = &t.captures[&ids.2];
    let local = local.as_ref().unwrap();
    assert_eq!(local.decision, Decision::Inconclusive, "{local:?}");
    assert!(
        local.reason.as_deref().unwrap().contains("no face found"),
        "{local:?}"
    );

    // Bytes that are no photo: rejected, naming the field.
    s.send(&face_capture(b"certainly not a photo".to_vec()))
        .await
        .unwrap();
    let r = s.next_result(Duration::from_secs(20)).await.unwrap();
    assert_eq!(r.decision, Decision::Rejected, "{r:?}");
    assert!(r.reason.as_deref().unwrap().contains("face.data"), "{r:?}");

    // With a finger as well, the finger search starts while the face is analysed (docs/metrics.md): amy's photo
    // and a finger of nobody's still finds amy by her face (her subject has no fingerprints, so the finger gives
    // no evidence either way).
    let stranger = to_iso(&random_finger(&mut StdRng::seed_from_u64(11)), 2).unwrap();
    let with_finger = |mut c: Capture| {
        c.fingers.push(Finger {
            position: 2,
            format: FingerFormat::Iso19794_2,
            data: stranger.clone(),
        });
        c
    };
    let amy = with_finger(face_capture(photo("faceapi-bbt/amy/amy3.png")));
    let mut t = Tracker::default();
    let amy_id = amy.capture_id;
    t.send(&s, amy).await;
    assert!(
        t.pump(&mut s, LONG, RESEND, |t| t.complete()).await,
        "{t:#?}"
    );
    let local = t.captures[&amy_id].1.as_ref().unwrap();
    assert_eq!(local.decision, Decision::Hit, "{local:?}");
    assert_eq!(local.candidates[0].subject_id, "F001", "{local:?}");
    // Its `local result` log line says how long the matcher itself took (docs/metrics.md; the load benchmark
    // subtracts it from the latency): some time, within the gateway's own latency. The log is a file, so it has no
    // colour codes: plain `key=value` fields.
    let log = std::fs::read_to_string(&gw.log).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("local result") && l.contains(&amy_id.to_string()))
        .unwrap_or_else(|| panic!("no local result line for {amy_id}:\n{log}"));
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a log file: {line}"
    );
    let field = |name: &str| -> f64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    let (matcher_ms, latency_ms) = (field("matcher_ms"), field("latency_ms"));
    assert!(
        matcher_ms > 0.0 && matcher_ms <= latency_ms + 1.0,
        "matcher_ms {matcher_ms}, latency_ms {latency_ms}: {line}"
    );
    // A finger and bytes that are no photo: rejected as before, and the search already under way is dropped: no
    // local answer follows the rejection.
    let bad = with_finger(face_capture(b"certainly not a photo".to_vec()));
    let bad_id = bad.capture_id;
    s.send(&bad).await.unwrap();
    let r = s.next_result(Duration::from_secs(20)).await.unwrap();
    assert_eq!(r.capture_id, Some(bad_id));
    assert_eq!(r.decision, Decision::Rejected, "{r:?}");
    assert!(r.reason.as_deref().unwrap().contains("face.data"), "{r:?}");
    if let Some(after) = s.next_result(Duration::from_secs(3)).await {
        panic!("a rejected capture was answered: {after:?}");
    }
}
