//! The command tree, mirroring Hydra's: `serve all|public|admin`, `migrate sql`, `version`.
use crate::app::{self, Flags, Listeners};
use crate::config::Config;
use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "portcullis",
    version,
    about = "OAuth 2.0 / OpenID Connect server, wire-compatible with ORY Hydra v1.9.2"
)]
struct Cli {
    /// Configuration file (YAML or JSON); environment variables override it.
    #[arg(short = 'c', long = "config", global = true)]
    config: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP listeners.
    Serve {
        #[command(subcommand)]
        which: ServeWhich,
    },
    /// Database migrations.
    Migrate {
        #[command(subcommand)]
        what: MigrateWhat,
    },
    /// Print the version.
    Version,
}

#[derive(Subcommand, Debug)]
enum ServeWhich {
    /// Public and admin listeners.
    All(ServeFlags),
    /// Only the public listener.
    Public(ServeFlags),
    /// Only the admin listener.
    Admin(ServeFlags),
}

#[derive(Args, Debug, Clone)]
struct ServeFlags {
    /// Development mode: plain HTTP, http issuer, and DSN=memory when DSN is unset.
    #[arg(long)]
    dev: bool,
    /// Allow plain HTTP (Hydra's flag).
    #[arg(long = "dangerous-force-http")]
    force_http: bool,
    /// Accepted for Hydra compatibility; nothing is sent anywhere.
    #[arg(long = "sqa-opt-out", hide = true)]
    sqa_opt_out: bool,
}

#[derive(Subcommand, Debug)]
enum MigrateWhat {
    /// Apply SQL migrations.
    Sql {
        /// Database URL (or use -e to read DSN from the environment).
        dsn: Option<String>,
        #[arg(short = 'e', long = "read-from-env")]
        read_from_env: bool,
        /// Do not ask for confirmation.
        #[arg(short = 'y', long = "yes")]
        yes: bool,
    },
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(cli));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Version => {
            println!("Version: {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Migrate {
            what:
                MigrateWhat::Sql {
                    dsn,
                    read_from_env,
                    yes: _,
                },
        } => {
            let mut cfg = Config::load(cli.config.as_deref()).map_err(|e| e.to_string())?;
            crate::telemetry::init_logging(&cfg.log.level, &cfg.log.format);
            if let Some(d) = dsn {
                cfg.dsn = d;
            } else if !read_from_env && cfg.dsn.is_empty() {
                return Err("pass a DSN or -e to read DSN from the environment".into());
            }
            let store = crate::store::Store::connect(&cfg.dsn)
                .await
                .map_err(|e| e.to_string())?;
            store.migrate().await.map_err(|e| e.to_string())?;
            store.close().await;
            println!("Successfully applied migrations.");
            Ok(())
        }
        Command::Serve { which } => {
            let (listeners, flags) = match which {
                ServeWhich::All(f) => (Listeners::All, f),
                ServeWhich::Public(f) => (Listeners::Public, f),
                ServeWhich::Admin(f) => (Listeners::Admin, f),
            };
            let mut cfg = Config::load(cli.config.as_deref()).map_err(|e| e.to_string())?;
            crate::telemetry::init_logging(&cfg.log.level, &cfg.log.format);
            if flags.dev && cfg.dsn.is_empty() {
                cfg.dsn = "memory".into();
            }
            if listeners != Listeners::All && cfg.dsn == "memory" {
                return Err("DSN=memory keeps data inside one process: use `serve all`, or a persistent DSN".into());
            }
            let flags = Flags {
                insecure_http: flags.dev || flags.force_http,
            };
            let state = app::build(cfg, flags).await.map_err(|e| e.to_string())?;
            let running = app::start(state, listeners, flags)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!("ready");
            app::shutdown_signal().await;
            tracing::info!("shutting down, finishing requests in flight");
            running.shutdown().await;
            Ok(())
        }
    }
}
