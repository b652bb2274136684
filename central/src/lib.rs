//! Reference central endpoint for Hotspot Edge, and the ops CLI.
//!
//! Central is what gateways forward captures to: a QUIC server (mutual TLS with certificates from its own small PKI)
//! that answers every capture against the full gallery, idempotently on `capture_id`, and serves the watchlist
//! subset of that gallery to gateways.
//!
//! # Layout
//! - [`pki`]: CA, central server certificate, gateway client certificates (`pki init`, `pki issue-gateway`).
//! - [`bundles`]: signing keys, publishing signed watchlist and plugin bundles, choosing what a gateway needs.
//! - [`fleet`]: what each gateway last reported (`fleet status`).
//! - [`gallery`]: the gallery file and `watchlist import` from a JSON-lines manifest.
//! - [`contributions`]: enrolments delivered by gateways, pending review (`contributions list|accept|reject`).
//! - [`serve`]: the QUIC endpoint (`serve`) and the post-run `report`.
//! - [`frames`]: async framing of uplink messages on QUIC streams (also used by the gateway).
//! - [`cli`]: argument parsing and the binary's entry point.
//! - [`fsutil`]: bounded reads, atomic writes, private files.

pub mod bundles;
pub mod cli;
pub mod contributions;
pub mod fleet;
pub mod frames;
pub mod fsutil;
pub mod gallery;
pub mod models;
pub mod pki;
pub mod serve;
