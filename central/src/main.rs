//! `hotspot-central`: see `hotspot_central::cli`.

fn main() -> std::process::ExitCode {
    hotspot_central::cli::main()
}
