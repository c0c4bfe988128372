//! `honeytrail incident …`: the incident workflow.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use honeytrail_core::incident::{activity, IncidentState};
use honeytrail_store::{IncidentFilter, Store};
use serde_json::json;

use super::{print_json, print_table, when};
use crate::app::App;

#[derive(Subcommand, Debug)]
pub enum IncidentCommand {
    /// List incidents, newest activity first (unresolved ones unless --all or --state)
    List(ListArgs),
    /// Show one incident: the token, where it was placed, what was done from where
    Show(ShowArgs),
    /// Acknowledge: someone is on it
    Ack(ChangeArgs),
    /// Mark a false positive (say why; e.g. the owner confirmed it was them)
    FalsePositive(ChangeArgs),
    /// Confirm: this is an intrusion
    Confirm(ChangeArgs),
    /// Resolve: handled
    Resolve(ChangeArgs),
    /// Add a note
    Note(NoteArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(long)]
    state: Option<String>,
    #[arg(long)]
    all: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    id: i64,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ChangeArgs {
    id: i64,
    /// Why, for the record
    #[arg(long)]
    note: Option<String>,
}

#[derive(Args, Debug)]
pub struct NoteArgs {
    id: i64,
    text: String,
}

/// Everything about an incident as one JSON value: the record written for a
/// SIEM, and what `show --json` prints.
pub async fn incident_record(store: &Store, id: i64, kind: &str) -> Result<serde_json::Value> {
    let incident = store.incident(id).await?;
    let token = store.token(incident.token_id).await?;
    let described = store.describe_token(&token).await?;
    let seen_events = store.incident_events(id).await?;
    let mut timeline = Vec::new();
    for (e, seen) in &seen_events {
        let seen = Some(*seen);
        timeline.push(json!({
            "event_id": e.event_id,
            "event_time": e.event_time,
            "seen_at": seen,
            "detection_delay_seconds": seen.map(|s| (s - e.event_time).num_seconds()),
            "event_source": e.event_source,
            "event_name": e.event_name,
            "aws_region": e.aws_region,
            "source_ip": e.source_ip,
            "user_agent": e.user_agent,
            "error_code": e.error_code,
            "error_message": e.error_message,
            "source": e.source,
            "origin": e.origin,
        }));
    }
    let events: Vec<_> = seen_events.into_iter().map(|(e, _)| e).collect();
    let placements =
        store.placements(&honeytrail_store::PlacementFilter { token_id: Some(token.id), ..Default::default() }).await?;
    let runbook = runbook_for(store, &token, &incident, &described, &activity(&events), &placements).await?;
    let mut owners: Vec<&str> = placements
        .iter()
        .filter(|p| p.placement.removed_at.is_none())
        .filter_map(|p| p.placement.spot.owner.as_deref())
        .collect();
    owners.sort();
    owners.dedup();
    let mut incident_json = json!(incident);
    incident_json["severity"] =
        json!(honeytrail_core::incident::Severity::of(&token.labels, incident.state, incident.kind));
    Ok(json!({
        "type": kind,
        "incident": incident_json,
        "owners": owners,
        "token": {
            "id": token.id,
            "access_key_id": token.access_key_id,
            "kind": token.kind,
            "state": token.state,
            "iam_user_name": token.iam_user_name,
            "labels": token.labels,
            "memo": token.memo,
        },
        "placement": described.headline,
        "placements": described.placements,
        "may_have_leaked_at": described.custody,
        "activity": activity(&events),
        "events": timeline,
        "history": store.incident_log(id).await?,
        "runbook": runbook,
    }))
}

/// The runbook text for an incident: the stored runbook its token selects
/// (by label, then placement format, then default), else the shipped one.
async fn runbook_for(
    store: &Store,
    token: &honeytrail_core::Token,
    incident: &honeytrail_core::incident::Incident,
    described: &honeytrail_core::describe::Description,
    activity: &honeytrail_core::incident::Activity,
    placements: &[honeytrail_store::PlacedToken],
) -> Result<String> {
    use honeytrail_alert::runbook::{self, Runbook};
    let formats: Vec<String> = placements.iter().filter_map(|p| p.placement.spot.format.clone()).collect();
    let mut owners: Vec<String> = placements.iter().filter_map(|p| p.placement.spot.owner.clone()).collect();
    owners.dedup();
    let stored: Vec<Runbook> = store
        .runbooks()
        .await?
        .into_iter()
        .map(|r| Runbook { name: r.name, selector: r.selector, template: r.template })
        .collect();
    let labels: Vec<(String, String)> = token.labels.clone().into_iter().collect();
    let template =
        runbook::choose(&stored, &labels, &formats).map(|r| r.template.as_str()).unwrap_or(runbook::DEFAULT_TEMPLATE);
    let context = json!({
        "key": token.access_key_id,
        "incident": incident,
        "placement": described.headline,
        "placements": described.placements,
        "owners": owners,
        "custody": described.custody,
        "activity": activity,
        "retired": incident.token_retired,
    });
    Ok(runbook::render(template, &context))
}

/// The same commands against a running server.
pub async fn remote(r: &super::remote::Remote, cmd: IncidentCommand) -> Result<ExitCode> {
    let (id, next, note) = match &cmd {
        IncidentCommand::List(a) => {
            let state = a.state.as_deref().map(str::parse::<IncidentState>).transpose().map_err(anyhow::Error::msg)?;
            let unresolved = state.is_none() && !a.all;
            let mut path = format!("/incidents?unresolved={unresolved}");
            if let Some(s) = state {
                path.push_str(&format!("&state={}", s.as_str()));
            }
            let incidents: Vec<honeytrail_core::incident::Incident> = serde_json::from_value(r.get(&path).await?)?;
            return print_list(&incidents, a, unresolved);
        }
        IncidentCommand::Show(a) => return print_record(&r.get(&format!("/incidents/{}", a.id)).await?, a),
        IncidentCommand::Note(a) => {
            r.post(&format!("/incidents/{}/notes", a.id), &json!({"text": a.text})).await?;
            println!("note added to incident #{}", a.id);
            return Ok(ExitCode::SUCCESS);
        }
        IncidentCommand::Ack(a) => (a.id, IncidentState::Acknowledged, a.note.clone()),
        IncidentCommand::FalsePositive(a) => (a.id, IncidentState::FalsePositive, a.note.clone()),
        IncidentCommand::Confirm(a) => (a.id, IncidentState::Confirmed, a.note.clone()),
        IncidentCommand::Resolve(a) => (a.id, IncidentState::Resolved, a.note.clone()),
    };
    let incident = r.post(&format!("/incidents/{id}/state"), &json!({"state": next.as_str(), "note": note})).await?;
    println!("incident #{id}: now {}", super::remote::s(&incident["state"]));
    Ok(ExitCode::SUCCESS)
}

pub async fn run(app: &App, cmd: IncidentCommand) -> Result<ExitCode> {
    let store = app.store().await?;
    let change = |args: &ChangeArgs, next: IncidentState| (args.id, next, args.note.clone());
    let (id, next, note) = match &cmd {
        IncidentCommand::List(a) => return list(&store, a).await,
        IncidentCommand::Show(a) => return show(&store, a).await,
        IncidentCommand::Note(a) => {
            if a.text.trim().is_empty() {
                bail!("the note is empty");
            }
            store.add_incident_note(a.id, &app.actor(), a.text.trim()).await?;
            println!("note added to incident #{}", a.id);
            return Ok(ExitCode::SUCCESS);
        }
        IncidentCommand::Ack(a) => change(a, IncidentState::Acknowledged),
        IncidentCommand::FalsePositive(a) => change(a, IncidentState::FalsePositive),
        IncidentCommand::Confirm(a) => change(a, IncidentState::Confirmed),
        IncidentCommand::Resolve(a) => change(a, IncidentState::Resolved),
    };
    let before = store.incident(id).await?.state;
    let incident = store.change_incident_state(id, next, &app.actor(), note.as_deref()).await?;
    println!("incident #{id}: {before} → {}", incident.state);
    Ok(ExitCode::SUCCESS)
}

async fn list(store: &Store, a: &ListArgs) -> Result<ExitCode> {
    let state = a.state.as_deref().map(str::parse::<IncidentState>).transpose().map_err(anyhow::Error::msg)?;
    let filter = IncidentFilter { state, unresolved: state.is_none() && !a.all, ..Default::default() };
    let incidents = store.incidents(&filter).await?;
    print_list(&incidents, a, filter.unresolved)
}

fn print_list(incidents: &[honeytrail_core::incident::Incident], a: &ListArgs, unresolved: bool) -> Result<ExitCode> {
    if a.json {
        return print_json(&incidents).map(|_| ExitCode::SUCCESS);
    }
    if incidents.is_empty() {
        eprintln!("no incidents{}", if unresolved { " open (--all shows closed ones)" } else { "" });
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = incidents
        .iter()
        .map(|i| {
            vec![
                format!("#{}", i.id),
                i.state.to_string(),
                format!("{}{}", i.access_key_id, if i.token_retired { " (retired)" } else { "" }),
                i.event_count.to_string(),
                when(i.first_seen),
                when(i.last_seen),
            ]
        })
        .collect();
    print_table(&["ID", "STATE", "ACCESS KEY", "EVENTS", "FIRST SEEN", "LAST SEEN"], &rows);
    Ok(ExitCode::SUCCESS)
}

async fn show(store: &Store, a: &ShowArgs) -> Result<ExitCode> {
    let record = incident_record(store, a.id, "incident").await?;
    print_record(&record, a)
}

fn print_record(record: &serde_json::Value, a: &ShowArgs) -> Result<ExitCode> {
    if a.json {
        return print_json(&record).map(|_| ExitCode::SUCCESS);
    }
    let i = &record["incident"];
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    println!(
        "incident #{}  {}  ({} events, {} → {})",
        a.id,
        s(&i["state"]),
        i["event_count"],
        s(&i["first_seen"]),
        s(&i["last_seen"])
    );
    if i["token_retired"] == true {
        println!("NOTE: this key was retired before it was used: whoever holds it copied it before retirement.");
    }
    println!("\n{}", s(&record["placement"]));
    for p in record["placements"].as_array().into_iter().flatten() {
        println!("  - {}", s(p));
    }
    println!("May have leaked at:");
    for h in record["may_have_leaked_at"].as_array().into_iter().flatten() {
        println!("  - {}", s(h));
    }
    let act = &record["activity"];
    let list = |v: &serde_json::Value| {
        v.as_array().map(|a| a.iter().map(s).collect::<Vec<_>>().join(", ")).unwrap_or_default()
    };
    println!(
        "\nAPIs: {}\nSource IPs: {}\nUser agents: {}\nRegions: {}\nErrors: {}",
        list(&act["apis"]),
        list(&act["source_ips"]),
        list(&act["user_agents"]),
        list(&act["regions"]),
        list(&act["error_codes"])
    );
    println!("\nTimeline (event time, delay until honeytrail saw it):");
    for e in record["events"].as_array().into_iter().flatten() {
        println!(
            "  {}  {} {}  from {}  {}{}  (+{}s)",
            s(&e["event_time"]),
            s(&e["event_source"]),
            s(&e["event_name"]),
            s(&e["source_ip"]),
            s(&e["aws_region"]),
            e["error_code"].as_str().map(|c| format!("  error {c}")).unwrap_or_default(),
            e["detection_delay_seconds"]
        );
    }
    println!("\nHistory:");
    for h in record["history"].as_array().into_iter().flatten() {
        let change = match (h["from_state"].as_str(), h["to_state"].as_str()) {
            (Some(f), Some(t)) => format!("{f} → {t}"),
            (None, Some(t)) => t.to_string(),
            _ => String::new(),
        };
        println!(
            "  {}  {}  {} {}  {}",
            s(&h["at"]),
            s(&h["actor"]),
            s(&h["kind"]),
            change,
            h["note"].as_str().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}
