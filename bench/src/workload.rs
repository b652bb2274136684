//! What the benchmark matches: a generated watchlist (10 fingers + a face embedding per subject), real face photos
//! for the subjects that must hit, and pools of station captures of each kind.
//!
//! Subject `i`'s ten fingers are synthetic (`hotspot_gateway::synth`), drawn from a generator seeded by `i`, so a
//! probe of any subject can be made again without storing its fingers. Each finger is enrolled the way central's
//! `watchlist import` enrols an ISO/IEC 19794-2 record (parsed, converted to the matcher's template, compact
//! encoding). Faces are random unit vectors, except for the "hit" subjects, whose face is the embedding of a real
//! photo (`../shared/data/faces/deepface-pairs`) computed by the same face engine the gateway runs; their face
//! captures send that photo. The signed snapshot and the key that signed it are cached under `--cache`, keyed by
//! the subject count and [`GEN_VERSION`], and made again when the photos' embeddings change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, anyhow, bail};
use hotspot_device_protocols::bundle::{
    Body, Payload, SigningKey, WatchlistEntry, content_hash, sign,
};
use hotspot_device_protocols::station::{Capture, Face, FaceFormat, Finger, FingerFormat, Purpose};
use hotspot_device_protocols::template::parse_iso19794_2;
use hotspot_gateway::synth::{SynthFinger, impression, random_finger, to_iso};
use hotspot_matcher::Template;
use hotspot_matcher::face::{EMBEDDING_DIM, Embedding, FaceEngine};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use rayon::prelude::*;
use serde::Serialize;
use tracing::info;
use uuid::Uuid;

/// Bumped whenever generated subjects change (invalidates the cache).
pub const GEN_VERSION: u32 = 1;
/// Captures of each kind in a pool.
pub const POOL_SIZE: usize = 40;
/// One capture in this many (in a pool) is of a watchlist subject and must hit.
pub const HIT_EVERY: usize = 5;
/// Photos enrolled as hit subjects' faces, at most.
pub const MAX_ENROLLED_PHOTOS: usize = 8;
/// Photos larger than this are left out (a station camera sends a few hundred KB).
const MAX_PHOTO_BYTES: u64 = 700 * 1024;
/// Cosine below which two photos are taken as different people (SFace's published same-person threshold is 0.363).
const DIFFERENT_PERSON_COSINE: f32 = 0.36;

/// What a station capture carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Kind {
    /// Fingers (2: right and left index; 10: all).
    pub fingers: u8,
    /// With a face photo.
    pub face: bool,
}

impl Kind {
    /// The four kinds benchmarked.
    pub const ALL: [Kind; 4] = [
        Kind {
            fingers: 2,
            face: false,
        },
        Kind {
            fingers: 2,
            face: true,
        },
        Kind {
            fingers: 10,
            face: false,
        },
        Kind {
            fingers: 10,
            face: true,
        },
    ];

    /// `2f`, `2f+face`, `10f`, `10f+face`.
    pub fn name(self) -> String {
        format!("{}f{}", self.fingers, if self.face { "+face" } else { "" })
    }

    /// Finger positions captured.
    pub fn positions(self) -> Vec<u8> {
        if self.fingers >= 10 {
            (1..=10).collect()
        } else {
            vec![2, 7]
        }
    }
}

/// Subject id of subject `i`.
pub fn subject_id(i: usize) -> String {
    format!("S{i:07}")
}

fn subject_rng(i: usize) -> StdRng {
    StdRng::seed_from_u64(0x6273_6e63_6867_6e31 ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Subject `i`'s ten fingers, positions 1..=10 in order.
pub fn subject_fingers(i: usize) -> Vec<SynthFinger> {
    let mut rng = subject_rng(i);
    (0..10).map(|_| random_finger(&mut rng)).collect()
}

/// A finger enrolled as central does from an ISO/IEC 19794-2 record: parsed, converted, compact-encoded.
pub fn enrolled_template(f: &SynthFinger, position: u8) -> anyhow::Result<Vec<u8>> {
    let iso = to_iso(f, position)?;
    let record = parse_iso19794_2(&iso)?;
    let view = record
        .views
        .first()
        .ok_or_else(|| anyhow!("ISO record without a finger view"))?;
    Ok(Template::from_view(view, record.x_resolution_ppcm, record.y_resolution_ppcm).encode())
}

/// Generated subject `i`: ten enrolled fingers and a random face embedding.
pub fn generated_entry(i: usize) -> anyhow::Result<WatchlistEntry> {
    let mut rng = subject_rng(i);
    let fingers: Vec<SynthFinger> = (0..10).map(|_| random_finger(&mut rng)).collect();
    let mut raw = [0f32; EMBEDDING_DIM];
    for v in &mut raw {
        *v = rng.random_range(-1.0..1.0);
    }
    let face = Embedding::from_raw(&raw).map(|e| e.encode());
    let fingers = fingers
        .iter()
        .zip(1u8..)
        .map(|(f, p)| Ok((p, enrolled_template(f, p)?)))
        .collect::<anyhow::Result<_>>()?;
    Ok(WatchlistEntry {
        subject_id: subject_id(i),
        fingers,
        face,
        expires_at_ms: None,
    })
}

/// A face photo and its embedding.
#[derive(Debug, Clone)]
pub struct Photo {
    /// File name.
    pub name: String,
    /// JPEG bytes.
    pub bytes: Vec<u8>,
    /// Its embedding (as the gateway computes it).
    pub embedding: Embedding,
}

/// Photos enrolled as hit subjects' faces, and photos of people not on the watchlist.
#[derive(Debug, Clone)]
pub struct Photos {
    /// Enrolled (each a different person).
    pub enrolled: Vec<Photo>,
    /// Strangers (none close to an enrolled photo).
    pub strangers: Vec<Photo>,
}

/// Analyses the photos of `dir` (`img*.jpg` up to 700 KB with exactly one face) and splits them into enrolled
/// photos of different people and stranger photos that resemble none of them.
pub fn photos(dir: &Path, engine: &FaceEngine) -> anyhow::Result<Photos> {
    let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .with_context(|| format!("reading face photos in {}", dir.display()))?
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_name()?.to_str()?;
            let n: u32 = name
                .strip_prefix("img")?
                .strip_suffix(".jpg")?
                .parse()
                .ok()?;
            let small = std::fs::metadata(&path).ok()?.len() <= MAX_PHOTO_BYTES;
            small.then_some((n, path))
        })
        .collect();
    files.sort();
    let mut usable = Vec::new();
    for (_, path) in files {
        let bytes = std::fs::read(&path)?;
        if let Ok(a) = engine.analyze(&bytes)
            && a.faces_found == 1
        {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            usable.push(Photo {
                name,
                bytes,
                embedding: a.embedding,
            });
        }
    }
    let mut enrolled: Vec<Photo> = Vec::new();
    let mut rest = Vec::new();
    for p in usable {
        let distinct = enrolled
            .iter()
            .all(|e| e.embedding.cosine(&p.embedding) < DIFFERENT_PERSON_COSINE);
        if distinct && enrolled.len() < MAX_ENROLLED_PHOTOS {
            enrolled.push(p);
        } else {
            rest.push(p);
        }
    }
    let strangers: Vec<Photo> = rest
        .into_iter()
        .filter(|p| {
            let closest = enrolled
                .iter()
                .map(|e| e.embedding.cosine(&p.embedding))
                .fold(f32::NEG_INFINITY, f32::max);
            tracing::debug!(photo = %p.name, closest, "stranger candidate");
            closest < DIFFERENT_PERSON_COSINE
        })
        .collect();
    if enrolled.len() < 2 || strangers.len() < 2 {
        bail!(
            "too few usable face photos in {}: {} enrolled, {} strangers",
            dir.display(),
            enrolled.len(),
            strangers.len()
        );
    }
    Ok(Photos {
        enrolled,
        strangers,
    })
}

/// Index of hit subject `j` of `hits` in a watchlist of `n`: spread evenly over the list.
pub fn hit_subject(j: usize, hits: usize, n: usize) -> usize {
    let stride = (n / hits.max(1)).max(1);
    (j * stride + stride / 2).min(n.saturating_sub(1))
}

/// Signs the generated subjects as a version-1 snapshot, with the hit subjects' faces replaced by their photos'
/// embeddings; writes it to `path` and returns its size in bytes.
pub fn write_snapshot(
    mut entries: Vec<WatchlistEntry>,
    photos: &Photos,
    key: &SigningKey,
    path: &Path,
) -> anyhow::Result<u64> {
    let n = entries.len();
    let hits = photos.enrolled.len();
    for (j, p) in photos.enrolled.iter().enumerate() {
        let i = hit_subject(j, hits, n);
        if let Some(e) = entries.get_mut(i) {
            e.face = Some(p.embedding.encode());
        }
    }
    let payload = Payload {
        version: 1,
        created_at_ms: (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64,
        content_hash: content_hash(&entries),
        body: Body::WatchlistSnapshot { entries },
    };
    let bytes = sign(&payload, key)?;
    drop(payload);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(bytes.len() as u64)
}

/// What the cache remembers about a generated snapshot, to know whether it still fits.
#[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
struct CacheMeta {
    version: u32,
    subjects: usize,
    /// `(photo, embedding in the matcher's encoding)` of each hit subject, in order.
    faces: Vec<(String, Vec<u8>)>,
}

/// A signed snapshot ready to serve.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The bundle file (inside the cache).
    pub bundle: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// The key that signed it, as gateways list it in `trusted_keys`.
    pub public_key: String,
    /// Made in this run (not from the cache).
    pub generated: bool,
}

/// The signed version-1 snapshot of `n` generated subjects with the hit subjects' faces from `photos`: from the
/// cache (`CACHE/watchlist-v<GEN_VERSION>-<n>/`: the bundle, the key that signed it, and what it was made from),
/// or generated in parallel, signed with a new key and cached. A cached snapshot made from other photos or
/// embeddings (e.g. after a face model change) is made again.
pub fn prepare(cache: &Path, n: usize, photos: &Photos) -> anyhow::Result<Prepared> {
    let dir = cache.join(format!("watchlist-v{GEN_VERSION}-{n}"));
    let (meta_path, bundle, keys) = (
        dir.join("meta.json"),
        dir.join("snapshot.bundle"),
        dir.join("keys"),
    );
    let want = CacheMeta {
        version: GEN_VERSION,
        subjects: n,
        faces: photos
            .enrolled
            .iter()
            .map(|p| (p.name.clone(), p.embedding.encode()))
            .collect(),
    };
    let have: Option<CacheMeta> = std::fs::read(&meta_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let public = std::fs::read_to_string(keys.join(hotspot_central::bundles::PUBLIC_KEY_FILE));
    if have.as_ref() == Some(&want)
        && let (Ok(m), Ok(public)) = (std::fs::metadata(&bundle), public)
    {
        info!(subjects = n, file = %bundle.display(), "signed snapshot from the cache");
        return Ok(Prepared {
            bundle,
            bytes: m.len(),
            public_key: public.trim().to_owned(),
            generated: false,
        });
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = hotspot_central::bundles::init_keys(&keys)?;
    let t = Instant::now();
    info!(subjects = n, "generating subjects (10 fingers + face each)");
    let entries: Vec<WatchlistEntry> = (0..n)
        .into_par_iter()
        .map(generated_entry)
        .collect::<anyhow::Result<_>>()?;
    info!(
        subjects = n,
        took_s = t.elapsed().as_secs_f64(),
        "generated; signing"
    );
    let tmp = dir.join("snapshot.tmp");
    let bytes = write_snapshot(entries, photos, &key, &tmp)?;
    std::fs::rename(&tmp, &bundle)?;
    std::fs::write(&meta_path, serde_json::to_vec(&want)?)?;
    info!(
        subjects = n,
        mib = bytes as f64 / 1048576.0,
        took_s = t.elapsed().as_secs_f64(),
        "snapshot cached"
    );
    Ok(Prepared {
        bundle,
        bytes,
        public_key: key.public_key_text(),
        generated: true,
    })
}

/// The capture-id placeholder in a pool payload, replaced by a fresh id for every send.
const PLACEHOLDER: Uuid = Uuid::nil();

/// One capture of a pool: its JSON payload with a placeholder id, and what it should get.
#[derive(Debug, Clone)]
pub struct PoolCapture {
    /// The payload (station protocol v1 JSON).
    pub payload: Vec<u8>,
    /// Byte offset of the capture id's 36 characters in `payload`.
    id_at: usize,
    /// Of a watchlist subject (must hit): its subject id.
    pub subject: Option<String>,
}

impl PoolCapture {
    /// The payload with capture id `id`.
    pub fn with_id(&self, id: Uuid) -> Vec<u8> {
        let mut p = self.payload.clone();
        let mut buf = [0u8; 36];
        let text = id.hyphenated().encode_lower(&mut buf);
        p[self.id_at..self.id_at + 36].copy_from_slice(text.as_bytes());
        p
    }
}

/// Makes a pool capture from a capture whose id is the placeholder.
pub fn pool_capture(capture: &Capture, subject: Option<String>) -> anyhow::Result<PoolCapture> {
    if capture.capture_id != PLACEHOLDER {
        bail!("pool captures carry the placeholder id");
    }
    let payload = serde_json::to_vec(capture)?;
    let needle = format!("\"capture_id\":\"{PLACEHOLDER}\"");
    let at = payload
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .ok_or_else(|| anyhow!("capture id not found in the payload"))?;
    Ok(PoolCapture {
        payload,
        id_at: at + "\"capture_id\":\"".len(),
        subject,
    })
}

/// The pools of captures of every kind for a watchlist of `n` subjects.
pub fn pools(n: usize, photos: &Photos) -> anyhow::Result<BTreeMap<Kind, Vec<PoolCapture>>> {
    let hits = photos.enrolled.len();
    let mut out = BTreeMap::new();
    for (ki, kind) in Kind::ALL.into_iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(0x706f_6f6c_0000 + ki as u64);
        let mut pool = Vec::with_capacity(POOL_SIZE);
        for m in 0..POOL_SIZE {
            let (fingers, face, subject) = if m % HIT_EVERY == 0 {
                let j = (m / HIT_EVERY) % hits;
                let i = hit_subject(j, hits, n);
                let all = subject_fingers(i);
                let prints: Vec<(u8, SynthFinger)> = kind
                    .positions()
                    .into_iter()
                    .map(|p| (p, impression(&all[usize::from(p) - 1], &mut rng)))
                    .collect();
                (prints, &photos.enrolled[j], Some(subject_id(i)))
            } else {
                let prints = kind
                    .positions()
                    .into_iter()
                    .map(|p| (p, random_finger(&mut rng)))
                    .collect();
                (prints, &photos.strangers[m % photos.strangers.len()], None)
            };
            let capture = Capture {
                capture_id: PLACEHOLDER,
                captured_at: time::OffsetDateTime::now_utc(),
                operator: "officer-1".into(),
                purpose: Purpose::Screen,
                fingers: fingers
                    .iter()
                    .map(|(p, f)| {
                        Ok(Finger {
                            position: *p,
                            format: FingerFormat::Iso19794_2,
                            data: to_iso(f, *p)?,
                        })
                    })
                    .collect::<anyhow::Result<_>>()?,
                face: kind.face.then(|| Face {
                    format: FaceFormat::Jpeg,
                    data: face.bytes.clone(),
                }),
                enrolment: None,
            };
            pool.push(pool_capture(&capture, subject)?);
        }
        out.insert(kind, pool);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use hotspot_device_protocols::station::decode_capture;

    #[test]
    fn pool_payloads_take_a_fresh_id_and_stay_valid() {
        let capture = Capture {
            capture_id: PLACEHOLDER,
            captured_at: time::OffsetDateTime::now_utc(),
            operator: "officer-1".into(),
            purpose: Purpose::Screen,
            fingers: vec![Finger {
                position: 2,
                format: FingerFormat::Iso19794_2,
                data: to_iso(&subject_fingers(3)[1], 2).unwrap(),
            }],
            face: None,
            enrolment: None,
        };
        let pc = pool_capture(&capture, None).unwrap();
        let id = Uuid::new_v4();
        let decoded = decode_capture(&pc.with_id(id)).unwrap();
        assert_eq!(decoded.capture_id, id);
        assert_eq!(decoded.fingers, capture.fingers);
        let mut other = capture.clone();
        other.capture_id = Uuid::new_v4();
        assert!(pool_capture(&other, None).is_err());
    }

    #[test]
    fn subjects_are_reproducible_and_distinct() {
        let a = generated_entry(42).unwrap();
        assert_eq!(a, generated_entry(42).unwrap());
        assert_ne!(a.fingers, generated_entry(43).unwrap().fingers);
        assert_eq!(a.subject_id, "S0000042");
        assert_eq!(a.fingers.len(), 10);
        // The enrolled fingers are the ones a probe is made from.
        let f = subject_fingers(42);
        assert_eq!(a.fingers[6].1, enrolled_template(&f[6], 7).unwrap());
        assert!(a.face.is_some());
    }

    #[test]
    fn hit_subjects_spread_over_the_list() {
        let ids: Vec<usize> = (0..10).map(|j| hit_subject(j, 10, 1000)).collect();
        assert_eq!(ids[0], 50);
        assert_eq!(ids[9], 950);
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(hit_subject(3, 10, 5), 3);
        assert_eq!(Kind::ALL[3].name(), "10f+face");
        assert_eq!(Kind::ALL[0].positions(), vec![2, 7]);
    }
}
