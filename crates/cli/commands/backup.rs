//! `honeytrail backup FILE` and `honeytrail restore FILE`: a consistent copy
//! of the SQLite database taken while the server runs, with the data key
//! beside it (FILE.key, mode 0600), and its way back into an empty data
//! directory. PostgreSQL is backed up with `pg_dump` and the key file
//! (docs/operations.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use honeytrail_app::App;

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The file to write (never overwritten); the data key goes to FILE.key, mode 0600
    file: PathBuf,
    #[command(flatten)]
    out: super::JsonOut,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// A file `honeytrail backup` wrote, with its FILE.key beside it
    file: PathBuf,
    #[command(flatten)]
    out: super::JsonOut,
}

pub async fn backup(app: &App, args: BackupArgs) -> Result<ExitCode> {
    let report = app.backup(&args.file).await?;
    args.out.print(&report, |r| {
        format!(
            "backed up schema version {} ({} token(s), {} incident(s)) to {}; the data key is in {}: keep the two apart from the bait and together with each other",
            r.schema_version,
            r.tokens,
            r.incidents,
            r.database.display(),
            r.key.display()
        )
    })
}

pub async fn restore(app: &App, args: RestoreArgs) -> Result<ExitCode> {
    let report = app.restore(&args.file).await?;
    args.out.print(&report, |r| {
        format!(
            "restored schema version {} ({} token(s), {} incident(s)) into {}; start `honeytrail serve`",
            r.schema_version,
            r.tokens,
            r.incidents,
            r.database.display()
        )
    })
}
