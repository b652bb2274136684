//! The embedded MQTT broker (rumqttd), for sites that do not run mosquitto.
//!
//! It runs on its own threads inside the gateway process and keeps its state in memory: a capture the broker has
//! acknowledged to a station but the gateway has not yet stored is lost if the whole process dies. Stations cover
//! that window by re-sending a capture that got no local result (see `docs/station-protocol.md`); sites that need
//! the broker itself to survive a gateway crash use an external mosquitto with persistence.
//!
//! With station authentication on, rumqttd listens on a loopback address only and requires a credential made at
//! each start; stations reach it through the TLS station listener, which checks their certificates and topics
//! (`crate::station_listener` explains why rumqttd's own TLS and tenants are not used).

use std::collections::HashMap;
use std::net::SocketAddr;

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use tracing::error;

use crate::mqtt::BrokerLogin;

/// Errors starting the embedded broker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The listen address is not usable.
    #[error("embedded broker cannot listen on {addr}: {source}")]
    Listen {
        /// Address.
        addr: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
    /// The broker thread could not be started.
    #[error("embedded broker thread: {0}")]
    Thread(std::io::Error),
}

fn config(listen: SocketAddr, max_payload_bytes: usize, login: Option<BrokerLogin>) -> Config {
    let server = ServerSettings {
        name: "v4-stations".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: max_payload_bytes + 4096,
            max_inflight_count: 100,
            auth: login.map(|l| HashMap::from([(l.username, l.password)])),
            external_auth: None,
            dynamic_filters: true,
        },
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_010,
            max_outgoing_packet_count: 200,
            max_segment_size: 104_857_600,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Config::default()
    }
}

/// Starts the broker on `listen` in the background. With `login`, rumqttd refuses every client that does not
/// present it (station authentication on: only the gateway and its station listener know it).
pub fn start(
    listen: SocketAddr,
    max_payload_bytes: usize,
    login: Option<BrokerLogin>,
) -> Result<(), BrokerError> {
    // rumqttd binds inside its own thread and only logs a failure there; check the address first so that a
    // busy port is a clear start-up error instead of a silent broker.
    std::net::TcpListener::bind(listen).map_err(|source| BrokerError::Listen {
        addr: listen,
        source,
    })?;
    let cfg = config(listen, max_payload_bytes, login);
    std::thread::Builder::new()
        .name("embedded-broker".into())
        .spawn(move || {
            let mut broker = Broker::new(cfg);
            if let Err(e) = broker.start() {
                error!(error = %e, "embedded broker stopped");
            }
        })
        .map_err(BrokerError::Thread)?;
    Ok(())
}
