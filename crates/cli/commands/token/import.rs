//! `honeytrail token import aws`: one key by ID, or many from a CSV / JSON
//! lines file in one transaction.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use chrono::Utc;
use clap::{Args, ValueEnum};
use honeytrail_core::keyid::{self, AccountDecode};
use honeytrail_core::model::parse_label;
use honeytrail_core::{Labels, NewToken, Secret, Spot, TokenKind};
use honeytrail_store::{ImportRow, NewHop, Store};

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
    #[arg(long)]
    json: bool,
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Jsonl,
}

/// The columns an import file may have.
const COLUMNS: &[&str] = &[
    "access_key_id",
    "secret_access_key",
    "user_name",
    "user_arn",
    "account_id",
    "source",
    "memo",
    "labels",
    "host",
    "path",
    "owner",
    "asset",
    "serial",
    "format",
    "placed_by",
    "notes",
];

/// One key imported through a running server (`--server`): the secret, if
/// any, is read from standard input and sent over the API; a placement given
/// with --host/--path is recorded after it.
pub async fn remote(r: &crate::commands::remote::Remote, args: ImportArgs) -> Result<ExitCode> {
    if args.from.is_some() || args.user_arn.is_some() || args.account_id.is_some() || args.skip_existing {
        bail!("with --server, import one key (--access-key-id, --secret-stdin, --user-name, --label, --memo, --source, --host/--path); --from, --user-arn, --account-id and --skip-existing work against a local store only");
    }
    let key = keyid::parse(args.access_key_id.as_deref().unwrap_or_default())?;
    let secret = if args.secret_stdin { Some(read_secret_stdin()?.expose().to_string()) } else { None };
    let body = serde_json::json!({
        "access_key_id": key, "secret_access_key": secret, "iam_user_name": args.user_name,
        "labels": parse_labels(&args.labels)?, "memo": args.memo, "source": args.source,
    });
    let token = r.post("/tokens", &body).await?;
    if let (Some(host), Some(path)) = (&args.host, &args.path) {
        let placement = serde_json::json!({
            "access_key_id": key, "host": host, "path": path, "owner": args.spot.owner, "asset": args.spot.asset,
            "serial": args.spot.serial, "format": args.format, "notes": args.spot.notes,
        });
        r.post("/placements", &placement).await?;
    }
    if args.json {
        return print_json(&token).map(|_| ExitCode::SUCCESS);
    }
    println!(
        "imported {} as token #{}{}",
        key,
        token["id"],
        if token["has_secret"] == true { ", secret stored sealed on the server" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn run(app: &App, store: &Store, args: ImportArgs) -> Result<ExitCode> {
    match args.from.clone() {
        Some(path) => import_file(app, store, &args, &path).await,
        None => import_one(app, store, args).await,
    }
}

fn account_for(key: &str, given: Option<String>) -> Option<String> {
    given.or_else(|| match keyid::decode_account(key) {
        AccountDecode::Account(a) => Some(a),
        _ => None,
    })
}

fn import_hops(app: &App, source: Option<&str>, has_secret: bool, via: &str) -> Vec<NewHop> {
    let mut hops = Vec::new();
    let now = Utc::now();
    if let Some(source) = source.filter(|s| !s.is_empty()) {
        hops.push(NewHop { description: format!("generated at {source}"), actor: None, automatic: true, at: now });
    }
    if has_secret {
        hops.push(NewHop {
            description: format!("secret imported into honeytrail {via}"),
            actor: Some(app.actor()),
            automatic: true,
            at: now,
        });
    }
    hops
}

async fn import_one(app: &App, store: &Store, args: ImportArgs) -> Result<ExitCode> {
    let key = keyid::parse(args.access_key_id.as_deref().unwrap_or_default())?;
    let secret = if args.secret_stdin { Some(read_secret_stdin()?) } else { None };
    let placements = match (&args.host, &args.path) {
        (Some(host), Some(path)) => {
            vec![args.spot.to_spot(host.clone(), path.clone(), args.format.clone(), app.actor())?]
        }
        _ if spot_args_present(&args.spot) => {
            bail!("placement details (--owner, --asset, …) need --host and --path")
        }
        _ => Vec::new(),
    };
    let new = NewToken {
        kind: Some(TokenKind::AwsImported),
        account_id: account_for(&key, args.account_id.clone()),
        access_key_id: key,
        secret: secret.clone(),
        iam_user_name: args.user_name.clone(),
        iam_user_arn: args.user_arn.clone(),
        source: args.source.clone(),
        memo: args.memo.clone(),
        labels: parse_labels(&args.labels)?,
        ..NewToken::default()
    };
    let hops = import_hops(app, args.source.as_deref(), secret.is_some(), "from standard input");
    let token = store.insert_token(&new, &placements, &hops).await?;
    if args.json {
        return print_json(&token).map(|_| ExitCode::SUCCESS);
    }
    println!(
        "imported {} as token #{}{}{}",
        token.access_key_id,
        token.id,
        if token.has_secret { ", secret stored sealed" } else { ", no secret (bait cannot be rendered for it)" },
        if placements.is_empty() { String::new() } else { ", 1 placement recorded".into() }
    );
    Ok(ExitCode::SUCCESS)
}

async fn import_file(app: &App, store: &Store, args: &ImportArgs, path: &Path) -> Result<ExitCode> {
    let format = match args.file_format {
        Some(f) => f,
        None => match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("csv") => FileFormat::Csv,
            Some("jsonl" | "ndjson" | "json") => FileFormat::Jsonl,
            _ => bail!("cannot tell the format of {} from its name; pass --file-format csv or jsonl", path.display()),
        },
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let records = match format {
        FileFormat::Csv => csv_records(&text)?,
        FileFormat::Jsonl => jsonl_records(&text)?,
    };
    let via = format!("from {}", path.display());
    let mut rows = Vec::with_capacity(records.len());
    let mut errors = Vec::new();
    for (line, record) in records {
        match row_from_record(app, record, &via) {
            Ok(row) => rows.push(row),
            Err(e) => errors.push(format!("line {line}: {e:#}")),
        }
    }
    if !errors.is_empty() {
        let shown: Vec<&String> = errors.iter().take(10).collect();
        let more = if errors.len() > 10 { format!("\n  … and {} more", errors.len() - 10) } else { String::new() };
        bail!(
            "{} of {} rows in {} are not valid; nothing was imported:\n  {}{more}",
            errors.len(),
            errors.len() + rows.len(),
            path.display(),
            shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n  ")
        );
    }
    if rows.is_empty() {
        bail!("{} holds no rows to import", path.display());
    }
    let summary = store.import_tokens(&rows, args.skip_existing).await?;
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

type Record = BTreeMap<String, String>;

fn check_columns<'a>(names: impl Iterator<Item = &'a str>) -> Result<()> {
    for name in names {
        if !COLUMNS.contains(&name) {
            bail!("unknown column {name:?}; known columns: {}", COLUMNS.join(", "));
        }
    }
    Ok(())
}

fn csv_records(text: &str) -> Result<Vec<(u64, Record)>> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = reader.headers().context("cannot read the CSV header row")?.clone();
    check_columns(headers.iter())?;
    if !headers.iter().any(|h| h == "access_key_id") {
        bail!("the CSV header has no access_key_id column");
    }
    let mut out = Vec::new();
    for result in reader.records() {
        let record = result.context("malformed CSV")?;
        let line = record.position().map_or(0, |p| p.line());
        let map = headers
            .iter()
            .zip(record.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(h, v)| (h.to_string(), v.to_string()))
            .collect();
        out.push((line, map));
    }
    Ok(out)
}

fn jsonl_records(text: &str) -> Result<Vec<(u64, Record)>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("line {n}: not valid JSON"))?;
        let obj = value.as_object().ok_or_else(|| anyhow!("line {n}: expected a JSON object"))?;
        check_columns(obj.keys().map(String::as_str)).with_context(|| format!("line {n}"))?;
        let mut map = Record::new();
        for (k, v) in obj {
            let text = match v {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Object(labels) if k == "labels" => labels
                    .iter()
                    .map(|(lk, lv)| {
                        format!("{lk}={}", lv.as_str().map(str::to_string).unwrap_or_else(|| lv.to_string()))
                    })
                    .collect::<Vec<_>>()
                    .join(";"),
                other => other.to_string(),
            };
            if !text.is_empty() {
                map.insert(k.clone(), text);
            }
        }
        out.push((n, map));
    }
    Ok(out)
}

fn row_from_record(app: &App, mut r: Record, via: &str) -> Result<ImportRow> {
    let key = keyid::parse(&r.remove("access_key_id").ok_or_else(|| anyhow!("no access_key_id"))?)?;
    let labels: Labels = match r.remove("labels") {
        Some(raw) => raw
            .split(';')
            .filter(|l| !l.trim().is_empty())
            .map(|l| parse_label(l).map_err(|e| anyhow!(e)))
            .collect::<Result<_>>()?,
        None => Labels::new(),
    };
    let secret = r.remove("secret_access_key").map(Secret::new);
    let source = r.remove("source");
    let hops = import_hops(app, source.as_deref(), secret.is_some(), via);
    let placements = match (r.remove("host"), r.remove("path")) {
        (Some(host), Some(path)) => vec![Spot {
            host,
            path,
            owner: r.remove("owner"),
            asset: r.remove("asset"),
            serial: r.remove("serial"),
            format: r.remove("format"),
            placed_by: Some(r.remove("placed_by").unwrap_or_else(|| app.actor())),
            notes: r.remove("notes"),
            labels: Labels::new(),
        }],
        (None, None) => Vec::new(),
        _ => bail!("a placement needs both host and path"),
    };
    Ok(ImportRow {
        token: NewToken {
            kind: Some(TokenKind::AwsImported),
            account_id: account_for(&key, r.remove("account_id")),
            access_key_id: key,
            secret,
            iam_user_name: r.remove("user_name"),
            iam_user_arn: r.remove("user_arn"),
            source,
            memo: r.remove("memo").unwrap_or_default(),
            labels,
            ..NewToken::default()
        },
        placements,
        hops,
    })
}
