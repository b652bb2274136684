//! Compile once, keep the compiled artifact on disk.
//!
//! An entry is two files named after the SHA-256 of the verified component bytes and a hash of the engine's
//! compilation settings (wasmtime version, backend, target features):
//!
//! - `<source-sha256>-<engine>.cwasm`: `Component::serialize` output;
//! - `<source-sha256>-<engine>.json`: `{"format":1,"source_sha256":..,"artifact_sha256":..,"engine":..,
//!   "backend":..}`.
//!
//! An artifact is only deserialized when (1) its record names the SHA-256 of the bytes being loaded, which the
//! caller verified, and (2) the artifact's own SHA-256 matches the record. Anything else (missing, mismatching,
//! unreadable, refused by wasmtime as built by another version or configuration) is recompiled from the verified
//! bytes and the entry rewritten. Entries are written to a temporary file and renamed, artifact first.
//!
//! What this protects against: corruption, truncation, a stale entry from another wasmtime or backend, an
//! artifact swapped for another plugin's. What it does not: someone able to write both files of an entry can
//! forge it (a SHA-256 is not a signature); the folder must be writable by the service only, like its binary.

use std::fmt;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::config::HostConfig;
use crate::error::InstallError;

/// Version of the cache record format.
const FORMAT: u32 = 1;

/// Where a loaded plugin's machine code came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompileOrigin {
    /// Compiled now; there was no cache entry (or no cache).
    Compiled,
    /// Deserialized from a cache entry that passed every check.
    CacheHit,
    /// A cache entry existed but was not used (the reason says why); compiled now and the entry rewritten.
    Recompiled {
        /// Why the entry was not used.
        reason: String,
    },
}

impl fmt::Display for CompileOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Compiled => f.write_str("compiled"),
            Self::CacheHit => f.write_str("cache hit"),
            Self::Recompiled { reason } => write!(f, "recompiled ({reason})"),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    format: u32,
    source_sha256: String,
    artifact_sha256: String,
    engine: String,
    backend: String,
}

pub(crate) struct Compiled {
    pub component: Component,
    pub source_sha256: [u8; 32],
    pub origin: CompileOrigin,
    pub cache_warning: Option<String>,
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Names the engine's compilation settings; artifacts of other settings get other file names.
fn engine_tag(engine: &Engine) -> String {
    // `DefaultHasher::new()` uses fixed keys: stable within one build of the host, which is all a cache key needs
    // (a new build may change it: then the entry is simply recompiled).
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

/// The component for `bytes`: from the cache when an intact entry exists, else compiled (and cached).
pub(crate) fn compile(
    engine: &Engine,
    config: &HostConfig,
    bytes: &[u8],
) -> Result<Compiled, InstallError> {
    let source_sha256 = sha256(bytes);
    let source_hex = hex(&source_sha256);
    let Some(dir) = &config.cache_dir else {
        return Ok(Compiled {
            component: compile_now(engine, bytes)?,
            source_sha256,
            origin: CompileOrigin::Compiled,
            cache_warning: None,
        });
    };
    let stem = format!("{source_hex}-{}", engine_tag(engine));
    let artifact_path = dir.join(format!("{stem}.cwasm"));
    let record_path = dir.join(format!("{stem}.json"));
    let origin = match try_cached(engine, &source_hex, &artifact_path, &record_path) {
        Ok(component) => {
            return Ok(Compiled {
                component,
                source_sha256,
                origin: CompileOrigin::CacheHit,
                cache_warning: None,
            });
        }
        Err(Miss::Absent) => CompileOrigin::Compiled,
        Err(Miss::Unusable(reason)) => CompileOrigin::Recompiled { reason },
    };
    let component = compile_now(engine, bytes)?;
    let cache_warning = store(
        engine,
        config,
        &component,
        &source_hex,
        dir,
        &artifact_path,
        &record_path,
    )
    .err();
    Ok(Compiled {
        component,
        source_sha256,
        origin,
        cache_warning,
    })
}

fn compile_now(engine: &Engine, bytes: &[u8]) -> Result<Component, InstallError> {
    Component::new(engine, bytes).map_err(|e| InstallError::Invalid(format!("{e:#}")))
}

enum Miss {
    Absent,
    Unusable(String),
}

fn try_cached(
    engine: &Engine,
    source_hex: &str,
    artifact_path: &Path,
    record_path: &Path,
) -> Result<Component, Miss> {
    let record = match fs::read(record_path) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Miss::Absent),
        Err(e) => return Err(Miss::Unusable(format!("cache record unreadable: {e}"))),
    };
    let record: Record = serde_json::from_slice(&record)
        .map_err(|e| Miss::Unusable(format!("cache record malformed: {e}")))?;
    if record.format != FORMAT {
        return Err(Miss::Unusable(format!(
            "cache record format {} (expected {FORMAT})",
            record.format
        )));
    }
    if record.engine != engine_tag(engine) {
        return Err(Miss::Unusable(
            "cache record is for other engine settings".into(),
        ));
    }
    if record.source_sha256 != source_hex {
        return Err(Miss::Unusable(
            "cache record is for other component bytes".into(),
        ));
    }
    let artifact = fs::read(artifact_path)
        .map_err(|e| Miss::Unusable(format!("cache artifact unreadable: {e}")))?;
    if hex(&sha256(&artifact)) != record.artifact_sha256 {
        return Err(Miss::Unusable(
            "cache artifact does not match its recorded SHA-256 (corrupt or tampered)".into(),
        ));
    }
    #[allow(unsafe_code)]
    // SAFETY: `Component::deserialize` trusts its input to be an artifact wasmtime produced, since it maps it as
    // code. These bytes are: (1) the file recorded for the SHA-256 of the component bytes being loaded now, which
    // the caller verified against the bundle signature (`VerifiedWasm`), and (2) byte-for-byte the artifact whose
    // SHA-256 this host recorded when it serialized it (checked just above). Artifacts from another wasmtime
    // version or configuration are refused by wasmtime's own header check (an error, handled by recompiling).
    let component = unsafe { Component::deserialize(engine, &artifact) };
    component.map_err(|e| Miss::Unusable(format!("cached artifact refused by wasmtime: {e:#}")))
}

fn store(
    engine: &Engine,
    config: &HostConfig,
    component: &Component,
    source_hex: &str,
    dir: &Path,
    artifact_path: &Path,
    record_path: &Path,
) -> Result<(), String> {
    let artifact = component
        .serialize()
        .map_err(|e| format!("serializing the compiled plugin: {e:#}"))?;
    let record = Record {
        format: FORMAT,
        source_sha256: source_hex.to_owned(),
        artifact_sha256: hex(&sha256(&artifact)),
        engine: engine_tag(engine),
        backend: config.backend.as_str().to_owned(),
    };
    let record = serde_json::to_vec_pretty(&record).map_err(|e| e.to_string())?;
    fs::create_dir_all(dir).map_err(|e| format!("creating cache folder {}: {e}", dir.display()))?;
    write_atomically(artifact_path, &artifact)?;
    write_atomically(record_path, &record)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp: PathBuf = path.with_extension(format!("tmp{}-{unique}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("writing {}: {e}", path.display())
    })
}
