//! Domain types and their invariants; no I/O.
pub mod client;
pub mod jwk;
