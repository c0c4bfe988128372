//! `honeytrail token import aws`: one key by ID, or many from a CSV / JSON
//! lines file in one transaction.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use honeytrail_app::ops::ImportRequest;
use honeytrail_app::Ops;
use honeytrail_core::keyid;

use super::{read_secret_stdin, spot_args_present};
use crate::commands::{parse_labels, print_json, SpotArgs};
use honeytrail_app::App;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The access key ID (AKIA…)
    #[arg(long, required_unless_present = "from", conflicts_with = "from")]
    access_key_id: Option<String>,
    /// Read the secret access key from standard input (optional; needed to render bait)
    #[arg(long)]
    secret_stdin: bool,
    /// The IAM user behind the key, if known
    #[arg(long)]
    user_name: Option<String>,
    /// The IAM user's ARN, if known
    #[arg(long)]
    user_arn: Option<String>,
    /// The AWS account [default: decoded from the key ID when possible]
    #[arg(long)]
    account_id: Option<String>,
    /// Where the key was made ("canarytokens.org", "infra team", "generated on web-1")
    #[arg(long)]
    source: Option<String>,
    /// Token label name=value (repeatable)
    #[arg(long = "label", value_name = "NAME=VALUE")]
    labels: Vec<String>,
    /// A note kept with the token (where the key came from, why it is watched)
    #[arg(long, default_value = "")]
    memo: String,
    /// Where it is already placed: host
    #[arg(long, requires = "path")]
    host: Option<String>,
    /// Where it is already placed: file path
    #[arg(long, requires = "host")]
    path: Option<String>,
    /// The bait format at that placement
    #[arg(long)]
    format: Option<String>,
    #[command(flatten)]
    spot: SpotArgs,
    /// Import many keys from a CSV (with a header row) or JSON lines file
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// File format of --from [default: from the extension]
    #[arg(long, value_enum)]
    file_format: Option<FileFormat>,
    /// Skip keys that are already registered instead of refusing the import
    #[arg(long)]
    skip_existing: bool,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Jsonl,
}

/// One key imported through a running server (`--server`): the secret, if
/// any, is read from standard input and sent over the API; a placement given
/// with --host/--path is recorded after it.
pub async fn remote(r: &crate::commands::remote::Remote, args: ImportArgs) -> Result<ExitCode> {
    if args.from.is_some() || args.user_arn.is_some() || args.account_id.is_some() || args.skip_existing {
        bail!("with --server, import one key (--access-key-id, --secret-stdin, --user-name, --label, --memo, --source, --host/--path); --from, --user-arn, --account-id and --skip-existing work against a local store only");
    }
    let mut request = request(&args)?;
    request.access_key_id = keyid::parse(&request.access_key_id)?;
    let token = r.post("/tokens", &serde_json::to_value(&request)?).await?;
    if args.json {
        return print_json(&token).map(|_| ExitCode::SUCCESS);
    }
    println!(
        "imported {} as token #{}{}",
        request.access_key_id,
        token["id"],
        if token["has_secret"] == true { ", secret stored sealed on the server" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn run(app: &App, ops: &Ops, args: ImportArgs) -> Result<ExitCode> {
    match args.from.clone() {
        Some(path) => import_file(app, ops, &args, &path).await,
        None => import_one(app, ops, args).await,
    }
}

/// The one key the flags name, with its secret (from standard input) and
/// where it sits, as the import operation and the API take it.
fn request(args: &ImportArgs) -> Result<ImportRequest> {
    let placement = match (&args.host, &args.path) {
        (Some(host), Some(path)) => Some(args.spot.placement("", host, path, &args.format)?),
        _ if spot_args_present(&args.spot) => {
            bail!("placement details (--owner, --asset, …) need --host and --path")
        }
        _ => None,
    };
    let secret = if args.secret_stdin { Some(read_secret_stdin()?.expose().to_string()) } else { None };
    Ok(ImportRequest {
        access_key_id: args.access_key_id.clone().unwrap_or_default(),
        secret_access_key: secret,
        iam_user_name: args.user_name.clone(),
        iam_user_arn: args.user_arn.clone(),
        account_id: args.account_id.clone(),
        labels: parse_labels(&args.labels)?,
        memo: args.memo.clone(),
        source: args.source.clone(),
        placement,
    })
}

async fn import_one(app: &App, ops: &Ops, args: ImportArgs) -> Result<ExitCode> {
    let request = request(&args)?;
    let placed = request.placement.is_some();
    let token = ops.import_token(&app.acting(), request, "from standard input").await?;
    if args.json {
        return print_json(&token).map(|_| ExitCode::SUCCESS);
    }
    println!(
        "imported {} as token #{}{}{}",
        token.access_key_id,
        token.id,
        if token.has_secret { ", secret stored sealed" } else { ", no secret (bait cannot be rendered for it)" },
        if placed { ", 1 placement recorded" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

async fn import_file(app: &App, ops: &Ops, args: &ImportArgs, path: &Path) -> Result<ExitCode> {
    let format = match args.file_format {
        Some(FileFormat::Csv) => honeytrail_app::ops::FileFormat::Csv,
        Some(FileFormat::Jsonl) => honeytrail_app::ops::FileFormat::Jsonl,
        None => match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("csv") => honeytrail_app::ops::FileFormat::Csv,
            Some("jsonl" | "ndjson" | "json") => honeytrail_app::ops::FileFormat::Jsonl,
            _ => bail!("cannot tell the format of {} from its name; pass --file-format csv or jsonl", path.display()),
        },
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.display().to_string();
    let summary = ops.import_file(&app.acting(), &name, &text, format, args.skip_existing).await?;
    if args.json {
        return print_json(&summary).map(|_| ExitCode::SUCCESS);
    }
    println!(
        "imported {} token(s) with {} placement(s) from {}{}",
        summary.imported,
        summary.placements,
        path.display(),
        if summary.skipped_existing > 0 {
            format!("; skipped {} already registered", summary.skipped_existing)
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}
