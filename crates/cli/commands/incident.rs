//! `honeytrail incident …`: the incident workflow.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use honeytrail_app::ops::IncidentQuery;
use honeytrail_core::encoding::printable;
use honeytrail_core::incident::IncidentState;
use honeytrail_core::record::{AlertRecord, EventInfo};
use serde_json::json;

use super::{print_json, print_table, when};
use honeytrail_app::App;

#[derive(Subcommand, Debug)]
pub enum IncidentCommand {
    /// List incidents, newest activity first (unresolved ones unless --all or --state)
    List(ListArgs),
    /// Show one incident: the token, where it was placed, what was done from where
    Show(ShowArgs),
    /// Every event of an incident, oldest first (`show` lists the earliest and latest 250 of a large one)
    Events(ShowArgs),
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
    /// Only incidents in this state: open, acknowledged, false-positive, confirmed or resolved
    #[arg(long)]
    state: Option<String>,
    /// Include resolved and false-positive incidents
    #[arg(long)]
    all: bool,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The incident's number (`incident list`)
    id: i64,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ChangeArgs {
    /// The incident's number (`incident list`)
    id: i64,
    /// Why, for the record
    #[arg(long)]
    note: Option<String>,
    #[command(flatten)]
    out: super::JsonOut,
}

#[derive(Args, Debug)]
pub struct NoteArgs {
    /// The incident's number (`incident list`)
    id: i64,
    /// The note, as it is to be kept
    text: String,
    #[command(flatten)]
    out: super::JsonOut,
}

/// The same commands against a running server.
pub async fn remote(r: &super::remote::Remote, cmd: IncidentCommand) -> Result<ExitCode> {
    let (id, next, note, out) = match &cmd {
        IncidentCommand::List(a) => {
            let state = a.state.as_deref().map(str::parse::<IncidentState>).transpose()?;
            let unresolved = state.is_none() && !a.all;
            let mut path = format!("/incidents?unresolved={unresolved}");
            if let Some(s) = state {
                path.push_str(&format!("&state={}", s.as_str()));
            }
            let incidents: Vec<honeytrail_core::incident::Incident> =
                serde_json::from_value(serde_json::Value::Array(r.get_all(&path).await?))?;
            return print_list(&incidents, a, unresolved);
        }
        IncidentCommand::Show(a) => {
            let record: AlertRecord = serde_json::from_value(r.get(&format!("/incidents/{}", a.id)).await?)?;
            return print_record(&record, a);
        }
        IncidentCommand::Events(a) => {
            let events: Vec<EventInfo> = serde_json::from_value(serde_json::Value::Array(
                r.get_all(&format!("/incidents/{}/events", a.id)).await?,
            ))?;
            return print_events(&events, a.json);
        }
        IncidentCommand::Note(a) => {
            let entry = r.post(&format!("/incidents/{}/notes", a.id), &json!({"text": a.text})).await?;
            return a.out.print(&entry, |_| format!("note added to incident #{}", a.id));
        }
        IncidentCommand::Ack(a) => (a.id, IncidentState::Acknowledged, a.note.clone(), a.out),
        IncidentCommand::FalsePositive(a) => (a.id, IncidentState::FalsePositive, a.note.clone(), a.out),
        IncidentCommand::Confirm(a) => (a.id, IncidentState::Confirmed, a.note.clone(), a.out),
        IncidentCommand::Resolve(a) => (a.id, IncidentState::Resolved, a.note.clone(), a.out),
    };
    let incident = r.post(&format!("/incidents/{id}/state"), &json!({"state": next.as_str(), "note": note})).await?;
    out.print(&incident, |i| format!("incident #{id}: now {}", super::remote::s(&i["state"])))
}

pub async fn run(app: &App, cmd: IncidentCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    let change = |args: &ChangeArgs, next: IncidentState| (args.id, next, args.note.clone(), args.out);
    let (id, next, note, out) = match &cmd {
        IncidentCommand::List(a) => {
            let state = a.state.as_deref().map(str::parse::<IncidentState>).transpose()?;
            let q = IncidentQuery {
                state: state.map(|s| s.as_str().to_string()),
                unresolved: state.is_none() && !a.all,
                ..IncidentQuery::default()
            };
            let incidents = ops.search_incidents(&actor, &q).await?;
            return print_list(&incidents, a, q.unresolved);
        }
        IncidentCommand::Show(a) => return print_record(&ops.incident_record(&actor, a.id).await?, a),
        IncidentCommand::Events(a) => {
            let mut events = Vec::new();
            let mut cursor = None;
            loop {
                let page = ops.event_page(&actor, a.id, Some(honeytrail_app::ops::PAGE_MAX), &cursor).await?;
                events.extend(page.items);
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            return print_events(&events, a.json);
        }
        IncidentCommand::Note(a) => {
            let note = ops.add_note(&actor, a.id, &honeytrail_app::ops::NoteRequest { text: a.text.clone() }).await?;
            return a
                .out
                .print(&json!({"incident": a.id, "note": note}), |_| format!("note added to incident #{}", a.id));
        }
        IncidentCommand::Ack(a) => change(a, IncidentState::Acknowledged),
        IncidentCommand::FalsePositive(a) => change(a, IncidentState::FalsePositive),
        IncidentCommand::Confirm(a) => change(a, IncidentState::Confirmed),
        IncidentCommand::Resolve(a) => change(a, IncidentState::Resolved),
    };
    let before = ops.incident(&actor, id).await?.state;
    let change = honeytrail_app::ops::StateChange { state: next.as_str().to_string(), note };
    let incident = ops.change_state(&actor, id, &change).await?;
    out.print(&incident, |i| format!("incident #{id}: {before} → {}", i.state))
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
                i.severity.to_string(),
                i.state.to_string(),
                format!("{}{}", i.access_key_id, if i.token_retired { " (retired)" } else { "" }),
                i.event_count.to_string(),
                when(i.first_seen),
                when(i.last_seen),
            ]
        })
        .collect();
    print_table(&["ID", "SEVERITY", "STATE", "ACCESS KEY", "EVENTS", "FIRST SEEN", "LAST SEEN"], &rows);
    Ok(ExitCode::SUCCESS)
}

/// One event on one line, with what the intruder wrote escaped.
fn event_line(e: &EventInfo) -> String {
    let o = |s: &Option<String>| s.as_deref().map(printable).unwrap_or("-".into()).into_owned();
    format!(
        "{}  {} {}  from {}  {}{}  (+{})",
        e.event_time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        printable(&e.event_source),
        printable(&e.event_name),
        o(&e.source_ip),
        o(&e.aws_region),
        e.error_code.as_deref().map(|c| format!("  error {}", printable(c))).unwrap_or_default(),
        e.detection_delay_seconds.map(honeytrail_core::describe::duration_words).unwrap_or_else(|| "?".into())
    )
}

fn print_events(events: &[EventInfo], json: bool) -> Result<ExitCode> {
    if json {
        return print_json(&events).map(|_| ExitCode::SUCCESS);
    }
    for e in events {
        println!("{}", event_line(e));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_record(record: &AlertRecord, a: &ShowArgs) -> Result<ExitCode> {
    if a.json {
        return print_json(&record).map(|_| ExitCode::SUCCESS);
    }
    // Everything below may hold text an intruder wrote: shown escaped.
    let p = |s: &str| printable(s).into_owned();
    let i = &record.incident;
    println!(
        "incident #{}  {}  severity {}  ({} events, {} → {})",
        a.id,
        i.state,
        i.severity,
        i.event_count,
        i.first_seen.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        i.last_seen.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );
    if i.token_retired {
        println!("NOTE: this key was retired before it was used: whoever holds it copied it before retirement.");
    }
    println!("\n{}", p(&record.placement));
    for pl in &record.placements {
        println!("  - {}", p(pl));
    }
    if let Some(r) = &record.read_before {
        println!("\nBait read on the host: {}", p(r));
    }
    if let Some(c) = &record.context {
        println!("\nContext:");
        for line in &c.summary {
            println!("  - {}", p(line));
        }
    }
    println!("May have leaked at:");
    for h in &record.may_have_leaked_at {
        println!("  - {}", p(h));
    }
    let act = &record.activity;
    let list = |v: &[String]| v.iter().map(|s| p(s)).collect::<Vec<_>>().join(", ");
    println!(
        "\nAPIs: {}\nSource IPs: {}\nUser agents: {}\nRegions: {}\nErrors: {}",
        list(&act.apis),
        list(&act.source_ips),
        list(&act.user_agents),
        list(&act.regions),
        list(&act.error_codes)
    );
    println!("\nTimeline (event time, delay until honeytrail saw it):");
    // Reads of the bait on its host come first: they are how the key was found.
    for r in record.reads.iter().rev() {
        println!(
            "  {}  read on {}: {}  [{}]",
            r.access.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            p(&r.host),
            p(&r.sentence),
            r.state
        );
    }
    let listed = record.events.len() as i64;
    let between = i.event_count.saturating_sub(listed);
    for (n, e) in record.events.iter().enumerate() {
        if between > 0 && n == record.events.len() / 2 {
            println!("  … {between} more events; `honeytrail incident events {}` lists every one", a.id);
        }
        println!("  {}", event_line(e));
    }
    println!("\nHistory:");
    for h in &record.history {
        let change = match (h.from_state, h.to_state) {
            (Some(f), Some(t)) => format!("{f} → {t}"),
            (None, Some(t)) => t.to_string(),
            _ => String::new(),
        };
        println!(
            "  {}  {}  {} {}  {}",
            h.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            p(&h.actor),
            p(&h.kind),
            change,
            h.note.as_deref().map(printable).unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
