//! Importing keys made elsewhere: one by ID (the command line and the API),
//! or many from a CSV / JSON lines file in one transaction.

use std::collections::BTreeMap;

use chrono::Utc;
use honeytrail_core::access::Permission;
use honeytrail_core::keyid::{self, AccountDecode};
use honeytrail_core::model::parse_label;
use honeytrail_core::model::PLACEMENT_FIELDS;
use honeytrail_core::{Labels, NewToken, Secret, Spot, Token, TokenKind};
use honeytrail_store::{ImportRow, NewHop};
use serde::{Deserialize, Serialize};

use super::placements::PlacementRequest;
use super::tokens::blank;
use crate::{Actor, OpError, OpResult, Ops};

/// A key made elsewhere, registered by ID, with what is known about it and,
/// optionally, where it already sits: the API's body, the web form, and what
/// `token import aws` sends.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    pub access_key_id: String,
    #[serde(default)]
    pub secret_access_key: Option<String>,
    #[serde(default)]
    pub iam_user_name: Option<String>,
    #[serde(default)]
    pub iam_user_arn: Option<String>,
    /// Default: decoded from the key ID when possible.
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default, deserialize_with = "crate::ops::input::labels")]
    pub labels: Labels,
    #[serde(default)]
    pub memo: String,
    /// Where the key was made ("canarytokens.org", "generated on web-1").
    #[serde(default)]
    pub source: Option<String>,
    /// Where it already sits (its `access_key_id` is ignored).
    #[serde(default)]
    pub placement: Option<PlacementRequest>,
}

/// What a bulk import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub imported: usize,
    /// Rows left out because their key was registered already.
    pub skipped_existing: usize,
    pub placements: usize,
}

/// How an import file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Jsonl,
}

/// The token's columns an import file may have; the placement's are
/// [`PLACEMENT_FIELDS`], the same names as everywhere else.
pub const TOKEN_COLUMNS: [&str; 8] =
    ["access_key_id", "secret_access_key", "user_name", "user_arn", "account_id", "source", "memo", "labels"];

/// Every column an import file may have.
pub fn columns() -> impl Iterator<Item = &'static str> {
    TOKEN_COLUMNS.into_iter().chain(PLACEMENT_FIELDS)
}

fn account_for(key: &str, given: Option<String>) -> Option<String> {
    given.or_else(|| match keyid::decode_account(key) {
        AccountDecode::Account(a) => Some(a),
        _ => None,
    })
}

/// The custody of an imported key: where it was made, and, when its secret
/// came along, how it reached honeytrail.
fn import_hops(actor: &Actor, source: Option<&str>, has_secret: bool, via: &str) -> Vec<NewHop> {
    let mut hops = Vec::new();
    let now = Utc::now();
    if let Some(source) = source.filter(|s| !s.is_empty()) {
        hops.push(NewHop { description: format!("generated at {source}"), actor: None, automatic: true, at: now });
    }
    if has_secret {
        hops.push(NewHop {
            description: format!("secret imported into honeytrail {via}"),
            actor: Some(actor.name.clone()),
            automatic: true,
            at: now,
        });
    }
    hops
}

impl Ops {
    /// Registers one key made elsewhere. `via` says how its secret (if any)
    /// arrived, for the custody hop: "from standard input", "through the API
    /// from 10.0.0.7".
    pub async fn import_token(&self, actor: &Actor, r: ImportRequest, via: &str) -> OpResult<Token> {
        actor.require(Permission::Respond)?;
        let key = keyid::parse(&r.access_key_id).map_err(|e| OpError::invalid(e.to_string()))?;
        let secret = r.secret_access_key.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(Secret::new);
        let placements = match &r.placement {
            Some(p) => vec![PlacementRequest { access_key_id: key.clone(), ..p.clone() }.to_spot(actor)?],
            None => Vec::new(),
        };
        let source = blank(&r.source);
        let hops = import_hops(actor, source.as_deref(), secret.is_some(), via);
        let new = NewToken {
            kind: Some(TokenKind::AwsImported),
            account_id: account_for(&key, blank(&r.account_id)),
            access_key_id: key.clone(),
            secret,
            iam_user_name: blank(&r.iam_user_name),
            iam_user_arn: blank(&r.iam_user_arn),
            source,
            memo: r.memo,
            labels: r.labels,
            ..NewToken::default()
        };
        let detail = (!placements.is_empty()).then_some("with a placement");
        let token = self.audited(actor, "token.import", &key, detail).insert_token(&new, &placements, &hops).await?;
        self.tokens_changed();
        Ok(token)
    }

    /// Imports every row of a CSV (with a header row) or JSON lines file in
    /// one transaction: any bad row stops the whole import, named by its line.
    pub async fn import_file(
        &self,
        actor: &Actor,
        name: &str,
        text: &str,
        format: FileFormat,
        skip_existing: bool,
    ) -> OpResult<ImportSummary> {
        actor.require(Permission::Respond)?;
        let records = match format {
            FileFormat::Csv => csv_records(text)?,
            FileFormat::Jsonl => jsonl_records(text)?,
        };
        let via = format!("from {name}");
        let mut rows = Vec::with_capacity(records.len());
        let mut errors = Vec::new();
        for (line, record) in records {
            match row_from_record(actor, record, &via) {
                Ok(row) => rows.push(row),
                Err(e) => errors.push(format!("line {line}: {}", e.message)),
            }
        }
        if !errors.is_empty() {
            let shown: Vec<&String> = errors.iter().take(10).collect();
            let more =
                if errors.len() > 10 { format!("\n  … and {} more", errors.len() - 10) } else { String::new() };
            return Err(OpError::invalid(format!(
                "{} of {} rows in {name} are not valid; nothing was imported:\n  {}{more}",
                errors.len(),
                errors.len() + rows.len(),
                shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n  ")
            )));
        }
        if rows.is_empty() {
            return Err(OpError::invalid(format!("{name} holds no rows to import")));
        }
        let detail = format!("{} row(s) from {name}", rows.len());
        let summary =
            self.audited(actor, "token.import", name, Some(&detail)).import_tokens(&rows, skip_existing).await?;
        self.tokens_changed();
        Ok(ImportSummary {
            imported: summary.imported,
            skipped_existing: summary.skipped_existing,
            placements: summary.placements,
        })
    }
}

type Record = BTreeMap<String, String>;

fn check_columns<'a>(names: impl Iterator<Item = &'a str>) -> OpResult<()> {
    for name in names {
        if !columns().any(|c| c == name) {
            let known: Vec<&str> = columns().collect();
            return Err(OpError::invalid(format!("unknown column {name:?}; known columns: {}", known.join(", "))));
        }
    }
    Ok(())
}

fn csv_records(text: &str) -> OpResult<Vec<(u64, Record)>> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers =
        reader.headers().map_err(|e| OpError::invalid(format!("cannot read the CSV header row: {e}")))?.clone();
    check_columns(headers.iter())?;
    if !headers.iter().any(|h| h == "access_key_id") {
        return Err(OpError::invalid("the CSV header has no access_key_id column"));
    }
    let mut out = Vec::new();
    for result in reader.records() {
        let record = result.map_err(|e| OpError::invalid(format!("malformed CSV: {e}")))?;
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

fn jsonl_records(text: &str) -> OpResult<Vec<(u64, Record)>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| OpError::invalid(format!("line {n}: not valid JSON: {e}")))?;
        let obj = value.as_object().ok_or_else(|| OpError::invalid(format!("line {n}: expected a JSON object")))?;
        check_columns(obj.keys().map(String::as_str)).map_err(|e| OpError::invalid(format!("line {n}: {e}")))?;
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

fn row_from_record(actor: &Actor, mut r: Record, via: &str) -> OpResult<ImportRow> {
    let raw_key = r.remove("access_key_id").ok_or_else(|| OpError::invalid("no access_key_id"))?;
    let key = keyid::parse(&raw_key).map_err(|e| OpError::invalid(e.to_string()))?;
    let labels: Labels = match r.remove("labels") {
        Some(raw) => raw.split(';').filter(|l| !l.trim().is_empty()).map(parse_label).collect::<Result<_, _>>()?,
        None => Labels::new(),
    };
    let secret = r.remove("secret_access_key").map(Secret::new);
    let source = r.remove("source");
    let hops = import_hops(actor, source.as_deref(), secret.is_some(), via);
    let mut placements = match (r.remove("host"), r.remove("path")) {
        (Some(host), Some(path)) => vec![Spot {
            host,
            path,
            owner: r.remove("owner"),
            asset: r.remove("asset"),
            serial: r.remove("serial"),
            format: r.remove("format"),
            placed_by: Some(r.remove("placed_by").unwrap_or_else(|| actor.name.clone())),
            notes: r.remove("notes"),
            labels: Labels::new(),
            instance_id: r.remove("instance_id"),
            iam_user: r.remove("iam_user"),
            aws_account: r.remove("aws_account"),
        }],
        (None, None) => Vec::new(),
        _ => return Err(OpError::invalid("a placement needs both host and path")),
    };
    for spot in &mut placements {
        spot.check_targets()?;
    }
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
