//! `hotspot-bench`: what one gateway box sustains. Starts the release gateway (and a central for it to fetch the
//! watchlist from) with a generated watchlist, drives it through the real broker with N simulated stations (one
//! MQTT connection each, in this process), and measures capture-to-local-result latency, the captures/s sustained
//! before p99 passes 1 s, the gateway's memory and CPU, and the time and memory to load each watchlist size; with
//! two baselines measured in the same run: the bus floor (same broker, same payloads, an echo client instead of
//! the gateway) and the matcher alone (same watchlist, same captures, in one process). Method and results:
//! `docs/benchmark.md`.
//!
//! ```sh
//! cargo build --release -p hotspot-bench -p hotspot-gateway -p hotspot-central
//! target/release/hotspot-bench --list                      # the matrix
//! target/release/hotspot-bench --quick                     # 1k and 10k subjects (about 20 minutes)
//! target/release/hotspot-bench --scenarios target          # the issue's target scenario only
//! target/release/hotspot-bench                             # everything (1-2 hours; the 100k list needs ~6 GiB)
//! ```

mod matcher_alone;
mod procs;
mod report;
mod run;
mod scenario;
mod stations;
mod stats;
mod svg;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use clap::{Parser, Subcommand};

pub use run::now_ms;

/// Whole-gateway load and latency benchmark.
#[derive(Debug, Parser)]
#[command(name = "hotspot-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Internal>,
    /// The smaller matrix: 1k and 10k subjects, shorter runs.
    #[arg(long)]
    quick: bool,
    /// Scenarios to run: comma-separated globs over the names `--list` prints (`target` is the issue's target
    /// scenario), e.g. `target,w10k-*-burst`.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Print the scenarios that would run, and exit.
    #[arg(long)]
    list: bool,
    /// Run nothing: make the tables and the plot from these `results.jsonl` files of earlier runs (repeat; a
    /// watchlist load or scenario measured in several keeps the last file's), written as `--out-dir` says.
    #[arg(long, value_name = "RESULTS_JSONL")]
    merge: Vec<PathBuf>,
    /// Broker between stations and gateway.
    #[arg(long, value_enum, default_value_t = run::BrokerKind::Embedded)]
    broker: run::BrokerKind,
    /// Release gateway binary (default: next to this one, else $CARGO_TARGET_DIR/release).
    #[arg(long)]
    gateway_bin: Option<PathBuf>,
    /// Release central binary (default: as for the gateway).
    #[arg(long)]
    central_bin: Option<PathBuf>,
    /// Face models (default: $HOTSPOT_MODELS_DIR, else REPO/models).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Face photos (default: REPO/../shared/data/faces/deepface-pairs).
    #[arg(long)]
    faces: Option<PathBuf>,
    /// Cache of generated subjects (never inside the repository).
    #[arg(long, default_value = "/var/tmp/hotspot-bench-cache")]
    cache: PathBuf,
    /// Working folder for databases, bundles and logs (default: /var/tmp/hotspot-bench-work-PID; removed after
    /// each watchlist size unless --keep-work).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Keep the working folder (logs, databases).
    #[arg(long)]
    keep_work: bool,
    /// Folder for results.jsonl, table.md and latency.svg.
    #[arg(long, default_value = "hotspot-bench-out")]
    out_dir: PathBuf,
    /// JSON lines file (default: OUT_DIR/results.jsonl).
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Markdown tables file (default: OUT_DIR/table.md).
    #[arg(long)]
    table_out: Option<PathBuf>,
    /// SVG plot file (default: OUT_DIR/latency.svg).
    #[arg(long)]
    svg_out: Option<PathBuf>,
    /// Kill the gateway (and stop) if its resident size passes this, GiB.
    #[arg(long, default_value_t = 10.0)]
    max_rss_gib: f64,
    /// Captures of a sustained scenario (default 60, --quick 20).
    #[arg(long)]
    sustained_captures: Option<usize>,
    /// Captures of the target scenario (default 120, --quick 60).
    #[arg(long)]
    target_captures: Option<usize>,
    /// Seconds per ramp step (default 20, --quick 10).
    #[arg(long)]
    ramp_step_s: Option<f64>,
    /// Leave Nagle's algorithm on for the benchmark's own MQTT connections (stations, echo client). By default
    /// they set TCP_NODELAY, so that the echo client's PUBACK-then-PUBLISH does not stall on a delayed ACK and
    /// inflate the bus floor; rumqttc's default (and the gateway's own client's) is Nagle on.
    #[arg(long)]
    client_nagle: bool,
    /// With `--broker mosquitto`: `set_tcp_nodelay true` in its configuration (mosquitto's default, and the
    /// packaged configuration's, is off).
    #[arg(long)]
    mosquitto_nodelay: bool,
    /// Run even from a debug build (the matcher-alone baseline would be meaningless).
    #[arg(long)]
    allow_debug: bool,
}

#[derive(Debug, Subcommand)]
enum Internal {
    /// Internal: the matcher-alone baseline (run as a child process by the benchmark).
    #[command(hide = true)]
    MatcherAlone {
        /// Signed snapshot.
        #[arg(long)]
        bundle: PathBuf,
        /// Pool file.
        #[arg(long)]
        pool: PathBuf,
        /// Face models.
        #[arg(long)]
        models: PathBuf,
    },
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn release_bin(name: &str) -> PathBuf {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join(name)))
        .filter(|p| p.is_file());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    beside.unwrap_or_else(|| target.join("release").join(name))
}

fn main() -> ExitCode {
    // The binaries' logging: colours only on a terminal, so a log redirected to a file stays plain text.
    hotspot_central::cli::init_logging_with(false, "info");
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hotspot-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Internal::MatcherAlone {
        bundle,
        pool,
        models,
    }) = &cli.command
    {
        return matcher_alone::child_main(bundle, pool, models);
    }
    let quick = cli.quick;
    let opts = run::Options {
        quick,
        scenarios: cli.scenarios.clone(),
        broker: cli.broker,
        gateway_bin: cli
            .gateway_bin
            .clone()
            .unwrap_or_else(|| release_bin("hotspot-gateway")),
        central_bin: cli
            .central_bin
            .clone()
            .unwrap_or_else(|| release_bin("hotspot-central")),
        models: cli.models.clone().unwrap_or_else(|| {
            std::env::var_os("HOTSPOT_MODELS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo().join("models"))
        }),
        faces: cli
            .faces
            .clone()
            .unwrap_or_else(|| repo().join("../shared/data/faces/deepface-pairs")),
        cache: cli.cache.clone(),
        work: cli.work_dir.clone().unwrap_or_else(|| {
            PathBuf::from(format!(
                "/var/tmp/hotspot-bench-work-{}",
                std::process::id()
            ))
        }),
        keep_work: cli.keep_work,
        max_rss_mib: cli.max_rss_gib * 1024.0,
        sizes: scenario::MatrixSizes {
            sustained: cli
                .sustained_captures
                .unwrap_or(if quick { 20 } else { 60 }),
            target: cli.target_captures.unwrap_or(if quick { 60 } else { 120 }),
        },
        ramp_step_s: cli.ramp_step_s.unwrap_or(if quick { 10.0 } else { 20.0 }),
        ramp_min_captures: if quick { 10 } else { 20 },
        ramp_max_steps: if quick { 5 } else { 8 },
        floor_captures: if quick { 20 } else { 30 },
        client_nodelay: !cli.client_nagle,
        ideal_captures: if quick { 20 } else { 60 },
        overload_captures: if quick { 10 } else { 20 },
        mosquitto_nodelay: cli.mosquitto_nodelay,
    };
    if cli.list {
        for s in run::planned(&opts) {
            println!("{}", s.name());
        }
        return Ok(());
    }
    if cfg!(debug_assertions) && !cli.allow_debug && cli.merge.is_empty() {
        bail!(
            "this is a debug build: build it with --release (cargo build --release -p hotspot-bench), or pass \
             --allow-debug to try the harness"
        );
    }
    let outputs = report::Outputs {
        json: cli
            .json_out
            .clone()
            .unwrap_or_else(|| cli.out_dir.join("results.jsonl")),
        table: cli
            .table_out
            .clone()
            .unwrap_or_else(|| cli.out_dir.join("table.md")),
        svg: cli
            .svg_out
            .clone()
            .unwrap_or_else(|| cli.out_dir.join("latency.svg")),
    };
    let command: Vec<String> = std::env::args().collect();
    let mut report = report::Report::create(outputs, command.join(" "))?;
    if !cli.merge.is_empty() {
        report.merge(&cli.merge)?;
        report.write_outputs()?;
        print_report(&report);
        return Ok(());
    }
    let outcome = run::run(&opts, &mut report);
    if !opts.keep_work {
        let _ = std::fs::remove_dir_all(&opts.work);
    }
    print_report(&report);
    outcome
}

/// The tables, and where the files are.
fn print_report(report: &report::Report) {
    println!("{}", report.tables());
    let o = report.outputs();
    println!(
        "JSON lines: {}\nTables: {}\nPlot: {}",
        o.json.display(),
        o.table.display(),
        o.svg.display()
    );
}
