//! Portcullis: an OAuth 2.0 / OpenID Connect server, wire-compatible with ORY Hydra v1.9.2.
// One audited exception: lowering the secret-hashing threads' CPU priority (service/secrets.rs).
#![deny(unsafe_code)]

pub mod alloc;
pub mod app;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod http;
pub mod oauth2;
pub mod service;
pub mod store;
pub mod telemetry;
