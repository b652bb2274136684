//! The gateway's real entry point, built inside the test package so the end-to-end tests can start it as a
//! process (`CARGO_BIN_EXE_e2e-gateway`) with nothing but `cargo test`.

fn main() -> std::process::ExitCode {
    hotspot_gateway::cli::main()
}
