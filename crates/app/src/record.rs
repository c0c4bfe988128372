//! The incident record: everything about an incident as one value — the
//! token, where it was placed, its custody, the activity, every event with
//! its detection delay, the history and the runbook. Every alert channel,
//! the SIEM outputs, `incident show --json` and the API are made from it.

use anyhow::Result;
use honeytrail_core::incident::activity;
use honeytrail_store::Store;
use serde_json::json;

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
