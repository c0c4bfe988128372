//! What the console draws: counts over time and counts by value for an
//! incident, a token, the dashboard and the fleet. Plain data; the server
//! draws these same types (`honeytrail_server::web::chart`, which reads
//! them back from a template's context) and escapes every label there.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use honeytrail_core::access::Permission;
use honeytrail_core::incident::IncidentKind;
use honeytrail_store::{EventColumn, Series};
use serde::{Deserialize, Serialize};

use crate::{Actor, OpResult, Ops};

/// Counts in equal intervals from `from` to `to`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimeSeries {
    pub title: String,
    pub unit: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub values: Vec<u64>,
    /// A level (drawn as an area), not a count of happenings.
    #[serde(default)]
    pub area: bool,
    /// Drawn across the page, not beside another chart.
    #[serde(default)]
    pub wide: bool,
    #[serde(default)]
    pub marks: Vec<Marker>,
}

/// A moment marked on a [`TimeSeries`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Marker {
    pub at: DateTime<Utc>,
    pub label: String,
    /// `first` (the first call) or `read` (a read of the bait).
    #[serde(default)]
    pub tone: String,
}

/// Counts by value, most first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Counts {
    pub title: String,
    pub items: Vec<Count>,
    /// Values left out.
    #[serde(default)]
    pub more: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Count {
    pub label: String,
    pub count: u64,
    /// A colour by meaning (a severity or state name); never copied into a page.
    #[serde(default)]
    pub tone: String,
}

impl Counts {
    /// The `keep` most frequent of `pairs` (already most first), the rest counted in `more`.
    fn top(title: &str, pairs: Vec<(String, u64)>, keep: usize) -> Counts {
        let more = pairs.len().saturating_sub(keep) as u64;
        let items = pairs.into_iter().take(keep).map(|(label, count)| Count { label, count, tone: String::new() });
        Counts { title: title.into(), items: items.collect(), more }
    }

    /// Every pair, each coloured by its own name (a state or severity).
    fn toned(title: &str, pairs: impl IntoIterator<Item = (String, u64)>) -> Counts {
        let items = pairs.into_iter().map(|(label, count)| Count { tone: label.clone(), label, count }).collect();
        Counts { title: title.into(), items, more: 0 }
    }
}

/// The incident page's charts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IncidentCharts {
    /// Events over time, the first call and the reads of the bait before it marked.
    pub over_time: Option<TimeSeries>,
    pub apis: Counts,
    pub sources: Counts,
    pub regions: Counts,
}

/// The dashboard's charts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DashboardCharts {
    pub incidents: TimeSeries,
    pub events: TimeSeries,
    pub open_by_severity: Counts,
    pub tokens: Counts,
}

/// The fleet page's charts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FleetCharts {
    pub hosts: Counts,
    pub bait: Counts,
    /// Bait files in place at the end of each day.
    pub in_place: TimeSeries,
    pub tamper: TimeSeries,
}

/// The intervals of a chart over the last 30 days: one a day.
const DAYS: usize = 30;
/// The intervals of a chart of one incident or token.
const BUCKETS: usize = 48;
/// Values listed by name before the rest are counted.
const TOP: usize = 12;

impl Ops {
    async fn series(
        &self,
        title: &str,
        unit: &str,
        series: Series,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        buckets: usize,
    ) -> OpResult<TimeSeries> {
        let values = self.store.histogram(series, from, to, buckets).await?;
        Ok(TimeSeries {
            title: title.into(),
            unit: unit.into(),
            from,
            to,
            values,
            area: false,
            wide: false,
            marks: vec![],
        })
    }

    pub async fn incident_charts(&self, actor: &Actor, id: i64) -> OpResult<IncidentCharts> {
        actor.require(Permission::Read)?;
        let incident = self.store.incident(id).await?;
        let over_time = if incident.event_count > 0 && incident.kind != IncidentKind::Report {
            let (reads, _) = crate::record::reads_for(&self.store, &incident).await?;
            let before: Vec<DateTime<Utc>> =
                reads.iter().map(|r| r.access.at).filter(|at| *at <= incident.first_seen).collect();
            let from = before.iter().copied().min().unwrap_or(incident.first_seen).min(incident.first_seen);
            let to = incident.last_seen.max(from + Duration::minutes(1));
            let mut chart =
                self.series("Events over time", "events", Series::IncidentEvents(id), from, to, BUCKETS).await?;
            chart.wide = true;
            chart.marks.push(Marker { at: incident.first_seen, label: "first call".into(), tone: "first".into() });
            // The latest reads before the first call: how the key was found.
            let mut before = before;
            before.sort_unstable();
            for at in before.iter().rev().take(3) {
                chart.marks.push(Marker { at: *at, label: "bait read".into(), tone: "read".into() });
            }
            Some(chart)
        } else {
            None
        };
        Ok(IncidentCharts {
            over_time,
            apis: Counts::top("Calls by API", self.store.event_counts(id, EventColumn::Api).await?, TOP),
            sources: Counts::top(
                "Calls by source address",
                self.store.event_counts(id, EventColumn::SourceIp).await?,
                8,
            ),
            regions: Counts::top("Calls by region", self.store.event_counts(id, EventColumn::Region).await?, 8),
        })
    }

    /// A token's use over its life, its retirement marked.
    pub async fn token_chart(&self, actor: &Actor, key: &str) -> OpResult<TimeSeries> {
        actor.require(Permission::Read)?;
        let token = self.find_token(key).await?;
        let now = Utc::now();
        let to = token.retired_at.map_or(now, |r| r.max(now)).max(token.created_at + Duration::hours(1));
        let mut chart = self
            .series("Use of this key", "events", Series::TokenEvents(token.id), token.created_at, to, BUCKETS)
            .await?;
        if let Some(at) = token.retired_at {
            chart.marks.push(Marker { at, label: "retired".into(), tone: String::new() });
        }
        Ok(chart)
    }

    /// The dashboard's charts; `tokens` are the `(state, count)` pairs the
    /// dashboard already read ([`crate::ops::overview::Stats::tokens`]).
    pub async fn dashboard_charts(&self, actor: &Actor, tokens: &[(String, i64)]) -> OpResult<DashboardCharts> {
        actor.require(Permission::Read)?;
        let (from, to) = last_days();
        let severity = self.store.open_by_severity().await?;
        Ok(DashboardCharts {
            incidents: self
                .series("Incidents opened, last 30 days", "incidents", Series::IncidentsOpened, from, to, DAYS)
                .await?,
            events: self.series("Honey-key events, last 30 days", "events", Series::Events, from, to, DAYS).await?,
            open_by_severity: Counts::toned(
                "Open incidents by severity",
                severity.into_iter().rev().map(|(s, n)| (s.as_str().to_string(), n)),
            ),
            tokens: Counts::toned(
                "Tokens by state",
                tokens.iter().map(|(s, n)| (s.clone(), u64::try_from(*n).unwrap_or(0))),
            ),
        })
    }

    pub async fn fleet_charts(&self, actor: &Actor, agents: &[honeytrail_core::fleet::Agent]) -> OpResult<FleetCharts> {
        actor.require(Permission::Read)?;
        let (from, to) = last_days();
        let mut hosts: BTreeMap<String, u64> = BTreeMap::new();
        let mut bait: BTreeMap<String, u64> = BTreeMap::new();
        for a in agents {
            *hosts.entry(a.state.as_str().to_string()).or_default() += 1;
            *bait.entry(a.bait_state.clone()).or_default() += 1;
        }
        let placed = self.store.histogram(Series::BaitPlaced, from, to, DAYS).await?;
        let removed = self.store.histogram(Series::BaitRemoved, from, to, DAYS).await?;
        let mut level = self.store.count_before(Series::BaitPlaced, from).await? as i64
            - self.store.count_before(Series::BaitRemoved, from).await? as i64;
        let values = placed
            .iter()
            .zip(&removed)
            .map(|(p, r)| {
                level += *p as i64 - *r as i64;
                u64::try_from(level).unwrap_or(0)
            })
            .collect();
        Ok(FleetCharts {
            hosts: Counts::toned("Hosts by state", hosts),
            bait: Counts::toned("Hosts by bait state", bait),
            in_place: TimeSeries {
                title: "Bait files in place, last 30 days".into(),
                unit: "bait files".into(),
                from,
                to,
                values,
                area: true,
                wide: false,
                marks: vec![],
            },
            tamper: self
                .series("Tamper findings, last 30 days", "findings", Series::TamperFindings, from, to, DAYS)
                .await?,
        })
    }
}

/// The last 30 whole days up to now.
fn last_days() -> (DateTime<Utc>, DateTime<Utc>) {
    let to = Utc::now();
    (to - Duration::days(DAYS as i64), to)
}
