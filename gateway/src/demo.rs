//! `hotspot-gateway demo`: the whole product on one machine, with nothing set up beforehand.
//!
//! Makes a PKI and a synthetic gallery in a temporary folder, starts central on loopback, the gateway with its
//! embedded broker, and a few simulated stations that send captures: watchlist subjects (local hit), subjects only
//! central knows (local no hit, central hit), strangers (no hit) and, now and then, a malformed capture (rejected).
//! Prints each result as it arrives and a one-line summary at the end.
//!
//! With the face models (`scripts/fetch-models.sh`) and a folder of face photos (one sub-folder per person, e.g.
//! `../shared/data/faces/faceapi-bbt`), people are also enrolled by face (the first half on the watchlist) and
//! stations send face photos of them; without, the demo says so and runs with fingerprints only.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hotspot_central::{bundles, gallery, pki, serve};
use hotspot_device_protocols::station::{
    CaptureResult, Decision, Face, FaceFormat, Finger, FingerFormat, Purpose, Source,
};
use hotspot_matcher::face::FaceEngine;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use tokio::sync::oneshot;

use crate::config::Config;
use crate::station_sim::{SimStation, new_capture};
use crate::stations::{StationCa, station_client_config, write_station_files};
use crate::synth::{SynthFinger, impression, random_finger, to_iso};

/// Options of the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Stop after this many seconds (`None`: until Ctrl-C).
    pub duration_s: Option<u64>,
    /// Simulated stations.
    pub stations: usize,
    /// Seconds between captures (over all stations).
    pub interval_ms: u64,
    /// `(models folder, face photos folder)`: turns the face part on.
    pub faces: Option<(PathBuf, PathBuf)>,
}

/// What went wrong in the demo's set-up.
#[derive(Debug, thiserror::Error)]
#[error("demo: {0}")]
pub struct DemoError(String);

fn step<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> DemoError {
    move |e| DemoError(format!("{what}: {e}"))
}

/// Totals printed at the end.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Captures published.
    pub sent: u64,
    /// Local results received.
    pub local: u64,
    /// Central results received.
    pub central: u64,
    /// Local hits.
    pub local_hits: u64,
    /// Rejections.
    pub rejected: u64,
}

struct Gallery {
    watchlist: Vec<(String, SynthFinger)>,
    central_only: Vec<(String, SynthFinger)>,
    /// Photos to send as face captures: `(person, photo path)`, enrolled from another photo of theirs.
    face_probes: Vec<(String, PathBuf)>,
}

/// Up to 8 people of `photos` (sorted folders) with at least two photos each: `(name, photos sorted)`.
fn people(photos: &Path) -> Result<Vec<(String, Vec<PathBuf>)>, DemoError> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(photos)
        .map_err(step("face photos"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for d in dirs.into_iter().take(8) {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
            .map_err(step("face photos"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x.eq_ignore_ascii_case("png") || x.eq_ignore_ascii_case("jpg"))
            })
            .collect();
        files.sort();
        if files.len() >= 2 {
            let name = d
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push((name, files));
        }
    }
    Ok(out)
}

fn face_format(path: &Path) -> &'static str {
    if path
        .extension()
        .is_some_and(|x| x.eq_ignore_ascii_case("png"))
    {
        "png"
    } else {
        "jpeg"
    }
}

fn write_gallery(
    dir: &Path,
    rng: &mut StdRng,
    faces: Option<(&Path, &FaceEngine)>,
) -> Result<Gallery, DemoError> {
    let mut g = Gallery {
        watchlist: Vec::new(),
        central_only: Vec::new(),
        face_probes: Vec::new(),
    };
    let mut manifest = String::new();
    for i in 0..16 {
        let id = format!("S{i:03}");
        let finger = random_finger(rng);
        let file = format!("{id}-2.iso");
        std::fs::write(
            dir.join(&file),
            to_iso(&finger, 2).map_err(step("template"))?,
        )
        .map_err(step("write"))?;
        let on_watchlist = i < 10;
        let lists = if on_watchlist {
            r#"["watchlist","gallery"]"#
        } else {
            r#"["gallery"]"#
        };
        manifest.push_str(&format!(
            "{{\"subject_id\":\"{id}\",\"lists\":{lists},\"fingers\":[{{\"position\":2,\"format\":\"iso19794-2\",\"path\":\"{file}\"}}]}}\n"
        ));
        if on_watchlist {
            g.watchlist.push((id, finger));
        } else {
            g.central_only.push((id, finger));
        }
    }
    if let Some((photos, _)) = faces {
        let people = people(photos)?;
        let half = people.len() / 2;
        for (i, (name, files)) in people.into_iter().enumerate() {
            let lists = if i < half {
                r#"["watchlist","gallery"]"#
            } else {
                r#"["gallery"]"#
            };
            let enrol = &files[0];
            manifest.push_str(&format!(
                "{{\"subject_id\":\"F-{name}\",\"lists\":{lists},\"face\":{{\"format\":\"{}\",\"path\":{}}}}}\n",
                face_format(enrol),
                serde_json::Value::from(enrol.display().to_string())
            ));
            g.face_probes.push((name, files[files.len() - 1].clone()));
        }
        println!(
            "faces: {} people enrolled by face ({} on the watchlist) from {}",
            g.face_probes.len(),
            half,
            photos.display()
        );
    }
    let path = dir.join("manifest.jsonl");
    std::fs::write(&path, manifest).map_err(step("manifest"))?;
    gallery::import(&dir.join("central"), &path, faces.map(|(_, e)| e)).map_err(step("import"))?;
    Ok(g)
}

fn free_port() -> Result<u16, DemoError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(step("free port"))?;
    Ok(l.local_addr().map_err(step("free port"))?.port())
}

fn gateway_config(
    dir: &Path,
    central: SocketAddr,
    broker_port: u16,
    internal_port: u16,
    models: Option<&Path>,
    trusted_key: &str,
) -> Result<Config, DemoError> {
    let pki = dir.join("pki");
    let face = models.map_or(String::new(), |m| {
        format!(
            "[face]\nmodels_dir = {}\n",
            serde_json::Value::from(m.display().to_string())
        )
    });
    let text = format!(
        r#"
[site]
id = "demo-post"
[broker]
mode = "embedded"
listen = "127.0.0.1:{internal_port}"
tls_listen = "127.0.0.1:{broker_port}"
[uplink]
central = "{central}"
ca = "{ca}"
cert = "{cert}"
key = "{key}"
retry_initial_ms = 200
retry_max_ms = 2000
[storage]
dir = "{state}"
[console]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
[watchlist]
trusted_keys = ["{trusted}"]
{face}"#,
        ca = pki.join("ca.pem").display(),
        cert = pki.join("demo-post.pem").display(),
        key = pki.join("demo-post.key").display(),
        state = dir.join("gateway").display(),
        trusted = trusted_key,
    );
    Config::parse(&text).map_err(|e| DemoError(format!("config: {}", e.join("; "))))
}

fn describe(station: &str, r: &CaptureResult) -> String {
    let top = r
        .candidates
        .first()
        .map(|c| format!(" subject={} score={:.1}", c.subject_id, c.score))
        .unwrap_or_default();
    let reason = r
        .reason
        .as_deref()
        .map(|x| format!(" ({x})"))
        .unwrap_or_default();
    let id = r
        .capture_id
        .map(|u| u.to_string()[..8].to_owned())
        .unwrap_or_else(|| "--------".into());
    let name = |v: serde_json::Result<serde_json::Value>| {
        v.ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    format!(
        "[{station}] {:<7} {:<12} capture={id}{top} latency={}ms{reason}",
        name(serde_json::to_value(r.source)),
        name(serde_json::to_value(r.decision)),
        r.latency_ms
    )
}

/// Runs the demo until `stop` resolves or the duration elapses.
pub async fn run(
    opts: DemoOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<Summary, DemoError> {
    let tmp = tempfile::tempdir().map_err(step("temporary folder"))?;
    let dir = tmp.path();
    let mut rng = StdRng::seed_from_u64(2026);
    pki::init(&dir.join("pki")).map_err(step("pki init"))?;
    pki::issue_gateway(&dir.join("pki"), "demo-post").map_err(step("pki issue-gateway"))?;
    let signing_key = bundles::init_keys(&dir.join("keys")).map_err(step("keys init"))?;
    let trusted_key = signing_key.public_key_text();
    let engine = match &opts.faces {
        Some((models, _)) => Some(Arc::new(
            hotspot_central::models::load_face_engine(models).map_err(step("face models"))?,
        )),
        None => {
            println!(
                "faces: off (needs the models, scripts/fetch-models.sh, and a photo folder: --models, --faces)"
            );
            None
        }
    };
    let photos = opts.faces.as_ref().map(|(_, p)| p.as_path());
    let gallery = write_gallery(dir, &mut rng, photos.zip(engine.as_deref()))?;

    let (central_stop, central_stop_rx) = oneshot::channel::<()>();
    let (central_ready, central_addr) = oneshot::channel();
    let central_opts = serve::ServeOptions {
        data_dir: dir.join("central"),
        listen: "127.0.0.1:0".parse().map_err(step("address"))?,
        pki_dir: dir.join("pki"),
        faces: engine.clone(),
        signing_key: Some(Arc::new(signing_key)),
    };
    let central = tokio::spawn(serve::serve(
        central_opts,
        async {
            let _ = central_stop_rx.await;
        },
        |a| {
            let _ = central_ready.send(a);
        },
    ));
    let central_addr = central_addr.await.map_err(step("central start"))?;

    let (broker_port, internal_port) = (free_port()?, free_port()?);
    let models = opts.faces.as_ref().map(|(m, _)| m.as_path());
    let cfg = gateway_config(
        dir,
        central_addr,
        broker_port,
        internal_port,
        models,
        &trusted_key,
    )?;
    // A console account for the demo, with a random password printed below.
    let console_password = crate::console::sessions::random_token()[..16].to_owned();
    std::fs::create_dir_all(&cfg.storage.dir).map_err(step("storage folder"))?;
    crate::console::users::add(
        &cfg.storage.dir.join(crate::console::users::USERS_FILE),
        "demo",
        crate::console::users::Role::Admin,
        &console_password,
    )
    .map_err(step("console account"))?;
    let (gw_stop, gw_stop_rx) = oneshot::channel::<()>();
    let (gw_ready, gw_ready_rx) = oneshot::channel();
    let gateway = tokio::spawn(crate::app::run(
        cfg,
        async {
            let _ = gw_stop_rx.await;
        },
        |r| {
            let _ = gw_ready.send(r);
        },
    ));
    let ready = gw_ready_rx.await.map_err(step("gateway start"))?;
    println!("central listening on {central_addr} (QUIC, mutual TLS)");
    println!(
        "console: https://{}/  (self-signed certificate; log in as demo / {console_password})",
        ready.console
    );
    if let Some(m) = ready.metrics {
        println!("metrics: http://{m}/metrics  (health: http://{m}/healthz)");
    }
    println!(
        "embedded MQTT broker: stations on 127.0.0.1:{broker_port} (TLS, a certificate per station from the \
         station CA)"
    );

    // Each station gets its certificate, as `hotspot-gateway station add` would issue it.
    let ca = StationCa::open_or_create(&StationCa::dir_for(&dir.join("gateway")))
        .map_err(step("station CA"))?;
    let creds = dir.join("stations");
    let mut stations = Vec::new();
    for i in 0..opts.stations.max(1) {
        let id = format!("desk-{}", i + 1);
        let issued = ca.issue(&id).map_err(step("station certificate"))?;
        write_station_files(&creds, &issued).map_err(step("station certificate"))?;
        let tls = station_client_config(&creds, &id).map_err(step("station certificate"))?;
        let mut s = SimStation::connect_with("127.0.0.1", broker_port, &id, Some(tls));
        s.ready(Duration::from_secs(10))
            .await
            .map_err(step("station"))?;
        stations.push(s);
    }
    // Let the gateway fetch its watchlist before the first capture.
    tokio::time::sleep(Duration::from_millis(800)).await;

    let summary = drive(&mut stations, &gallery, &mut rng, &opts, stop).await;
    println!(
        "summary: captures sent {}, local results {} ({} hits), central results {}, rejected {}",
        summary.sent, summary.local, summary.local_hits, summary.central, summary.rejected
    );
    drop(stations);
    let _ = gw_stop.send(());
    let _ = gateway.await;
    let _ = central_stop.send(());
    let _ = central.await;
    Ok(summary)
}

fn finger_of(f: &SynthFinger, rng: &mut StdRng) -> Result<Finger, DemoError> {
    Ok(Finger {
        position: 2,
        format: FingerFormat::Iso19794_2,
        data: to_iso(&impression(f, rng), 2).map_err(step("template"))?,
    })
}

async fn drive(
    stations: &mut [SimStation],
    gallery: &Gallery,
    rng: &mut StdRng,
    opts: &DemoOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Summary {
    let mut summary = Summary::default();
    let deadline = opts
        .duration_s
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut tick = tokio::time::interval(Duration::from_millis(opts.interval_ms.max(100)));
    tokio::pin!(stop);
    let mut n: u64 = 0;
    loop {
        let past_deadline = deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
        if past_deadline {
            break;
        }
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => {
                let station = &stations[(n as usize) % stations.len()];
                if let Err(e) = send_one(station, gallery, rng, n).await {
                    println!("[{}] send failed: {e}", station.id);
                } else {
                    summary.sent += 1;
                }
                n += 1;
            }
        }
        collect(stations, &mut summary, Duration::from_millis(1)).await;
    }
    // Give outstanding central answers a moment.
    collect(stations, &mut summary, Duration::from_millis(1500)).await;
    summary
}

async fn send_one(
    station: &SimStation,
    g: &Gallery,
    rng: &mut StdRng,
    n: u64,
) -> Result<(), DemoError> {
    let pick =
        |list: &[(String, SynthFinger)], n: u64| list[(n as usize / 5) % list.len()].1.clone();
    let finger = match n % 6 {
        0 | 1 => finger_of(&pick(&g.watchlist, n + n % 6), rng)?,
        2 => finger_of(&pick(&g.central_only, n), rng)?,
        3 => finger_of(&random_finger(rng), rng)?,
        4 if !g.face_probes.is_empty() => {
            let (_, path) = &g.face_probes[(n as usize / 6) % g.face_probes.len()];
            let data = std::fs::read(path).map_err(step("face photo"))?;
            let mut c = new_capture(Vec::new(), Purpose::Screen);
            c.face = Some(Face {
                format: if face_format(path) == "png" {
                    FaceFormat::Png
                } else {
                    FaceFormat::Jpeg
                },
                data,
            });
            return station.send(&c).await.map_err(step("publish"));
        }
        4 => finger_of(&random_finger(rng), rng)?,
        _ => {
            return station
                .send_raw(br#"{"capture_id":"not-a-uuid","operator":"officer-1"}"#.to_vec())
                .await
                .map_err(step("publish"));
        }
    };
    station
        .send(&new_capture(vec![finger], Purpose::Screen))
        .await
        .map_err(step("publish"))
}

async fn collect(stations: &mut [SimStation], summary: &mut Summary, wait: Duration) {
    let until = tokio::time::Instant::now() + wait;
    for s in stations.iter_mut() {
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            let Some(r) = s.next_result(left.max(Duration::from_millis(1))).await else {
                break;
            };
            println!("{}", describe(&s.id, &r));
            match (r.source, r.decision) {
                (_, Decision::Rejected) => summary.rejected += 1,
                (Source::Local, Decision::Hit) => {
                    summary.local += 1;
                    summary.local_hits += 1;
                }
                (Source::Local, _) => summary.local += 1,
                (Source::Central, _) => summary.central += 1,
            }
        }
    }
}
