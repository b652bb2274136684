//! WebAssembly plugins on the gateway: signed plugin bundles verified, compiled once (cached), self-tested,
//! swapped in, rolled back when they misbehave; decoders for vendor payloads, quality checks and local policy.
//!
//! # Install path ([`Plugins::install_bundle`], blocking)
//! 1. The bundle is verified against `[watchlist] trusted_keys` (the same keys sign watchlists and plugins) before
//!    anything in it is decoded; it must carry a plugin whose component matches the signed hash.
//! 2. Its version must be newer than the installed one of the same name (rollback and replay refused); a name
//!    belongs to one world.
//! 3. The component is loaded by [`PluginHost::load`] (its bytes wrapped in [`VerifiedWasm`] only now, after the
//!    signature check; compiled once, cached in `storage.dir/plugin-cache`), then [`PluginSlot::install`] runs the
//!    bundle's self-tests and swaps it in, keeping the previous version for rollback.
//! 4. The verified bundle is written to `storage.dir/plugins/<name>.bundle` (temporary file, fsync, rename) and
//!    installed again at the next start, after verifying it again.
//!
//! Any failure leaves the installed plugin as it was.
//!
//! # Self-test encodings (bundle manifest; an empty `expected` means "must be refused")
//! - `decoder`: input = the vendor payload; expected = the capture as station-protocol JSON.
//! - `quality`: input = a capture as station-protocol JSON; expected = the report as JSON
//!   (`{"fingers":[{"position","score"}],"face":null,"warnings":[{"code","position","message"}]}`).
//! - `policy`: input = `{"station_id", "capture": <capture JSON>, "local": <local result JSON>, "now": RFC 3339}`;
//!   expected = `{"decision","reason","alerts":[{"route","severity","message"}]}`.
//!
//! # Calls
//! - Decoders run for `hotspot/v1/stations/{id}/vendor/{decoder}` payloads ([`Plugins::decode`]); a failure is
//!   the station's `rejected` result.
//! - Quality and policy plugins run on every accepted capture, in name order, and **fail open**: a fault is
//!   logged and audited and the built-in answer stands, so a broken plugin never blocks an officer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use hotspot_device_protocols::bundle::{self, Body, MAX_BUNDLE_BYTES, PluginBody, TrustedKeys};
use hotspot_device_protocols::station::{Capture, CaptureResult, decode_capture};
use hotspot_device_protocols::uplink::PluginVersion;
use hotspot_plugins::{
    DecodeInput, Decoder, Expected, HealthPolicy, HostConfig, Plugin, PluginHost, PluginKind,
    PluginMeta, PluginSlot, Policy, PolicyDecision, PolicyInput, Quality, QualityReport, SelfTest,
    VerifiedWasm, WIT_PACKAGE,
};
use serde::Deserialize;
use tracing::warn;

use crate::config::PluginsConfig;
use crate::watchlist::Refusal;

/// Each plugin's answer (by name, in name order) and the rollbacks the calls caused.
pub type Answers<T> = (Vec<(String, Result<T, String>)>, Vec<RolledBack>);

/// A plugin rolled back after most of its calls failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    /// Plugin name.
    pub name: String,
    /// Version taken out.
    pub from_version: u64,
    /// Version back in service.
    pub to_version: u64,
    /// Why.
    pub reason: String,
}

struct Installed<K: PluginKind> {
    slot: Arc<PluginSlot<K>>,
    /// (bundle version, verified bundle bytes) of the active plugin and of the one a rollback returns to.
    current: (u64, Vec<u8>),
    previous: Option<(u64, Vec<u8>)>,
    rollbacks_seen: usize,
}

#[derive(Default)]
struct Slots {
    decoder: BTreeMap<String, Installed<Decoder>>,
    quality: BTreeMap<String, Installed<Quality>>,
    policy: BTreeMap<String, Installed<Policy>>,
}

impl Slots {
    fn version_of(&self, name: &str) -> Option<(&'static str, u64)> {
        self.decoder
            .get(name)
            .map(|i| ("decoder", i.current.0))
            .or_else(|| self.quality.get(name).map(|i| ("quality", i.current.0)))
            .or_else(|| self.policy.get(name).map(|i| ("policy", i.current.0)))
    }
}

/// The gateway's plugins.
pub struct Plugins {
    host: Option<PluginHost>,
    trusted: TrustedKeys,
    dir: PathBuf,
    slots: Mutex<Slots>,
    /// Calls and faults per plugin name since start (metrics, console).
    counts: Mutex<BTreeMap<String, (u64, u64)>>,
}

/// One installed plugin's state, for the console and the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginStats {
    /// Plugin name.
    pub name: String,
    /// `decoder`, `quality` or `policy`.
    pub world: &'static str,
    /// Active bundle version.
    pub version: u64,
    /// Calls since the gateway started.
    pub calls: u64,
    /// Calls that faulted (the plugin was to blame) since the gateway started.
    pub faults: u64,
    /// Calls of the active plugin in the slot's health window, and faults among them.
    pub recent: (usize, usize),
    /// Rollbacks so far.
    pub rollbacks: usize,
    /// Too many faults and nothing to roll back to.
    pub unhealthy: bool,
}

fn stats_of<K: PluginKind>(
    world: &'static str,
    map: &BTreeMap<String, Installed<K>>,
    counts: &BTreeMap<String, (u64, u64)>,
) -> Vec<PluginStats> {
    map.iter()
        .map(|(name, i)| {
            let st = i.slot.status();
            let (calls, faults) = counts.get(name).copied().unwrap_or_default();
            PluginStats {
                name: name.clone(),
                world,
                version: i.current.0,
                calls,
                faults,
                recent: (st.recent_calls, st.recent_faults),
                rollbacks: st.rollbacks.len(),
                unhealthy: st.unhealthy,
            }
        })
        .collect()
}

impl std::fmt::Debug for Plugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugins")
            .field("enabled", &self.host.is_some())
            .field("installed", &self.installed())
            .finish_non_exhaustive()
    }
}

fn refusal(kind: &str, version: u64, reason: impl std::fmt::Display) -> Refusal {
    Refusal {
        kind: kind.to_owned(),
        version,
        reason: reason.to_string(),
    }
}

/// The policy self-test input.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyCase {
    station_id: String,
    capture: serde_json::Value,
    local: CaptureResult,
    #[serde(with = "time::serde::rfc3339")]
    now: time::OffsetDateTime,
}

fn persist_bundle(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    hotspot_central::fsutil::write_atomic(&dir.join(format!("{name}.bundle")), bytes)
        .map_err(|e| e.to_string())
}

/// Notices a rollback the slot made: the persisted bundle goes back to the previous version too.
fn check_rollback<K: PluginKind>(
    dir: &Path,
    map: &mut BTreeMap<String, Installed<K>>,
    name: &str,
) -> Option<RolledBack> {
    let i = map.get_mut(name)?;
    let status = i.slot.status();
    if status.rollbacks.len() <= i.rollbacks_seen {
        return None;
    }
    i.rollbacks_seen = status.rollbacks.len();
    let r = status.rollbacks.last()?;
    let from_version = i.current.0;
    let (to_version, bytes) = i.previous.take()?;
    i.current = (to_version, bytes);
    if let Err(e) = persist_bundle(dir, name, &i.current.1) {
        warn!(plugin = name, error = %e, "cannot persist the rolled-back plugin");
    }
    Some(RolledBack {
        name: name.to_owned(),
        from_version,
        to_version,
        reason: format!(
            "{} of the last {} calls failed; last: {}",
            r.faults, r.calls, r.last_error
        ),
    })
}

impl Plugins {
    /// Plugins as configured (`None`: plugins off, every plugin bundle refused with that reason).
    pub fn new(
        cfg: Option<&PluginsConfig>,
        trusted: TrustedKeys,
        storage_dir: &Path,
    ) -> Result<Self, String> {
        let host = match cfg {
            None => None,
            Some(c) => {
                let mut hc = HostConfig::with_backend(c.backend.into());
                hc.max_memory_bytes = c.max_memory_mib.saturating_mul(1024 * 1024);
                hc.call_deadline = std::time::Duration::from_millis(c.call_deadline_ms);
                hc.cache_dir = Some(storage_dir.join("plugin-cache"));
                Some(PluginHost::new(hc).map_err(|e| e.to_string())?)
            }
        };
        Ok(Self {
            host,
            trusted,
            dir: storage_dir.join("plugins"),
            slots: Mutex::new(Slots::default()),
            counts: Mutex::new(BTreeMap::new()),
        })
    }

    /// Counts one call of plugin `name`.
    fn count<T>(&self, name: &str, r: &Result<T, hotspot_plugins::SlotCallError>) {
        let fault = matches!(r, Err(hotspot_plugins::SlotCallError::Call { error, .. }) if error.is_fault());
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let e = c.entry(name.to_owned()).or_default();
        e.0 += 1;
        e.1 += u64::from(fault);
    }

    /// Every installed plugin with its call counts and health, in name order.
    pub fn stats(&self) -> Vec<PluginStats> {
        let counts = self
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let s = self.lock();
        let mut out = stats_of("decoder", &s.decoder, &counts);
        out.extend(stats_of("quality", &s.quality, &counts));
        out.extend(stats_of("policy", &s.policy, &counts));
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Installed plugins and their bundle versions (what `Hello` reports).
    pub fn installed(&self) -> Vec<PluginVersion> {
        let s = self.lock();
        let mut out: Vec<PluginVersion> = s
            .decoder
            .iter()
            .map(|(n, i)| (n, i.current.0))
            .chain(s.quality.iter().map(|(n, i)| (n, i.current.0)))
            .chain(s.policy.iter().map(|(n, i)| (n, i.current.0)))
            .map(|(name, version)| PluginVersion {
                name: name.clone(),
                version,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Installs the bundles persisted by earlier runs (verified again). Returns what was refused.
    pub fn restore(&self) -> Vec<Refusal> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut refused = Vec::new();
        for e in rd.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "bundle") {
                continue;
            }
            match std::fs::read(&path) {
                Ok(bytes) => {
                    if let Err(r) = self.install(&bytes, false) {
                        refused.push(r);
                    }
                }
                Err(err) => {
                    refused.push(refusal("plugin", 0, format!("{}: {err}", path.display())))
                }
            }
        }
        refused
    }

    /// Verifies and installs one plugin bundle; returns `(name, version)`. Blocking (compiles, self-tests).
    pub fn install_bundle(&self, bytes: &[u8]) -> Result<(String, u64), Refusal> {
        self.install(bytes, true)
    }

    fn install(&self, bytes: &[u8], persist: bool) -> Result<(String, u64), Refusal> {
        let v = bundle::verify(bytes, &self.trusted, MAX_BUNDLE_BYTES)
            .map_err(|e| refusal("unknown", 0, e))?;
        let version = v.payload.version;
        let Body::Plugin(body) = &v.payload.body else {
            return Err(refusal(v.payload.kind(), version, "not a plugin bundle"));
        };
        let err = |e: &dyn std::fmt::Display| {
            refusal("plugin", version, format!("plugin {}: {e}", body.name))
        };
        if bundle::sha256(&body.wasm) != v.payload.content_hash {
            return Err(err(&"component hash differs from the signed one"));
        }
        let Some(host) = &self.host else {
            return Err(err(
                &"plugins are off on this gateway (no [plugins] section)",
            ));
        };
        if let Some((world, installed)) = self.lock().version_of(&body.name) {
            if world != body.world {
                return Err(err(&format!("the name is taken by a {world} plugin")));
            }
            if version <= installed {
                return Err(err(&format!(
                    "version {version} is not newer than the installed version {installed} (rollback or replay)"
                )));
            }
        }
        let ctx = InstallCtx {
            host,
            body,
            version,
            bytes,
            persist,
            dir: &self.dir,
        };
        let mut slots = self.lock();
        match body.world.as_str() {
            "decoder" => ctx.install(
                &mut slots.decoder,
                decoder_tests(body).map_err(|e| err(&e))?,
            ),
            "quality" => ctx.install(
                &mut slots.quality,
                quality_tests(body).map_err(|e| err(&e))?,
            ),
            "policy" => ctx.install(&mut slots.policy, policy_tests(body).map_err(|e| err(&e))?),
            other => Err(format!(
                "world {other:?} is not one of decoder, quality, policy"
            )),
        }
        .map_err(|e| err(&e))?;
        Ok((body.name.clone(), version))
    }

    /// Runs decoder `name` on a vendor payload. `Err` is the reason to give the station. Blocking.
    pub fn decode(
        &self,
        name: &str,
        payload: &[u8],
        station_id: &str,
        received_at: time::OffsetDateTime,
    ) -> (Result<Capture, String>, Option<RolledBack>) {
        let Some(slot) = self.lock().decoder.get(name).map(|i| i.slot.clone()) else {
            return (
                Err(format!("no decoder plugin named {name:?} is installed")),
                None,
            );
        };
        let input = DecodeInput {
            payload: payload.to_vec(),
            station_id: station_id.to_owned(),
            received_at,
        };
        let result = slot.call(&input);
        self.count(name, &result);
        let result = result.map_err(|e| e.to_string());
        let rolled = check_rollback(&self.dir, &mut self.lock().decoder, name);
        (result, rolled)
    }

    /// Whether any quality or policy plugin is installed (the pipeline skips the blocking hop otherwise).
    pub fn has_checks(&self) -> (bool, bool) {
        let s = self.lock();
        (!s.quality.is_empty(), !s.policy.is_empty())
    }

    /// Runs every quality plugin on `capture`, in name order. Blocking.
    pub fn quality(&self, capture: &Capture) -> Answers<QualityReport> {
        self.call_all(|s| &mut s.quality, capture)
    }

    /// Runs every policy plugin on the local result, in name order. Blocking.
    pub fn policy(&self, input: &PolicyInput) -> Answers<PolicyDecision> {
        self.call_all(|s| &mut s.policy, input)
    }

    /// Calls every plugin of one world (the lock is not held during the calls).
    fn call_all<K: PluginKind>(
        &self,
        world: fn(&mut Slots) -> &mut BTreeMap<String, Installed<K>>,
        input: &K::Input,
    ) -> Answers<K::Output> {
        let slots: Vec<_> = world(&mut self.lock())
            .iter()
            .map(|(n, i)| (n.clone(), i.slot.clone()))
            .collect();
        let mut out = Vec::new();
        let mut rolled = Vec::new();
        for (name, slot) in slots {
            let r = slot.call(input);
            self.count(&name, &r);
            let r = r.map_err(|e| e.to_string());
            rolled.extend(check_rollback(&self.dir, world(&mut self.lock()), &name));
            out.push((name, r));
        }
        (out, rolled)
    }
}

struct InstallCtx<'a> {
    host: &'a PluginHost,
    body: &'a PluginBody,
    version: u64,
    bytes: &'a [u8],
    persist: bool,
    dir: &'a Path,
}

impl InstallCtx<'_> {
    fn install<K: PluginKind>(
        &self,
        map: &mut BTreeMap<String, Installed<K>>,
        tests: Vec<SelfTest<K>>,
    ) -> Result<(), String> {
        let meta = PluginMeta {
            name: self.body.name.clone(),
            version: format!("{}.0.0", self.version),
            wit: format!("{WIT_PACKAGE}@{}", self.body.wit_version),
            world: format!("{}-plugin", self.body.world),
        };
        // The signature over these bytes was checked by the caller: only now may they be compiled (and their
        // cached native code loaded).
        let plugin: Plugin<K> = self
            .host
            .load::<K>(
                meta,
                VerifiedWasm::signature_checked_by_caller(&self.body.wasm),
            )
            .map_err(|e| e.to_string())?;
        let slot = map.get(&self.body.name).map_or_else(
            || Arc::new(PluginSlot::new(HealthPolicy::default())),
            |i| i.slot.clone(),
        );
        slot.install(plugin, &tests).map_err(|e| e.to_string())?;
        if self.persist
            && let Err(e) = persist_bundle(self.dir, &self.body.name, self.bytes)
        {
            warn!(plugin = %self.body.name, error = %e, "cannot persist the plugin; it is fetched again after a restart");
        }
        let previous = map.remove(&self.body.name).map(|i| i.current);
        let rollbacks_seen = slot.status().rollbacks.len();
        map.insert(
            self.body.name.clone(),
            Installed {
                slot,
                current: (self.version, self.bytes.to_vec()),
                previous,
                rollbacks_seen,
            },
        );
        Ok(())
    }
}

fn expected<T>(
    bytes: &[u8],
    parse: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Result<Expected<T>, String> {
    if bytes.is_empty() {
        Ok(Expected::Refused)
    } else {
        parse(bytes).map(Expected::Output)
    }
}

fn capture_json(bytes: &[u8]) -> Result<Capture, String> {
    decode_capture(bytes).map_err(|e| e.reason)
}

fn decoder_tests(body: &PluginBody) -> Result<Vec<SelfTest<Decoder>>, String> {
    body.self_test
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Ok(SelfTest {
                input: DecodeInput {
                    payload: t.input.clone(),
                    station_id: "self-test".into(),
                    received_at: time::OffsetDateTime::UNIX_EPOCH,
                },
                expected: expected(&t.expected, capture_json)
                    .map_err(|e| format!("self-test {i}: expected capture: {e}"))?,
            })
        })
        .collect()
}

fn quality_tests(body: &PluginBody) -> Result<Vec<SelfTest<Quality>>, String> {
    body.self_test
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Ok(SelfTest {
                input: capture_json(&t.input).map_err(|e| format!("self-test {i}: input: {e}"))?,
                expected: expected(&t.expected, |b| {
                    serde_json::from_slice(b).map_err(|e| e.to_string())
                })
                .map_err(|e| format!("self-test {i}: expected report: {e}"))?,
            })
        })
        .collect()
}

fn policy_tests(body: &PluginBody) -> Result<Vec<SelfTest<Policy>>, String> {
    body.self_test
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let case: PolicyCase = serde_json::from_slice(&t.input)
                .map_err(|e| format!("self-test {i}: input: {e}"))?;
            let capture = serde_json::to_vec(&case.capture)
                .map_err(|e| e.to_string())
                .and_then(|b| capture_json(&b))
                .map_err(|e| format!("self-test {i}: input capture: {e}"))?;
            Ok(SelfTest {
                input: PolicyInput::new(&case.station_id, &capture, &case.local, case.now),
                expected: expected(&t.expected, |b| {
                    serde_json::from_slice(b).map_err(|e| e.to_string())
                })
                .map_err(|e| format!("self-test {i}: expected decision: {e}"))?,
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use hotspot_device_protocols::bundle::{Payload, PluginSelfTest, SigningKey, sign};

    /// The example plugins (`scripts/build-plugins.sh`); absent: skip, unless `CI` is set.
    fn plugins_dir() -> Option<PathBuf> {
        let dir = std::env::var_os("HOTSPOT_PLUGINS_DIR").map(PathBuf::from);
        if let Some(d) = dir.filter(|d| d.join("vendor-decoder.wasm").is_file()) {
            return Some(d);
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "HOTSPOT_PLUGINS_DIR with the example plugins is needed (CI is set)"
        );
        eprintln!("SKIPPED: set HOTSPOT_PLUGINS_DIR to the output of scripts/build-plugins.sh");
        None
    }

    /// An ISO/IEC 19794-2:2005 record with one view of `minutiae` minutiae.
    fn iso_record(position: u8, minutiae: u8) -> Vec<u8> {
        let len = 24 + 4 + 6 * usize::from(minutiae) + 2;
        let mut r = b"FMR\0 20\0".to_vec();
        r.extend_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
        r.extend_from_slice(&[0, 0, 1, 244, 1, 244, 0, 197, 0, 197, 1, 0]);
        r.extend_from_slice(&[position, 0, 70, minutiae]);
        for i in 0..minutiae {
            r.extend_from_slice(&[0x40, 10 + i, 0, 20 + i, 3 * i, 60]);
        }
        r.extend_from_slice(&[0, 0]);
        r
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// An Acme FS-200 payload with `prints` right-hand prints.
    fn payload(prints: u8) -> Vec<u8> {
        let prints: Vec<_> = (1..=prints)
            .map(|p| serde_json::json!({"f": format!("R{p}"), "t": "ISO", "hex": hex(&iso_record(p, 20))}))
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "fmt": "acme-fs200/1", "txn": "6f1c2f0e-8a53-4a57-9a36-0b7f3f1d9c11", "ts": 1_795_946_400,
            "user": "officer-7", "mode": "S", "prints": prints,
        }))
        .unwrap()
    }

    fn expected_one_print() -> Vec<u8> {
        use base64::Engine as _;
        serde_json::to_vec(&serde_json::json!({
            "capture_id": "6f1c2f0e-8a53-4a57-9a36-0b7f3f1d9c11", "captured_at": "2026-11-29T10:00:00Z",
            "operator": "officer-7", "purpose": "screen",
            "fingers": [{"position": 1, "format": "iso19794-2",
                         "data": base64::engine::general_purpose::STANDARD.encode(iso_record(1, 20))}],
        }))
        .unwrap()
    }

    fn key() -> SigningKey {
        let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .unwrap();
        SigningKey::from_pkcs8(doc.as_ref()).unwrap()
    }

    fn plugin_bundle(key: &SigningKey, version: u64, world: &str, wasm: Vec<u8>) -> Vec<u8> {
        let payload = Payload {
            version,
            created_at_ms: 1,
            content_hash: bundle::sha256(&wasm),
            body: Body::Plugin(PluginBody {
                name: "acme-fs200".into(),
                world: world.into(),
                wit_version: "1.0.0".into(),
                wasm,
                self_test: vec![PluginSelfTest {
                    input: payload(1),
                    expected: expected_one_print(),
                }],
            }),
        };
        sign(&payload, key).unwrap()
    }

    fn config() -> PluginsConfig {
        PluginsConfig {
            backend: crate::config::PluginBackend::Pulley,
            max_memory_mib: 64,
            call_deadline_ms: 2_000,
            enrol_min_finger_score: 0,
        }
    }

    #[test]
    fn install_refusals_rollback_and_restore() {
        let Some(dir) = plugins_dir() else { return };
        let state = tempfile::tempdir().unwrap();
        let key = key();
        let trusted = TrustedKeys::parse(&[key.public_key_text()]).unwrap();
        let plugins = Plugins::new(Some(&config()), trusted.clone(), state.path()).unwrap();
        assert!(plugins.installed().is_empty());
        let good = std::fs::read(dir.join("vendor-decoder.wasm")).unwrap();
        let flaky = std::fs::read(dir.join("vendor-decoder-flaky.wasm")).unwrap();
        let now = time::OffsetDateTime::UNIX_EPOCH;

        let v1 = plugin_bundle(&key, 1, "decoder", good.clone());
        assert_eq!(
            plugins.install_bundle(&v1).unwrap(),
            ("acme-fs200".to_owned(), 1)
        );
        let (c, rolled) = plugins.decode("acme-fs200", &payload(2), "st", now);
        assert_eq!(c.unwrap().fingers.len(), 2);
        assert!(rolled.is_none());

        // Refusals: replay, another world, a forged signature, a component that is not the signed one.
        let refused = |b: &[u8]| plugins.install_bundle(b).unwrap_err().reason;
        assert!(refused(&v1).contains("not newer"));
        assert!(
            refused(&plugin_bundle(&key, 5, "quality", good.clone()))
                .contains("taken by a decoder")
        );
        assert!(
            refused(&plugin_bundle(&self::key(), 5, "decoder", good.clone()))
                .contains("unknown key")
        );
        let mut tampered = plugin_bundle(&key, 5, "decoder", good.clone());
        let n = tampered.len();
        tampered[n - 40] ^= 1;
        assert!(refused(&tampered).contains("altered or forged"));
        assert_eq!(plugins.installed()[0].version, 1);

        // Version 2 passes its self-test (one print) but faults on two prints: most calls fail, back to 1.
        plugins
            .install_bundle(&plugin_bundle(&key, 2, "decoder", flaky))
            .unwrap();
        assert_eq!(plugins.installed()[0].version, 2);
        let mut rollback = None;
        for _ in 0..20 {
            let (r, rolled) = plugins.decode("acme-fs200", &payload(2), "st", now);
            assert!(r.is_err(), "the flaky build faults on two prints");
            if rolled.is_some() {
                rollback = rolled;
                break;
            }
        }
        let rollback = rollback.expect("a rollback after most calls faulted");
        assert_eq!((rollback.from_version, rollback.to_version), (2, 1));
        assert_eq!(plugins.installed()[0].version, 1);
        let (c, _) = plugins.decode("acme-fs200", &payload(2), "st", now);
        assert_eq!(c.unwrap().fingers.len(), 2);

        // A restart installs the persisted bundle, which went back to version 1 with the rollback.
        let again = Plugins::new(Some(&config()), trusted, state.path()).unwrap();
        assert!(again.restore().is_empty());
        assert_eq!(again.installed()[0].version, 1);
        let (c, _) = again.decode("acme-fs200", &payload(1), "st", now);
        assert_eq!(c.unwrap().fingers.len(), 1);
        // Unknown decoders and plugins switched off are clear errors.
        assert!(
            again
                .decode("nope", b"x", "st", now)
                .0
                .unwrap_err()
                .contains("nope")
        );
        let trusted = TrustedKeys::parse(&[key.public_key_text()]).unwrap();
        let off = Plugins::new(None, trusted, state.path()).unwrap();
        let r = off
            .install_bundle(&plugin_bundle(&key, 9, "decoder", good))
            .unwrap_err();
        assert!(r.reason.contains("plugins are off"), "{}", r.reason);
    }
}
