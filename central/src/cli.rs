//! Command line of `hotspot-central` (documented in `docs/central-cli.md`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{contributions, gallery, pki, serve};

/// Reference central endpoint and ops CLI for Hotspot Edge.
#[derive(Debug, Parser)]
#[command(name = "hotspot-central", version)]
pub struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Certificates for the uplink.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// The watchlist and gallery.
    Watchlist {
        #[command(subcommand)]
        command: WatchlistCommand,
    },
    /// Run the central endpoint.
    Serve {
        /// Data folder (gallery, state).
        #[arg(long)]
        data_dir: PathBuf,
        /// UDP address to listen on.
        #[arg(long, default_value = "0.0.0.0:4433")]
        listen: SocketAddr,
        /// PKI folder made by `pki init`.
        #[arg(long)]
        pki: PathBuf,
        /// Face models folder (scripts/fetch-models.sh); without it faces are not compared.
        #[arg(long)]
        models: Option<PathBuf>,
    },
    /// Enrolments delivered by gateways.
    Contributions {
        #[command(subcommand)]
        command: ContributionsCommand,
    },
    /// Print what a stopped central received, as JSON.
    Report {
        /// Data folder.
        #[arg(long)]
        data_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum PkiCommand {
    /// Make the CA and central's server certificate.
    Init {
        /// Folder for the PKI files.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Issue a client certificate for a gateway.
    IssueGateway {
        /// PKI folder.
        #[arg(long)]
        dir: PathBuf,
        /// Gateway name (its site id).
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum ContributionsCommand {
    /// List contributions (one JSON object per line).
    List {
        /// Data folder.
        #[arg(long)]
        data_dir: PathBuf,
        /// Only those with this status: pending, accepted, rejected.
        #[arg(long)]
        status: Option<String>,
    },
    /// Accept a pending contribution: the person becomes searchable at central.
    Accept {
        /// Data folder.
        #[arg(long)]
        data_dir: PathBuf,
        /// Contribution id.
        #[arg(long)]
        id: String,
    },
    /// Reject a pending contribution.
    Reject {
        /// Data folder.
        #[arg(long)]
        data_dir: PathBuf,
        /// Contribution id.
        #[arg(long)]
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Counts per gateway and day: received, pending, accepted, rejected (JSON lines).
    Stats {
        /// Data folder.
        #[arg(long)]
        data_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum WatchlistCommand {
    /// Import subjects from a JSON-lines manifest.
    Import {
        /// Data folder.
        #[arg(long)]
        data_dir: PathBuf,
        /// Manifest file.
        #[arg(long)]
        manifest: PathBuf,
        /// Face models folder (scripts/fetch-models.sh); needed when the manifest has faces.
        #[arg(long)]
        models: Option<PathBuf>,
    },
}

/// Installs the process-wide rustls crypto provider (ring). Safe to call more than once.
pub fn install_crypto_provider() {
    // Only one provider is linked; a second install attempt returns Err, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Sets up `tracing` to stderr; `RUST_LOG` filters (default `info`).
pub fn init_logging(json: bool) {
    init_logging_with(json, "info");
}

/// Sets up `tracing` to stderr; `RUST_LOG` filters (default `default_filter`).
pub fn init_logging_with(json: bool, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    install_crypto_provider();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hotspot-central: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Pki {
            command: PkiCommand::Init { dir },
        } => {
            pki::init(&dir)?;
            println!("PKI created in {}", dir.display());
        }
        Command::Pki {
            command: PkiCommand::IssueGateway { dir, name },
        } => {
            pki::issue_gateway(&dir, &name)?;
            println!("issued {}/{name}.pem and {name}.key", dir.display());
        }
        Command::Watchlist {
            command:
                WatchlistCommand::Import {
                    data_dir,
                    manifest,
                    models,
                },
        } => {
            let faces = models
                .as_deref()
                .map(crate::models::load_face_engine)
                .transpose()?;
            let (changed, version) = gallery::import(&data_dir, &manifest, faces.as_ref())?;
            println!("imported: {changed} subject(s) added or changed; gallery version {version}");
        }
        Command::Serve {
            data_dir,
            listen,
            pki,
            models,
        } => {
            let faces = models
                .as_deref()
                .map(crate::models::load_face_engine)
                .transpose()?
                .map(std::sync::Arc::new);
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(serve::serve(
                serve::ServeOptions {
                    data_dir,
                    listen,
                    pki_dir: pki,
                    faces,
                },
                shutdown_signal(),
                |addr| {
                    println!(
                        "{}",
                        serde_json::json!({"event": "ready", "listen": addr.to_string()})
                    )
                },
            ))?;
        }
        Command::Contributions { command } => run_contributions(command)?,
        Command::Report { data_dir } => {
            let r = serve::report(&data_dir)?;
            println!("{}", serde_json::to_string(&r)?);
        }
    }
    Ok(())
}

fn run_contributions(command: ContributionsCommand) -> anyhow::Result<()> {
    match command {
        ContributionsCommand::List { data_dir, status } => {
            for c in contributions::list(&data_dir)? {
                let v = serde_json::to_value(&c)?;
                if status.as_deref().is_none_or(|s| v["status"] == s) {
                    println!("{}", serde_json::to_string(&v)?);
                }
            }
        }
        ContributionsCommand::Accept { data_dir, id } => {
            let (subject, version) = contributions::accept(&data_dir, &id)?;
            println!("accepted {id} as subject {subject}; gallery version {version}");
        }
        ContributionsCommand::Reject {
            data_dir,
            id,
            reason,
        } => {
            contributions::reject(&data_dir, &id, &reason)?;
            println!("rejected {id}");
        }
        ContributionsCommand::Stats { data_dir } => {
            let all = contributions::list(&data_dir)?;
            for ((gateway, day), [received, pending, accepted, rejected]) in
                contributions::stats(&all)
            {
                println!(
                    "{}",
                    serde_json::json!({"gateway": gateway, "day": day, "received": received,
                        "pending": pending, "accepted": accepted, "rejected": rejected})
                );
            }
        }
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
