//! Domain types and their invariants; no I/O.
pub mod client;
pub mod flow;
pub mod jwk;
pub mod protocol;
pub mod token;
