//! The command tree, mirroring Hydra's: `serve all|public|admin`, `migrate sql`, `version`, and
//! the remote commands `clients`, `keys` and `token` that call a running server's APIs.
use crate::app::{self, Flags, Listeners};
use crate::config::Config;
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;

mod clients;
mod janitor;
mod keys;
mod migrate_hydra;
mod output;
mod remote;
mod self_signed;
mod token;
mod token_user;

#[derive(Parser, Debug)]
#[command(
    name = "portcullis",
    version,
    about = "OAuth 2.0 / OpenID Connect server, wire-compatible with ORY Hydra v1.9.2"
)]
struct Cli {
    /// Configuration file (YAML or JSON); environment variables override it.
    #[arg(short = 'c', long = "config")]
    config: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP listeners.
    Serve {
        /// Configuration file (YAML or JSON); environment variables override it.
        #[arg(short = 'c', long = "config", global = true)]
        config: Option<String>,
        #[command(subcommand)]
        which: ServeWhich,
    },
    /// Database migrations.
    Migrate {
        /// Configuration file (YAML or JSON); environment variables override it.
        #[arg(short = 'c', long = "config", global = true)]
        config: Option<String>,
        #[command(subcommand)]
        what: MigrateWhat,
    },
    /// Delete expired tokens and abandoned or finished login/consent and logout requests from
    /// the database, in bounded batches (Hydra >= 1.10's janitor).
    ///
    /// Pass the database URL, or -e to read DSN from the environment, or -c for a
    /// configuration file. Choose --tokens, --requests or both. Safe while servers run and
    /// while other janitors run. Needs migration 5 (`portcullis migrate sql`).
    Janitor(Box<janitor::JanitorArgs>),
    /// Print the version.
    Version,
    /// Manage OAuth 2.0 clients through a running server's admin API.
    Clients(Box<clients::ClientsArgs>),
    /// Manage JSON Web Key sets through a running server's admin API.
    Keys(keys::KeysArgs),
    /// Issue (client credentials, or `token user` through a browser), introspect, revoke,
    /// flush and delete OAuth 2.0 tokens.
    Token(token::TokenArgs),
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
    /// Development mode: plain HTTP, http issuer, DSN=memory when DSN is unset, and a demo
    /// login/consent/logout UI under /oauth2/fallbacks/ that logs anyone in. Never in production.
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
    /// Import a Hydra v1.9.2 database (clients, keys, consents, live tokens) into DSN.
    FromHydra(migrate_hydra::FromHydraArgs),
}

/// The binary's entry point: parses the process arguments and runs the command.
pub fn run() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let code = run_with_io(args, &mut out, &mut err);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Runs a command line (`args[0]` is the program name), writing its output to `out` and
/// diagnostics to stderr; returns the exit code.
pub fn run_with(args: Vec<String>, out: &mut impl Write) -> i32 {
    let mut err = std::io::stderr();
    run_with_io(args, out, &mut err)
}

/// Like [`run_with`], with diagnostics written to `err`. Starts its own Tokio runtime.
pub fn run_with_io(args: Vec<String>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let cli = match parse(args, out, err) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "cannot start the runtime: {e}");
            return 1;
        }
    };
    let code = runtime.block_on(execute_cli(cli, out, err));
    // Do not let a stuck blocking task hold the process after shutdown (issue 7, point 4).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

/// Async form of [`run_with_io`] for callers already inside a Tokio runtime (tests).
pub async fn execute(args: Vec<String>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match parse(args, out, err) {
        Ok(cli) => execute_cli(cli, out, err).await,
        Err(code) => code,
    }
}

/// Parses arguments; help and version go to `out` (exit 0), usage errors to `err` (exit 2).
fn parse(args: Vec<String>, out: &mut dyn Write, err: &mut dyn Write) -> Result<Cli, i32> {
    Cli::try_parse_from(args).map_err(|e| {
        let text = e.render().to_string();
        let _ = if e.use_stderr() {
            write!(err, "{text}")
        } else {
            write!(out, "{text}")
        };
        e.exit_code()
    })
}

async fn execute_cli(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let result = match cli.command {
        Command::Migrate {
            config,
            what: MigrateWhat::FromHydra(args),
        } => return migrate_hydra::run(args, config.or(cli.config), out, err).await,
        Command::Janitor(args) => return janitor::run(*args, cli.config, out, err).await,
        Command::Clients(args) => clients::run(*args, out).await,
        Command::Keys(args) => keys::run(args, out).await,
        Command::Token(args) => token::run(args, out, err).await,
        Command::Version => remote::line(out, &format!("Version: {}", env!("CARGO_PKG_VERSION"))),
        command => {
            return match dispatch(command, cli.config, out).await {
                Ok(()) => 0,
                Err(message) => {
                    tracing::error!("{message}");
                    let _ = writeln!(err, "error: {message}");
                    1
                }
            };
        }
    };
    match result {
        Ok(()) => 0,
        Err(remote::Fail(message)) => {
            let _ = writeln!(err, "{message}");
            1
        }
    }
}

/// Loads the configuration (file, then environment) and starts logging with its settings; the
/// guard keeps the log writer running for as long as the command holds it.
pub(crate) fn configured(
    file: Option<&str>,
) -> Result<(Config, crate::telemetry::LogGuard), crate::config::ConfigError> {
    let cfg = Config::load(file)?;
    let log = crate::telemetry::init_logging(cfg.log.level, cfg.log.format);
    Ok((cfg, log))
}

/// `serve` and `migrate`: the commands that run the server itself.
async fn dispatch(
    command: Command,
    root_config: Option<String>,
    out: &mut dyn Write,
) -> Result<(), String> {
    match command {
        Command::Migrate {
            config,
            what:
                MigrateWhat::Sql {
                    dsn,
                    read_from_env,
                    yes: _,
                },
        } => {
            let file = config.or(root_config);
            let (mut cfg, _log) = configured(file.as_deref()).map_err(|e| e.to_string())?;
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
            writeln!(out, "Successfully applied migrations.").map_err(|e| e.to_string())
        }
        Command::Serve { config, which } => {
            let (listeners, flags) = match which {
                ServeWhich::All(f) => (Listeners::All, f),
                ServeWhich::Public(f) => (Listeners::Public, f),
                ServeWhich::Admin(f) => (Listeners::Admin, f),
            };
            let file = config.or(root_config);
            let (mut cfg, _log) = configured(file.as_deref()).map_err(|e| e.to_string())?;
            if flags.dev && cfg.dsn.is_empty() {
                cfg.dsn = "memory".into();
            }
            if listeners != Listeners::All && cfg.dsn == "memory" {
                return Err("DSN=memory keeps data inside one process: use `serve all`, or a persistent DSN".into());
            }
            let flags = Flags {
                insecure_http: flags.dev || flags.force_http,
                dev: flags.dev,
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
        other => Err(format!("{other:?} is not a server command")),
    }
}

#[cfg(test)]
mod tests {
    use super::execute;

    /// `migrate sql` reports through the injected writer, not the process's stdout.
    #[tokio::test]
    async fn migrate_sql_writes_to_the_given_output() {
        let args = ["portcullis", "migrate", "sql", "memory", "--yes"];
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = execute(args.map(String::from).to_vec(), &mut out, &mut err).await;
        let (out, err) = (String::from_utf8_lossy(&out), String::from_utf8_lossy(&err));
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, "Successfully applied migrations.\n");
    }

    /// Tokens are base64url, so one in 64 starts with `-`: it is still the token, not a flag.
    #[test]
    fn a_token_starting_with_a_hyphen_is_a_token() {
        use clap::Parser;
        for line in [
            "portcullis token introspect --endpoint http://127.0.0.1:1 -x4b.sig",
            "portcullis token revoke -x4b.sig --endpoint http://127.0.0.1:1 --client-id c",
        ] {
            let cli = super::Cli::try_parse_from(line.split(' '));
            let parsed = format!("{:?}", cli.expect(line));
            assert!(parsed.contains("token: \"-x4b.sig\""), "{parsed}");
            assert!(parsed.contains("http://127.0.0.1:1"), "{parsed}");
        }
    }
}
