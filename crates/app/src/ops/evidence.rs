//! Host file-access evidence: reads of bait files from hosts' agents and
//! from audit logs, tied to the placement whose host and path they match;
//! the sweep that opens a bait-touched incident when no use of the key
//! followed a read; and the audit rules that make auditd report reads.
//!
//! An agent's records are attacker-reachable (anyone on the host can make
//! processes with any name open the bait): they are bounded
//! ([`Access::bounded`]) and their host is the agent's, never their own.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use honeytrail_core::access::Permission;
use honeytrail_core::evidence::{Access, AccessSource, Touch};
use honeytrail_core::fleet::{EvidenceBatch, EvidenceReply, MAX_EVIDENCE_BATCH};
use honeytrail_core::incident::{TokenEvent, BAIT_READ_EVENT, EVIDENCE_FLOOD_EVENT};
use honeytrail_store::{EvidenceFilter, NewAccess};
use serde::Deserialize;

use super::agents::AgentSession;

use crate::ops::agents::host_event;
use crate::sources::Sink;
use crate::{Actor, OpError, OpResult, Ops};
pub use honeytrail_core::evidence::FiledRead;

/// What an audit log gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditIngest {
    /// Events read (all of them, ours or not).
    pub events: usize,
    /// Reads of placed bait (or tagged with the audit key) filed now.
    pub filed: usize,
    /// Reads filed before (the same log read again).
    pub known: usize,
    /// Reads of placed bait among them.
    pub matched: usize,
}

/// What one evidence sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TouchSweep {
    /// Reads a key use followed.
    pub used: usize,
    /// Reads that opened (or joined) a bait-touched incident.
    pub touched: usize,
}

/// Which reads to list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceQuery {
    #[serde(default)]
    pub host: Option<String>,
    /// An access key ID or token number.
    #[serde(default)]
    pub token: Option<String>,
    /// Only reads at or after this time.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// Only reads at or before this time.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    #[serde(default)]
    pub limit: Option<i64>,
}

impl Ops {
    fn quiet(&self, a: &Access) -> bool {
        a.by_owner
            || a.process.as_ref().and_then(|p| p.exe.as_deref()).is_some_and(|exe| self.config.evidence.quiet(exe))
    }

    /// Reads an agent observed, filed against the agent's own bait files.
    /// What one agent credential can make the server keep is bounded: a
    /// record naming a path the agent never placed is counted, not kept;
    /// beyond `evidence.agent_records_per_hour` records in the last hour or
    /// `evidence.agent_bytes` kept in all, records are counted, not kept,
    /// and the flood raises an incident on the host's key (once an hour).
    pub async fn agent_evidence(&self, agent: &AgentSession, batch: &EvidenceBatch) -> OpResult<EvidenceReply> {
        let agent = &agent.0;
        if batch.records.len() > MAX_EVIDENCE_BATCH {
            return Err(OpError::invalid(format!("at most {MAX_EVIDENCE_BATCH} access records per delivery")));
        }
        let now = Utc::now();
        let (recent, kept_bytes) = self.store.agent_evidence_usage(agent.id, now - Duration::hours(1)).await?;
        let quota = &self.config.evidence;
        let mut records_left = i64::from(quota.agent_records_per_hour) - recent;
        let mut bytes_left = i64::try_from(quota.agent_bytes).unwrap_or(i64::MAX) - kept_bytes;
        let mut reads = Vec::with_capacity(batch.records.len());
        let (mut unplaced, mut over) = (0usize, 0usize);
        for r in &batch.records {
            let mut a = r.clone().bounded();
            if a.id.trim().is_empty() {
                return Err(OpError::invalid("an access record needs an id"));
            }
            if a.source == AccessSource::Auditd && a.process.is_none() {
                return Err(OpError::invalid("an audit record carries its process"));
            }
            a.host = None;
            let Some(matched) = agent
                .files
                .iter()
                .find(|f| f.removed_at.is_none() && f.path == a.path)
                .map(|f| (f.token_id, f.placement_id))
            else {
                unplaced += 1;
                continue;
            };
            let size = serde_json::to_string(&a).map(|t| t.len() as i64).unwrap_or(i64::MAX);
            if records_left <= 0 || size > bytes_left {
                over += 1;
                continue;
            }
            records_left -= 1;
            bytes_left -= size;
            let quiet = self.quiet(&a);
            reads.push(NewAccess {
                access: a,
                host: agent.host.hostname.clone(),
                agent_id: Some(agent.id),
                matched: Some(matched),
                quiet,
            });
        }
        let filed = self.store.file_access(&reads).await?;
        if batch.dropped > 0 {
            tracing::warn!(
                agent = agent.id,
                dropped = batch.dropped,
                "an agent dropped reads of its bait while the server was unreachable"
            );
            self.store.record_watch(agent.id, None, batch.dropped).await?;
        }
        if filed > 0 {
            tracing::info!(agent = agent.id, host = %agent.host.hostname, filed, "bait read on an enrolled host");
        }
        let refused = unplaced + over;
        if refused > 0 {
            self.store.count_refused_evidence(agent.id, refused as u64).await?;
            tracing::warn!(
                agent = agent.id,
                host = %agent.host.hostname,
                unplaced,
                over_quota = over,
                "read records from an agent counted, not kept"
            );
        }
        if over > 0 {
            self.evidence_flood(agent, recent, kept_bytes, over, now).await?;
        }
        Ok(EvidenceReply { filed, refused })
    }

    /// An agent sent more reads than its quota: an incident on its key, at
    /// most one event an hour (each names what was kept and refused).
    async fn evidence_flood(
        &self,
        agent: &honeytrail_store::Agent,
        recent: i64,
        kept_bytes: i64,
        over: usize,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        let Some(token_id) = agent.token_id else { return Ok(()) };
        let token = self.store.token(token_id).await?;
        let q = &self.config.evidence;
        let what = format!(
            "agent #{} on {} sent more reads of its bait than its quota ({} records an hour, {} bytes kept): {over} \
             refused now after {recent} in the last hour and {kept_bytes} bytes kept. A process reading the bait in a \
             loop, or someone using the agent's credential to fill the server's disk",
            agent.id, agent.host.hostname, q.agent_records_per_hour, q.agent_bytes
        );
        let hour = now.timestamp() / 3600;
        let event = TokenEvent {
            event_id: format!("fleet:{}:{EVIDENCE_FLOOD_EVENT}:{hour}", agent.id),
            origin: format!("agent #{} on {}", agent.id, agent.host.hostname),
            ..host_event(
                &token,
                EVIDENCE_FLOOD_EVENT,
                what.clone(),
                now,
                serde_json::json!({"agent": agent.id, "host": agent.host.hostname, "event": EVIDENCE_FLOOD_EVENT, "what": what}),
            )
        };
        Sink::new(self).add(&[event]).await?;
        Ok(())
    }

    /// Reads from an audit log (`honeytrail ingest auditd`): the host is the
    /// log's (`node=`) unless `host` is given; only reads of placed bait,
    /// or events tagged with the audit key, are kept.
    pub async fn ingest_audit(
        &self,
        actor: &Actor,
        host: Option<&str>,
        events: &[honeytrail_core::auditd::AuditEvent],
        key: &str,
    ) -> OpResult<AuditIngest> {
        actor.require(Permission::Respond)?;
        let mut out = AuditIngest { events: events.len(), ..AuditIngest::default() };
        let mut reads = Vec::new();
        let mut placed: HashMap<(String, String), Option<(i64, i64)>> = HashMap::new();
        for e in events {
            for a in e.accesses(host) {
                let Some(h) = a.host.clone().filter(|h| !h.trim().is_empty()) else {
                    return Err(OpError::invalid(
                        "the audit log does not name its host (no node= field): say which host it is from with --host",
                    ));
                };
                // One lookup per host and path, however many reads a log holds of it.
                let matched = match placed.get(&(h.clone(), a.path.clone())) {
                    Some(m) => *m,
                    None => {
                        let m = self.store.placement_at(&h, &a.path).await?;
                        placed.insert((h.clone(), a.path.clone()), m);
                        m
                    }
                };
                if matched.is_none() && e.key.as_deref() != Some(key) {
                    continue;
                }
                out.matched += usize::from(matched.is_some());
                let quiet = self.quiet(&a);
                let mut a = a;
                a.host = None;
                reads.push(NewAccess { access: a, host: h, agent_id: None, matched, quiet });
            }
        }
        if reads.is_empty() {
            return Ok(out);
        }
        let detail = format!("{} read(s) of bait in an audit log", reads.len());
        let filed = self.audited(actor, "evidence.ingest", "auditd", Some(&detail)).file_access(&reads).await?;
        out.filed = filed;
        out.known = reads.len() - filed;
        Ok(out)
    }

    /// Reads, newest first.
    pub async fn evidence(&self, actor: &Actor, q: &EvidenceQuery) -> OpResult<Vec<FiledRead>> {
        actor.require(Permission::Read)?;
        let token_id = match q.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            Some(key) => Some(self.find_token(key).await?.id),
            None => None,
        };
        let filter = EvidenceFilter {
            host: q.host.as_deref().map(str::trim).filter(|h| !h.is_empty()).map(str::to_string),
            token_id,
            until: q.until,
            since: q.since,
            limit: q.limit,
        };
        Ok(self.store.evidence(&filter).await?)
    }

    /// `auditctl` rules watching every active placement on `host` (every
    /// host: `None`) for reads, tagged `key`.
    pub async fn audit_rules(&self, actor: &Actor, host: Option<&str>, key: &str) -> OpResult<String> {
        actor.require(Permission::Read)?;
        let placed = self.store.placement_paths(host).await?;
        let paths: Vec<String> = placed.into_iter().map(|(_, p)| p).filter(|p| p.starts_with('/')).collect();
        if paths.is_empty() {
            return Err(OpError::not_found(match host {
                Some(h) => format!("placements with an absolute path on host {h:?}"),
                None => "placements with an absolute path".into(),
            }));
        }
        honeytrail_core::auditd::rules(&paths, key).map_err(|e| OpError::invalid(e.0))
    }

    /// Settles reads older than `evidence.touch_window`: a use of the key
    /// within the window makes them part of that use; else they open (or
    /// join) a low-severity bait-touched incident on the key.
    pub async fn evidence_sweep(&self) -> OpResult<TouchSweep> {
        let window = self.config.evidence.window().map_err(|e| OpError::invalid(e.to_string()))?;
        let now = Utc::now();
        let mut out = TouchSweep::default();
        let pending = self.store.pending_touches(now - window).await?;
        let mut events = Vec::new();
        let mut touched = Vec::new();
        let mut tokens: HashMap<i64, honeytrail_core::Token> = HashMap::new();
        for read in &pending {
            let Some(token_id) = read.token_id else { continue };
            let a = &read.access;
            // A use shortly before the read counts too: the clocks of host and AWS differ.
            let used = self.store.key_used_between(token_id, a.at - Duration::minutes(5), a.last_at + window).await?;
            if used {
                self.store.settle_touches(&[read.id], Touch::Used).await?;
                out.used += 1;
                continue;
            }
            let token = match tokens.get(&token_id) {
                Some(t) => t.clone(),
                None => {
                    let t = self.store.token(token_id).await?;
                    tokens.insert(token_id, t.clone());
                    t
                }
            };
            let what = format!(
                "{} ({}), and the key was not used within {}",
                read.sentence, a.path, self.config.evidence.touch_window
            );
            let raw = serde_json::json!({ "evidence": read.id, "host": read.host, "path": a.path, "read": a });
            let mut event = host_event(&token, BAIT_READ_EVENT, what, a.at, raw);
            event.event_id = format!("evidence:{}", read.id);
            event.origin = format!("read of {} on {}", a.path, read.host);
            events.push(event);
            touched.push(read.id);
        }
        if !events.is_empty() {
            Sink::new(self).add(&events).await?;
            self.store.settle_touches(&touched, Touch::Touched).await?;
            out.touched = touched.len();
        }
        Ok(out)
    }
}
