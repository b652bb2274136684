//! Wire formats spoken at Hotspot Edge's edges. No I/O: every function takes bytes and returns typed values or a
//! typed error that names what is wrong and where.
//!
//! # Layout
//! - [`bundle`]: signed bundles (watchlist snapshots and deltas, plugins) and their verification.
//! - [`enrolment`]: the declarations carried by an enrolment capture (v1 extension).
//! - [`station`]: station protocol v1 (MQTT topics and the JSON capture / result / status messages).
//! - [`template`]: ISO/IEC 19794-2 (2005, 2011) and ANSI INCITS 378 (2004, 2009) minutiae records (read and write).
//! - [`uplink`]: gateway <-> central frames carried on QUIC streams (length-prefixed, versioned).
//! - [`ansi_nist`]: ANSI/NIST-ITL 1-2011 (Update 2015) traditional encoding, read and write.
//! - [`int_i`]: INTERPOL INT-I v6 XML search requests and responses.
//! - [`face`]: ISO/IEC 19794-5 face records.
//! - [`image`]: finger and face image decoding (WSQ via `wsq-codec`, PNG/TIFF/JPEG via `image`).
//!
//! Every decoder here is bounded: it refuses input larger than its documented limit before parsing.

pub mod ansi_nist;
pub mod bundle;
pub mod enrolment;
pub mod face;
pub mod image;
pub mod int_i;
pub mod station;
pub mod template;
pub mod uplink;
