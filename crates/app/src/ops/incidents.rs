//! Incidents: list, read, move through their states, add notes.

use honeytrail_core::access::Permission;
use honeytrail_core::incident::{check_note, Incident, IncidentKind, IncidentState};
use honeytrail_core::record::AlertRecord;
use honeytrail_store::IncidentFilter;
use serde::Deserialize;

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
}

impl Ops {
    pub async fn search_incidents(&self, actor: &Actor, q: &IncidentQuery) -> OpResult<Vec<Incident>> {
        actor.require(Permission::Read)?;
        let state = blank(&q.state).as_deref().map(str::parse::<IncidentState>).transpose()?;
        let token_id = match blank(&q.token) {
            Some(t) => Some(self.find_token(&t).await?.id),
            None => None,
        };
        let mut list = self.store.incidents(&IncidentFilter { state, unresolved: q.unresolved, token_id }).await?;
        match blank(&q.kind).as_deref() {
            None => {}
            Some("use") => list.retain(|i| i.kind == IncidentKind::Use),
            Some("report") => list.retain(|i| i.kind == IncidentKind::Report),
            Some(other) => {
                return Err(OpError::invalid(format!("unknown incident kind {other:?}; use use or report")));
            }
        }
        Ok(list)
    }

    /// The whole record of an incident, as alerts carry it.
    pub async fn incident_record(&self, actor: &Actor, id: i64) -> OpResult<AlertRecord> {
        actor.require(Permission::Read)?;
        self.store.incident(id).await?;
        Ok(crate::record::incident_record(&self.store, id, "incident").await?)
    }

    /// Moves an incident to `state`, with an optional note on why.
    pub async fn change_state(&self, actor: &Actor, id: i64, state: &str, note: Option<&str>) -> OpResult<Incident> {
        actor.require(Permission::Respond)?;
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
    pub async fn add_note(&self, actor: &Actor, id: i64, text: &str) -> OpResult<String> {
        actor.require(Permission::Respond)?;
        let text = check_note(text)?;
        self.audited(actor, "incident.note", &format!("incident #{id}"), None)
            .add_incident_note(id, &actor.name, text)
            .await?;
        Ok(text.to_string())
    }
}
