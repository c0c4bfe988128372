//! Counts for the console's charts: how many of something fell in each of
//! equal intervals, and how many of each value an incident's events carry.
//! Every query groups in the database, so a chart of an incident with a
//! million events reads a few dozen rows.

use chrono::{DateTime, Duration, Utc};
use honeytrail_core::incident::{IncidentState, Severity};
use sqlx::Row;

use crate::registry::millis;
use crate::{Store, StoreError};

/// What a time chart counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// Honey-key events by event time: all, one incident's, or one token's.
    Events,
    IncidentEvents(i64),
    TokenEvents(i64),
    /// Incidents by when they opened.
    IncidentsOpened,
    /// Incidents about tampered bait (an agent found its file changed or gone).
    TamperFindings,
    /// Bait files agents wrote, by when they were placed.
    BaitPlaced,
    /// Bait files agents removed, by when they were removed.
    BaitRemoved,
}

impl Series {
    /// The rows and their time column. Fixed text: nothing here comes from
    /// a caller.
    fn sql(self) -> (&'static str, &'static str) {
        match self {
            Series::Events | Series::IncidentEvents(_) | Series::TokenEvents(_) => ("events", "event_time"),
            Series::IncidentsOpened | Series::TamperFindings => ("incidents", "opened_at"),
            Series::BaitPlaced => ("agent_files f JOIN placements p ON p.id = f.placement_id", "p.placed_at"),
            Series::BaitRemoved => ("agent_files f", "f.removed_at"),
        }
    }

    /// The ID `$5` of [`Series::filter`] stands for.
    fn scope(self) -> Option<i64> {
        match self {
            Series::IncidentEvents(id) | Series::TokenEvents(id) => Some(id),
            _ => None,
        }
    }

    fn filter(self) -> &'static str {
        match self {
            Series::IncidentEvents(_) => " AND incident_id = $5",
            Series::TokenEvents(_) => " AND token_id = $5",
            Series::TamperFindings => " AND kind = 'tampered'",
            _ => "",
        }
    }
}

/// Which value of an incident's events to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventColumn {
    Api,
    SourceIp,
    Region,
    UserAgent,
    ErrorCode,
}

impl EventColumn {
    pub(crate) fn column(self) -> &'static str {
        match self {
            EventColumn::Api => "event_name",
            EventColumn::SourceIp => "source_ip",
            EventColumn::Region => "aws_region",
            EventColumn::UserAgent => "user_agent",
            EventColumn::ErrorCode => "error_code",
        }
    }
}

impl Store {
    /// How many of `series` fell in each of `buckets` equal intervals from
    /// `from` to `to` (the last interval ends at `to`, inclusive).
    pub async fn histogram(
        &self,
        series: Series,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        buckets: usize,
    ) -> Result<Vec<u64>, StoreError> {
        let buckets = buckets.max(1);
        let (from_ms, to_ms) = (millis(from), millis(to).max(millis(from) + 1));
        // Wide enough that `to` falls in the last interval.
        let width = ((to_ms - from_ms) / buckets as i64 + 1).max(1);
        let (rows, at) = series.sql();
        let sql = format!(
            "SELECT ({at} - $1) / $2 AS b, COUNT(*) AS n FROM {rows} WHERE {at} >= $3 AND {at} <= $4{} GROUP BY 1",
            series.filter()
        );
        let mut q = sqlx::query(&sql).bind(from_ms).bind(width).bind(from_ms).bind(to_ms);
        if let Some(id) = series.scope() {
            q = q.bind(id);
        }
        let mut out = vec![0u64; buckets];
        for row in q.fetch_all(&self.pool).await? {
            let b: i64 = row.try_get("b")?;
            let n: i64 = row.try_get("n")?;
            if let Some(slot) = usize::try_from(b).ok().and_then(|b| out.get_mut(b)) {
                *slot += u64::try_from(n).unwrap_or(0);
            }
        }
        Ok(out)
    }

    /// How many of `series` happened before `at`.
    pub async fn count_before(&self, series: Series, at: DateTime<Utc>) -> Result<u64, StoreError> {
        let counts = self.histogram(series, DateTime::<Utc>::UNIX_EPOCH, at - Duration::milliseconds(1), 1).await?;
        Ok(counts[0])
    }

    /// How many of an incident's events carry each value of `column`, most first.
    pub async fn event_counts(&self, incident_id: i64, column: EventColumn) -> Result<Vec<(String, u64)>, StoreError> {
        let column = column.column();
        // `column` is one of a fixed set of names, never caller input.
        let rows = sqlx::query(&format!(
            "SELECT {column} AS v, COUNT(*) AS n FROM events \
             WHERE incident_id = $1 AND {column} IS NOT NULL GROUP BY {column}"
        ))
        .bind(incident_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push((r.try_get("v")?, u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0)));
        }
        out.sort_unstable_by(|a: &(String, u64), b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(out)
    }

    /// Unresolved incidents by severity (as [`honeytrail_core::incident::Incident::severity`]
    /// computes it), every severity listed, lowest first.
    pub async fn open_by_severity(&self) -> Result<Vec<(Severity, u64)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT i.kind, i.state, i.raised, \
             (SELECT l.value FROM token_labels l WHERE l.token_id = i.token_id AND l.name = 'severity') AS label, \
             COUNT(*) AS n FROM incidents i WHERE i.state IN ({}) GROUP BY 1, 2, 3, 4",
            IncidentState::accepting_events_sql()
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<(Severity, u64)> = Severity::ALL.iter().map(|s| (*s, 0)).collect();
        for r in &rows {
            let severity = crate::incidents::severity_from_row(r, "label")?;
            let n = u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0);
            if let Some(slot) = out.iter_mut().find(|(s, _)| *s == severity) {
                slot.1 += n;
            }
        }
        Ok(out)
    }
}
