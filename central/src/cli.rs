//! Command line of `hotspot-central` (documented in `docs/central-cli.md`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::serve::now_ms;
use crate::{bundles, contributions, fleet, gallery, pki, serve};

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
    /// Signing keys for watchlist and plugin bundles.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// WebAssembly plugins for gateways.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// What each gateway last reported.
    Fleet {
        #[command(subcommand)]
        command: FleetCommand,
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
        /// Signing key (file or keys folder): publish a new watchlist whenever the gallery changes.
        #[arg(long)]
        signing_key: Option<PathBuf>,
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
enum KeysCommand {
    /// Make a new Ed25519 signing key (`signing.key`, mode 0600) and its public key (`signing.pub`).
    Init {
        /// Folder for the key files.
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Sign a component as the next version of a plugin and publish it to every gateway.
    Publish {
        /// Data folder.
        #[arg(long)]
        data_dir: PathBuf,
        /// Signing key (file or keys folder).
        #[arg(long)]
        key: PathBuf,
        /// Plugin name.
        #[arg(long)]
        name: String,
        /// World: decoder, quality or policy.
        #[arg(long)]
        world: String,
        /// WIT package version the component was built against.
        #[arg(long, default_value = "1.0.0")]
        wit_version: String,
        /// The component (.wasm).
        #[arg(long)]
        wasm: PathBuf,
        /// Self-test input file (with --self-test-expected); repeatable.
        #[arg(long)]
        self_test_input: Vec<PathBuf>,
        /// Expected self-test output file, one per --self-test-input.
        #[arg(long)]
        self_test_expected: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum FleetCommand {
    /// One JSON object per gateway: versions, watchlist age, backlog, last contact, refusals.
    Status {
        /// Data folder.
        #[arg(long)]
        data_dir: PathBuf,
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
    /// Write an accepted contribution as an INT-I ATP (add to print collection) transaction, XML.
    Export {
        /// Data folder.
        #[arg(long)]
        data_dir: PathBuf,
        /// Contribution id.
        #[arg(long)]
        id: String,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Originating agency (1.008 ORI) as `ID:NAME:COUNTRY` (ISO 3166 alpha-3).
        #[arg(long, default_value = "HSE:Hotspot Edge central:XXX")]
        originator: String,
        /// Destination agency (1.007 DAI) as `ID:NAME:COUNTRY`.
        #[arg(long, default_value = "INT:INTERPOL:XPO")]
        destination: String,
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
    /// Sign the gallery's watchlist as a new version (snapshot + delta) for gateways, if it changed.
    Publish {
        /// Data folder.
        #[arg(long)]
        data_dir: PathBuf,
        /// Signing key (file or keys folder).
        #[arg(long)]
        key: PathBuf,
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
    // Colours only on a terminal: under systemd stderr is the journal, where escape codes would be kept as text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
            signing_key,
        } => {
            let faces = models
                .as_deref()
                .map(crate::models::load_face_engine)
                .transpose()?
                .map(std::sync::Arc::new);
            let signing_key = signing_key
                .as_deref()
                .map(bundles::load_signing_key)
                .transpose()?
                .map(std::sync::Arc::new);
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(serve::serve(
                serve::ServeOptions {
                    data_dir,
                    listen,
                    pki_dir: pki,
                    faces,
                    signing_key,
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
        Command::Watchlist {
            command: WatchlistCommand::Publish { data_dir, key },
        } => {
            let key = bundles::load_signing_key(&key)?;
            match bundles::publish_watchlist(&data_dir, &key, now_ms())? {
                Some(p) => println!(
                    "{}",
                    serde_json::json!({"published": p.version, "subjects": p.subjects,
                        "delta_ops": p.delta_ops, "key_id": hotspot_device_protocols::bundle::hex(&key.key_id())})
                ),
                None => println!(
                    "{}",
                    serde_json::json!({"published": null, "unchanged": bundles::latest_watchlist(&data_dir)})
                ),
            }
        }
        Command::Keys {
            command: KeysCommand::Init { dir },
        } => {
            let key = bundles::init_keys(&dir)?;
            println!(
                "{}",
                serde_json::json!({"public_key": key.public_key_text(),
                    "key_id": hotspot_device_protocols::bundle::hex(&key.key_id()),
                    "private_key_file": dir.join(bundles::PRIVATE_KEY_FILE)})
            );
        }
        Command::Plugin { command } => run_plugin(command)?,
        Command::Fleet {
            command: FleetCommand::Status { data_dir },
        } => {
            let latest = bundles::latest_watchlist(&data_dir);
            let plugins = bundles::latest_plugins(&data_dir);
            let now = now_ms();
            let contributions = contributions::stats(&contributions::list(&data_dir)?);
            for r in fleet::list(&data_dir) {
                let behind = r.watchlist_version < latest
                    || plugins.iter().any(|(n, v)| {
                        r.plugins
                            .iter()
                            .find(|p| &p.name == n)
                            .map_or(0, |p| p.version)
                            < *v
                    });
                let mut v = serde_json::to_value(&r)?;
                v["latest_watchlist_version"] = latest.into();
                v["behind"] = behind.into();
                v["last_contact_age_s"] = ((now - r.last_contact_ms).max(0) / 1000).into();
                v["contributions"] = contributions
                    .iter()
                    .filter(|((gw, _), _)| *gw == r.gateway)
                    .map(|((_, day), [received, pending, accepted, rejected])| {
                        serde_json::json!({"day": day, "received": received, "pending": pending,
                            "accepted": accepted, "rejected": rejected})
                    })
                    .collect::<Vec<_>>()
                    .into();
                println!("{}", serde_json::to_string(&v)?);
            }
        }
        Command::Contributions { command } => run_contributions(command)?,
        Command::Report { data_dir } => {
            let r = serve::report(&data_dir)?;
            println!("{}", serde_json::to_string(&r)?);
        }
    }
    Ok(())
}

fn run_plugin(command: PluginCommand) -> anyhow::Result<()> {
    let PluginCommand::Publish {
        data_dir,
        key,
        name,
        world,
        wit_version,
        wasm,
        self_test_input,
        self_test_expected,
    } = command;
    anyhow::ensure!(
        self_test_input.len() == self_test_expected.len(),
        "give one --self-test-expected per --self-test-input ({} and {})",
        self_test_input.len(),
        self_test_expected.len()
    );
    let key = bundles::load_signing_key(&key)?;
    let read = |p: &PathBuf| crate::fsutil::read(p, bundles::MAX_PLUGIN_BYTES);
    let mut self_test = Vec::new();
    for (i, e) in self_test_input.iter().zip(&self_test_expected) {
        self_test.push(hotspot_device_protocols::bundle::PluginSelfTest {
            input: read(i)?,
            expected: read(e)?,
        });
    }
    let spec = bundles::PluginSpec {
        name: name.clone(),
        world,
        wit_version,
        wasm: read(&wasm)?,
        self_test,
    };
    let version = bundles::publish_plugin(&data_dir, &key, spec, now_ms())?;
    println!(
        "{}",
        serde_json::json!({"plugin": name, "published": version})
    );
    Ok(())
}

/// `ID:NAME:COUNTRY` -> an INT-I agency.
fn agency(text: &str) -> anyhow::Result<hotspot_device_protocols::int_i::Agency> {
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(id), Some(name), Some(country)) if !id.is_empty() && country.len() == 3 => {
            Ok(hotspot_device_protocols::int_i::Agency {
                id: id.to_owned(),
                name: name.to_owned(),
                country: country.to_owned(),
            })
        }
        _ => anyhow::bail!("agency {text:?} is not ID:NAME:COUNTRY (country ISO 3166 alpha-3)"),
    }
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
        ContributionsCommand::Export {
            data_dir,
            id,
            out,
            originator,
            destination,
        } => {
            let c = contributions::load(&data_dir, &id)?;
            let xml = contributions::atp(
                &c,
                agency(&originator)?,
                agency(&destination)?,
                time::OffsetDateTime::now_utc(),
            )?;
            crate::fsutil::write_atomic(&out, xml.as_bytes())?;
            println!(
                "wrote {} (INT-I ATP, {} finger records)",
                out.display(),
                c.fingers.len()
            );
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
