//! Command line of `hotspot-gateway`: `run`, `check-config`, `demo` (documented in the README and `docs/`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

/// Hotspot Edge gateway.
#[derive(Debug, Parser)]
#[command(name = "hotspot-gateway", version)]
pub struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        /// Configuration file (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate a configuration file and report every error, without starting anything.
    CheckConfig {
        /// Configuration file (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Station credentials: client certificates from the station CA, revocation, the broker's certificate.
    Station {
        #[command(subcommand)]
        command: crate::stations::StationCommand,
    },
    /// Console accounts (local admins and viewers).
    User {
        #[command(subcommand)]
        command: crate::console::users::UserCommand,
    },
    /// Run the whole product on this machine with simulated stations.
    Demo {
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        duration_s: Option<u64>,
        /// Number of simulated stations.
        #[arg(long, default_value_t = 3)]
        stations: usize,
        /// Milliseconds between captures.
        #[arg(long, default_value_t = 700)]
        interval_ms: u64,
        /// Face models folder (default: $HOTSPOT_MODELS_DIR, else ./models when it holds them).
        #[arg(long)]
        models: Option<PathBuf>,
        /// Face photos, one folder per person (default: ../shared/data/faces/faceapi-bbt when present).
        #[arg(long)]
        faces: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify every link of the hash chain; exit 1 at the first broken one.
    Verify {
        /// Configuration file (the log is `storage.dir/audit.log`).
        #[arg(long)]
        config: PathBuf,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let demo = matches!(cli.command, Command::Demo { .. });
    if demo && std::env::var_os("RUST_LOG").is_none() {
        // The demo prints results on stdout; keep the log to errors unless asked (RUST_LOG).
        hotspot_central::cli::init_logging_with(cli.log_json, "error,rumqttd=off");
    } else {
        hotspot_central::cli::init_logging_with(cli.log_json, "info,rumqttd=warn");
    }
    hotspot_central::cli::install_crypto_provider();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hotspot-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::CheckConfig { config } => match Config::load(&config) {
            Ok(cfg) => {
                for w in cfg.warnings() {
                    eprintln!("warning: {w}");
                }
                println!("{}: configuration is valid", config.display());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(2))
            }
        },
        Command::Run { config } => {
            let cfg = Config::load(&config)?;
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(crate::app::run(cfg, hotspot_central::cli::shutdown_signal(), |r| {
                println!(
                    "{}",
                    serde_json::json!({"event": "ready", "console": r.console.to_string(), "broker": r.broker,
                                       "metrics": r.metrics.map(|m| m.to_string())})
                );
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            duration_s,
            stations,
            interval_ms,
            models,
            faces,
        } => {
            let rt = tokio::runtime::Runtime::new()?;
            let models = models
                .or_else(|| std::env::var_os("HOTSPOT_MODELS_DIR").map(PathBuf::from))
                .or_else(|| Some(PathBuf::from("models")))
                .filter(|d| {
                    hotspot_central::models::FILES
                        .iter()
                        .all(|f| d.join(f).is_file())
                });
            let faces = faces
                .or_else(|| Some(PathBuf::from("../shared/data/faces/faceapi-bbt")))
                .filter(|d| d.is_dir());
            let opts = crate::demo::DemoOptions {
                duration_s,
                stations,
                interval_ms,
                faces: models.zip(faces),
            };
            rt.block_on(crate::demo::run(
                opts,
                hotspot_central::cli::shutdown_signal(),
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Station { command } => crate::stations::run_command(command),
        Command::User { command } => crate::console::users::run_cli(command),
        Command::Audit {
            command: AuditCommand::Verify { config },
        } => {
            let cfg = Config::load(&config)?;
            match crate::audit::verify(&cfg.audit_file()) {
                Ok(n) => {
                    println!("{}: {n} entries, chain intact", cfg.audit_file().display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}
