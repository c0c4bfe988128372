//! One module per subcommand, plus what several of them share.

pub mod account;
pub mod action;
pub mod agents;
pub mod backup;
pub mod bench;
pub mod canary;
pub mod channel;
pub mod check;
pub mod ci;
pub mod cluster;
pub mod custody;
pub mod decoy;
pub mod deliver;
pub mod demo;
pub mod deploy;
pub mod enrich;
pub mod enrol;
pub mod evidence;
pub mod incident;
pub mod ingest;
pub mod init;
pub mod manual;
pub mod placement;
pub mod remote;
pub mod render;
pub mod routing;
pub mod safety_net;
pub mod user;

pub mod template;
pub mod token;
pub mod watch;

use anyhow::{anyhow, Result};
use chrono::{DateTime, Utc};
use clap::Args;
use honeytrail_core::Labels;
use serde::Serialize;
use std::process::ExitCode;

/// The fields that say where a token sits, shared by `placement add`,
/// `render --into` and `token import`.
#[derive(Args, Debug, Clone, Default)]
pub struct SpotArgs {
    /// Person the place belongs to ("Maria Lopez")
    #[arg(long)]
    pub owner: Option<String>,
    /// What the host is ("MacBook Pro", "bastion EC2 instance")
    #[arg(long)]
    pub asset: Option<String>,
    /// Asset tag or serial number
    #[arg(long)]
    pub serial: Option<String>,
    /// Free-form notes
    #[arg(long)]
    pub notes: Option<String>,
    /// Placement label name=value (repeatable)
    #[arg(long = "placement-label", value_name = "NAME=VALUE")]
    pub placement_labels: Vec<String>,
    /// The EC2 instance the key sits on (i-0abc…): what a quarantine action isolates
    #[arg(long, value_name = "ID")]
    pub instance_id: Option<String>,
    /// The owner's real IAM user: whose keys a response action deactivates
    #[arg(long, value_name = "NAME")]
    pub iam_user: Option<String>,
    /// The AWS account (12 digits) that owns the instance and the user
    #[arg(long, value_name = "ACCOUNT")]
    pub aws_account: Option<String>,
}

impl SpotArgs {
    /// These fields as a placement request (the token, host and path to be
    /// filled in by the caller).
    pub fn to_request(&self) -> Result<honeytrail_app::ops::PlacementRequest> {
        Ok(honeytrail_app::ops::PlacementRequest {
            owner: self.owner.clone(),
            asset: self.asset.clone(),
            serial: self.serial.clone(),
            notes: self.notes.clone(),
            labels: parse_labels(&self.placement_labels)?,
            instance_id: self.instance_id.clone(),
            iam_user: self.iam_user.clone(),
            aws_account: self.aws_account.clone(),
            ..Default::default()
        })
    }

    /// The placement request for these fields and the token, host, path and
    /// format the caller gives.
    pub fn placement(
        &self,
        token: &str,
        host: &str,
        path: &str,
        format: &Option<String>,
    ) -> Result<honeytrail_app::ops::PlacementRequest> {
        Ok(honeytrail_app::ops::PlacementRequest {
            access_key_id: token.to_string(),
            host: host.to_string(),
            path: path.to_string(),
            format: format.clone(),
            ..self.to_request()?
        })
    }
}

pub fn parse_labels(raw: &[String]) -> Result<Labels> {
    Ok(honeytrail_core::parse_labels(raw)?)
}

pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The `--json` of a command that changes a record: the record as it now
/// stands, as JSON on standard output, instead of the sentence for people.
#[derive(clap::Args, Debug, Default, Clone, Copy)]
pub struct JsonOut {
    /// Print the changed record as JSON instead of a sentence
    #[arg(long)]
    pub json: bool,
}

impl JsonOut {
    /// Prints `record` as JSON, or the sentence `say` makes of it.
    pub fn print<T: Serialize>(self, record: &T, say: impl FnOnce(&T) -> String) -> Result<ExitCode> {
        if self.json {
            print_json(record)?;
        } else {
            println!("{}", say(record));
        }
        Ok(ExitCode::SUCCESS)
    }
}

pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub fn parse_time(raw: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| anyhow!("time {raw:?} is not RFC 3339 like 2026-11-28T09:30:00Z: {e}"))
}

/// Prints rows as aligned columns.
/// Prints a table. Every cell is shown with its control characters escaped
/// (`printable`): cells hold what others wrote (user agents, audit details,
/// placement notes, sign-in names), which must not drive the terminal.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> =
        rows.iter().map(|r| r.iter().map(|c| honeytrail_core::encoding::printable(c).into_owned()).collect()).collect();
    let rows = &rows;
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

pub use honeytrail_core::model::labels_text;
