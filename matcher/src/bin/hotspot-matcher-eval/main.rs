//! `hotspot-matcher-eval`: accuracy and speed of the matchers on labelled data (a public contract; see
//! `docs/matcher-eval.md`).
//!
//! - `hotspot-matcher-eval fingerprints --db DIR [--db DIR ...] [--templates]`: FVC protocol per database.
//! - `hotspot-matcher-eval faces --pairs CSV | --identities DIR`: face verification / identification.
//!
//! Each prints one JSON object per line on stdout and a human-readable table on stderr.

mod faces;
mod fingerprints;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "hotspot-matcher-eval", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// FVC-protocol evaluation of the fingerprint matcher.
    Fingerprints(fingerprints::Args),
    /// Evaluation of the face pipeline.
    Faces(faces::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Fingerprints(a) => fingerprints::run(a),
        Command::Faces(a) => faces::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hotspot-matcher-eval: {e:#}");
            ExitCode::FAILURE
        }
    }
}
