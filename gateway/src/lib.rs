//! Hotspot Edge gateway: takes captures from stations over MQTT, answers them locally against the watchlist,
//! keeps them durably, and forwards them to central over QUIC, delivering central's answer when it comes.
//!
//! # Layout
//! - [`config`]: the TOML configuration and its validation (`check-config`).
//! - [`app`]: wiring and the run loop; [`audit`]: the hash-chained audit log.
//! - [`broker`]: the embedded rumqttd broker.
//! - [`mqtt`]: the gateway's MQTT session (persistent, manual acks, backoff, re-subscribe).
//! - [`pipeline`]: ingest -> store -> ack -> local match -> result -> outbox, and crash recovery;
//!   [`quality`]: the enrolment quality gate.
//! - [`store`]: sled trees, their layout and crash invariants; [`crypto`]: payload encryption at rest.
//! - [`watchlist`]: the installed index, built off to the side and swapped atomically.
//! - [`uplink`]: the QUIC session with central: two submission lanes, watchlist fetch, announcements, reconnect;
//!   [`link`]: the link monitor (UP / DEGRADED / DOWN with hysteresis).
//! - [`status`]: the retained gateway status topic; [`console`]: the web console (HTTPS, accounts, sessions,
//!   CSRF, live dashboard); [`metrics`]: Prometheus `/metrics` with `/healthz` and `/api/status` over plain HTTP.
//! - [`shared`]: counters and link states; [`backoff`]: exponential backoff with jitter.
//! - [`systemd`]: readiness and a watchdog fed only while healthy.
//! - [`demo`], [`station_sim`], [`synth`]: the one-command demo, a simulated station, synthetic templates.
//! - [`stations`]: station credentials (station CA, certificates, revocation list, `station` commands);
//!   [`station_listener`]: the embedded broker's TLS listener enforcing each station's topics.

pub mod app;
pub mod audit;
pub mod backoff;
pub mod broker;
pub mod cli;
pub mod config;
pub mod console;
pub mod crypto;
pub mod demo;
pub mod link;
pub mod memory;
pub mod metrics;
pub mod mqtt;
pub mod pipeline;
pub mod plugins;
pub mod quality;
pub mod shared;
pub mod station_listener;
pub mod station_sim;
pub mod stations;
pub mod status;
pub mod store;
pub mod synth;
pub mod systemd;
pub mod uplink;
pub mod watchlist;
