//! `portcullis migrate from-hydra <HYDRA_DSN>`: imports a Hydra v1.9.2 database into the
//! configured `DSN` (service/importer). Progress goes to stderr, the report to stdout.
use crate::service::importer::{self, Options};
use crate::store::hydra::redact;
use clap::Args;
use std::io::{BufRead, Write};

#[derive(Args, Debug)]
pub struct FromHydraArgs {
    /// Hydra's database (postgres://…); it is only read, so Hydra may keep serving.
    hydra_dsn: String,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long = "yes")]
    yes: bool,
    /// Read Hydra's database and report what would be imported; write nothing.
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Rows per page read from Hydra and per write batch.
    #[arg(long = "batch-size", default_value_t = 200)]
    batch_size: i64,
}

/// Runs the command; returns the exit code (0 done, 1 failed or declined).
pub async fn run(
    args: FromHydraArgs,
    config: Option<String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let (cfg, _log) = match super::configured(config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return 1;
        }
    };
    if !args.dry_run && !args.yes {
        let _ = write!(
            err,
            "Import clients, keys, remembered logins and consents, and live tokens from Hydra at {} into {}? [y/N] ",
            redact(&args.hydra_dsn),
            redact(&cfg.dsn)
        );
        let _ = err.flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            let _ = writeln!(
                err,
                "Aborted: nothing was imported (pass --yes to skip this question)."
            );
            return 1;
        }
    }
    let opts = Options {
        hydra_dsn: args.hydra_dsn,
        dry_run: args.dry_run,
        batch: args.batch_size,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match importer::run(&cfg, &opts, now, err).await {
        Ok(report) => {
            let _ = write!(out, "{report}");
            0
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            1
        }
    }
}
