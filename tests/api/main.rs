//! One integration test binary: every test starts the real application on loopback port 0
//! against a fresh database (a temporary SQLite file, or a fresh PostgreSQL database when
//! `TEST_DATABASE_URL` is set) and speaks HTTP to it.
mod authorize;
mod cli;
mod clients;
mod flow;
mod harness;
mod import_hydra;
mod keys;
mod logout;
mod serving;
mod system;
mod tokens;
