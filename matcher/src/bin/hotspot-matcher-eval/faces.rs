//! `faces` subcommand: face verification and identification accuracy, with speed figures.
//!
//! - `--pairs CSV`: labelled pairs (`file_x,file_y,decision` with `Yes`/`No`; header names case-insensitive; paths
//!   relative to the CSV). `Yes` pairs are genuine, `No` pairs impostor.
//! - `--identities DIR`: one folder per person; every same-person pair is genuine, every cross-person pair impostor;
//!   `rank1` is leave-one-out identification: each photo searched (through [`FaceIndex`]) against all the others.
//!
//! Each photo is analysed once by [`FaceEngine`] with its default options (the gateway's). A photo that gives no
//! embedding (no face, too small, too blurred, unreadable) counts in `failed_detections` with its reason, and its
//! pairs are left out of the rates (`pairs_skipped`). Scores are cosine similarities of the `f32` embeddings.
//! `decode_ms_p50`, `detect_ms_p50` and `embed_ms_p50` (alignment, blur check and SFace) are CPU time of the
//! measuring thread, median over photos, so that other work on a shared machine does not count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hotspot_matcher::face::decode::decode_photo;
use hotspot_matcher::face::{Embedding, FaceEngine, FaceError, FaceIndex, FaceOptions};

mod metrics;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// CSV of labelled pairs (`file_x,file_y,decision`).
    #[arg(
        long,
        conflicts_with = "identities",
        required_unless_present = "identities"
    )]
    pub pairs: Option<PathBuf>,
    /// Folder with one sub-folder per identity.
    #[arg(long)]
    pub identities: Option<PathBuf>,
    /// Folder with the two ONNX models (default: $HOTSPOT_MODELS_DIR, else `models/` of the repository).
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Detector canvas side (multiple of 32; default: the library's).
    #[arg(long)]
    pub detector_size: Option<usize>,
    /// Sample the aligned crop without anti-aliasing (as OpenCV's alignCrop does).
    #[arg(long)]
    pub no_antialias: bool,
    /// Also write `file,blur,eye_distance,detection_score,faces,v0..v127` per photo to this CSV file.
    #[arg(long)]
    pub embeddings: Option<PathBuf>,
}

/// What the pipeline made of one photo.
struct Photo {
    file: String,
    result: Result<hotspot_matcher::face::FaceAnalysis, FaceError>,
    decode_ms: f64,
    detect_ms: f64,
    embed_ms: f64,
}

/// Runs the evaluation.
pub fn run(args: Args) -> anyhow::Result<()> {
    let engine = load_engine(&args)?;
    let (set, files, pairs, identities) = if let Some(csv) = &args.pairs {
        let (files, pairs) = read_pairs(csv)?;
        (csv.clone(), files, pairs, None)
    } else if let Some(dir) = &args.identities {
        let (files, ids) = read_identities(dir)?;
        let pairs = identity_pairs(&ids);
        (dir.clone(), files, pairs, Some(ids))
    } else {
        bail!("give --pairs CSV or --identities DIR");
    };
    let photos: Vec<Photo> = files
        .iter()
        .map(|(name, path)| analyse(&engine, name, path))
        .collect();
    if let Some(out) = &args.embeddings {
        write_embeddings(out, &photos)?;
    }
    let embeddings: BTreeMap<&str, &Embedding> = photos
        .iter()
        .filter_map(|p| {
            p.result
                .as_ref()
                .ok()
                .map(|a| (p.file.as_str(), &a.embedding))
        })
        .collect();
    let (mut genuine, mut impostor, mut skipped) = (Vec::new(), Vec::new(), 0usize);
    for (a, b, same) in &pairs {
        match (embeddings.get(a.as_str()), embeddings.get(b.as_str())) {
            (Some(x), Some(y)) => {
                (if *same { &mut genuine } else { &mut impostor }).push(x.cosine(y))
            }
            _ => skipped += 1,
        }
    }
    let rank1 = identities.as_ref().and_then(|ids| rank1(ids, &embeddings));
    report(&set, &engine, &photos, &genuine, &impostor, skipped, rank1);
    Ok(())
}

fn load_engine(args: &Args) -> anyhow::Result<FaceEngine> {
    let dir = match &args.models {
        Some(d) => d.clone(),
        None => std::env::var_os("HOTSPOT_MODELS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")),
    };
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path)
            .with_context(|| format!("{} (run scripts/fetch-models.sh)", path.display()))
    };
    let det = read("face_detection_yunet_2023mar.onnx")?;
    let rec = read("face_recognition_sface_2021dec.onnx")?;
    let mut options = FaceOptions::default();
    if let Some(size) = args.detector_size {
        options.detector_size = size;
    }
    options.antialias = !args.no_antialias;
    Ok(FaceEngine::load_with(&det, &rec, options)?)
}

fn analyse(engine: &FaceEngine, name: &str, path: &Path) -> Photo {
    let mut photo = Photo {
        file: name.to_owned(),
        result: Err(FaceError::Image(String::new())),
        decode_ms: 0.0,
        detect_ms: 0.0,
        embed_ms: 0.0,
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            photo.result = Err(FaceError::Image(format!("{}: {e}", path.display())));
            return photo;
        }
    };
    let t = cpu_ms();
    let decoded = decode_photo(&bytes);
    photo.decode_ms = cpu_ms() - t;
    let image = match decoded {
        Ok(i) => i,
        Err(e) => {
            photo.result = Err(e);
            return photo;
        }
    };
    let t = cpu_ms();
    let faces = engine.detect(&image);
    photo.detect_ms = cpu_ms() - t;
    photo.result = faces.and_then(|faces| {
        let t = cpu_ms();
        let analysis = engine.analyze_faces(&image, faces);
        photo.embed_ms = cpu_ms() - t;
        analysis
    });
    photo
}

fn cpu_ms() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 * 1000.0 + t.tv_nsec as f64 / 1e6
}

/// Unique files (name as in the CSV, path) and `(file_x, file_y, same_person)` pairs.
type PairSet = (Vec<(String, PathBuf)>, Vec<(String, String, bool)>);

fn read_pairs(csv: &Path) -> anyhow::Result<PairSet> {
    let text = std::fs::read_to_string(csv).with_context(|| csv.display().to_string())?;
    let base = csv.parent().unwrap_or(Path::new("."));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(|h| h.trim().to_lowercase())
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{}: no `{name}` column", csv.display()))
    };
    let (cx, cy, cd) = (col("file_x")?, col("file_y")?, col("decision")?);
    let (mut files, mut pairs) = (BTreeSet::new(), Vec::new());
    for (n, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let cell = |i: usize| {
            cells
                .get(i)
                .copied()
                .with_context(|| format!("{} line {}: too few columns", csv.display(), n + 2))
        };
        let (x, y) = (cell(cx)?.to_owned(), cell(cy)?.to_owned());
        let same = match cell(cd)?.to_lowercase().as_str() {
            "yes" => true,
            "no" => false,
            other => bail!(
                "{} line {}: decision `{other}` is not Yes/No",
                csv.display(),
                n + 2
            ),
        };
        files.insert(x.clone());
        files.insert(y.clone());
        pairs.push((x, y, same));
    }
    Ok((
        files
            .into_iter()
            .map(|f| (f.clone(), base.join(&f)))
            .collect(),
        pairs,
    ))
}

/// Identity of each photo file name (`<identity>/<file>`).
type Identities = BTreeMap<String, String>;

fn read_identities(dir: &Path) -> anyhow::Result<(Vec<(String, PathBuf)>, Identities)> {
    let (mut files, mut ids) = (Vec::new(), BTreeMap::new());
    let mut people: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .collect();
    people.sort_by_key(|e| e.file_name());
    for person in people {
        let who = person.file_name().to_string_lossy().into_owned();
        let mut photos: Vec<_> = std::fs::read_dir(person.path())?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| is_photo(p))
            .collect();
        photos.sort();
        for path in photos {
            let name = format!(
                "{who}/{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            ids.insert(name.clone(), who.clone());
            files.push((name, path));
        }
    }
    if ids.values().collect::<BTreeSet<_>>().len() < 2 {
        bail!(
            "{}: needs at least two identity folders with photos",
            dir.display()
        );
    }
    Ok((files, ids))
}

fn is_photo(p: &Path) -> bool {
    let ext = p
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    matches!(ext.as_str(), "jpg" | "jpeg" | "png")
}

fn identity_pairs(ids: &Identities) -> Vec<(String, String, bool)> {
    let names: Vec<&String> = ids.keys().collect();
    let mut pairs = Vec::new();
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            pairs.push(((*a).clone(), (*b).clone(), ids[*a] == ids[*b]));
        }
    }
    pairs
}

/// Leave-one-out rank-1 rate over photos whose identity has another embedded photo.
fn rank1(ids: &Identities, embeddings: &BTreeMap<&str, &Embedding>) -> Option<f64> {
    let (mut tried, mut right) = (0usize, 0usize);
    for (probe, probe_emb) in embeddings {
        let who = &ids[*probe];
        let gallery: Vec<(String, Embedding)> = embeddings
            .iter()
            .filter(|(f, _)| *f != probe)
            .map(|(f, e)| (ids[*f].clone(), (*e).clone()))
            .collect();
        if !gallery.iter().any(|(id, _)| id == who) {
            continue;
        }
        let index = FaceIndex::build(gallery);
        tried += 1;
        if index
            .search(probe_emb, 1)
            .first()
            .is_some_and(|(id, _)| id == who)
        {
            right += 1;
        }
    }
    (tried > 0).then(|| right as f64 / tried as f64)
}

fn write_embeddings(out: &Path, photos: &[Photo]) -> anyhow::Result<()> {
    let mut text = String::from("file,blur,eye_distance,detection_score,faces");
    for i in 0..128 {
        text.push_str(&format!(",v{i}"));
    }
    text.push('\n');
    for p in photos {
        if let Ok(a) = &p.result {
            text.push_str(&format!(
                "{},{:.4},{:.1},{:.4},{}",
                p.file,
                a.blur,
                a.face.eye_distance(),
                a.detection_score,
                a.faces_found
            ));
            for v in a.embedding.as_slice() {
                text.push_str(&format!(",{v:.7}"));
            }
            text.push('\n');
        }
    }
    std::fs::write(out, text).with_context(|| out.display().to_string())
}

fn report(
    set: &Path,
    engine: &FaceEngine,
    photos: &[Photo],
    genuine: &[f32],
    impostor: &[f32],
    skipped: usize,
    rank1: Option<f64>,
) {
    let failures: Vec<serde_json::Value> = photos
        .iter()
        .filter_map(|p| {
            p.result
                .as_ref()
                .err()
                .map(|e| serde_json::json!({"file": p.file, "reason": e.to_string()}))
        })
        .collect();
    let median = |f: fn(&Photo) -> f64| {
        let mut v: Vec<f64> = photos.iter().map(f).filter(|&ms| ms > 0.0).collect();
        v.sort_by(f64::total_cmp);
        metrics::percentile(&v, 0.5)
    };
    let tar = metrics::tar_at_far(genuine, impostor, 1e-3);
    let line = serde_json::json!({
        "set": set.display().to_string(),
        "mode": if rank1.is_some() || set.is_dir() { "identities" } else { "pairs" },
        "photos": photos.len(),
        "genuine": genuine.len(),
        "impostor": impostor.len(),
        "pairs_skipped": skipped,
        "eer": metrics::eer(genuine, impostor),
        "tar_at_far_1e-3": tar.map(|t| t.0),
        "threshold_at_far_1e-3": tar.map(|t| t.1),
        "far_resolution": if impostor.is_empty() { None } else { Some(1.0 / impostor.len() as f64) },
        "rank1": rank1,
        "failed_detections": failures.len(),
        "failures": failures,
        "decode_ms_p50": median(|p| p.decode_ms),
        "detect_ms_p50": median(|p| p.detect_ms),
        "embed_ms_p50": median(|p| p.embed_ms),
        "detector_size": engine.options().detector_size,
        "antialias": engine.options().antialias,
    });
    println!("{line}");
    eprintln!(
        "{}: {} photos, {} genuine / {} impostor pairs ({} skipped)",
        set.display(),
        photos.len(),
        genuine.len(),
        impostor.len(),
        skipped
    );
    eprintln!(
        "  EER {:.2}%   TAR@FAR1e-3 {:.1}%   rank-1 {}",
        100.0 * line["eer"].as_f64().unwrap_or(f64::NAN),
        100.0 * line["tar_at_far_1e-3"].as_f64().unwrap_or(f64::NAN),
        rank1.map_or("-".into(), |r| format!("{:.1}%", 100.0 * r))
    );
    eprintln!(
        "  failed: {}   decode {:.1} ms   detect {:.1} ms   embed {:.1} ms (CPU, median)",
        line["failed_detections"],
        line["decode_ms_p50"].as_f64().unwrap_or(0.0),
        line["detect_ms_p50"].as_f64().unwrap_or(0.0),
        line["embed_ms_p50"].as_f64().unwrap_or(0.0)
    );
    for f in line["failures"].as_array().into_iter().flatten() {
        eprintln!(
            "  - {}: {}",
            f["file"].as_str().unwrap_or(""),
            f["reason"].as_str().unwrap_or("")
        );
    }
}
