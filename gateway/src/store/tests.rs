#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use hotspot_device_protocols::station::{Decision, Finger, FingerFormat, Source};

fn capture(purpose: Purpose) -> Capture {
    Capture {
        capture_id: Uuid::new_v4(),
        captured_at: time::OffsetDateTime::UNIX_EPOCH,
        operator: "op".into(),
        purpose,
        fingers: vec![Finger {
            position: 1,
            format: FingerFormat::Wsq,
            data: vec![9; 64],
        }],
        face: None,
        enrolment: None,
    }
}

fn result(id: Uuid, source: Source, decision: Decision) -> CaptureResult {
    CaptureResult {
        capture_id: Some(id),
        source,
        decision,
        candidates: vec![],
        reason: None,
        watchlist_version: 1,
        latency_ms: 3,
    }
}

fn payload_file(dir: &Path, id: Uuid) -> PathBuf {
    dir.join("payloads").join(id.simple().to_string())
}

/// Flips one bit of the last byte of `id`'s capture record, so that it fails its checksum.
fn flip_last_byte_of_record(s: &Store, id: Uuid) {
    let mut raw = s
        .engine
        .get(Tree::Captures, id.as_bytes())
        .unwrap()
        .unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 0x40;
    s.corrupt_for_tests(Tree::Captures, id.as_bytes(), raw)
        .unwrap();
}

fn open(dir: &Path) -> Store {
    Store::open(dir, PayloadKey::load_or_create(&dir.join("k")).unwrap()).unwrap()
}

const PURGE_NOW: Retention = Retention {
    payload_ms: 0,
    metadata_ms: 90 * 86_400_000,
};

fn drain_order(s: &Store) -> Vec<Uuid> {
    let mut order = Vec::new();
    let mut after = None;
    while let Some((k, id)) = s.next_outbox(after.as_deref()).unwrap() {
        order.push(id);
        after = Some(k);
    }
    order
}

#[tokio::test]
async fn outbox_drains_in_priority_then_fifo_order_and_survives_reopen() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    let (a, b, c, e) = (
        capture(Purpose::Screen),
        capture(Purpose::Enrol),
        capture(Purpose::Screen),
        capture(Purpose::Screen),
    );
    for (cap, prio) in [
        (&a, Priority::Screen),
        (&b, Priority::Enrol),
        (&c, Priority::Hit),
        (&e, Priority::Screen),
    ] {
        assert_eq!(s.insert_capture("st", 1, cap).unwrap(), Inserted::New);
        let r = result(cap.capture_id, Source::Local, Decision::NoHit);
        s.record_local(cap.capture_id, &r, prio).unwrap();
    }
    assert_eq!(s.insert_capture("st", 1, &a).unwrap(), Inserted::Existing);
    s.flush().await.unwrap();
    drop(s);
    let s = open(d.path());
    assert_eq!(
        drain_order(&s),
        vec![c.capture_id, a.capture_id, e.capture_id, b.capture_id]
    );
    assert_eq!(s.backlog(), 4);
    assert_eq!(s.unpublished().unwrap().len(), 4);
    assert_eq!(s.oldest_backlog_ms(), Some(1));
}

#[tokio::test]
async fn central_answer_dequeues_and_purges_the_payload() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    let cap = capture(Purpose::Screen);
    let id = cap.capture_id;
    s.insert_capture("st", 5, &cap).unwrap();
    assert_eq!(s.pending_local().unwrap(), vec![id]);
    s.record_local(
        id,
        &result(id, Source::Local, Decision::NoHit),
        Priority::Screen,
    )
    .unwrap();
    assert!(s.pending_local().unwrap().is_empty());
    let (key, got) = s.next_outbox(None).unwrap().unwrap();
    assert_eq!(got, id);
    assert_eq!(s.capture(id).unwrap().unwrap().1, cap);
    assert!(
        s.record_central(
            &key,
            id,
            &result(id, Source::Central, Decision::Hit),
            PURGE_NOW
        )
        .unwrap()
    );
    assert!(
        !s.record_central(
            &key,
            id,
            &result(id, Source::Central, Decision::NoHit),
            PURGE_NOW
        )
        .unwrap(),
        "a second answer for the same entry is a duplicate"
    );
    assert_eq!(
        s.result(id, true).unwrap().unwrap().result.decision,
        Decision::Hit
    );
    assert_eq!(s.backlog(), 0);
    assert!(s.capture(id).unwrap().is_none(), "payload purged");
    // The file goes only once the purge is durable: a crash before that could bring the record back.
    assert!(payload_file(d.path(), id).exists());
    assert_eq!(s.purges_pending(), 1);
    s.flush_blocking().unwrap();
    assert!(
        !payload_file(d.path(), id).exists(),
        "its file deleted by the flush after the answer"
    );
    assert_eq!(s.purges_pending(), 0);
    let rec = s.capture_record(id).unwrap().unwrap();
    assert_eq!(rec.received_at_ms, 5, "metadata kept");
    assert!(rec.confirmed_at_ms.is_some());
    s.mark_published(id, true).unwrap();
    assert!(s.result(id, true).unwrap().unwrap().published);
    assert_eq!(
        s.unpublished().unwrap().len(),
        1,
        "only the local result is unpublished"
    );
}

#[test]
fn retention_keeps_payloads_then_metadata_for_their_periods_and_never_deletes_unconfirmed() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    let keep = Retention {
        payload_ms: 60_000,
        metadata_ms: 3_600_000,
    };
    let (done, waiting) = (capture(Purpose::Screen), capture(Purpose::Screen));
    for c in [&done, &waiting] {
        s.insert_capture("st", 0, c).unwrap();
        let r = result(c.capture_id, Source::Local, Decision::NoHit);
        s.record_local(c.capture_id, &r, Priority::Screen).unwrap();
    }
    let (key, _) = s.next_outbox(None).unwrap().unwrap();
    s.record_central(
        &key,
        done.capture_id,
        &result(done.capture_id, Source::Central, Decision::NoHit),
        keep,
    )
    .unwrap();
    let confirmed = s
        .capture_record(done.capture_id)
        .unwrap()
        .unwrap()
        .confirmed_at_ms
        .unwrap();
    assert!(
        s.capture(done.capture_id).unwrap().is_some(),
        "payload kept for its retention period"
    );

    assert_eq!(
        s.purge_expired(confirmed + 1_000, keep).unwrap(),
        Purged::default()
    );
    let p = s.purge_expired(confirmed + 60_000, keep).unwrap();
    assert_eq!(
        p,
        Purged {
            payloads: 1,
            records: 0,
            quarantined_payloads: 0
        }
    );
    assert!(s.capture(done.capture_id).unwrap().is_none());
    assert!(
        payload_file(d.path(), done.capture_id).exists(),
        "until the next flush"
    );
    s.flush_blocking().unwrap();
    assert!(!payload_file(d.path(), done.capture_id).exists());
    assert!(payload_file(d.path(), waiting.capture_id).exists());
    assert!(s.capture_record(done.capture_id).unwrap().is_some());

    let p = s.purge_expired(confirmed + 3_600_000 * 1000, keep).unwrap();
    assert_eq!(
        p,
        Purged {
            payloads: 0,
            records: 1,
            quarantined_payloads: 0
        }
    );
    assert!(s.capture_record(done.capture_id).unwrap().is_none());
    assert!(s.result(done.capture_id, false).unwrap().is_none());
    assert!(
        s.capture(waiting.capture_id).unwrap().is_some(),
        "unconfirmed capture untouched"
    );
    assert_eq!(s.backlog(), 1);
}

#[test]
fn payload_is_not_stored_in_clear() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    let mut cap = capture(Purpose::Screen);
    cap.fingers[0].data = b"VERY-SECRET-MINUTIAE-PATTERN".repeat(4);
    s.insert_capture("st", 1, &cap).unwrap();
    let raw = s
        .engine
        .get(Tree::Captures, cap.capture_id.as_bytes())
        .unwrap()
        .unwrap();
    assert!(!raw.windows(11).any(|w| w == b"VERY-SECRET"));
    let file = std::fs::read(payload_file(d.path(), cap.capture_id)).unwrap();
    assert!(!file.windows(11).any(|w| w == b"VERY-SECRET"));
}

#[test]
fn corrupt_records_are_quarantined_not_fatal() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    let (good, bad) = (capture(Purpose::Screen), capture(Purpose::Screen));
    for c in [&good, &bad] {
        s.insert_capture("st", 1, c).unwrap();
        let r = result(c.capture_id, Source::Local, Decision::NoHit);
        s.record_local(c.capture_id, &r, Priority::Screen).unwrap();
    }
    // Flip one byte in the bad capture's record, and put garbage in the outbox.
    flip_last_byte_of_record(&s, bad.capture_id);
    s.corrupt_for_tests(
        Tree::Outbox,
        &[2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        b"junk".to_vec(),
    )
    .unwrap();

    assert!(s.capture(bad.capture_id).unwrap().is_none());
    assert_eq!(s.capture(good.capture_id).unwrap().unwrap().1, good);
    let order = drain_order(&s);
    assert_eq!(order.len(), 2, "the junk entry is quarantined: {order:?}");
    assert_eq!(s.quarantined(), 2);
    assert_eq!(s.quarantine_len(), 2);
    // A payload sealed under another key fails authentication: also quarantined.
    let (mut rec, _) = s.capture(good.capture_id).unwrap().unwrap();
    rec.payload = PayloadAt::Inline(vec![0; 40]);
    s.corrupt_for_tests(
        Tree::Captures,
        good.capture_id.as_bytes(),
        record::encode(&rec).unwrap(),
    )
    .unwrap();
    assert!(s.capture(good.capture_id).unwrap().is_none());
    assert_eq!(s.quarantined(), 3);
}

#[test]
fn a_corrupt_database_is_moved_aside_instead_of_failing_every_start() {
    let d = tempfile::tempdir().unwrap();
    {
        let s = open(d.path());
        s.insert_capture("st", 1, &capture(Purpose::Screen))
            .unwrap();
        s.engine.flush().unwrap();
    }
    // Overwrite sled's files with garbage.
    for entry in std::fs::read_dir(d.path().join("db")).unwrap().flatten() {
        if entry.path().is_file() {
            std::fs::write(entry.path(), vec![0xA5; 4096]).unwrap();
        }
    }
    let s = Store::open(
        d.path(),
        PayloadKey::load_or_create(&d.path().join("k")).unwrap(),
    )
    .unwrap();
    let aside = s.moved_aside.clone().expect("moved aside");
    assert!(aside.exists());
    let stamp = aside
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .trim_start_matches("db.corrupt-")
        .to_owned();
    let files_aside = d.path().join(format!("payloads.corrupt-{stamp}"));
    assert_eq!(
        std::fs::read_dir(files_aside)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_file())
            .count(),
        1,
        "the payload files go aside with their database"
    );
    assert_eq!(s.backlog(), 0);
    s.insert_capture("st", 2, &capture(Purpose::Screen))
        .unwrap();
}

/// Records written before payload files (`sealed: Option<Vec<u8>>` where [`PayloadAt`] is now) read unchanged.
#[test]
fn records_with_inline_payloads_from_before_payload_files_still_read() {
    #[derive(Serialize)]
    struct Before {
        station_id: String,
        received_at_ms: i64,
        purpose: Purpose,
        confirmed_at_ms: Option<i64>,
        sealed: Option<Vec<u8>>,
    }
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    let c = capture(Purpose::Screen);
    let plain = postcard::to_stdvec(&c).unwrap();
    let sealed = s
        .payload_key()
        .seal(c.capture_id.as_bytes(), &plain)
        .unwrap();
    for (sealed, purged) in [(Some(sealed), false), (None, true)] {
        let before = Before {
            station_id: "st".into(),
            received_at_ms: 7,
            purpose: Purpose::Screen,
            confirmed_at_ms: purged.then_some(9),
            sealed,
        };
        s.corrupt_for_tests(
            Tree::Captures,
            c.capture_id.as_bytes(),
            record::encode(&before).unwrap(),
        )
        .unwrap();
        let rec = s.capture_record(c.capture_id).unwrap().unwrap();
        assert_eq!(rec.received_at_ms, 7);
        assert_eq!(rec.has_payload(), !purged);
        assert_eq!(s.capture(c.capture_id).unwrap().is_some(), !purged);
    }
    // An inline payload is purged like a file.
    s.corrupt_for_tests(
        Tree::Captures,
        c.capture_id.as_bytes(),
        record::encode(&Before {
            station_id: "st".into(),
            received_at_ms: 7,
            purpose: Purpose::Screen,
            confirmed_at_ms: Some(9),
            sealed: Some(vec![1; 64]),
        })
        .unwrap(),
    )
    .unwrap();
    let p = s
        .purge_expired(
            10,
            Retention {
                payload_ms: 0,
                metadata_ms: 1_000,
            },
        )
        .unwrap();
    assert_eq!(p.payloads, 1);
    assert!(
        !s.capture_record(c.capture_id)
            .unwrap()
            .unwrap()
            .has_payload()
    );
}

/// The database holds capture records only: payloads are files, so the engine's memory does not grow with a
/// backlog (sled keeps every live value in memory).
#[tokio::test]
async fn payloads_are_files_beside_the_database_and_count_against_the_quota() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    let mut c = capture(Purpose::Screen);
    c.fingers[0].data = vec![3; 300_000];
    let before = s.size_on_disk();
    s.insert_capture("st", 1, &c).unwrap();
    s.flush().await.unwrap();
    let file = payload_file(d.path(), c.capture_id);
    let len = std::fs::metadata(&file).unwrap().len();
    assert!(len > 300_000, "{len}");
    assert!(s.size_on_disk() >= before + len);
    let raw = s
        .engine
        .get(Tree::Captures, c.capture_id.as_bytes())
        .unwrap()
        .unwrap();
    assert!(raw.len() < 200, "the record is {} bytes", raw.len());
    assert_eq!(
        s.capture_record(c.capture_id).unwrap().unwrap().payload,
        PayloadAt::File
    );
    assert_eq!(s.capture(c.capture_id).unwrap().unwrap().1, c);
}

#[tokio::test]
async fn files_no_record_refers_to_are_deleted_at_open_and_a_missing_file_is_quarantined() {
    let d = tempfile::tempdir().unwrap();
    let (kept, lost) = (capture(Purpose::Screen), capture(Purpose::Screen));
    let orphan = Uuid::new_v4();
    {
        let s = open(d.path());
        s.insert_capture("st", 1, &kept).unwrap();
        s.insert_capture("st", 1, &lost).unwrap();
        s.flush().await.unwrap();
    }
    // A crash after a payload file was written but before its record: a file nobody refers to.
    std::fs::copy(
        payload_file(d.path(), kept.capture_id),
        payload_file(d.path(), orphan),
    )
    .unwrap();
    std::fs::remove_file(payload_file(d.path(), lost.capture_id)).unwrap();
    let s = open(d.path());
    assert!(!payload_file(d.path(), orphan).exists());
    assert_eq!(s.capture(kept.capture_id).unwrap().unwrap().1, kept);
    assert!(s.capture(lost.capture_id).unwrap().is_none());
    assert_eq!(s.quarantined(), 1);
    // The re-sent capture is stored again (the record went to quarantine).
    assert_eq!(s.insert_capture("st", 2, &lost).unwrap(), Inserted::New);
    assert_eq!(s.capture(lost.capture_id).unwrap().unwrap().1, lost);
}

fn quarantined_file(dir: &Path, id: Uuid) -> PathBuf {
    dir.join("payloads")
        .join(payloads::QUARANTINE_DIR)
        .join(id.simple().to_string())
}

/// A quarantined capture's payload file may be the only copy of an accepted capture: it is kept (not taken for a
/// crash's orphan at the next open, not overwritten by a re-send) until the audit period after its quarantine.
#[tokio::test]
async fn a_quarantined_captures_payload_is_kept_for_the_audit_period() {
    let d = tempfile::tempdir().unwrap();
    let (bad_record, bad_payload) = (capture(Purpose::Screen), capture(Purpose::Screen));
    let s = open(d.path());
    for c in [&bad_record, &bad_payload] {
        s.insert_capture("st", 1, c).unwrap();
    }
    s.flush().await.unwrap();
    let sealed = std::fs::read(payload_file(d.path(), bad_record.capture_id)).unwrap();
    // One record fails its checksum; the other's payload file is damaged (it no longer opens).
    flip_last_byte_of_record(&s, bad_record.capture_id);
    let damaged = vec![0x5a; 80];
    std::fs::write(payload_file(d.path(), bad_payload.capture_id), &damaged).unwrap();
    let size = s.payloads.bytes();

    assert!(s.capture(bad_record.capture_id).unwrap().is_none());
    assert!(s.capture(bad_payload.capture_id).unwrap().is_none());
    assert_eq!(s.quarantined(), 2);
    for id in [bad_record.capture_id, bad_payload.capture_id] {
        assert!(!payload_file(d.path(), id).exists());
        assert!(quarantined_file(d.path(), id).exists());
    }
    assert_eq!(
        std::fs::read(quarantined_file(d.path(), bad_record.capture_id)).unwrap(),
        sealed,
        "the file is moved as it was"
    );
    // The files still count against the quota.
    assert_eq!(s.payloads.bytes(), size);
    // The re-sent capture is stored again without touching the quarantined copy.
    assert_eq!(
        s.insert_capture("st", 2, &bad_payload).unwrap(),
        Inserted::New
    );
    assert_eq!(
        s.capture(bad_payload.capture_id).unwrap().unwrap().1,
        bad_payload
    );
    assert_eq!(
        std::fs::read(quarantined_file(d.path(), bad_payload.capture_id)).unwrap(),
        damaged
    );
    s.flush().await.unwrap();
    drop(s);

    // Reopening deletes orphans, not quarantined files.
    let s = open(d.path());
    for id in [bad_record.capture_id, bad_payload.capture_id] {
        assert!(quarantined_file(d.path(), id).exists());
    }
    assert_eq!(
        s.capture(bad_payload.capture_id).unwrap().unwrap().1,
        bad_payload
    );

    // Retention: kept within the audit period after the quarantine, deleted after it.
    let keep = Retention {
        payload_ms: 3_600_000,
        metadata_ms: 86_400_000,
    };
    let now = now_ms();
    assert_eq!(s.purge_expired(now, keep).unwrap(), Purged::default());
    assert!(quarantined_file(d.path(), bad_record.capture_id).exists());
    let before = s.payloads.bytes();
    let p = s
        .purge_expired(now + keep.metadata_ms + 60_000, keep)
        .unwrap();
    assert_eq!(p.quarantined_payloads, 2);
    for id in [bad_record.capture_id, bad_payload.capture_id] {
        assert!(!quarantined_file(d.path(), id).exists());
    }
    assert_eq!(s.payloads.bytes(), before - sealed.len() as u64 - 80);
    // The capture stored again is untouched (it is not confirmed).
    assert_eq!(
        s.capture(bad_payload.capture_id).unwrap().unwrap().1,
        bad_payload
    );
}

/// An engine that loses what was applied since its last flush when it "crashes", as sled does on kill -9 (its
/// buffers are in the process).
#[derive(Debug, Default)]
struct CrashEngine {
    /// `(durable, current)`, keyed by `(tree, key)`.
    state: std::sync::Mutex<(Entries2, Entries2)>,
    ids: std::sync::atomic::AtomicU64,
}

type Entries2 = std::collections::BTreeMap<(u8, Vec<u8>), Vec<u8>>;

impl CrashEngine {
    /// The engine a restart after a crash finds: what was flushed.
    fn crashed(&self) -> Self {
        let durable = self.state.lock().unwrap().0.clone();
        Self {
            state: std::sync::Mutex::new((durable.clone(), durable)),
            ids: std::sync::atomic::AtomicU64::new(self.ids.load(Ordering::SeqCst)),
        }
    }
}

impl Engine for CrashEngine {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .1
            .get(&(tree as u8, key.to_vec()))
            .cloned())
    }
    fn apply(&self, ops: Vec<Op>) -> Result<(), EngineError> {
        let current = &mut self.state.lock().unwrap().1;
        for op in ops {
            match op {
                Op::Put(t, k, v) => {
                    current.insert((t as u8, k), v);
                }
                Op::Delete(t, k) => {
                    current.remove(&(t as u8, k));
                }
            }
        }
        Ok(())
    }
    fn scan(
        &self,
        tree: Tree,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<engine::Entries, EngineError> {
        let state = self.state.lock().unwrap();
        Ok(state
            .1
            .iter()
            .filter(|((t, k), _)| *t == tree as u8 && after.is_none_or(|a| k.as_slice() > a))
            .take(limit)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
    fn len(&self, tree: Tree) -> u64 {
        let state = self.state.lock().unwrap();
        state.1.keys().filter(|(t, _)| *t == tree as u8).count() as u64
    }
    fn flush(&self) -> Result<(), EngineError> {
        let mut state = self.state.lock().unwrap();
        state.0 = state.1.clone();
        Ok(())
    }
    fn next_id(&self) -> Result<u64, EngineError> {
        Ok(self.ids.fetch_add(1, Ordering::SeqCst) + 1)
    }
    fn size_on_disk(&self) -> u64 {
        0
    }
}

/// Invariant 3: a purged payload's file outlives a crash that loses the purge. Deleted at once, it would leave the
/// capture queued for central again with its payload gone: quarantined, never delivered (seen once in the chaos
/// test: a capture answered locally never got central's answer).
#[test]
fn a_purge_lost_in_a_crash_leaves_the_capture_deliverable() {
    let d = tempfile::tempdir().unwrap();
    let engine = Arc::new(CrashEngine::default());
    let key = || PayloadKey::load_or_create(&d.path().join("k")).unwrap();
    let files = || PayloadFiles::open(&d.path().join("payloads")).unwrap();
    let s = Store::with_engine(engine.clone(), files(), key(), None);
    let cap = capture(Purpose::Screen);
    let id = cap.capture_id;
    s.insert_capture("st", 1, &cap).unwrap();
    let local = result(id, Source::Local, Decision::Hit);
    let outbox = s.record_local(id, &local, Priority::Hit).unwrap().unwrap();
    s.flush_blocking().unwrap();
    let answer = result(id, Source::Central, Decision::Hit);
    assert!(s.record_central(&outbox, id, &answer, PURGE_NOW).unwrap());

    // kill -9 before the database wrote the purge back.
    let engine = Arc::new(engine.crashed());
    let s = Store::with_engine(engine.clone(), files(), key(), None);
    assert_eq!(s.next_outbox(None).unwrap(), Some((outbox.clone(), id)));
    assert_eq!(
        s.capture(id).unwrap().unwrap().1,
        cap,
        "the capture can be submitted again"
    );
    assert_eq!(s.quarantined(), 0);

    // The same, with a flush after the answer: the purge is durable and the file gone.
    assert!(s.record_central(&outbox, id, &answer, PURGE_NOW).unwrap());
    s.flush_blocking().unwrap();
    assert!(!payload_file(d.path(), id).exists());
    drop(s);
    let s = Store::with_engine(Arc::new(engine.crashed()), files(), key(), None);
    assert!(s.next_outbox(None).unwrap().is_none());
    assert!(!s.capture_record(id).unwrap().unwrap().has_payload());
}
