//! The whole deployment at a glance: the dashboard, the figures `/metrics`
//! exports, and readiness.

use chrono::{DateTime, Utc};
use honeytrail_core::access::Permission;
use honeytrail_core::incident::Incident;
use honeytrail_store as store;
use honeytrail_store::IncidentFilter;
use serde::Serialize;

use super::PAGE_DEFAULT;
use crate::{Actor, OpError, OpResult, Ops};

/// Counts by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// `(state, count)` of incidents.
    pub incidents: Vec<(String, i64)>,
    /// `(channel, state, count)` of alert deliveries.
    pub deliveries: Vec<(String, String, i64)>,
    /// `(state, count)` of tokens.
    pub tokens: Vec<(String, i64)>,
}

impl From<store::Stats> for Stats {
    fn from(s: store::Stats) -> Stats {
        Stats { incidents: s.incidents, deliveries: s.deliveries, tokens: s.tokens }
    }
}

/// A honey-key event as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecentEvent {
    pub event_time: DateTime<Utc>,
    pub access_key_id: String,
    pub event_name: String,
    pub source_ip: Option<String>,
    pub incident: i64,
}

/// How far an S3 source has read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceProgress {
    /// `s3://bucket/prefix`.
    pub source: String,
    pub objects: i64,
    pub last_read: DateTime<Utc>,
}

impl From<store::SourceProgress> for SourceProgress {
    fn from(s: store::SourceProgress) -> SourceProgress {
        SourceProgress { source: s.source, objects: s.objects, last_read: s.last_read }
    }
}

/// The dashboard: what is open, what failed to go out, what came in.
#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    /// Unresolved incidents, latest activity first, at most [`DASHBOARD_MAX`].
    pub open: Vec<Incident>,
    /// There are more than `open` holds.
    pub open_more: bool,
    pub stats: Stats,
    /// Dead-lettered deliveries, counted up to one more than a page.
    pub dead: usize,
    pub dead_more: bool,
    /// The newest honey-key events.
    pub events: Vec<RecentEvent>,
    pub sources: Vec<SourceProgress>,
}

/// The unresolved incidents the dashboard lists; the Incidents page has all.
pub const DASHBOARD_MAX: i64 = 50;
/// The events the dashboard lists.
const RECENT_EVENTS: i64 = 15;

/// What `/metrics` exports beside the server's own request counters.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    pub stats: Stats,
    pub sources: Vec<SourceProgress>,
    /// Keys minted ahead for enrolling hosts, and the size kept.
    pub pool: i64,
    pub pool_target: u32,
    /// Active hosts silent for longer than `fleet.stale_after_seconds`.
    pub stale_agents: i64,
    /// Read records refused from agents (over quota, or for paths never placed).
    pub evidence_refused: i64,
    /// `(state, count)` of enrolled hosts.
    pub agents: Vec<(String, i64)>,
    /// Replicas whose heartbeat is within a lease.
    pub replicas_up: usize,
    /// Every periodic job: its holder (if its lease runs) and last run.
    pub jobs: Vec<(String, Option<String>, Option<DateTime<Utc>>)>,
}

impl Ops {
    /// The dashboard of a viewer, responder or admin.
    pub async fn dashboard(&self, actor: &Actor) -> OpResult<Dashboard> {
        actor.require(Permission::Read)?;
        let filter = IncidentFilter { unresolved: true, limit: Some(DASHBOARD_MAX), ..Default::default() };
        let open = self.store.incidents(&filter).await?;
        let dead = self.store.deliveries_page("dead", None, PAGE_DEFAULT + 1).await?.len();
        let mut events: Vec<RecentEvent> = self
            .store
            .recent_events(RECENT_EVENTS)
            .await?
            .into_iter()
            .map(|e| RecentEvent {
                event_time: e.event_time,
                access_key_id: e.access_key_id,
                event_name: e.event_name,
                source_ip: e.source_ip,
                incident: e.incident,
            })
            .collect();
        // Incidents that carry no CloudTrail event (a report of a found key, a
        // silent host, a touched bait) are news too: listed by their last activity.
        let latest = IncidentFilter { limit: Some(RECENT_EVENTS), ..Default::default() };
        events.extend(self.store.incidents(&latest).await?.into_iter().filter(|i| i.event_count == 0).map(|i| {
            RecentEvent {
                event_time: i.last_seen,
                access_key_id: i.access_key_id,
                event_name: format!("({} incident)", i.kind.as_str()),
                source_ip: None,
                incident: i.id,
            }
        }));
        events.sort_by(|a, b| b.event_time.cmp(&a.event_time).then(b.incident.cmp(&a.incident)));
        events.truncate(RECENT_EVENTS as usize);
        Ok(Dashboard {
            open_more: open.len() as i64 >= DASHBOARD_MAX,
            open,
            stats: self.store.stats().await?.into(),
            dead,
            dead_more: dead as i64 > PAGE_DEFAULT,
            events,
            sources: self.store.s3_sources().await?.into_iter().map(SourceProgress::from).collect(),
        })
    }

    /// The figures `/metrics` exports. The server guards the endpoint with
    /// its own bearer token (`serve.metrics_token`) or a separate listener.
    pub async fn metrics(&self) -> OpResult<Metrics> {
        Ok(Metrics {
            stats: self.store.stats().await?.into(),
            sources: self.store.s3_sources().await?.into_iter().map(SourceProgress::from).collect(),
            pool: self.store.pool_size().await?,
            pool_target: self.config.fleet.pool_size,
            stale_agents: self.store.stale_count().await?,
            evidence_refused: self.store.evidence_refused().await?,
            agents: self.store.agents_by_state().await?,
            replicas_up: self
                .store
                .replicas(Utc::now() - chrono::Duration::seconds(self.config.cluster.lease_seconds as i64))
                .await?
                .iter()
                .filter(|r| r.stopped_at.is_none())
                .count(),
            jobs: self.store.job_leases().await?.into_iter().map(|j| (j.name, j.holder, j.last_run_at)).collect(),
        })
    }

    /// Whether the store answers.
    pub async fn ready(&self) -> OpResult<()> {
        self.store.user_count().await.map(|_| ()).map_err(|e| {
            tracing::warn!(error = %e, "not ready: the store does not answer");
            OpError::new(crate::OpErrorKind::Unavailable, "not_ready", "not ready: the database does not answer")
        })
    }
}
