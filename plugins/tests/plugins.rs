//! Integration tests with the example and hostile plugins built by `scripts/build-plugins.sh <dir>`, read from
//! `$HOTSPOT_PLUGINS_DIR`. Without it a test prints why and returns, unless `CI` is set: then it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hotspot_device_protocols::station::{self, Capture, CaptureResult, Decision, ResultCandidate};
use hotspot_plugins::*;
use time::OffsetDateTime;

/// The built plugins folder, or `None` after saying why (a failure when `CI` is set).
fn plugins_dir() -> Option<PathBuf> {
    let why = match std::env::var_os("HOTSPOT_PLUGINS_DIR") {
        Some(dir) if Path::new(&dir).join("vendor-decoder.wasm").is_file() => {
            return Some(dir.into());
        }
        Some(dir) => format!(
            "HOTSPOT_PLUGINS_DIR={} has no vendor-decoder.wasm",
            Path::new(&dir).display()
        ),
        None => "HOTSPOT_PLUGINS_DIR is not set".to_owned(),
    };
    let what = format!(
        "{why}: build the plugins with `scripts/build-plugins.sh DIR` and set HOTSPOT_PLUGINS_DIR=DIR"
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} (CI is set, so this is a failure)"
    );
    eprintln!("SKIPPED: {what}");
    None
}

fn wasm(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(format!("{name}.wasm"))).unwrap_or_else(|e| panic!("{name}.wasm: {e}"))
}

fn test_config() -> HostConfig {
    let mut config = HostConfig::default();
    config.call_deadline = Duration::from_millis(200);
    config.max_memory_bytes = 32 << 20;
    config
}

fn new_host(config: HostConfig) -> PluginHost {
    PluginHost::new(config).unwrap()
}

fn load<K: PluginKind>(
    host: &PluginHost,
    dir: &Path,
    file: &str,
    name: &str,
    version: &str,
) -> Result<Plugin<K>, InstallError> {
    let bytes = wasm(dir, file);
    host.load::<K>(
        PluginMeta::new(name, version, K::KIND.world()),
        VerifiedWasm::signature_checked_by_caller(&bytes),
    )
}

const TXN: &str = "6f1c2f0e-8a53-4a57-9a36-0b7f3f1d9c11";
const TS: i64 = 1_795_946_400;

/// An ISO/IEC 19794-2:2005 record with one view.
fn iso_record(position: u8, quality: u8, minutiae: u8) -> Vec<u8> {
    let len = 24 + 4 + 6 * usize::from(minutiae) + 2;
    let mut r = b"FMR\0 20\0".to_vec();
    r.extend_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
    r.extend_from_slice(&[0, 0, 1, 244, 1, 244, 0, 197, 0, 197, 1, 0]);
    r.extend_from_slice(&[position, 0, quality, minutiae]);
    for i in 0..minutiae {
        r.extend_from_slice(&[0x40, 10 + i, 0, 20 + i, 3 * i, 60]);
    }
    r.extend_from_slice(&[0, 0]);
    r
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// An Acme FS-200 record with `prints` (code, type, bytes) and an optional JPEG photo.
fn vendor_payload(
    prints: &[(&str, &str, Vec<u8>)],
    photo: Option<&[u8]>,
    ts: Option<i64>,
) -> Vec<u8> {
    let mut v = serde_json::json!({
        "fmt": "acme-fs200/1",
        "txn": TXN,
        "user": "officer-7",
        "mode": "S",
        "prints": prints.iter().map(|(f, t, data)| serde_json::json!({"f": f, "t": t, "hex": hex(data)})).collect::<Vec<_>>(),
        "vendor_extra": {"ignored": true},
    });
    if let Some(ts) = ts {
        v["ts"] = ts.into();
    }
    if let Some(photo) = photo {
        v["photo"] = serde_json::json!({"t": "JPG", "hex": hex(photo)});
    }
    serde_json::to_vec(&v).unwrap()
}

fn decode_input(payload: Vec<u8>) -> DecodeInput {
    DecodeInput {
        payload,
        station_id: "st-1".into(),
        received_at: OffsetDateTime::from_unix_timestamp(TS + 60).unwrap(),
    }
}

/// The capture the decoder must produce, written independently as station-protocol JSON.
fn expected_capture(
    fingers: serde_json::Value,
    face: Option<&[u8]>,
    captured_at: OffsetDateTime,
) -> Capture {
    let mut v = serde_json::json!({
        "capture_id": TXN,
        "captured_at": rfc3339(captured_at),
        "operator": "officer-7",
        "purpose": "screen",
        "fingers": fingers,
    });
    if let Some(face) = face {
        v["face"] = serde_json::json!({"format": "jpeg", "data": b64(face)});
    }
    station::decode_capture(&serde_json::to_vec(&v).unwrap()).unwrap()
}

/// One-print payload (what the flaky build still decodes) and its capture.
fn simple_case() -> (DecodeInput, Capture) {
    let record = iso_record(2, 77, 20);
    let input = decode_input(vendor_payload(
        &[("R2", "ISO", record.clone())],
        None,
        Some(TS),
    ));
    let expected = expected_capture(
        serde_json::json!([{"position": 2, "format": "iso19794-2", "data": b64(&record)}]),
        None,
        OffsetDateTime::from_unix_timestamp(TS).unwrap(),
    );
    (input, expected)
}

/// Two prints and a photo (the flaky build panics on it).
fn rich_case() -> (DecodeInput, Capture) {
    let record = iso_record(2, 77, 20);
    let wsq = vec![0xFF, 0xA0, 0xFF, 0xA8, 0x00, 0x01];
    let photo = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    let input = decode_input(vendor_payload(
        &[("R2", "ISO", record.clone()), ("L1", "WSQ", wsq.clone())],
        Some(&photo),
        None,
    ));
    let expected = expected_capture(
        serde_json::json!([
            {"position": 2, "format": "iso19794-2", "data": b64(&record)},
            {"position": 6, "format": "wsq", "data": b64(&wsq)},
        ]),
        Some(&photo),
        // No `ts` in the payload: the decoder takes the reception time it was given.
        OffsetDateTime::from_unix_timestamp(TS + 60).unwrap(),
    );
    (input, expected)
}

fn decoder_self_tests() -> Vec<SelfTest<Decoder>> {
    let (input, expected) = simple_case();
    vec![
        SelfTest {
            input,
            expected: Expected::Output(expected),
        },
        SelfTest {
            input: decode_input(b"{\"fmt\": \"other/2\"}".to_vec()),
            expected: Expected::Refused,
        },
    ]
}

#[test]
fn decoder_output_equals_the_expected_capture_on_both_backends() {
    let Some(dir) = plugins_dir() else { return };
    for backend in [Backend::Cranelift, Backend::Pulley] {
        let mut config = test_config();
        config.backend = backend;
        let host = new_host(config);
        let decoder =
            load::<Decoder>(&host, &dir, "vendor-decoder", "acme-fs200", "1.0.0").unwrap();
        for (input, expected) in [simple_case(), rich_case()] {
            assert_eq!(decoder.call(&input).unwrap(), expected, "{backend:?}");
        }
        // A refusal names the field, and is not a fault of the plugin.
        let bad = decode_input(vendor_payload(&[("X9", "ISO", vec![1])], None, None));
        let err = decoder.call(&bad).unwrap_err();
        assert!(
            matches!(&err, CallError::Refused(r) if r.contains("prints[0].f")),
            "{err:?}"
        );
        assert!(!err.is_fault());
        // An answer that breaks the station protocol's rules is the plugin's fault.
        let dup = decode_input(vendor_payload(
            &[("R2", "ISO", vec![1]), ("R2", "ISO", vec![2])],
            None,
            Some(TS),
        ));
        let err = decoder.call(&dup).unwrap_err();
        assert!(
            matches!(&err, CallError::InvalidOutput(r) if r.contains("appears twice")),
            "{err:?}"
        );
        assert!(err.is_fault());
    }
}

#[test]
fn decoder_maps_enrolment_declarations() {
    let Some(dir) = plugins_dir() else { return };
    let host = new_host(test_config());
    let decoder = load::<Decoder>(&host, &dir, "vendor-decoder", "acme-fs200", "1.0.0").unwrap();
    let payload = serde_json::json!({
        "fmt": "acme-fs200/1", "txn": TXN, "ts": TS, "user": "officer-7", "mode": "E",
        "prints": [{"f": "R1", "t": "ANSI", "hex": "464d5200"}, {"f": "L5", "t": "PNG", "hex": "89504e47"}],
        "person": {"surname": "DOE", "given": "JANE MARIE", "dob": "1990-04-17", "sex": "F", "nat": "KEN",
                   "doc": {"type": "P", "no": "A1234567", "by": "KEN"},
                   "place": "Namanga border post", "why": "ER", "law": "Immigration Act s.12(3)"},
    });
    let capture = decoder
        .call(&decode_input(serde_json::to_vec(&payload).unwrap()))
        .unwrap();
    let expected = serde_json::json!({
        "capture_id": TXN, "captured_at": rfc3339(OffsetDateTime::from_unix_timestamp(TS).unwrap()),
        "operator": "officer-7", "purpose": "enrol",
        "fingers": [{"position": 1, "format": "ansi378", "data": b64(b"FMR\0")},
                    {"position": 10, "format": "png", "data": b64(b"\x89PNG")}],
        "enrolment": {"family_name": "DOE", "given_names": "JANE MARIE", "date_of_birth": "1990-04-17", "sex": "F",
                      "nationality": "KEN", "document": {"type": "P", "number": "A1234567", "issuer": "KEN"},
                      "encounter": {"place": "Namanga border post", "reason": "entry_refused"},
                      "legal_basis": "Immigration Act s.12(3)"},
    });
    assert_eq!(
        capture,
        station::decode_capture(&serde_json::to_vec(&expected).unwrap()).unwrap()
    );
}

#[test]
fn quality_plugin_scores_records_and_warns() {
    let Some(dir) = plugins_dir() else { return };
    let host = new_host(test_config());
    let quality = load::<Quality>(&host, &dir, "quality-basic", "basic-quality", "1.0.0").unwrap();
    let good = iso_record(2, 81, 30);
    let sparse = iso_record(7, 40, 9);
    let capture = station::decode_capture(
        &serde_json::to_vec(&serde_json::json!({
            "capture_id": TXN, "captured_at": "2026-11-29T10:00:00Z", "operator": "officer-7", "purpose": "screen",
            "fingers": [{"position": 2, "format": "iso19794-2", "data": b64(&good)},
                        {"position": 3, "format": "iso19794-2", "data": b64(&sparse)}],
            "face": {"format": "jpeg", "data": b64(&[0xFF, 0xD8, 0xFF, 0xE0])},
        }))
        .unwrap(),
    )
    .unwrap();
    let report = quality.call(&capture).unwrap();
    assert_eq!(
        report.fingers,
        vec![
            FingerScore {
                position: 2,
                score: 81
            },
            FingerScore {
                position: 3,
                score: 40
            }
        ]
    );
    assert_eq!(report.face, Some(30));
    let codes: Vec<(&str, Option<u8>)> = report
        .warnings
        .iter()
        .map(|w| (w.code.as_str(), w.position))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("position-mismatch", Some(3)),
            ("few-minutiae", Some(3)),
            ("face-small", None)
        ]
    );
}

fn local_result(decision: Decision) -> CaptureResult {
    CaptureResult {
        capture_id: None,
        source: station::Source::Local,
        decision,
        candidates: vec![ResultCandidate {
            subject_id: "WL-0042".into(),
            score: 87.5,
        }],
        reason: None,
        watchlist_version: 12,
        latency_ms: 3,
    }
}

#[test]
fn policy_plugin_routes_alerts_with_the_time_it_is_given() {
    let Some(dir) = plugins_dir() else { return };
    let host = new_host(test_config());
    let policy = load::<Policy>(&host, &dir, "policy-basic", "basic-policy", "1.0.0").unwrap();
    let (input, _) = simple_case();
    let capture = decoder_for_policy(&host, &dir, &input);
    let day = OffsetDateTime::from_unix_timestamp(TS - TS % 86_400 + 12 * 3600).unwrap();
    let night = day + time::Duration::hours(11);
    let at = |now, decision| {
        policy
            .call(&PolicyInput::new(
                "st-1",
                &capture,
                &local_result(decision),
                now,
            ))
            .unwrap()
    };
    let hit_day = at(day, Decision::Hit);
    assert_eq!(hit_day.decision, Decision::Hit);
    let routes: Vec<_> = hit_day
        .alerts
        .iter()
        .map(|a| (a.route, a.severity))
        .collect();
    assert_eq!(
        routes,
        vec![
            (AlertRoute::Console, Severity::Critical),
            (AlertRoute::Station, Severity::Warning)
        ]
    );
    assert!(hit_day.alerts[0].message.contains("WL-0042"));
    let hit_night = at(night, Decision::Hit);
    assert_eq!(hit_night.alerts.len(), 3);
    assert_eq!(hit_night.alerts[2].route, AlertRoute::Central);
    let no_hit = at(day, Decision::NoHit);
    assert_eq!(no_hit.decision, Decision::NoHit);
    assert!(no_hit.alerts.is_empty());
    // A face-only screening without a hit: the example policy asks for fingerprints.
    let mut face_only = capture.clone();
    face_only.fingers.clear();
    face_only.face = Some(station::Face {
        format: station::FaceFormat::Jpeg,
        data: vec![0xFF, 0xD8, 0xFF],
    });
    let answer = policy
        .call(&PolicyInput::new(
            "st-1",
            &face_only,
            &local_result(Decision::NoHit),
            day,
        ))
        .unwrap();
    assert_eq!(answer.decision, Decision::Inconclusive);
    assert_eq!(
        answer.reason.as_deref(),
        Some("face only: take fingerprints")
    );
    let rejected = policy.call(&PolicyInput::new(
        "st-1",
        &capture,
        &local_result(Decision::Rejected),
        day,
    ));
    assert!(matches!(rejected, Err(CallError::InvalidInput(_))));
}

fn decoder_for_policy(host: &PluginHost, dir: &Path, input: &DecodeInput) -> Capture {
    load::<Decoder>(host, dir, "vendor-decoder", "acme-fs200", "1.0.0")
        .unwrap()
        .call(input)
        .unwrap()
}

#[test]
fn a_runaway_plugin_hits_the_deadline_and_others_keep_working() {
    let Some(dir) = plugins_dir() else { return };
    for backend in [Backend::Cranelift, Backend::Pulley] {
        let mut config = test_config();
        config.backend = backend;
        let host = Arc::new(new_host(config));
        let looping = load::<Decoder>(&host, &dir, "hostile-loop", "loop", "1.0.0").unwrap();
        let decoder =
            load::<Decoder>(&host, &dir, "vendor-decoder", "acme-fs200", "1.0.0").unwrap();
        let (input, expected) = simple_case();
        // The runaway call on another thread while the good plugin keeps answering on this one.
        let runaway = {
            let looping = looping.clone();
            let input = input.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                (looping.call(&input), started.elapsed())
            })
        };
        for _ in 0..5 {
            assert_eq!(decoder.call(&input).unwrap(), expected);
        }
        let (result, took) = runaway.join().unwrap();
        assert_eq!(
            result,
            Err(CallError::Deadline {
                limit: Duration::from_millis(200)
            }),
            "{backend:?}"
        );
        assert!(
            took >= Duration::from_millis(190) && took < Duration::from_secs(3),
            "{backend:?}: {took:?}"
        );
        // The same plugin again (fresh instance each call), then the good one.
        assert!(matches!(
            looping.call(&input),
            Err(CallError::Deadline { .. })
        ));
        assert_eq!(decoder.call(&input).unwrap(), expected);
    }
}

#[test]
fn fuel_bounds_a_runaway_plugin_deterministically() {
    let Some(dir) = plugins_dir() else { return };
    let mut config = test_config();
    config.fuel_per_call = Some(5_000_000);
    config.call_deadline = Duration::from_secs(30);
    let host = new_host(config);
    let looping = load::<Decoder>(&host, &dir, "hostile-loop", "loop", "1.0.0").unwrap();
    let (input, expected) = simple_case();
    assert_eq!(
        looping.call(&input),
        Err(CallError::OutOfFuel { fuel: 5_000_000 })
    );
    let decoder = load::<Decoder>(&host, &dir, "vendor-decoder", "acme-fs200", "1.0.0").unwrap();
    assert_eq!(decoder.call(&input).unwrap(), expected);
}

#[test]
fn a_memory_bomb_is_stopped_by_the_limit() {
    let Some(dir) = plugins_dir() else { return };
    let host = new_host(test_config());
    let bomb = load::<Decoder>(&host, &dir, "hostile-membomb", "bomb", "1.0.0").unwrap();
    let (input, expected) = simple_case();
    let err = bomb.call(&input).unwrap_err();
    assert_eq!(
        err,
        CallError::MemoryLimit {
            limit_bytes: 32 << 20
        }
    );
    assert!(err.is_fault());
    let decoder = load::<Decoder>(&host, &dir, "vendor-decoder", "acme-fs200", "1.0.0").unwrap();
    assert_eq!(decoder.call(&input).unwrap(), expected);
    assert_eq!(bomb.call(&input).unwrap_err(), err);
}

#[test]
fn a_panic_is_an_error_of_that_call_with_the_plugin_output() {
    let Some(dir) = plugins_dir() else { return };
    let host = new_host(test_config());
    let panicking = load::<Decoder>(&host, &dir, "hostile-panic", "panic", "1.0.0").unwrap();
    let (input, expected) = simple_case();
    match panicking.call(&input) {
        Err(CallError::Trap { message, log }) => {
            assert!(log.contains("hostile-panic: refusing"), "log: {log:?}");
            assert!(!message.is_empty());
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    let decoder = load::<Decoder>(&host, &dir, "vendor-decoder", "acme-fs200", "1.0.0").unwrap();
    assert_eq!(decoder.call(&input).unwrap(), expected);
    // Output beyond the log buffer traps the writer: still that call's error only.
    let mut tiny_log = test_config();
    tiny_log.max_log_bytes = 8;
    let host = new_host(tiny_log);
    let panicking = load::<Decoder>(&host, &dir, "hostile-panic", "panic", "1.0.0").unwrap();
    match panicking.call(&input) {
        Err(CallError::Trap { log, .. }) => assert!(log.len() <= 8, "{log:?}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    let decoder = load::<Decoder>(&host, &dir, "vendor-decoder", "acme-fs200", "1.0.0").unwrap();
    assert_eq!(decoder.call(&input).unwrap(), expected);
}

#[test]
fn wrong_contract_versions_worlds_and_bytes_are_refused_at_load() {
    let Some(dir) = plugins_dir() else { return };
    let host = new_host(test_config());
    // Built against hotspot:plugin@2.0.0, even though its metadata claims 1.0.0.
    match load::<Decoder>(&host, &dir, "hostile-wrong-wit", "wrong-wit", "1.0.0") {
        Err(InstallError::WitVersion { found, supported }) => {
            assert_eq!(found, "2.0.0");
            assert_eq!(supported, "1.x");
        }
        other => panic!("expected WitVersion, got {other:?}"),
    }
    // Metadata declaring another major.
    let bytes = wasm(&dir, "vendor-decoder");
    let mut meta = PluginMeta::new("acme-fs200", "1.0.0", "decoder-plugin");
    meta.wit = "hotspot:plugin@3.0.0".into();
    assert!(matches!(
        host.load::<Decoder>(meta, VerifiedWasm::signature_checked_by_caller(&bytes)),
        Err(InstallError::WitVersion { .. })
    ));
    // A quality plugin offered as a decoder.
    match load::<Decoder>(&host, &dir, "quality-basic", "basic-quality", "1.0.0") {
        Err(InstallError::WrongWorld { expected, found }) => {
            assert_eq!(expected, "decoder-plugin");
            assert!(found.contains("hotspot:plugin/quality@1.0.0"), "{found}");
        }
        other => panic!("expected WrongWorld, got {other:?}"),
    }
    // A plugin that wants the host's files: the host grants no filesystem, so it is refused before it ever runs.
    match load::<Decoder>(&host, &dir, "hostile-fs", "fs", "1.0.0") {
        Err(InstallError::Imports(what)) => assert!(what.contains("wasi:filesystem"), "{what}"),
        other => panic!("expected Imports, got {other:?}"),
    }
    // Not a component at all.
    let junk = b"\0asm\x01\0\0\0not really".to_vec();
    assert!(matches!(
        host.load::<Decoder>(
            PluginMeta::new("junk", "1.0.0", "decoder-plugin"),
            VerifiedWasm::signature_checked_by_caller(&junk)
        ),
        Err(InstallError::Invalid(_))
    ));
}

#[test]
fn install_runs_the_self_test_and_keeps_the_old_plugin_on_failure() {
    let Some(dir) = plugins_dir() else { return };
    let host = new_host(test_config());
    let slot = PluginSlot::<Decoder>::new(HealthPolicy::default());
    let (input, expected) = simple_case();
    assert_eq!(slot.call(&input), Err(SlotCallError::Empty));
    let v1 = load::<Decoder>(&host, &dir, "vendor-decoder", "acme-fs200", "1.0.0").unwrap();
    assert!(matches!(
        slot.install(v1.clone(), &[]),
        Err(InstallError::NoSelfTest(_))
    ));
    slot.install(v1, &decoder_self_tests()).unwrap();
    assert_eq!(slot.call(&input).unwrap(), expected);

    // A new version that panics fails its self-test: refused, 1.0.0 stays.
    let v2 = load::<Decoder>(&host, &dir, "hostile-panic", "acme-fs200", "2.0.0").unwrap();
    match slot.install(v2, &decoder_self_tests()) {
        Err(InstallError::SelfTestFailed { plugin, case, .. }) => {
            assert_eq!((plugin.as_str(), case), ("acme-fs200@2.0.0", 0));
        }
        other => panic!("expected SelfTestFailed, got {other:?}"),
    }
    // A new version whose answer differs from the expected one: refused too.
    let mut wrong = decoder_self_tests();
    if let Expected::Output(capture) = &mut wrong[0].expected {
        capture.operator = "someone-else".into();
    }
    let v3 = load::<Decoder>(&host, &dir, "vendor-decoder", "acme-fs200", "3.0.0").unwrap();
    assert!(matches!(
        slot.install(v3, &wrong),
        Err(InstallError::SelfTestFailed { .. })
    ));
    // So is a runaway one (its self-test hits the deadline).
    let v4 = load::<Decoder>(&host, &dir, "hostile-loop", "acme-fs200", "4.0.0").unwrap();
    assert!(matches!(
        slot.install(v4, &decoder_self_tests()),
        Err(InstallError::SelfTestFailed { reason, .. }) if reason.contains("deadline")
    ));
    // And an older or equal version is never installed.
    let again = load::<Decoder>(&host, &dir, "vendor-decoder", "acme-fs200", "1.0.0").unwrap();
    assert!(matches!(
        slot.install(again, &decoder_self_tests()),
        Err(InstallError::NotNewer { .. })
    ));
    let status = slot.status();
    assert_eq!(status.active.unwrap().version, "1.0.0");
    assert_eq!(status.previous, None);
    assert_eq!(slot.call(&input).unwrap(), expected);
}

#[test]
fn most_calls_failing_rolls_back_to_the_previous_version() {
    let Some(dir) = plugins_dir() else { return };
    let host = new_host(test_config());
    let slot = PluginSlot::<Decoder>::new(HealthPolicy {
        window: 10,
        max_faults: 5,
    });
    let v1 = load::<Decoder>(&host, &dir, "vendor-decoder", "acme-fs200", "1.0.0").unwrap();
    slot.install(v1, &decoder_self_tests()).unwrap();
    // 1.1.0 passes its self-test (one print) but panics on richer captures.
    let flaky =
        load::<Decoder>(&host, &dir, "vendor-decoder-flaky", "acme-fs200", "1.1.0").unwrap();
    slot.install(flaky.clone(), &decoder_self_tests()).unwrap();
    let status = slot.status();
    assert_eq!(status.active.unwrap().version, "1.1.0");
    assert_eq!(status.previous.unwrap().version, "1.0.0");

    let (simple, simple_expected) = simple_case();
    let (rich, rich_expected) = rich_case();
    // Refusals (bad station input) are not faults: they never roll back a plugin.
    let bad = decode_input(b"not json".to_vec());
    for _ in 0..10 {
        assert!(matches!(
            slot.call(&bad),
            Err(SlotCallError::Call {
                error: CallError::Refused(_),
                ..
            })
        ));
    }
    assert_eq!(slot.status().active.unwrap().version, "1.1.0");
    // Faults: the sixth within the window of ten rolls back (not the fifth).
    for _ in 0..2 {
        assert_eq!(slot.call(&simple).unwrap(), simple_expected);
    }
    for i in 0..6 {
        assert_eq!(slot.status().active.unwrap().version, "1.1.0", "call {i}");
        match slot.call(&rich) {
            Err(SlotCallError::Call { plugin, error }) => {
                assert_eq!(plugin, "acme-fs200@1.1.0", "call {i}");
                assert!(matches!(error, CallError::Trap { .. }), "{error:?}");
            }
            other => panic!("call {i}: expected a trap, got {other:?}"),
        }
    }
    let status = slot.status();
    assert_eq!(status.active.unwrap().version, "1.0.0");
    assert_eq!(status.previous, None);
    assert_eq!(status.rollbacks.len(), 1);
    let rollback = &status.rollbacks[0];
    assert_eq!(
        (rollback.from.version.as_str(), rollback.to.version.as_str()),
        ("1.1.0", "1.0.0")
    );
    assert_eq!((rollback.faults, rollback.calls), (6, 10));
    // 1.0.0 answers what 1.1.0 could not.
    assert_eq!(slot.call(&rich).unwrap(), rich_expected);
    // The rolled-back plugin is not taken again.
    assert!(matches!(
        slot.install(flaky, &decoder_self_tests()),
        Err(InstallError::RolledBackBefore(_))
    ));
}

#[test]
fn hot_swap_under_concurrent_calls() {
    let Some(dir) = plugins_dir() else { return };
    let host = new_host(test_config());
    let slot = Arc::new(PluginSlot::<Decoder>::new(HealthPolicy::default()));
    let v1 = load::<Decoder>(&host, &dir, "vendor-decoder", "acme-fs200", "1.0.0").unwrap();
    slot.install(v1, &decoder_self_tests()).unwrap();
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let slot = Arc::clone(&slot);
            std::thread::spawn(move || {
                let (input, expected) = simple_case();
                (0..40).all(|_| slot.call(&input).as_ref() == Ok(&expected))
            })
        })
        .collect();
    for minor in 1..=3 {
        let next = load::<Decoder>(
            &host,
            &dir,
            "vendor-decoder",
            "acme-fs200",
            &format!("1.{minor}.0"),
        )
        .unwrap();
        slot.install(next, &decoder_self_tests()).unwrap();
    }
    for caller in callers {
        assert!(caller.join().unwrap(), "a call failed during the swaps");
    }
    assert_eq!(slot.status().active.unwrap().version, "1.3.0");
}

#[test]
fn compile_cache_hits_and_tampered_artifacts_are_recompiled() {
    let Some(dir) = plugins_dir() else { return };
    let cache = tempfile::tempdir().unwrap();
    let mut config = test_config();
    config.cache_dir = Some(cache.path().join("compiled"));
    let (input, expected) = simple_case();
    let load_fresh = || {
        // A new host each time, as after a restart.
        let host = new_host(config.clone());
        let plugin = load::<Decoder>(&host, &dir, "vendor-decoder", "acme-fs200", "1.0.0").unwrap();
        assert_eq!(plugin.call(&input).unwrap(), expected);
        assert_eq!(plugin.cache_warning(), None);
        plugin.origin().clone()
    };
    assert_eq!(load_fresh(), CompileOrigin::Compiled);
    assert_eq!(load_fresh(), CompileOrigin::CacheHit);

    let entries = |ext: &str| -> Vec<PathBuf> {
        std::fs::read_dir(cache.path().join("compiled"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect()
    };
    let [artifact] = entries("cwasm").try_into().unwrap();
    let [record] = entries("json").try_into().unwrap();
    let source_sha = hex(&ring_sha256(&wasm(&dir, "vendor-decoder")));
    assert!(
        artifact
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&source_sha)
    );

    // Flip one byte of the compiled code: not loaded, recompiled, entry rewritten.
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5A;
    std::fs::write(&artifact, &bytes).unwrap();
    match load_fresh() {
        CompileOrigin::Recompiled { reason } => {
            assert!(reason.contains("recorded SHA-256"), "{reason}")
        }
        other => panic!("expected a recompile, got {other:?}"),
    }
    assert_eq!(load_fresh(), CompileOrigin::CacheHit);

    // Another plugin's artifact and record under this plugin's name: refused (the record names other bytes).
    let host = new_host(config.clone());
    load::<Quality>(&host, &dir, "quality-basic", "basic-quality", "1.0.0").unwrap();
    let quality_sha = hex(&ring_sha256(&wasm(&dir, "quality-basic")));
    let swap = |path: &Path| {
        let name = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(&source_sha, &quality_sha);
        std::fs::copy(path.with_file_name(name), path).unwrap();
    };
    swap(&artifact);
    swap(&record);
    match load_fresh() {
        CompileOrigin::Recompiled { reason } => {
            assert!(reason.contains("other component bytes"), "{reason}")
        }
        other => panic!("expected a recompile, got {other:?}"),
    }

    // An entry written by the other backend is never mixed up with this one.
    let mut pulley = config.clone();
    pulley.backend = Backend::Pulley;
    let host = new_host(pulley);
    let plugin = load::<Decoder>(&host, &dir, "vendor-decoder", "acme-fs200", "1.0.0").unwrap();
    assert_eq!(plugin.origin(), &CompileOrigin::Compiled);
    assert_eq!(plugin.call(&input).unwrap(), expected);
}

fn ring_sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

/// Run only as the child of `pulley_runs_where_executable_memory_is_denied`, under memory-deny-write-execute.
#[test]
fn mdwe_child() {
    if std::env::var_os("HOTSPOT_MDWE_CHILD").is_none() {
        return;
    }
    let Some(dir) = plugins_dir() else { return };
    let (input, expected) = simple_case();
    let mut config = test_config();
    config.backend = Backend::Pulley;
    let pulley = load::<Decoder>(
        &new_host(config),
        &dir,
        "vendor-decoder",
        "acme-fs200",
        "1.0.0",
    )
    .unwrap();
    assert_eq!(pulley.call(&input).unwrap(), expected);
    println!("MDWE-CHILD: pulley ok");
    match PluginHost::new(test_config()) {
        Ok(_) => println!("MDWE-CHILD: cranelift started"),
        Err(HostError::Config(e)) => println!("MDWE-CHILD: cranelift refused: {e}"),
        Err(e) => println!("MDWE-CHILD: cranelift failed otherwise: {e}"),
    }
}

/// The appliance runs the gateway with systemd's `MemoryDenyWriteExecute=yes`. On Linux >= 6.3 the same rule can
/// be set on a process with `prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)` (inherited across exec): this test runs
/// `mdwe_child` under it (python3's ctypes sets it, then execs this test binary). Pulley must work there; a
/// Cranelift host must refuse to start with a clear `HostError::Config`. Skipped where python3 or the prctl is
/// missing.
#[test]
fn pulley_runs_where_executable_memory_is_denied() {
    let Some(_dir) = plugins_dir() else { return };
    const SET_MDWE_AND_EXEC: &str = "import ctypes, os, sys\n\
        libc = ctypes.CDLL(None, use_errno=True)\n\
        if libc.prctl(65, 1, 0, 0, 0) != 0:\n    sys.exit(77)\n\
        os.execv(sys.argv[1], sys.argv[1:])\n";
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("python3")
        .args(["-c", SET_MDWE_AND_EXEC])
        .arg(&exe)
        .args(["mdwe_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("HOTSPOT_MDWE_CHILD", "1")
        .output();
    let out = match out {
        Ok(out) if out.status.code() == Some(77) => {
            eprintln!("SKIPPED: this kernel has no PR_SET_MDWE");
            return;
        }
        Ok(out) => out,
        Err(e) => {
            eprintln!("SKIPPED: python3 not available to set PR_SET_MDWE: {e}");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed: {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("MDWE-CHILD: pulley ok"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("MDWE-CHILD: cranelift refused"),
        "Cranelift should not get executable memory under MDWE:\n{stdout}\n{stderr}"
    );
}
