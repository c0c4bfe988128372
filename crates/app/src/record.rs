//! The incident record: everything about an incident as one value — the
//! token, where it was placed, its custody, the activity, every event with
//! its detection delay, the history and the runbook. Every alert channel,
//! the SIEM outputs, `incident show --json` and the API are made from it.

use anyhow::Result;
use honeytrail_core::enrich::Enricher;
use honeytrail_core::incident::Severity;
use honeytrail_core::record::{
    AlertRecord, EventInfo, HopInfo, IncidentInfo, PlacementInfo, ReadInfo, TokenInfo, RECORD_EVENTS, RECORD_READS,
    SCHEMA,
};
use honeytrail_store::{SeenEvent, Store};
use serde_json::json;

/// Everything about an incident as one [`AlertRecord`]: what alerts carry,
/// what `incident show --json` prints and the API returns. `kind` names why
/// it was made (`incident.opened`, `incident`, …).
pub async fn incident_record(store: &Store, enricher: &Enricher, id: i64, kind: &str) -> Result<AlertRecord> {
    let incident = store.incident(id).await?;
    let token = store.token(incident.token_id).await?;
    let described = store.describe_token(&token).await?;
    let timeline: Vec<EventInfo> = record_events(store, id).await?.iter().map(event_info).collect();
    let activity = store.incident_activity(id).await?;
    let context = enricher.incident(&activity);
    let placements =
        store.placements(&honeytrail_store::PlacementFilter { token_id: Some(token.id), ..Default::default() }).await?;
    let runbook = runbook_for(store, &token, &incident, &described, &activity, &context, &placements).await?;
    let mut owners: Vec<String> = placements
        .iter()
        .filter(|p| p.placement.removed_at.is_none())
        .filter_map(|p| p.placement.spot.owner.clone())
        .collect();
    owners.sort();
    owners.dedup();
    let placed = placements
        .iter()
        .filter(|p| p.placement.removed_at.is_none())
        .map(|p| {
            let s = &p.placement.spot;
            PlacementInfo {
                id: p.placement.id,
                host: s.host.clone(),
                path: s.path.clone(),
                owner: s.owner.clone(),
                asset: s.asset.clone(),
                serial: s.serial.clone(),
                format: s.format.clone(),
                placed_by: s.placed_by.clone(),
                placed_at: Some(p.placement.placed_at),
                notes: s.notes.clone(),
                labels: s.labels.clone(),
                instance_id: s.instance_id.clone(),
                iam_user: s.iam_user.clone(),
                aws_account: s.aws_account.clone(),
            }
        })
        .collect();
    let custody = store
        .hops(token.id)
        .await?
        .into_iter()
        .map(|h| HopInfo { seq: h.seq, at: h.at, description: h.description, by: h.actor, automatic: h.automatic })
        .collect();
    let base = Severity::of(&token.labels, incident.state, incident.kind);
    let severity = context.raise(base);
    if severity != incident.severity {
        // What raised it changed since it was stored (or it was never noted).
        store.note_context_raise(id, context.raises()).await?;
    }
    let (reads, read_before) = reads_for(store, &incident).await?;
    Ok(AlertRecord {
        schema: SCHEMA.into(),
        kind: kind.into(),
        delivery_id: None,
        alert: None,
        incident: IncidentInfo::new(&incident, severity),
        owners,
        token: TokenInfo {
            id: token.id,
            access_key_id: token.access_key_id.clone(),
            kind: token.kind,
            state: token.state,
            iam_user_name: token.iam_user_name.clone(),
            labels: token.labels.clone(),
            memo: token.memo.clone(),
        },
        placement: described.headline,
        placements: described.placements,
        placed,
        may_have_leaked_at: described.custody,
        custody,
        activity,
        events: timeline,
        history: store.incident_log(id).await?,
        runbook,
        owner_questions: Vec::new(),
        reads,
        read_before,
        context: (!context.is_empty()).then_some(context),
        awaiting_approval: awaiting_approval(store, id).await?,
    })
}

/// The incident's runs that wait for a responder, oldest first.
async fn awaiting_approval(store: &Store, incident: i64) -> Result<Vec<honeytrail_core::record::PendingRun>> {
    let filter = honeytrail_store::RunFilter {
        incident_id: Some(incident),
        states: vec![honeytrail_core::action::RunState::AwaitingApproval],
        ..Default::default()
    };
    let mut runs: Vec<_> = store
        .action_runs(&filter)
        .await?
        .into_iter()
        .map(|r| honeytrail_core::record::PendingRun {
            run: r.id,
            action: r.action,
            kind: r.kind.as_str().to_string(),
            target: r.target,
        })
        .collect();
    runs.sort_by_key(|r| r.run);
    Ok(runs)
}

/// The reads of the incident's bait: for a use, those before its first
/// call, with the latest (not by a quiet program) as a sentence; for other
/// kinds, those up to its last event.
pub(crate) async fn reads_for(
    store: &Store,
    incident: &honeytrail_core::incident::Incident,
) -> Result<(Vec<ReadInfo>, Option<String>)> {
    use honeytrail_core::incident::IncidentKind;
    let is_use = incident.kind == IncidentKind::Use;
    let until = if is_use { incident.first_seen } else { incident.last_seen };
    let filter = honeytrail_store::EvidenceFilter {
        token_id: Some(incident.token_id),
        until: Some(until),
        limit: Some(RECORD_READS as i64),
        ..Default::default()
    };
    let stored = store.evidence(&filter).await?;
    let before = stored
        .iter()
        // A listed backup or scanning program's read is not how the key was found; its owner's may be.
        .filter(|r| is_use && (r.touch != honeytrail_store::Touch::Quiet || r.access.by_owner))
        .max_by_key(|r| (r.access.at, r.id))
        .map(|r| format!("{}, {}", r.sentence, honeytrail_core::evidence::lead_time(r.access.at, incident.first_seen)));
    let reads = stored
        .into_iter()
        .map(|r| ReadInfo {
            id: r.id,
            host: r.host,
            state: r.touch.as_str().into(),
            sentence: r.sentence,
            access: r.access,
        })
        .collect();
    Ok((reads, before))
}

/// The events a record lists: all of them up to [`RECORD_EVENTS`], else the
/// earliest and the latest half of that each; an incident of any size makes
/// a record of bounded size.
async fn record_events(store: &Store, id: i64) -> Result<Vec<SeenEvent>> {
    let max = RECORD_EVENTS as i64;
    let mut events = store.incident_events_page(id, None, max + 1).await?;
    if events.len() > RECORD_EVENTS {
        events.truncate(RECORD_EVENTS / 2);
        events.extend(store.incident_events_latest(id, max - max / 2).await?);
    }
    Ok(events)
}

/// An event as records and the API show it, with its detection delay.
pub fn event_info(seen: &SeenEvent) -> EventInfo {
    let e = &seen.event;
    EventInfo {
        event_id: e.event_id.clone(),
        event_time: e.event_time,
        seen_at: Some(seen.seen_at),
        detection_delay_seconds: Some((seen.seen_at - e.event_time).num_seconds()),
        event_source: e.event_source.clone(),
        event_name: e.event_name.clone(),
        aws_region: e.aws_region.clone(),
        source_ip: e.source_ip.clone(),
        user_agent: e.user_agent.clone(),
        error_code: e.error_code.clone(),
        error_message: e.error_message.clone(),
        source: e.source.clone(),
        origin: e.origin.clone(),
    }
}

/// The runbook text for an incident: the stored runbook its token selects
/// (by label, then placement format, then default), else the shipped one.
async fn runbook_for(
    store: &Store,
    token: &honeytrail_core::Token,
    incident: &honeytrail_core::incident::Incident,
    described: &honeytrail_core::describe::Description,
    activity: &honeytrail_core::incident::Activity,
    enriched: &honeytrail_core::enrich::IncidentContext,
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
        "context": enriched,
    });
    Ok(runbook::render(template, &context))
}
