//! The fleet: keys minted ahead for enrolling hosts (the pool), the hosts
//! enrolled, the bait files their agents wrote, and the commands waiting
//! for them.
//!
//! **Invariants.** An enrolment spends a use of its secret, takes a key out
//! of the pool and records the agent in one transaction, so two hosts never
//! get the same key and a refused enrolment spends nothing. A placement is
//! recorded only for a file the agent confirmed it wrote. A pool key has
//! exactly one custody hop (minted); the enrolment adds the second
//! (delivered to that host), and nothing else ever touches it.

use chrono::{DateTime, Utc};
use honeytrail_core::fleet::{AgentState, CommandKind, Ec2Instance, FileReport, HostFacts, PlacedFile, Presence};
use honeytrail_core::template::Credential;
use honeytrail_core::{bearer_hash, Labels, NewToken, Spot, Token};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::fleet::EnrolmentSecret;
use crate::registry::{from_millis, insert_hop, insert_labels, insert_placements, millis};
use crate::{Backend, NewHop, Store, StoreError};
pub use honeytrail_core::fleet::{Agent, AgentCommand, AgentFile};

/// What an enrolment gave a host.
#[derive(Debug, Clone)]
pub struct HostEnrolment {
    pub agent: Agent,
    pub token: Token,
    pub enrolment: EnrolmentSecret,
}

/// The session canary an enrolment hands out instead of a pool key: its
/// token (registered already) and when its first session expires.
#[derive(Debug, Clone, Copy)]
pub struct SessionHandout {
    pub token_id: i64,
    pub expires_at: DateTime<Utc>,
}

/// A bait file whose presence a heartbeat changed.
#[derive(Debug, Clone)]
pub struct PresenceChange {
    pub file: AgentFile,
    pub before: Presence,
}

const AGENT_COLUMNS: &str =
    "a.id, a.enrollment_id, a.token_id, t.access_key_id, a.hostname, a.machine_id, a.dmi_serial, \
     a.os, a.instance_id, a.agent_version, a.source_address, a.template, a.state, a.detail, a.enrolled_at, \
     a.confirmed_at, a.last_seen_at, a.stale_since, a.ec2_instance_id, a.ec2_account_id, a.ec2_region, \
     a.watch, a.evidence_dropped, a.evidence_refused, a.session_expires_at";
const AGENT_FROM: &str = "agents a LEFT JOIN tokens t ON t.id = a.token_id";
const FILE_COLUMNS: &str =
    "id, agent_id, token_id, placement_id, path, local_user, digest, presence, presence_at, removed_at";
const COMMAND_COLUMNS: &str =
    "id, agent_id, kind, state, new_token_id, requested_by, requested_at, done_at, detail, session_expires_at";

fn opt_time(r: &AnyRow, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    r.try_get::<Option<i64>, _>(column)?.map(from_millis).transpose()
}

fn agent_row(r: &AnyRow) -> Result<Agent, StoreError> {
    let template: String = r.try_get("template")?;
    Ok(Agent {
        id: r.try_get("id")?,
        enrolment_id: r.try_get("enrollment_id")?,
        token_id: r.try_get("token_id")?,
        access_key_id: r.try_get("access_key_id")?,
        host: HostFacts {
            hostname: r.try_get("hostname")?,
            machine_id: r.try_get("machine_id")?,
            dmi_serial: r.try_get("dmi_serial")?,
            os: r.try_get("os")?,
            instance_id: r.try_get("instance_id")?,
            agent_version: r.try_get("agent_version")?,
        },
        source_address: r.try_get("source_address")?,
        ec2: match (
            r.try_get::<Option<String>, _>("ec2_instance_id")?,
            r.try_get::<Option<String>, _>("ec2_account_id")?,
            r.try_get::<Option<String>, _>("ec2_region")?,
        ) {
            (Some(instance_id), Some(account_id), region) => {
                Some(Ec2Instance { instance_id, account_id, region: region.unwrap_or_default() })
            }
            _ => None,
        },
        template: serde_json::from_str(&template)
            .map_err(|e| StoreError::Corrupt { what: "agent template", detail: e.to_string() })?,
        state: {
            let raw: String = r.try_get("state")?;
            AgentState::parse(&raw).ok_or(StoreError::Corrupt { what: "agent state", detail: raw })?
        },
        detail: r.try_get("detail")?,
        enrolled_at: from_millis(r.try_get("enrolled_at")?)?,
        confirmed_at: opt_time(r, "confirmed_at")?,
        last_seen_at: opt_time(r, "last_seen_at")?,
        stale_since: opt_time(r, "stale_since")?,
        watch: r.try_get("watch")?,
        evidence_dropped: r.try_get("evidence_dropped")?,
        evidence_refused: r.try_get("evidence_refused")?,
        session_expires_at: opt_time(r, "session_expires_at")?,
        files: Vec::new(),
        commands: Vec::new(),
        bait_state: String::new(),
    })
}

fn file_row(r: &AnyRow) -> Result<(i64, AgentFile), StoreError> {
    Ok((
        r.try_get("agent_id")?,
        AgentFile {
            id: r.try_get("id")?,
            token_id: r.try_get("token_id")?,
            placement_id: r.try_get("placement_id")?,
            path: r.try_get("path")?,
            local_user: r.try_get("local_user")?,
            digest: r.try_get("digest")?,
            presence: Presence::parse(&r.try_get::<String, _>("presence")?),
            presence_at: opt_time(r, "presence_at")?,
            removed_at: opt_time(r, "removed_at")?,
        },
    ))
}

fn command_row(r: &AnyRow) -> Result<AgentCommand, StoreError> {
    let kind: String = r.try_get("kind")?;
    Ok(AgentCommand {
        id: r.try_get("id")?,
        agent_id: r.try_get("agent_id")?,
        kind: CommandKind::parse(&kind).ok_or(StoreError::Corrupt { what: "agent command kind", detail: kind })?,
        state: r.try_get("state")?,
        new_token_id: r.try_get("new_token_id")?,
        requested_by: r.try_get("requested_by")?,
        requested_at: from_millis(r.try_get("requested_at")?)?,
        done_at: opt_time(r, "done_at")?,
        detail: r.try_get("detail")?,
        session_expires_at: opt_time(r, "session_expires_at")?,
    })
}

/// Takes the oldest key out of the pool, or `None` when it is empty. On
/// PostgreSQL concurrent takers skip each other's row instead of waiting;
/// on SQLite the write transaction already serialises them.
pub(crate) async fn take_pool_key(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
) -> Result<Option<i64>, StoreError> {
    let lock = if backend == Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
    let row = sqlx::query(&format!(
        "DELETE FROM key_pool WHERE token_id = (SELECT token_id FROM key_pool ORDER BY token_id LIMIT 1{lock}) RETURNING token_id"
    ))
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// The placement an agent's file is recorded as.
fn spot_for(agent: &Agent, file: &PlacedFile, labels: &Labels) -> Spot {
    let h = &agent.host;
    let mut notes = Vec::new();
    if let Some(m) = &h.machine_id {
        notes.push(format!("machine-id {m}"));
    }
    if let Some(i) = &h.instance_id {
        notes.push(format!("instance {i}"));
    }
    let mut labels = labels.clone();
    if let Some(m) = &h.machine_id {
        labels.insert("machine-id".into(), m.clone());
    }
    if let Some(i) = &h.instance_id {
        labels.insert("instance-id".into(), i.clone());
    }
    Spot {
        host: h.hostname.clone(),
        path: file.path.clone(),
        owner: file.user.clone(),
        asset: match (&h.instance_id, &h.os) {
            (Some(i), Some(os)) => Some(format!("{os}, instance {i}")),
            (Some(i), None) => Some(format!("instance {i}")),
            (None, os) => os.clone(),
        },
        serial: h.dmi_serial.clone(),
        format: Some(agent.template.format.clone()),
        placed_by: Some(format!("enrolment #{} (agent #{})", agent.enrolment_id, agent.id)),
        notes: (!notes.is_empty()).then(|| notes.join("; ")),
        labels,
        // Only what AWS signed: a host's own claim of an instance ID must
        // never point a quarantine at another machine.
        instance_id: agent.ec2.as_ref().map(|e| e.instance_id.clone()),
        iam_user: None,
        aws_account: agent.ec2.as_ref().map(|e| e.account_id.clone()),
    }
}

impl Store {
    /// Records a key just minted for the pool: the token, its first hop,
    /// and its place in the pool, in one transaction.
    pub async fn insert_pool_token(&self, new: &NewToken, hop: &NewHop) -> Result<Token, StoreError> {
        let mut tx = self.begin_write().await?;
        let id = self.insert_token_tx(&mut tx, new, &[], std::slice::from_ref(hop)).await?;
        sqlx::query("INSERT INTO key_pool (token_id, added_at) VALUES ($1, $2)")
            .bind(id)
            .bind(millis(Utc::now()))
            .execute(&mut *tx)
            .await?;
        self.commit(tx).await?;
        self.token(id).await
    }

    /// How many keys wait in the pool.
    pub async fn pool_size(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM key_pool").fetch_one(&self.pool).await?.try_get(0)?)
    }

    /// Whether `token_id` waits in the pool (minted ahead, handed to no one).
    pub async fn in_pool(&self, token_id: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query("SELECT 1 FROM key_pool WHERE token_id = $1")
            .bind(token_id)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    /// Takes a key out of the pool for good (it is being retired).
    pub async fn drop_from_pool(&self, token_id: i64) -> Result<(), StoreError> {
        self.exec(sqlx::query("DELETE FROM key_pool WHERE token_id = $1").bind(token_id)).await?;
        Ok(())
    }

    /// Enrols a host: spends one use of `secret`, takes a key from the pool
    /// (for a session template: hands out the session canary `session`,
    /// registered already, and needs it), records the agent (its credential only as a hash), labels the key
    /// with the enrolment's labels and adds the custody hop "delivered to
    /// this host", all in one transaction. Refused, spending nothing, when
    /// the secret cannot be used or the pool is empty (`PoolEmpty`).
    // Each argument is one fact of the enrolment, checked on its own; a
    // struct for them would only be unpacked again here.
    #[allow(clippy::too_many_arguments)]
    pub async fn enrol_agent(
        &self,
        secret: &str,
        host: &HostFacts,
        source_address: Option<&str>,
        ec2: Option<&Ec2Instance>,
        credential: &str,
        default_template: &str,
        session: Option<&SessionHandout>,
    ) -> Result<HostEnrolment, StoreError> {
        host.check().map_err(|e| StoreError::Refused(e.0))?;
        let now = Utc::now();
        let mut tx = self.begin_write().await?;
        let Some(enrolment) = self.spend_enrolment(&mut tx, secret, now).await? else {
            tx.rollback().await?;
            return Err(self.why_unusable(secret).await?);
        };
        let template_name = enrolment.template.clone().unwrap_or_else(|| default_template.to_string());
        let template = crate::fleet::template_on(&mut tx, &template_name).await.map_err(|_| {
            StoreError::Refused(format!(
                "enrolment secret #{} names placement template {template_name}, which no longer exists; add it again (`honeytrail template add`)",
                enrolment.id
            ))
        })?;
        if session.is_some() != (template.credential == Credential::Session) {
            tx.rollback().await?;
            return Err(StoreError::Refused(format!(
                "placement template {template_name} places {} credentials, and the enrolment brought the other kind; \
                 enrol again",
                template.credential.as_str()
            )));
        }
        let token_id = match session {
            Some(s) => s.token_id,
            None => match take_pool_key(self.backend, &mut tx).await? {
                Some(id) => id,
                None => {
                    tx.rollback().await?;
                    return Err(StoreError::PoolEmpty);
                }
            },
        };
        let template_json = serde_json::to_string(&template).map_err(|e| StoreError::Refused(e.to_string()))?;
        let row = sqlx::query(
            "INSERT INTO agents (enrollment_id, credential_hash, token_id, hostname, machine_id, dmi_serial, os, \
             instance_id, agent_version, source_address, template, state, enrolled_at, ec2_instance_id, \
             ec2_account_id, ec2_region, session_expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id",
        )
        .bind(enrolment.id)
        .bind(bearer_hash(credential))
        .bind(token_id)
        .bind(&host.hostname)
        .bind(&host.machine_id)
        .bind(&host.dmi_serial)
        .bind(&host.os)
        .bind(&host.instance_id)
        .bind(&host.agent_version)
        .bind(source_address)
        .bind(template_json)
        .bind(AgentState::Enrolling.as_str())
        .bind(millis(now))
        .bind(ec2.map(|e| e.instance_id.as_str()))
        .bind(ec2.map(|e| e.account_id.as_str()))
        .bind(ec2.map(|e| e.region.as_str()))
        .bind(session.map(|s| millis(s.expires_at)))
        .fetch_one(&mut *tx)
        .await;
        let row = match row {
            Err(e) if ec2.is_some() && crate::registry::is_unique_violation(&e) => {
                tx.rollback().await?;
                return Err(StoreError::Refused(format!(
                    "EC2 instance {} is already enrolled: one enrolment per instance (remove its agent first to enrol it again)",
                    ec2.map(|e| e.instance_id.as_str()).unwrap_or_default()
                )));
            }
            other => other?,
        };
        let agent_id: i64 = row.try_get(0)?;
        // A pool key carries the labels of the host it goes to, and no others.
        sqlx::query("DELETE FROM token_labels WHERE token_id = $1").bind(token_id).execute(&mut *tx).await?;
        let labels: Vec<(i64, &String, &String)> = enrolment.labels.iter().map(|(k, v)| (token_id, k, v)).collect();
        insert_labels(self.backend, &mut tx, &labels).await?;
        let from = source_address.map(|a| format!(" from {a}")).unwrap_or_default();
        insert_hop(
            &mut tx,
            token_id,
            &NewHop {
                description: format!(
                    "delivered to host {} over TLS by enrolment #{} (agent #{agent_id}){from}",
                    host.hostname, enrolment.id
                ),
                actor: Some(format!("enrolment #{}", enrolment.id)),
                automatic: true,
                at: now,
            },
        )
        .await?;
        self.commit(tx).await?;
        Ok(HostEnrolment { agent: self.agent(agent_id).await?, token: self.token(token_id).await?, enrolment })
    }

    pub async fn agent(&self, id: i64) -> Result<Agent, StoreError> {
        let row = sqlx::query(&format!("SELECT {AGENT_COLUMNS} FROM {AGENT_FROM} WHERE a.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("agent #{id}")))?;
        let mut agents = vec![agent_row(&row)?];
        self.fill_agents(&mut agents).await?;
        Ok(agents.remove(0))
    }

    /// The agent holding `credential`, if any (and not removed or failed).
    pub async fn agent_by_credential(&self, credential: &str) -> Result<Option<Agent>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {AGENT_COLUMNS} FROM {AGENT_FROM} WHERE a.credential_hash = $1 AND a.state IN ('enrolling', 'active')"
        ))
        .bind(bearer_hash(credential.trim()))
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(r) => {
                let mut agents = vec![agent_row(&r)?];
                self.fill_agents(&mut agents).await?;
                Ok(agents.pop())
            }
        }
    }

    /// Every agent, newest first, with its files and open or recent commands.
    pub async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {AGENT_COLUMNS} FROM {AGENT_FROM} ORDER BY a.id DESC"))
            .fetch_all(&self.pool)
            .await?;
        let mut agents = rows.iter().map(agent_row).collect::<Result<Vec<_>, _>>()?;
        self.fill_agents(&mut agents).await?;
        Ok(agents)
    }

    async fn fill_agents(&self, agents: &mut [Agent]) -> Result<(), StoreError> {
        if agents.is_empty() {
            return Ok(());
        }
        let (files, commands) = if agents.len() == 1 {
            let id = agents[0].id;
            (
                sqlx::query(&format!("SELECT {FILE_COLUMNS} FROM agent_files WHERE agent_id = $1 ORDER BY id"))
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await?,
                sqlx::query(&format!("SELECT {COMMAND_COLUMNS} FROM agent_commands WHERE agent_id = $1 ORDER BY id"))
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await?,
            )
        } else {
            (
                sqlx::query(&format!("SELECT {FILE_COLUMNS} FROM agent_files ORDER BY id"))
                    .fetch_all(&self.pool)
                    .await?,
                sqlx::query(&format!("SELECT {COMMAND_COLUMNS} FROM agent_commands ORDER BY id"))
                    .fetch_all(&self.pool)
                    .await?,
            )
        };
        let mut by_id: std::collections::HashMap<i64, &mut Agent> = agents.iter_mut().map(|a| (a.id, a)).collect();
        for r in &files {
            let (agent_id, file) = file_row(r)?;
            if let Some(a) = by_id.get_mut(&agent_id) {
                a.files.push(file);
            }
        }
        for r in &commands {
            let c = command_row(r)?;
            if let Some(a) = by_id.get_mut(&c.agent_id) {
                a.commands.push(c);
            }
        }
        for a in agents.iter_mut() {
            a.settle_bait_state();
        }
        Ok(())
    }

    /// Records what an enrolling agent wrote: one placement per file (host
    /// facts, path, local user), the agent active. Refused unless the agent
    /// is enrolling, so a confirmation cannot be replayed.
    pub async fn confirm_agent(&self, agent_id: i64, files: &[PlacedFile]) -> Result<Agent, StoreError> {
        let agent = self.agent(agent_id).await?;
        if agent.state != AgentState::Enrolling {
            return Err(StoreError::Refused(format!(
                "agent #{agent_id} is {}, not enrolling: nothing to confirm",
                agent.state.as_str()
            )));
        }
        let token_id = agent.token_id.ok_or(StoreError::Corrupt { what: "agent", detail: "no key".into() })?;
        let now = Utc::now();
        let mut tx = self.begin_write().await?;
        self.record_files(&mut tx, &agent, token_id, files, now).await?;
        let done = sqlx::query(
            "UPDATE agents SET state = $1, confirmed_at = $2, last_seen_at = $2 WHERE id = $3 AND state = $4",
        )
        .bind(AgentState::Active.as_str())
        .bind(millis(now))
        .bind(agent_id)
        .bind(AgentState::Enrolling.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(StoreError::Refused(format!("agent #{agent_id} was confirmed or failed meanwhile")));
        }
        self.commit(tx).await?;
        self.agent(agent_id).await
    }

    async fn record_files(
        &self,
        tx: &mut Transaction<'static, Any>,
        agent: &Agent,
        token_id: i64,
        files: &[PlacedFile],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // On the transaction's own connection: a query on the pool from
        // inside a transaction can wait forever for a connection that every
        // waiting writer holds.
        let labels: Labels = sqlx::query("SELECT name, value FROM token_labels WHERE token_id = $1")
            .bind(token_id)
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let spots: Vec<Spot> = files.iter().map(|f| spot_for(agent, f, &labels)).collect();
        let pairs: Vec<(i64, &Spot)> = spots.iter().map(|s| (token_id, s)).collect();
        let ids = insert_placements(self.backend, tx, &pairs, now).await?;
        for (file, placement_id) in files.iter().zip(ids) {
            sqlx::query(
                "INSERT INTO agent_files (agent_id, token_id, placement_id, path, local_user, digest, presence, presence_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(agent.id)
            .bind(token_id)
            .bind(placement_id)
            .bind(&file.path)
            .bind(&file.user)
            .bind(&file.digest)
            .bind(Presence::Present.as_str())
            .bind(millis(now))
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Marks an agent failed (it gave up, or never confirmed) and returns it;
    /// the caller retires its key. No placement is ever recorded for it.
    pub async fn fail_agent(&self, agent_id: i64, reason: &str) -> Result<Agent, StoreError> {
        let done = self
            .exec(
                sqlx::query("UPDATE agents SET state = $1, detail = $2 WHERE id = $3 AND state = $4")
                    .bind(AgentState::Failed.as_str())
                    .bind(reason)
                    .bind(agent_id)
                    .bind(AgentState::Enrolling.as_str()),
            )
            .await?;
        if done.rows_affected() == 0 {
            let agent = self.agent(agent_id).await?;
            return Err(StoreError::Refused(format!(
                "agent #{agent_id} is {}: only an enrolling agent can give up",
                agent.state.as_str()
            )));
        }
        self.agent(agent_id).await
    }

    /// Records a heartbeat: the agent seen now (no longer stale), and each
    /// reported file's presence. Returns the files whose presence changed.
    pub async fn record_heartbeat(
        &self,
        agent_id: i64,
        reports: &[FileReport],
    ) -> Result<Vec<PresenceChange>, StoreError> {
        let agent = self.agent(agent_id).await?;
        let now = Utc::now();
        let mut changes = Vec::new();
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE agents SET last_seen_at = $1, stale_since = NULL WHERE id = $2")
            .bind(millis(now))
            .bind(agent_id)
            .execute(&mut *tx)
            .await?;
        for file in agent.files.iter().filter(|f| f.removed_at.is_none()) {
            // A file the agent stopped reporting is not assumed gone: only what it says counts.
            let Some(report) = reports.iter().find(|r| r.path == file.path) else { continue };
            if report.presence == Presence::Unknown {
                continue;
            }
            sqlx::query("UPDATE agent_files SET presence = $1, presence_at = $2 WHERE id = $3")
                .bind(report.presence.as_str())
                .bind(millis(now))
                .bind(file.id)
                .execute(&mut *tx)
                .await?;
            if report.presence != file.presence {
                let mut after = file.clone();
                after.presence = report.presence;
                after.presence_at = Some(now);
                changes.push(PresenceChange { file: after, before: file.presence });
            }
        }
        self.commit(tx).await?;
        Ok(changes)
    }

    /// Asks an agent to rotate or remove its bait, on its next heartbeat.
    /// Refused while another command is open, or unless the agent is active.
    pub async fn request_command(
        &self,
        agent_id: i64,
        kind: CommandKind,
        by: &str,
    ) -> Result<AgentCommand, StoreError> {
        let agent = self.agent(agent_id).await?;
        if agent.state != AgentState::Active {
            return Err(StoreError::Refused(format!(
                "agent #{agent_id} on {} is {}: only an active agent takes commands",
                agent.host.hostname,
                agent.state.as_str()
            )));
        }
        if let Some(open) = agent.commands.iter().find(|c| c.open()) {
            return Err(StoreError::Refused(format!(
                "agent #{agent_id} has command #{} ({}) still {}; wait for it",
                open.id,
                open.kind.as_str(),
                open.state
            )));
        }
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO agent_commands (agent_id, kind, state, requested_by, requested_at) VALUES ($1, $2, 'pending', $3, $4) RETURNING {COMMAND_COLUMNS}"
        ))
        .bind(agent_id)
        .bind(kind.as_str())
        .bind(by)
        .bind(millis(Utc::now()))
        .fetch_one(&mut *tx)
        .await?;
        let command = command_row(&row)?;
        self.commit(tx).await?;
        Ok(command)
    }

    /// Gives an open rotation its new key: taken from the pool, delivered
    /// to the agent's host (custody hop), the command `sent`. A command that
    /// already has its key keeps it (the reply was lost; the agent asks again).
    pub async fn key_for_rotation(&self, command_id: i64) -> Result<i64, StoreError> {
        let now = Utc::now();
        let command_of = |row: Option<sqlx::any::AnyRow>| {
            row.ok_or_else(|| StoreError::NotFound(format!("command #{command_id}"))).and_then(|r| command_row(&r))
        };
        let query = format!("SELECT {COMMAND_COLUMNS} FROM agent_commands WHERE id = $1");
        // What the transaction needs from elsewhere is read before it: a
        // query on the pool from inside it could wait forever for a
        // connection every waiting writer holds.
        let before = command_of(sqlx::query(&query).bind(command_id).fetch_optional(&self.pool).await?)?;
        let agent = self.agent(before.agent_id).await?;
        let old_labels = match agent.token_id {
            Some(old) => Some(self.token(old).await?.labels),
            None => None,
        };
        let mut tx = self.begin_write().await?;
        let command = command_of(sqlx::query(&query).bind(command_id).fetch_optional(&mut *tx).await?)?;
        if let Some(id) = command.new_token_id {
            tx.rollback().await?;
            return Ok(id);
        }
        let Some(token_id) = take_pool_key(self.backend, &mut tx).await? else {
            tx.rollback().await?;
            return Err(StoreError::PoolEmpty);
        };
        // The new key carries the old one's labels.
        if let Some(labels) = old_labels {
            sqlx::query("DELETE FROM token_labels WHERE token_id = $1").bind(token_id).execute(&mut *tx).await?;
            let rows: Vec<(i64, &String, &String)> = labels.iter().map(|(k, v)| (token_id, k, v)).collect();
            insert_labels(self.backend, &mut tx, &rows).await?;
        }
        insert_hop(
            &mut tx,
            token_id,
            &NewHop {
                description: format!(
                    "delivered to host {} over TLS by rotation command #{command_id} (agent #{})",
                    agent.host.hostname, agent.id
                ),
                actor: Some(command.requested_by.clone()),
                automatic: true,
                at: now,
            },
        )
        .await?;
        sqlx::query("UPDATE agent_commands SET new_token_id = $1, state = 'sent' WHERE id = $2")
            .bind(token_id)
            .bind(command_id)
            .execute(&mut *tx)
            .await?;
        self.commit(tx).await?;
        Ok(token_id)
    }

    /// An open refresh sent fresh session credentials expiring at
    /// `expires_at` (sent again when the reply was lost: the later ones count).
    pub async fn session_sent(&self, command_id: i64, expires_at: DateTime<Utc>) -> Result<(), StoreError> {
        let done = self
            .exec(
                sqlx::query(
                    "UPDATE agent_commands SET state = 'sent', session_expires_at = $1 \
                     WHERE id = $2 AND kind = 'refresh' AND state IN ('pending', 'sent')",
                )
                .bind(millis(expires_at))
                .bind(command_id),
            )
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Refused(format!("command #{command_id} is not an open refresh")));
        }
        Ok(())
    }

    /// Records how a command went. A rotation done: the new key's files are
    /// recorded as placements and the old ones removed; the agent holds the
    /// new key. A removal done: every file and placement removed, the agent
    /// `removed`. Returns the command and the agent before the change (the
    /// caller retires the key that is no longer on the host).
    pub async fn finish_command(
        &self,
        agent_id: i64,
        command_id: i64,
        ok: bool,
        files: &[PlacedFile],
        removed: &[String],
        detail: Option<&str>,
    ) -> Result<(AgentCommand, Agent), StoreError> {
        let agent = self.agent(agent_id).await?;
        let command = agent
            .commands
            .iter()
            .find(|c| c.id == command_id)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(format!("command #{command_id} of agent #{agent_id}")))?;
        if !command.open() {
            return Err(StoreError::Refused(format!("command #{command_id} is already {}", command.state)));
        }
        let now = Utc::now();
        let mut tx = self.begin_write().await?;
        let state = if ok { "done" } else { "failed" };
        // A removal that failed part-way: the files it did clear are no
        // longer bait (no heartbeat may call them missing); the key stays
        // live for the rest.
        // A refresh changes the files' digests, never their placements.
        let replaced = ok && command.kind != CommandKind::Refresh;
        let cleared = |f: &&AgentFile| replaced || (command.kind == CommandKind::Remove && removed.contains(&f.path));
        if replaced || command.kind == CommandKind::Remove {
            for f in agent.files.iter().filter(|f| f.removed_at.is_none()).filter(cleared) {
                sqlx::query("UPDATE agent_files SET removed_at = $1 WHERE id = $2")
                    .bind(millis(now))
                    .bind(f.id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE placements SET removed_at = $1 WHERE id = $2 AND removed_at IS NULL")
                    .bind(millis(now))
                    .bind(f.placement_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if ok {
            match command.kind {
                CommandKind::Rotate => {
                    let new = command.new_token_id.ok_or_else(|| {
                        StoreError::Refused(format!("command #{command_id} sent no key yet: nothing was rotated"))
                    })?;
                    self.record_files(&mut tx, &agent, new, files, now).await?;
                    sqlx::query("UPDATE agents SET token_id = $1, last_seen_at = $2 WHERE id = $3")
                        .bind(new)
                        .bind(millis(now))
                        .bind(agent_id)
                        .execute(&mut *tx)
                        .await?;
                }
                CommandKind::Remove => {
                    sqlx::query("UPDATE agents SET state = $1, last_seen_at = $2 WHERE id = $3")
                        .bind(AgentState::Removed.as_str())
                        .bind(millis(now))
                        .bind(agent_id)
                        .execute(&mut *tx)
                        .await?;
                }
                CommandKind::Refresh => {
                    let expires = command.session_expires_at.ok_or_else(|| {
                        StoreError::Refused(format!("command #{command_id} sent no session yet: nothing was refreshed"))
                    })?;
                    for file in files {
                        let updated = sqlx::query(
                            "UPDATE agent_files SET digest = $1, presence = $2, presence_at = $3 \
                             WHERE agent_id = $4 AND path = $5 AND removed_at IS NULL",
                        )
                        .bind(&file.digest)
                        .bind(Presence::Present.as_str())
                        .bind(millis(now))
                        .bind(agent_id)
                        .bind(&file.path)
                        .execute(&mut *tx)
                        .await?;
                        if updated.rows_affected() == 0 {
                            tx.rollback().await?;
                            return Err(StoreError::Refused(format!(
                                "{}: agent #{agent_id} placed no bait there, so a refresh cannot have written it",
                                file.path
                            )));
                        }
                    }
                    sqlx::query("UPDATE agents SET session_expires_at = $1, last_seen_at = $2 WHERE id = $3")
                        .bind(millis(expires))
                        .bind(millis(now))
                        .bind(agent_id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        sqlx::query("UPDATE agent_commands SET state = $1, done_at = $2, detail = $3 WHERE id = $4")
            .bind(state)
            .bind(millis(now))
            .bind(detail)
            .bind(command_id)
            .execute(&mut *tx)
            .await?;
        self.commit(tx).await?;
        let done = self.agent(agent_id).await?.commands.into_iter().find(|c| c.id == command_id).unwrap_or(command);
        Ok((done, agent))
    }

    /// Active agents silent since before `cutoff` and not yet marked stale:
    /// marked now and returned, so each silence is reported once.
    pub async fn mark_stale(&self, cutoff: DateTime<Utc>) -> Result<Vec<Agent>, StoreError> {
        let now = Utc::now();
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "UPDATE agents SET stale_since = $1 WHERE state = $2 AND stale_since IS NULL AND last_seen_at < $3 RETURNING id",
        )
        .bind(millis(now))
        .bind(AgentState::Active.as_str())
        .bind(millis(cutoff))
        .fetch_all(&mut *tx)
        .await?;
        self.commit(tx).await?;
        let mut agents = Vec::with_capacity(rows.len());
        for r in rows {
            agents.push(self.agent(r.try_get(0)?).await?);
        }
        Ok(agents)
    }

    /// Agents still enrolling that were handed their key before `cutoff`.
    pub async fn unconfirmed_agents(&self, cutoff: DateTime<Utc>) -> Result<Vec<Agent>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {AGENT_COLUMNS} FROM {AGENT_FROM} WHERE a.state = $1 AND a.enrolled_at < $2 ORDER BY a.id"
        ))
        .bind(AgentState::Enrolling.as_str())
        .bind(millis(cutoff))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(agent_row).collect()
    }

    /// How many agents are stale now.
    pub async fn stale_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM agents WHERE state = 'active' AND stale_since IS NOT NULL")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    /// Read records refused from agents in all (over quota, or for paths
    /// never placed).
    pub async fn evidence_refused(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT CAST(COALESCE(SUM(evidence_refused), 0) AS BIGINT) FROM agents")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    /// How many agents are in each state.
    pub async fn agents_by_state(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM agents GROUP BY state ORDER BY state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }
}
