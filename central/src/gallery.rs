//! Central's gallery: every enrolled subject, from which the gateways' watchlist is the `watchlist` subset.
//!
//! On disk: `DATA_DIR/gallery.bin`, a postcard-encoded [`GalleryFile`] replaced atomically (write, fsync, rename)
//! by `watchlist import`; its `version` grows by one on every import that changes anything. `serve` watches the
//! file and reloads it without a pause in answering. Templates are stored pre-extracted in the matcher's compact
//! encoding and faces as embeddings (computed at import from the manifest's photo, which is not kept), so the
//! watchlist can be shipped to gateways without any enrolment image. Format 2 added the face embedding, format 3 the
//! watchlist expiry; an older file is refused with a clear error (re-import the manifest).

use std::path::{Path, PathBuf};

use hotspot_device_protocols::bundle::WatchlistEntry;
use hotspot_device_protocols::station::FingerFormat;
use hotspot_device_protocols::template::{parse_ansi378, parse_iso19794_2};
use hotspot_matcher::face::{FaceEngine, FaceIndex};
use hotspot_matcher::{FingerprintIndex, Subject, Template};
use serde::{Deserialize, Serialize};

use crate::fsutil::{self, FsError};

/// File name of the gallery inside the data folder.
pub const GALLERY_FILE: &str = "gallery.bin";
/// The list that goes to gateways.
pub const WATCHLIST: &str = "watchlist";
/// Format version of [`GalleryFile`].
const FORMAT_VERSION: u32 = 3;
/// Largest gallery file read.
const MAX_GALLERY_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Largest manifest or template file read during import.
const MAX_IMPORT_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// The gallery as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GalleryFile {
    /// Format of this file.
    pub format_version: u32,
    /// Monotonic gallery version (0: empty, never imported).
    pub version: u64,
    /// Subjects, in import order.
    pub subjects: Vec<GallerySubject>,
}

/// One subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GallerySubject {
    /// Subject id.
    pub subject_id: String,
    /// Lists the subject is on (`watchlist` goes to gateways).
    pub lists: Vec<String>,
    /// `(position, template in the matcher's encoding)`.
    pub fingers: Vec<(u8, Vec<u8>)>,
    /// The face embedding (matcher encoding), when a face was supplied; the photo is not kept.
    pub face: Option<Vec<u8>>,
    /// Unix ms after which the subject stops matching on gateways (manifest `watchlist_until`; `None`: no expiry).
    pub watchlist_expires_at_ms: Option<i64>,
}

/// Errors reading, importing or writing the gallery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GalleryError {
    /// File trouble.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The gallery file does not decode.
    #[error("{path}: not a valid gallery file: {what}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// One or more manifest lines are wrong; nothing was imported.
    #[error("manifest {manifest}: {} error(s), nothing imported:\n  {}", .errors.len(), .errors.join("\n  "))]
    Manifest {
        /// The manifest.
        manifest: PathBuf,
        /// Each error, with its line number.
        errors: Vec<String>,
    },
}

impl GalleryFile {
    /// Loads the gallery in `data_dir`, or an empty one if there is none yet.
    pub fn load(data_dir: &Path) -> Result<Self, GalleryError> {
        let path = data_dir.join(GALLERY_FILE);
        if !path.exists() {
            return Ok(Self {
                format_version: FORMAT_VERSION,
                ..Self::default()
            });
        }
        let bytes = fsutil::read(&path, MAX_GALLERY_BYTES)?;
        let g: Self = postcard::from_bytes(&bytes).map_err(|e| GalleryError::Corrupt {
            path: path.clone(),
            what: e.to_string(),
        })?;
        if g.format_version != FORMAT_VERSION {
            return Err(GalleryError::Corrupt {
                path,
                what: format!(
                    "format version {} is not {FORMAT_VERSION}",
                    g.format_version
                ),
            });
        }
        Ok(g)
    }

    /// Writes the gallery atomically.
    pub fn save(&self, data_dir: &Path) -> Result<(), GalleryError> {
        fsutil::create_dir_private(data_dir)?;
        let bytes = postcard::to_stdvec(self).map_err(|e| GalleryError::Corrupt {
            path: data_dir.join(GALLERY_FILE),
            what: e.to_string(),
        })?;
        fsutil::write_atomic(&data_dir.join(GALLERY_FILE), &bytes)?;
        Ok(())
    }

    /// Adds or replaces subjects; bumps the version when anything changed. Returns how many changed.
    pub fn merge(&mut self, incoming: Vec<GallerySubject>) -> usize {
        let mut changed = 0;
        for s in incoming {
            match self
                .subjects
                .iter_mut()
                .find(|x| x.subject_id == s.subject_id)
            {
                Some(old) if *old == s => {}
                Some(old) => {
                    *old = s;
                    changed += 1;
                }
                None => {
                    self.subjects.push(s);
                    changed += 1;
                }
            }
        }
        if changed > 0 {
            self.version += 1;
        }
        changed
    }

    /// The 1:N index over every subject (central's own search).
    pub fn index(&self) -> FingerprintIndex {
        FingerprintIndex::build(self.subjects.iter().map(to_subject).collect())
    }

    /// The face index over every subject with a face (an embedding that no longer decodes is skipped).
    pub fn faces(&self) -> FaceIndex {
        FaceIndex::build(
            self.subjects
                .iter()
                .filter_map(|s| {
                    let e = hotspot_matcher::face::Embedding::decode(s.face.as_deref()?).ok()?;
                    Some((s.subject_id.clone(), e))
                })
                .collect(),
        )
    }

    /// The subset shipped to gateways, keyed by subject id (what `publish` signs).
    pub fn watchlist(&self) -> std::collections::BTreeMap<String, WatchlistEntry> {
        self.subjects
            .iter()
            .filter(|s| s.lists.iter().any(|l| l == WATCHLIST))
            .map(|s| {
                let e = WatchlistEntry {
                    subject_id: s.subject_id.clone(),
                    fingers: s.fingers.clone(),
                    face: s.face.clone(),
                    expires_at_ms: s.watchlist_expires_at_ms,
                };
                (s.subject_id.clone(), e)
            })
            .collect()
    }
}

fn to_subject(s: &GallerySubject) -> Subject {
    Subject {
        subject_id: s.subject_id.clone(),
        // Templates were validated at import; one that no longer decodes is skipped rather than stopping search.
        fingers: s
            .fingers
            .iter()
            .filter_map(|(pos, t)| Template::decode(t).ok().map(|t| (*pos, t)))
            .collect(),
    }
}

/// One line of an import manifest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestLine {
    subject_id: String,
    #[serde(default)]
    lists: Vec<String>,
    #[serde(default)]
    fingers: Vec<ManifestFinger>,
    #[serde(default)]
    face: Option<ManifestFace>,
    /// RFC 3339 time after which the subject stops matching on gateways.
    #[serde(default)]
    watchlist_until: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFinger {
    position: u8,
    format: FingerFormat,
    path: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFace {
    /// Checked against the file's content.
    format: hotspot_device_protocols::station::FaceFormat,
    path: PathBuf,
}

/// Reads a manifest (JSON lines, paths relative to the manifest) into subjects, reporting every error at once.
/// Faces are embedded with `faces`; a manifest with faces and no engine is refused.
pub fn read_manifest(
    manifest: &Path,
    faces: Option<&FaceEngine>,
) -> Result<Vec<GallerySubject>, GalleryError> {
    let text = fsutil::read_to_string(manifest, MAX_IMPORT_FILE_BYTES)?;
    let base = manifest.parent().unwrap_or(Path::new("."));
    let mut subjects = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match subject_from_line(base, line, faces) {
            Ok(s) => subjects.push(s),
            Err(e) => errors.push(format!("line {}: {e}", n + 1)),
        }
    }
    if errors.is_empty() {
        Ok(subjects)
    } else {
        Err(GalleryError::Manifest {
            manifest: manifest.to_owned(),
            errors,
        })
    }
}

fn subject_from_line(
    base: &Path,
    line: &str,
    faces: Option<&FaceEngine>,
) -> Result<GallerySubject, String> {
    let m: ManifestLine = serde_json::from_str(line).map_err(|e| e.to_string())?;
    hotspot_device_protocols::station::validate_id(&m.subject_id).map_err(|e| e.to_string())?;
    let mut fingers = Vec::new();
    for f in &m.fingers {
        if !(1..=10).contains(&f.position) {
            return Err(format!("finger position {} must be 1..=10", f.position));
        }
        let bytes =
            fsutil::read(&base.join(&f.path), MAX_IMPORT_FILE_BYTES).map_err(|e| e.to_string())?;
        let record = match f.format {
            FingerFormat::Iso19794_2 => parse_iso19794_2(&bytes),
            FingerFormat::Ansi378 => parse_ansi378(&bytes),
            FingerFormat::Wsq | FingerFormat::Png | FingerFormat::Tiff => {
                let image = hotspot_device_protocols::image::decode_finger_image(f.format, &bytes)
                    .map_err(|e| format!("{}: {e}", f.path.display()))?;
                let t = hotspot_matcher::extract::extract(&image)
                    .map_err(|e| format!("{}: {e}", f.path.display()))?;
                fingers.push((f.position, t.encode()));
                continue;
            }
        }
        .map_err(|e| format!("{}: {e}", f.path.display()))?;
        let view = record
            .views
            .first()
            .ok_or_else(|| format!("{}: the record holds no finger view", f.path.display()))?;
        let t = Template::from_view(view, record.x_resolution_ppcm, record.y_resolution_ppcm);
        fingers.push((f.position, t.encode()));
    }
    let face = match &m.face {
        None => None,
        Some(face) => Some(embed_face(base, face, faces)?),
    };
    if fingers.is_empty() && face.is_none() {
        return Err("a subject needs at least one finger or a face".into());
    }
    let watchlist_expires_at_ms = match &m.watchlist_until {
        None => None,
        Some(t) => {
            let at = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map_err(|e| format!("watchlist_until {t:?} is not an RFC 3339 time: {e}"))?;
            Some(i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
        }
    };
    Ok(GallerySubject {
        subject_id: m.subject_id,
        lists: m.lists,
        fingers,
        face,
        watchlist_expires_at_ms,
    })
}

/// The embedding of a manifest's face photo; every refusal names the file and what to do.
fn embed_face(
    base: &Path,
    face: &ManifestFace,
    faces: Option<&FaceEngine>,
) -> Result<Vec<u8>, String> {
    use hotspot_device_protocols::station::FaceFormat;
    let path = base.join(&face.path);
    let bytes = fsutil::read(&path, MAX_IMPORT_FILE_BYTES).map_err(|e| e.to_string())?;
    let declared_ok = match face.format {
        FaceFormat::Jpeg => bytes.starts_with(&[0xFF, 0xD8]),
        FaceFormat::Png => bytes.starts_with(b"\x89PNG"),
    };
    if !declared_ok {
        return Err(format!(
            "face {}: the file is not a {:?} image",
            face.path.display(),
            face.format
        ));
    }
    let Some(engine) = faces else {
        return Err(format!(
            "face {}: face models are needed to import faces (pass --models DIR; scripts/fetch-models.sh fetches them)",
            face.path.display()
        ));
    };
    let analysis = engine
        .analyze(&bytes)
        .map_err(|e| format!("face {}: {e}", face.path.display()))?;
    Ok(analysis.embedding.encode())
}

/// `watchlist import`: merges a manifest into the gallery in `data_dir`. Returns (changed, new version).
pub fn import(
    data_dir: &Path,
    manifest: &Path,
    faces: Option<&FaceEngine>,
) -> Result<(usize, u64), GalleryError> {
    let incoming = read_manifest(manifest, faces)?;
    let mut g = GalleryFile::load(data_dir)?;
    let changed = g.merge(incoming);
    if changed > 0 {
        g.save(data_dir)?;
    }
    Ok((changed, g.version))
}
