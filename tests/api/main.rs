//! One integration test binary: every test starts the real application on loopback port 0
//! against a fresh database (a temporary SQLite file, or a fresh PostgreSQL database when
//! `TEST_DATABASE_URL` is set) and speaks HTTP to it.
mod authorize;
mod cli;
mod clients;
mod config_docs;
mod deploy;
mod dev_ui;
mod edge_faults;
mod edge_input;
mod fleet;
mod flow;
mod harness;
mod import_hydra;
mod janitor;
mod json_bodies;
mod keys;
mod logout;
mod metrics;
mod process;
mod request_objects;
mod sec_assertion;
mod sec_consent;
mod sec_flood;
mod sec_logout;
mod sec_smaller;
mod sec_uris;
mod sector;
mod serving;
mod signing_algs;
mod system;
mod token_user;
mod tokens;
