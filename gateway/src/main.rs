//! `hotspot-gateway`: see `hotspot_gateway::cli`.

fn main() -> std::process::ExitCode {
    hotspot_gateway::cli::main()
}
