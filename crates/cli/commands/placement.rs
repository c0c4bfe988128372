//! `honeytrail placement …`: the lookup table from key to place.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use honeytrail_app::ops::placements::write_csv;
use honeytrail_app::ops::{PlacementQuery, PlacementRequest};
use honeytrail_core::describe::spot_phrase;

use super::{parse_time, print_json, print_table, when, SpotArgs};
use honeytrail_app::App;

#[derive(Subcommand, Debug)]
pub enum PlacementCommand {
    /// Record that a token was placed somewhere
    Add(Box<AddArgs>),
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
    /// Print JSON instead of text
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
    /// Print JSON instead of text
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
    #[command(flatten)]
    out: super::JsonOut,
}

pub async fn run(app: &App, cmd: PlacementCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    match cmd {
        PlacementCommand::Add(a) => {
            let request = PlacementRequest {
                access_key_id: a.token.clone(),
                host: a.host.clone(),
                path: a.path.clone(),
                format: a.format.clone(),
                placed_by: a.placed_by.clone(),
                placed_at: a.placed_at.as_deref().map(parse_time).transpose()?,
                ..a.spot.to_request()?
            };
            let p = ops.add_placement(&actor, &request).await?;
            if a.json {
                return print_json(&p).map(|_| ExitCode::SUCCESS);
            }
            let token = ops.find_token(&format!("#{}", p.token_id)).await?;
            println!("placement #{} recorded: {} on {}", p.id, token.access_key_id, spot_phrase(&p.spot));
        }
        PlacementCommand::List(a) => {
            let q = PlacementQuery {
                token: a.token.clone(),
                host: a.host.clone(),
                owner: a.owner.clone(),
                all: a.all,
                ..Default::default()
            };
            let placements = ops.search_placements(&actor, &q).await?;
            return print_placements(&placements, &a);
        }
        PlacementCommand::Remove(a) => {
            let p = ops.remove_placement(&actor, a.id).await?;
            return a.out.print(&p, |p| {
                format!("placement #{} marked removed ({}); it stays in the history", p.id, spot_phrase(&p.spot))
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_placements(placements: &[honeytrail_core::model::PlacedToken], a: &ListArgs) -> Result<ExitCode> {
    if a.json {
        return print_json(&placements).map(|_| ExitCode::SUCCESS);
    }
    if a.csv {
        write_csv(placements, std::io::stdout())?;
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
            let request = a.spot.placement(&a.token, &a.host, &a.path, &a.format)?;
            let p = r.post("/placements", &serde_json::to_value(request)?).await?;
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
            let placements: Vec<honeytrail_core::model::PlacedToken> =
                serde_json::from_value(serde_json::Value::Array(r.get_all(&path).await?))?;
            return print_placements(&placements, &a);
        }
        PlacementCommand::Remove(a) => {
            let p = r.delete(&format!("/placements/{}", a.id)).await?;
            return a.out.print(&p, |_| format!("placement #{} marked removed; it stays in the history", a.id));
        }
    }
    Ok(ExitCode::SUCCESS)
}
