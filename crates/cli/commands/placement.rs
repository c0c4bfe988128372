//! `honeytrail placement …`: the lookup table from key to place.

use std::process::ExitCode;

use anyhow::Result;
use chrono::Utc;
use clap::{Args, Subcommand};
use honeytrail_core::describe::spot_phrase;
use honeytrail_store::PlacementFilter;

use super::{labels_text, parse_time, print_json, print_table, when, SpotArgs};
use crate::app::App;

#[derive(Subcommand, Debug)]
pub enum PlacementCommand {
    /// Record that a token was placed somewhere
    Add(AddArgs),
    /// List placements, optionally of one token or matching a host / owner
    List(ListArgs),
    /// Mark a placement removed (the bait was taken away); history is kept
    Remove(RemoveArgs),
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// Access key ID or token number (#N)
    token: String,
    /// Host name of the machine
    #[arg(long)]
    host: String,
    /// Path of the bait file on that host
    #[arg(long)]
    path: String,
    /// Bait format written there (aws-credentials, dotenv, …)
    #[arg(long)]
    format: Option<String>,
    /// Who placed it [default: the actor]
    #[arg(long)]
    placed_by: Option<String>,
    /// When it was placed, RFC 3339 [default: now]
    #[arg(long)]
    placed_at: Option<String>,
    #[command(flatten)]
    spot: SpotArgs,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only this token's placements
    token: Option<String>,
    /// Host contains (case-insensitive)
    #[arg(long)]
    host: Option<String>,
    /// Owner contains (case-insensitive)
    #[arg(long)]
    owner: Option<String>,
    /// Include removed placements
    #[arg(long)]
    all: bool,
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// CSV for spreadsheets
    #[arg(long)]
    csv: bool,
}

#[derive(Args, Debug)]
pub struct RemoveArgs {
    /// Placement number (from `placement list`)
    id: i64,
}

pub async fn run(app: &App, cmd: PlacementCommand) -> Result<ExitCode> {
    let store = app.store().await?;
    match cmd {
        PlacementCommand::Add(a) => {
            let token = store.find_token(&a.token).await?;
            if let Some(f) = &a.format {
                f.parse::<honeytrail_core::bait::Format>().map_err(anyhow::Error::msg)?;
            }
            let placed_by = a.placed_by.clone().unwrap_or_else(|| app.actor());
            let spot = a.spot.to_spot(a.host.clone(), a.path.clone(), a.format.clone(), placed_by)?;
            let at = a.placed_at.as_deref().map(parse_time).transpose()?.unwrap_or_else(Utc::now);
            let p = store.add_placement(token.id, &spot, at).await?;
            if a.json {
                return print_json(&p).map(|_| ExitCode::SUCCESS);
            }
            println!("placement #{} recorded: {} on {}", p.id, token.access_key_id, spot_phrase(&p.spot));
        }
        PlacementCommand::List(a) => {
            let token_id = match &a.token {
                Some(t) => Some(store.find_token(t).await?.id),
                None => None,
            };
            let filter =
                PlacementFilter { token_id, host: a.host.clone(), owner: a.owner.clone(), include_removed: a.all };
            let placements = store.placements(&filter).await?;
            return print_placements(&placements, &a);
        }
        PlacementCommand::Remove(a) => {
            let p = store.remove_placement(a.id, Utc::now()).await?;
            println!("placement #{} marked removed ({}); it stays in the history", p.id, spot_phrase(&p.spot));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_placements(placements: &[honeytrail_store::PlacedToken], a: &ListArgs) -> Result<ExitCode> {
    if a.json {
        return print_json(&placements).map(|_| ExitCode::SUCCESS);
    }
    if a.csv {
        write_csv(&placements, std::io::stdout())?;
        return Ok(ExitCode::SUCCESS);
    }
    if placements.is_empty() {
        eprintln!("no placements match");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = placements
        .iter()
        .map(|p| {
            let s = &p.placement.spot;
            vec![
                format!("#{}", p.placement.id),
                p.access_key_id.clone(),
                s.host.clone(),
                s.path.clone(),
                s.owner.clone().unwrap_or_else(|| "-".into()),
                [s.asset.clone(), s.serial.clone()].into_iter().flatten().collect::<Vec<_>>().join(" "),
                when(p.placement.placed_at),
                if p.placement.removed_at.is_some() { "removed".into() } else { "placed".into() },
            ]
        })
        .collect();
    print_table(&["ID", "ACCESS KEY", "HOST", "PATH", "OWNER", "ASSET", "PLACED", "STATE"], &rows);
    Ok(ExitCode::SUCCESS)
}

/// The placement commands against a running server.
pub async fn remote(r: &super::remote::Remote, cmd: PlacementCommand) -> Result<ExitCode> {
    use super::remote::q;
    match cmd {
        PlacementCommand::Add(a) => {
            if a.placed_by.is_some() || a.placed_at.is_some() {
                anyhow::bail!(
                    "--placed-by / --placed-at work against a local store only; the server records who and when"
                );
            }
            let body = serde_json::json!({
                "access_key_id": a.token, "host": a.host, "path": a.path, "owner": a.spot.owner, "asset": a.spot.asset,
                "serial": a.spot.serial, "format": a.format, "notes": a.spot.notes,
            });
            let p = r.post("/placements", &body).await?;
            if a.json {
                return print_json(&p).map(|_| ExitCode::SUCCESS);
            }
            println!("placement #{} recorded", p["id"]);
        }
        PlacementCommand::List(a) => {
            let mut path = format!("/placements?all={}", a.all);
            for (k, v) in [("token", &a.token), ("host", &a.host), ("owner", &a.owner)] {
                if let Some(v) = v {
                    path.push_str(&format!("&{k}={}", q(v)));
                }
            }
            let placements: Vec<honeytrail_store::PlacedToken> = serde_json::from_value(r.get(&path).await?)?;
            return print_placements(&placements, &a);
        }
        PlacementCommand::Remove(a) => {
            r.delete(&format!("/placements/{}", a.id)).await?;
            println!("placement #{} marked removed; it stays in the history", a.id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The placements inventory as CSV (the `--csv` export and the server's download).
pub fn write_csv(placements: &[honeytrail_store::PlacedToken], out: impl std::io::Write) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "placement",
        "access_key_id",
        "host",
        "path",
        "owner",
        "asset",
        "serial",
        "format",
        "placed_by",
        "placed_at",
        "removed_at",
        "notes",
        "labels",
    ])?;
    for p in placements {
        let s = &p.placement.spot;
        let opt = |o: &Option<String>| o.clone().unwrap_or_default();
        w.write_record([
            p.placement.id.to_string(),
            p.access_key_id.clone(),
            s.host.clone(),
            s.path.clone(),
            opt(&s.owner),
            opt(&s.asset),
            opt(&s.serial),
            opt(&s.format),
            opt(&s.placed_by),
            p.placement.placed_at.to_rfc3339(),
            p.placement.removed_at.map(|r| r.to_rfc3339()).unwrap_or_default(),
            opt(&s.notes),
            labels_text(&s.labels),
        ])?;
    }
    w.flush()?;
    Ok(())
}
