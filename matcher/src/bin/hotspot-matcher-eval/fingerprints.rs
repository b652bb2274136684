//! `fingerprints` subcommand: the FVC protocol per database, plus an extended impostor set, with speed figures.
//!
//! Per database folder (`{finger}_{impression}.{tif,tiff,png,wsq}`, or the `.iso` beside them with `--templates`):
//! - genuine: every pair of impressions of one finger;
//! - impostor (FVC): the first impression of each finger against the first impression of every other finger;
//! - extended impostor: every pair of impressions of different fingers.
//!
//! `eer` is computed from genuine and FVC impostor scores, as in the FVC protocol; `eer_extended` and the
//! `fnmr_at_fmr_*` rates from genuine and extended impostor scores (the FVC set is too small for rates below 2%).
//! `extract_ms_*` time image-to-template extraction only (not file reading or image decoding);
//! `compare_per_s_per_core` is 1:N style: each template, prepared once as a probe (not timed: a search prepares its
//! probe once for the whole watchlist), compared with every template of the database, on one thread. Both are measured in CPU time of the measuring thread (so that other work on a
//! shared machine does not count); `compare_per_s_wall` is the same loop by the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use hotspot_device_protocols::image::{GrayImage, decode_gray, encode_png};
use hotspot_device_protocols::template::parse_iso19794_2;
use hotspot_matcher::extract::{extract, extract_with_diagnostics};
use hotspot_matcher::{Matcher, PreparedTemplate, Scratch, Template};

mod metrics;
use metrics::{Scores, percentile};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// FVC-style database folder (repeatable).
    #[arg(long = "db", required = true)]
    pub dbs: Vec<PathBuf>,
    /// Use the `.iso` templates beside the images instead of extracting from images.
    #[arg(long)]
    pub templates: bool,
    /// Threads for extraction (default: all cores). Comparison speed is always measured on one thread.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write each image's enhanced image, skeleton and minutiae as PNG into this folder (for inspection).
    #[arg(long)]
    pub dump: Option<PathBuf>,
    /// Passes of the 1:N speed loop; the fastest counts.
    #[arg(long, default_value_t = 3)]
    pub speed_passes: usize,
    /// Keep extracted templates (our codec) in this folder and reuse them on later runs instead of extracting
    /// again (for matcher experiments; extraction times are then not measured).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Also write every score as `db,kind,a,b,score` lines to this CSV file.
    #[arg(long)]
    pub scores: Option<PathBuf>,
}

/// One sample of a database.
struct Sample {
    finger: String,
    impression: u32,
    template: Template,
}

/// Everything measured on one database.
struct DbResult {
    name: String,
    scores: Scores,
    extract_ms: Vec<f64>,
    comparisons: usize,
    compare_seconds: f64,
    compare_wall_seconds: f64,
    minutiae: Vec<usize>,
}

/// Runs the evaluation.
pub fn run(args: Args) -> anyhow::Result<()> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    if let Some(dir) = &args.dump {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut csv = String::new();
    let mut results = Vec::new();
    for db in &args.dbs {
        let result = evaluate(db, &args, threads, &mut csv)?;
        print_line(
            &result.name,
            std::slice::from_ref(&result),
            threads,
            args.templates,
        );
        results.push(result);
    }
    if results.len() > 1 {
        print_line("pooled", &results, threads, args.templates);
    }
    if let Some(path) = &args.scores {
        std::fs::write(path, csv).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn evaluate(db: &Path, args: &Args, threads: usize, csv: &mut String) -> anyhow::Result<DbResult> {
    let name = db.file_name().map_or_else(
        || db.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let files = list(db, args.templates)?;
    if files.is_empty() {
        bail!("{}: no {{finger}}_{{impression}} files found", db.display());
    }
    let (samples, extract_ms) = load(&files, args, threads, &name)?;
    let prepared: Vec<PreparedTemplate> = samples
        .iter()
        .map(|s| PreparedTemplate::new(&s.template))
        .collect();
    let matchers: Vec<Matcher> = prepared
        .iter()
        .map(|p| Matcher::from_prepared(p.clone()))
        .collect();
    let mut scores = Scores::default();
    for i in 0..samples.len() {
        for j in i + 1..samples.len() {
            let (a, b) = (&samples[i], &samples[j]);
            let score = matchers[i].raw_score(&prepared[j]);
            let kind = if a.finger == b.finger {
                scores.genuine.push(score);
                "genuine"
            } else {
                scores.extended.push(score);
                if a.impression == first(&samples, &a.finger)
                    && b.impression == first(&samples, &b.finger)
                {
                    scores.impostor.push(score);
                    "impostor"
                } else {
                    "extended"
                }
            };
            csv.push_str(&format!(
                "{name},{kind},{}_{},{}_{},{score}\n",
                a.finger, a.impression, b.finger, b.impression
            ));
        }
    }
    // The fastest of a few passes: interference from other work only ever slows a pass down.
    let (mut compare_seconds, mut compare_wall_seconds) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..args.speed_passes.max(1) {
        let (started, cpu) = (Instant::now(), cpu_seconds());
        let mut sink = 0.0f32;
        let mut scratch = Scratch::default();
        for m in &matchers {
            for g in &prepared {
                sink += m.raw_score_with(g, &mut scratch);
            }
        }
        std::hint::black_box(sink);
        compare_seconds = compare_seconds.min(cpu_seconds() - cpu);
        compare_wall_seconds = compare_wall_seconds.min(started.elapsed().as_secs_f64());
    }
    Ok(DbResult {
        name,
        scores,
        extract_ms,
        comparisons: samples.len() * prepared.len(),
        compare_seconds,
        compare_wall_seconds,
        minutiae: samples.iter().map(|s| s.template.minutiae.len()).collect(),
    })
}

/// CPU time consumed by the calling thread, in seconds.
fn cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// The lowest impression number of `finger`.
fn first(samples: &[Sample], finger: &str) -> u32 {
    samples
        .iter()
        .filter(|s| s.finger == finger)
        .map(|s| s.impression)
        .min()
        .unwrap_or(0)
}

/// `(finger, impression, path)` of the database's files, sorted.
fn list(db: &Path, templates: bool) -> anyhow::Result<Vec<(String, u32, PathBuf)>> {
    let mut by_key: BTreeMap<(String, u32), PathBuf> = BTreeMap::new();
    for entry in std::fs::read_dir(db).with_context(|| format!("reading {}", db.display()))? {
        let path = entry?.path();
        let (Some(stem), Some(ext)) = (path.file_stem(), path.extension()) else {
            continue;
        };
        let ext = ext.to_string_lossy().to_ascii_lowercase();
        let wanted = if templates {
            ext == "iso"
        } else {
            matches!(ext.as_str(), "tif" | "tiff" | "png" | "wsq")
        };
        let stem = stem.to_string_lossy();
        let Some((finger, impression)) = stem.rsplit_once('_') else {
            continue;
        };
        if let (true, Ok(impression)) = (wanted, impression.parse::<u32>()) {
            by_key.insert((finger.to_owned(), impression), path);
        }
    }
    Ok(by_key.into_iter().map(|((f, i), p)| (f, i, p)).collect())
}

/// Loads or extracts every template, on `threads` threads; returns extraction times (ms) for images.
fn load(
    files: &[(String, u32, PathBuf)],
    args: &Args,
    threads: usize,
    db_name: &str,
) -> anyhow::Result<(Vec<Sample>, Vec<f64>)> {
    let chunk = files.len().div_ceil(threads);
    let results: Vec<anyhow::Result<(Sample, Option<f64>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(finger, impression, path)| {
                            let (template, ms) = load_one(path, args, db_name)?;
                            Ok((
                                Sample {
                                    finger: finger.clone(),
                                    impression: *impression,
                                    template,
                                },
                                ms,
                            ))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("extraction thread panicked"))
            .collect()
    });
    let mut samples = Vec::with_capacity(results.len());
    let mut times = Vec::new();
    for r in results {
        let (s, ms) = r?;
        samples.push(s);
        times.extend(ms);
    }
    Ok((samples, times))
}

fn load_one(path: &Path, args: &Args, db_name: &str) -> anyhow::Result<(Template, Option<f64>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if args.templates {
        let record =
            parse_iso19794_2(&bytes).with_context(|| format!("parsing {}", path.display()))?;
        let view = record
            .views
            .first()
            .with_context(|| format!("{}: no finger view", path.display()))?;
        return Ok((
            Template::from_view(view, record.x_resolution_ppcm, record.y_resolution_ppcm),
            None,
        ));
    }
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let cached = args
        .cache
        .as_ref()
        .map(|dir| dir.join(format!("{db_name}_{stem}.hst")));
    if let Some(bytes) = cached.as_ref().and_then(|c| std::fs::read(c).ok()) {
        return Ok((Template::decode(&bytes)?, None));
    }
    let image = decode_gray(&bytes).with_context(|| format!("decoding {}", path.display()))?;
    let cpu = cpu_seconds();
    let template = extract(&image).with_context(|| format!("extracting {}", path.display()))?;
    let ms = (cpu_seconds() - cpu) * 1000.0;
    if let Some(c) = &cached {
        std::fs::create_dir_all(c.parent().unwrap_or(Path::new(".")))?;
        std::fs::write(c, template.encode())?;
    }
    if let Some(dir) = &args.dump {
        let (template, diagnostics) = extract_with_diagnostics(&image)?;
        let out = dir.join(format!("{db_name}_{stem}.png"));
        std::fs::write(&out, encode_png(&montage(&image, &template, &diagnostics))?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok((template, Some(ms)))
}

/// Original | enhanced | skeleton with minutiae (black squares with a direction tick), side by side.
fn montage(
    image: &GrayImage,
    template: &Template,
    d: &hotspot_matcher::extract::Diagnostics,
) -> GrayImage {
    let (w, h) = (d.width, d.height);
    let width = 3 * w;
    let mut pixels = vec![255u8; width * h];
    for y in 0..h {
        for x in 0..w {
            let sx = (x * image.width as usize / w).min(image.width as usize - 1);
            let sy = (y * image.height as usize / h).min(image.height as usize - 1);
            pixels[y * width + x] = image.pixels[sy * image.width as usize + sx];
            pixels[y * width + w + x] = d.enhanced[y * w + x];
            pixels[y * width + 2 * w + x] = d.skeleton[y * w + x]
                .max(200)
                .min(if d.skeleton[y * w + x] == 0 { 120 } else { 255 });
        }
    }
    let mut plot = |x: f32, y: f32, v: u8| {
        let (xi, yi) = (x.round() as isize, y.round() as isize);
        if xi >= 0 && yi >= 0 && (xi as usize) < w && (yi as usize) < h {
            pixels[yi as usize * width + 2 * w + xi as usize] = v;
        }
    };
    for m in &template.minutiae {
        let v = if m.kind == hotspot_matcher::MinutiaKind::Bifurcation {
            0
        } else {
            60
        };
        for dy in -2..=2 {
            for dx in -2..=2 {
                plot(m.x + dx as f32, m.y + dy as f32, v);
            }
        }
        for t in 0..12 {
            plot(
                m.x + t as f32 * m.angle.cos(),
                m.y - t as f32 * m.angle.sin(),
                0,
            );
        }
    }
    GrayImage {
        width: width as u32,
        height: h as u32,
        ppi: None,
        pixels,
    }
}

/// Prints one JSON line on stdout and a table row on stderr.
fn print_line(name: &str, results: &[DbResult], threads: usize, templates: bool) {
    let mut scores = Scores::default();
    let mut times = Vec::new();
    let mut minutiae = Vec::new();
    let (mut comparisons, mut seconds, mut wall) = (0usize, 0.0f64, 0.0f64);
    for r in results {
        scores.extend(&r.scores);
        times.extend(&r.extract_ms);
        minutiae.extend(&r.minutiae);
        comparisons += r.comparisons;
        seconds += r.compare_seconds;
        wall += r.compare_wall_seconds;
    }
    times.sort_by(f64::total_cmp);
    let rates = scores.rates();
    let (p50, p95) = (percentile(&times, 0.5), percentile(&times, 0.95));
    let mean_minutiae = minutiae.iter().sum::<usize>() as f64 / minutiae.len().max(1) as f64;
    let line = serde_json::json!({
        "db": name,
        "mode": if templates { "templates" } else { "images" },
        "genuine": scores.genuine.len(),
        "impostor": scores.impostor.len(),
        "impostor_extended": scores.extended.len(),
        "eer": rates.eer,
        "eer_extended": rates.eer_extended,
        "fnmr_at_fmr_1e-2": rates.fnmr_at_1e2,
        "fnmr_at_fmr_1e-3": rates.fnmr_at_1e3,
        "extract_ms_p50": p50,
        "extract_ms_p95": p95,
        "compare_per_s_per_core": (comparisons as f64 / seconds.max(1e-9)).round(),
        "compare_per_s_wall": (comparisons as f64 / wall.max(1e-9)).round(),
        "threads": threads,
        "minutiae_mean": (mean_minutiae * 10.0).round() / 10.0,
    });
    println!("{line}");
    eprintln!(
        "{name:>10}  EER {:6.2}%  EER-ext {:6.2}%  FNMR@1e-2 {:6.2}%  FNMR@1e-3 {:6.2}%  extract p50 {:6.1} ms p95 {:6.1} ms  {:>8.0} cmp/s/core  minutiae {:5.1}",
        100.0 * rates.eer,
        100.0 * rates.eer_extended,
        100.0 * rates.fnmr_at_1e2,
        100.0 * rates.fnmr_at_1e3,
        p50.unwrap_or(f64::NAN),
        p95.unwrap_or(f64::NAN),
        comparisons as f64 / seconds.max(1e-9),
        mean_minutiae
    );
}
