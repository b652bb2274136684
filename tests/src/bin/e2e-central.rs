//! Central's real entry point, built inside the test package so the end-to-end tests can start it as a process.

fn main() -> std::process::ExitCode {
    hotspot_central::cli::main()
}
