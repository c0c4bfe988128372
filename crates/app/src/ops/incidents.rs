//! Incidents: list, read, move through their states, add notes.

use honeytrail_core::access::Permission;
use honeytrail_core::incident::{check_note, Incident, IncidentKind, IncidentState};
use honeytrail_core::record::{AlertRecord, EventInfo};
use honeytrail_store::IncidentFilter;
use serde::Deserialize;

use super::actions::ActionRun;
use super::alerting::Delivery;

use super::tokens::blank;
use crate::{Actor, OpError, OpResult, Ops};

/// Which incidents to list.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IncidentQuery {
    pub state: Option<String>,
    #[serde(default)]
    pub unresolved: bool,
    /// Access key ID or token number.
    pub token: Option<String>,
    /// `use` or `report`.
    pub kind: Option<String>,
    /// A page of at most this many (100 when not given, at most 1000); for
    /// [`Ops::incident_page`].
    pub limit: Option<i64>,
    /// Where the page starts: the `next` cursor of the page before.
    pub cursor: Option<String>,
}

/// An incident as its page shows it: the whole record, every alert sent
/// about it, the response runs on it, and the states it may move to.
#[derive(Debug, Clone)]
pub struct IncidentView {
    pub record: AlertRecord,
    pub deliveries: Vec<Delivery>,
    pub runs: Vec<ActionRun>,
    /// The states it may move to now, in the order a responder would.
    pub moves: Vec<IncidentState>,
}

/// A move of an incident's state, with an optional note on why.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateChange {
    pub state: String,
    #[serde(default)]
    pub note: Option<String>,
}

/// A note to add to an incident's history.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    pub text: String,
}

impl Ops {
    async fn incident_filter(&self, q: &IncidentQuery) -> OpResult<IncidentFilter> {
        let state = blank(&q.state).as_deref().map(str::parse::<IncidentState>).transpose()?;
        let token_id = match blank(&q.token) {
            Some(t) => Some(self.find_token(&t).await?.id),
            None => None,
        };
        let kind =
            match blank(&q.kind) {
                None => None,
                Some(k) => Some(IncidentKind::parse(&k).ok_or_else(|| {
                    OpError::invalid(format!("unknown incident kind {k:?}; use use, report or exposed"))
                })?),
            };
        Ok(IncidentFilter { state, unresolved: q.unresolved, token_id, kind, ..Default::default() })
    }

    /// Every incident the query selects, latest activity first.
    pub async fn search_incidents(&self, actor: &Actor, q: &IncidentQuery) -> OpResult<Vec<Incident>> {
        actor.require(Permission::Read)?;
        Ok(self.store.incidents(&self.incident_filter(q).await?).await?)
    }

    /// One page of [`Ops::search_incidents`], cut in the database (keyset on
    /// latest activity and ID), with the cursor of the next page.
    pub async fn incident_page(&self, actor: &Actor, q: &IncidentQuery) -> OpResult<crate::ops::Page<Incident>> {
        actor.require(Permission::Read)?;
        use crate::ops::tokens::{cursor_at, page_limit, page_of};
        let limit = page_limit(q.limit)?;
        let mut filter = self.incident_filter(q).await?;
        filter.before = cursor_at(&q.cursor, 'i', |rest| {
            let (t, id) = rest.split_once('.')?;
            Some((t.parse::<i64>().ok()?, id.parse::<i64>().ok()?))
        })?;
        filter.limit = Some(limit + 1);
        let items = self.store.incidents(&filter).await?;
        Ok(page_of(items, limit, |i| format!("i{}.{}", i.last_seen.timestamp_millis(), i.id)))
    }

    /// One incident, without its events and history.
    pub async fn incident(&self, actor: &Actor, id: i64) -> OpResult<Incident> {
        actor.require(Permission::Read)?;
        Ok(self.store.incident(id).await?)
    }

    /// The whole record of an incident, as alerts carry it.
    pub async fn incident_record(&self, actor: &Actor, id: i64) -> OpResult<AlertRecord> {
        actor.require(Permission::Read)?;
        self.store.incident(id).await?;
        Ok(self.record(id, "incident").await?)
    }

    /// An incident with its alerts and response runs, for its page.
    pub async fn incident_view(&self, actor: &Actor, id: i64) -> OpResult<IncidentView> {
        let record = self.incident_record(actor, id).await?;
        let state = record.incident.state;
        let moves = [
            IncidentState::Acknowledged,
            IncidentState::FalsePositive,
            IncidentState::Confirmed,
            IncidentState::Resolved,
        ]
        .into_iter()
        .filter(|next| state.check_move(*next).is_ok())
        .collect();
        Ok(IncidentView {
            deliveries: self.incident_deliveries(id).await?,
            runs: self.action_runs(actor, Some(id), None).await?,
            record,
            moves,
        })
    }

    /// One page of an incident's events, oldest first, each with its
    /// detection delay: every event, however many the record leaves out.
    pub async fn event_page(
        &self,
        actor: &Actor,
        id: i64,
        limit: Option<i64>,
        cursor: &Option<String>,
    ) -> OpResult<crate::ops::Page<EventInfo>> {
        actor.require(Permission::Read)?;
        use crate::ops::tokens::{cursor_at, page_limit, page_of};
        self.store.incident(id).await?;
        let limit = page_limit(limit)?;
        let after = cursor_at(cursor, 'e', |rest| {
            let (t, id) = rest.split_once('.')?;
            Some((t.parse::<i64>().ok()?, id.parse::<i64>().ok()?))
        })?;
        let events = self.store.incident_events_page(id, after, limit + 1).await?;
        let page = page_of(events, limit, |e| format!("e{}.{}", e.event.event_time.timestamp_millis(), e.id));
        Ok(crate::ops::Page { items: page.items.iter().map(crate::record::event_info).collect(), next: page.next })
    }

    /// Moves an incident to `state`, with an optional note on why.
    pub async fn change_state(&self, actor: &Actor, id: i64, r: &StateChange) -> OpResult<Incident> {
        actor.require(Permission::Respond)?;
        let (state, note) = (r.state.as_str(), r.note.as_deref());
        let next: IncidentState = state.parse()?;
        let note = match note.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) => Some(check_note(n)?),
            None => None,
        };
        let incident = self
            .audited(actor, "incident.state", &format!("incident #{id}"), Some(next.as_str()))
            .change_incident_state(id, next, &actor.name, note)
            .await?;
        self.alert_queued();
        Ok(incident)
    }

    /// Adds a note to an incident's history.
    pub async fn add_note(&self, actor: &Actor, id: i64, r: &NoteRequest) -> OpResult<String> {
        actor.require(Permission::Respond)?;
        let text = check_note(&r.text)?;
        self.audited(actor, "incident.note", &format!("incident #{id}"), None)
            .add_incident_note(id, &actor.name, text)
            .await?;
        Ok(text.to_string())
    }
}
