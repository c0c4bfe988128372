//! The fleet after the secret: hosts enrolling, confirming their bait,
//! sending heartbeats and taking commands; the key pool; the sweep that
//! finds silent hosts and keys never confirmed.
//!
//! The calls an agent makes are not made by a user: an enrolment is
//! authorised by its enrolment secret, every later call by the agent's own
//! credential ([`Ops::agent_for`]). Both are attacker-reachable: every field
//! a host sends is bounded by the core's checks before it is stored.

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use honeytrail_core::access::Permission;
use honeytrail_core::encoding::printable;
use honeytrail_core::fleet::Ec2Instance;
use honeytrail_core::fleet::{
    Command, CommandDone, CommandKind, Confirm, DeliveredKey, EnrolRequest, Enrolled, Heartbeat, HeartbeatReply,
    PlacedFile, Preflight, Presence, MAX_FILES, MAX_FOUND,
};
use honeytrail_core::incident::{
    TokenEvent, BAIT_ALTERED_EVENT, BAIT_MISSING_EVENT, BAIT_REFUSED_EVENT, BAIT_UNREADABLE_EVENT,
    ENROLMENT_REFUSED_EVENT, ENROLMENT_UNEXPECTED_EVENT, FLEET_SOURCE, HOST_SILENT_EVENT,
};
use honeytrail_core::net::{parse_networks, within};
use honeytrail_core::template::Credential;
use honeytrail_core::{new_bearer, Token, TokenKind, TokenState};
use honeytrail_store as store;
use honeytrail_store::{AuditRecord, EnrolmentSecret, SessionHandout, StoreError, TokenFilter};

use crate::sources::Sink;
use crate::{Actor, OpError, OpErrorKind, OpResult, Ops};
pub use honeytrail_core::fleet::{Agent, AgentCommand, AgentFile};

/// An agent proven by its credential: what its own calls act as. Opaque to
/// the front doors, which only hand it back to the operations.
#[derive(Debug, Clone)]
pub struct AgentSession(pub(crate) store::Agent);

impl AgentSession {
    pub fn id(&self) -> i64 {
        self.0.id
    }
}

/// What one sweep found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Sweep {
    /// Hosts that went silent (each reported once).
    pub stale: usize,
    /// Enrolments never confirmed, whose keys were retired.
    pub unconfirmed: usize,
}

/// The pool and the canary account's IAM users.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolState {
    pub size: i64,
    pub target: u32,
    /// Distinct IAM users holding active honey keys.
    pub iam_users: usize,
    pub quota: u32,
    /// Set when the honey users are near the quota: what to do.
    pub warning: Option<String>,
}

fn unusable(e: StoreError) -> OpError {
    match e {
        StoreError::Refused(why) => refusal(why),
        other => other.into(),
    }
}

pub(crate) fn refusal(why: String) -> OpError {
    OpError::new(OpErrorKind::Forbidden, "enrollment_refused", why)
}

fn check_files(files: &[PlacedFile]) -> OpResult<()> {
    if files.len() > MAX_FILES {
        return Err(OpError::invalid(format!("at most {MAX_FILES} bait files per host")));
    }
    for f in files {
        f.check()?;
    }
    Ok(())
}

impl Ops {
    /// A host asks for its key with an enrolment secret. The use is spent,
    /// the key taken from the pool (minted now if the pool is empty) and the
    /// agent recorded in one transaction; a refused secret spends nothing
    /// and mints nothing.
    ///
    /// The secret's guards are checked first: the source network, and for a
    /// secret bound to EC2 a signed identity document of an instance in one
    /// of its accounts, never enrolled before. A refusal of a known secret
    /// is counted on it and raises an incident on the key of the host that
    /// last enrolled with it (where the secret most likely leaked from); an
    /// enrolment beyond the expected count goes through and raises one on
    /// the key it got.
    pub async fn enrol_host(&self, req: &EnrolRequest, from: &str) -> OpResult<Enrolled> {
        let (known, ec2) = self.admit(req, from).await?;
        self.enrol_admitted(req, from, known, ec2).await
    }

    /// What a host would place, asked before it enrols: the secret and its
    /// guards are checked as for an enrolment (a refusal is counted and
    /// raised the same way), but no use is spent and no key handed out.
    /// The agent enrols only when a path the template names can be written
    /// safely, so no key is minted for a host where nothing can be placed.
    pub async fn preflight_host(&self, req: &EnrolRequest, from: &str) -> OpResult<Preflight> {
        let (known, _) = self.admit(req, from).await?;
        let name = known.template.clone().unwrap_or_else(|| self.config.fleet.default_template.clone());
        let template = self.store.template(&name).await.map_err(|_| {
            unusable(StoreError::Refused(format!(
                "enrolment secret #{} names placement template {name}, which no longer exists; add it again (`honeytrail template add`)",
                known.id
            )))
        })?;
        Ok(Preflight { template })
    }

    /// The enrolment secret `secret` is, if it can be used now. A known one
    /// that cannot (revoked, expired, used up: someone still holds it) has
    /// the refusal of `who` from `from` counted on it and raised.
    pub(crate) async fn active_enrolment(&self, secret: &str, who: &str, from: &str) -> OpResult<EnrolmentSecret> {
        match self.store.enrolment_by_secret(secret).await? {
            Some(known) if known.state(Utc::now()) == "active" => Ok(known),
            other => {
                let refusal = honeytrail_store::enrolment_refusal(other.as_ref());
                if let (Some(known), StoreError::Refused(why)) = (&other, &refusal) {
                    self.enrolment_refused(known, who, from, why).await;
                }
                Err(unusable(refusal))
            }
        }
    }

    /// The secret of an enrolment, checked with its guards.
    async fn admit(&self, req: &EnrolRequest, from: &str) -> OpResult<(EnrolmentSecret, Option<Ec2Instance>)> {
        req.host.check()?;
        if let Some(identity) = &req.ec2_identity {
            identity.check()?;
        }
        let known = self.active_enrolment(&req.secret, &req.host.hostname, from).await?;
        match self.guard_enrolment(&known, req, from) {
            Ok(ec2) => Ok((known, ec2)),
            Err(e) => {
                if e.code == "enrollment_refused" {
                    self.enrolment_refused(&known, &req.host.hostname, from, &e.message).await;
                }
                Err(e)
            }
        }
    }

    async fn enrol_admitted(
        &self,
        req: &EnrolRequest,
        from: &str,
        known: EnrolmentSecret,
        ec2: Option<Ec2Instance>,
    ) -> OpResult<Enrolled> {
        let credential = new_bearer("");
        let system = Actor::system(&format!("enrolment #{}", known.id));
        // A session template's host gets its own session canary, started
        // now; any other host a key from the pool.
        let template_name = known.template.clone().unwrap_or_else(|| self.config.fleet.default_template.clone());
        let session = match self.store.template(&template_name).await {
            Ok(t) if t.credential == Credential::Session => {
                Some(self.new_session_canary(&req.host, ec2.as_ref(), &system).await?)
            }
            _ => None,
        };
        let handout =
            session.as_ref().map(|(token, s)| SessionHandout { token_id: token.id, expires_at: s.expiration });
        let mut minted_now = false;
        let outcome = loop {
            let store = self.store.audited(AuditRecord {
                actor: system.name.clone(),
                action: "agent.enroll".into(),
                target: req.host.hostname.clone(),
                detail: req.host.machine_id.as_ref().map(|m| format!("machine-id {m}")),
                from: Some(from.to_string()),
            });
            match store
                .enrol_agent(
                    &req.secret,
                    &req.host,
                    Some(from),
                    ec2.as_ref(),
                    credential.expose(),
                    &self.config.fleet.default_template,
                    handout.as_ref(),
                )
                .await
            {
                Err(StoreError::PoolEmpty) if !minted_now && handout.is_none() => {
                    // Nothing minted ahead: mint one now (slower, and what the pool is for).
                    tracing::warn!(
                        "the fleet's key pool is empty; minting for an enrolment now (raise fleet.pool_size)"
                    );
                    self.mint_for_pool(&Actor::system("fleet pool")).await?;
                    minted_now = true;
                }
                Err(StoreError::Refused(why)) => {
                    self.enrolment_refused(&known, &req.host.hostname, from, &why).await;
                    break Err(unusable(StoreError::Refused(why)));
                }
                Err(e) => break Err(OpError::from(e)),
                Ok(e) => break Ok(e),
            }
        };
        let enrolled = match (outcome, &session) {
            (Ok(e), _) => e,
            (Err(e), Some((token, _))) => {
                // The session canary went to no host: retired, still watched.
                if let Err(r) = self.retire_by(&system, token.id, "its enrolment failed").await {
                    tracing::error!(token = token.id, error = %r.message, "could not retire an unused session canary");
                }
                self.tokens_changed();
                return Err(e);
            }
            (Err(e), None) => return Err(e),
        };
        self.tokens_changed();
        // A server killed here has handed a key out that no host received:
        // the host retries, and the sweep retires the unconfirmed one.
        crate::failpoint("enrol.after-handout");
        if let Some(expected) = enrolled.enrolment.guard.expected.filter(|&n| enrolled.enrolment.used > n) {
            let what = format!(
                "{} enrolled with enrolment secret #{} from {from}: host {} of {expected} expected",
                req.host.hostname, enrolled.enrolment.id, enrolled.enrolment.used
            );
            let event = fleet_event(
                &enrolled.agent,
                &enrolled.token,
                ENROLMENT_UNEXPECTED_EVENT,
                what,
                Utc::now(),
                "enrolment",
            );
            if let Err(e) = Sink::new(self).add(&[TokenEvent { source_ip: Some(from.to_string()), ..event }]).await {
                tracing::error!(agent = enrolled.agent.id, error = %e, "could not raise the incident for an unexpected enrolment");
            }
        }
        let profile = enrolled.agent.template.profile.as_deref();
        let key = match &session {
            Some((_, s)) => self.delivered_session(s, profile),
            None => self.delivered_key(&enrolled.token, profile).await?,
        };
        Ok(Enrolled {
            agent_id: enrolled.agent.id,
            credential: credential.expose().to_string(),
            key,
            template: enrolled.agent.template,
            heartbeat_seconds: self.config.fleet.heartbeat_seconds,
        })
    }

    /// Checks what the secret expects of the host; the EC2 instance it
    /// proved to be, when bound.
    fn guard_enrolment(
        &self,
        known: &EnrolmentSecret,
        req: &EnrolRequest,
        from: &str,
    ) -> OpResult<Option<Ec2Instance>> {
        let guard = &known.guard;
        if !guard.allowed_from.is_empty() {
            let networks = parse_networks(&guard.allowed_from)?;
            if !within(from, &networks) {
                return Err(refusal(format!(
                    "enrolment secret #{} is for hosts in {}; this request came from {from}",
                    known.id,
                    guard.allowed_from.join(", ")
                )));
            }
        }
        if guard.ec2_accounts.is_empty() {
            return Ok(None);
        }
        let Some(identity) = &req.ec2_identity else {
            return Err(refusal(format!(
                "enrolment secret #{} is bound to EC2 instances: enrol with the instance identity (honeytrail-agent enrol --ec2-identity)",
                known.id
            )));
        };
        let doc = self
            .identity_keys()?
            .verify(&identity.document, &identity.signature)
            .map_err(|why| refusal(format!("the EC2 instance identity was not accepted: {why}")))?;
        if !guard.ec2_accounts.contains(&doc.account_id) {
            return Err(refusal(format!(
                "enrolment secret #{} is for EC2 instances of account(s) {}; instance {} is in account {}",
                known.id,
                guard.ec2_accounts.join(", "),
                printable(&doc.instance_id),
                printable(&doc.account_id)
            )));
        }
        Ok(Some(Ec2Instance { instance_id: doc.instance_id, account_id: doc.account_id, region: doc.region }))
    }

    /// Counts a refused enrolment on its secret and raises an incident on
    /// the key of the host that last enrolled with it. At most one incident
    /// event per secret and minute: a flood of attempts is one line each.
    pub(crate) async fn enrolment_refused(&self, known: &EnrolmentSecret, hostname: &str, from: &str, why: &str) {
        tracing::warn!(enrolment = known.id, from, "enrolment refused: {why}");
        if let Err(e) = self.store.record_refusal(known.id, why).await {
            tracing::error!(enrolment = known.id, error = %e, "could not count a refused enrolment");
        }
        let raised = async {
            let Some(token_id) = self.store.last_enrolled_key(known.id).await? else {
                tracing::warn!(
                    enrolment = known.id,
                    "no host enrolled with this secret yet: the refusal is counted on the secret, no key to raise it on"
                );
                return Ok(());
            };
            let token = self.store.token(token_id).await?;
            let now = Utc::now();
            let what = format!(
                "an enrolment with secret #{} was refused: host {:?} from {from}: {why}",
                known.id,
                printable(hostname)
            );
            let minute = now.timestamp() / 60;
            let event = TokenEvent {
                event_id: format!("fleet:enrolment:{}:refused:{minute}", known.id),
                source_ip: Some(from.to_string()),
                origin: format!("enrolment #{}", known.id),
                ..host_event(
                    &token,
                    ENROLMENT_REFUSED_EVENT,
                    what,
                    now,
                    serde_json::json!({
                        "enrollment": known.id,
                        "host": printable(hostname),
                        "from": from,
                        "event": ENROLMENT_REFUSED_EVENT,
                        "why": why,
                    }),
                )
            };
            Sink::new(self).add(&[event]).await
        };
        if let Err(e) = raised.await {
            tracing::error!(enrolment = known.id, error = %e, "could not raise the incident for a refused enrolment");
        }
    }

    pub(crate) async fn delivered_key(&self, token: &Token, profile: Option<&str>) -> OpResult<DeliveredKey> {
        let secret = self.secret_for_bait(token).await?;
        Ok(DeliveredKey {
            access_key_id: token.access_key_id.clone(),
            secret_access_key: secret.expose().to_string(),
            profile: profile.unwrap_or(&self.config.render.profile).to_string(),
            region: self.config.render.region.clone(),
            session: None,
        })
    }

    /// The agent holding this credential; refused for unknown credentials
    /// and for agents that failed or were removed.
    pub async fn agent_for(&self, credential: &str) -> OpResult<AgentSession> {
        self.store.agent_by_credential(credential).await?.map(AgentSession).ok_or_else(|| {
            OpError::forbidden("the agent credential is not known, or its host was removed: enrol the host again")
        })
    }

    /// The agent wrote its bait: one placement per file is recorded.
    pub async fn confirm_host(&self, agent: &AgentSession, c: &Confirm) -> OpResult<Agent> {
        let agent = &agent.0;
        check_files(&c.files)?;
        if c.files.is_empty() {
            return Err(OpError::invalid("a confirmation names the files written; with none, abort instead"));
        }
        if c.refused.len() > MAX_FILES {
            return Err(OpError::invalid(format!("at most {MAX_FILES} refused paths per host")));
        }
        for r in &c.refused {
            r.check()?;
        }
        let actor = Actor::system(&format!("agent #{}", agent.id));
        let detail = if c.refused.is_empty() {
            format!("{} file(s)", c.files.len())
        } else {
            format!("{} file(s), {} path(s) refused", c.files.len(), c.refused.len())
        };
        let confirmed = self
            .audited(&actor, "agent.confirm", &agent.host.hostname, Some(&detail))
            .confirm_agent(agent.id, &c.files)
            .await?;
        // A path the agent would not write is what someone put there: a
        // tamper incident on the host's key, naming the path and the find.
        if let Some(token_id) = confirmed.token_id.filter(|_| !c.refused.is_empty()) {
            let token = self.store.token(token_id).await?;
            let now = Utc::now();
            let events: Vec<TokenEvent> = c
                .refused
                .iter()
                .map(|r| {
                    fleet_event(
                        &confirmed,
                        &token,
                        BAIT_REFUSED_EVENT,
                        format!(
                            "no bait was written to {} on {}: {}",
                            printable(&r.path),
                            confirmed.host.hostname,
                            printable(&r.found)
                        ),
                        now,
                        &r.path,
                    )
                })
                .collect();
            Sink::new(self).add(&events).await?;
        }
        Ok(confirmed)
    }

    /// The agent gave up before writing anything: its key is retired, no
    /// placement is recorded.
    pub async fn abort_host(&self, agent: &AgentSession, reason: &str) -> OpResult<()> {
        let agent = &agent.0;
        let reason: String = honeytrail_core::encoding::printable(reason).chars().take(500).collect();
        let actor = Actor::system(&format!("agent #{}", agent.id));
        let failed = self
            .audited(&actor, "agent.abort", &agent.host.hostname, Some(&reason))
            .fail_agent(agent.id, &reason)
            .await?;
        if let Some(t) = failed.token_id {
            self.retire_by(&actor, t, "its host never got it in place").await?;
        }
        Ok(())
    }

    /// A heartbeat: the host seen, presence recorded (altered or missing
    /// bait raises an incident on its key), and the commands waiting.
    pub async fn heartbeat(&self, agent: &AgentSession, hb: &Heartbeat) -> OpResult<HeartbeatReply> {
        let agent = &agent.0;
        if hb.files.len() > MAX_FILES {
            return Err(OpError::invalid(format!("at most {MAX_FILES} bait files per host")));
        }
        let changes = self.store.record_heartbeat(agent.id, &hb.files).await?;
        if let Some(w) = &hb.watch {
            let w: String = printable(w).chars().take(200).collect();
            if agent.watch.as_deref() != Some(w.as_str()) {
                self.store.record_watch(agent.id, Some(&w), 0).await?;
            }
        }
        let now = Utc::now();
        let mut events = Vec::new();
        // Every move into a tamper state is raised (missing, then replaced
        // by a FIFO, is two findings), with what the agent saw.
        for change in changes.iter().filter(|c| c.file.presence.tampered() && c.file.presence != c.before) {
            let name = match change.file.presence {
                Presence::Missing => BAIT_MISSING_EVENT,
                Presence::Unreadable => BAIT_UNREADABLE_EVENT,
                _ => BAIT_ALTERED_EVENT,
            };
            let seen = hb
                .files
                .iter()
                .find(|f| f.path == change.file.path)
                .and_then(|f| f.seen.as_deref())
                .map(|s| format!(": {}", printable(s).chars().take(MAX_FOUND).collect::<String>()))
                .unwrap_or_default();
            let token = self.store.token(change.file.token_id).await?;
            events.push(fleet_event(
                agent,
                &token,
                name,
                format!(
                    "the honey entry in {} on {} is {} (was {}){seen}",
                    change.file.path,
                    agent.host.hostname,
                    change.file.presence.as_str(),
                    change.before.as_str()
                ),
                now,
                &change.file.path,
            ));
        }
        if !events.is_empty() {
            Sink::new(self).add(&events).await?;
        }
        let mut open: Vec<store::AgentCommand> = agent.commands.iter().filter(|c| c.open()).cloned().collect();
        if self.session_refresh_wanted(agent, now) {
            match self.store.request_command(agent.id, CommandKind::Refresh, "fleet (session refresh)").await {
                Ok(c) => open.push(c),
                Err(e) => tracing::warn!(agent = agent.id, error = %e, "could not open a session refresh"),
            }
        }
        let mut commands = Vec::new();
        for c in &open {
            let key = match c.kind {
                CommandKind::Remove => None,
                CommandKind::Refresh => {
                    let session = match agent.token_id {
                        Some(t) => self.refreshed_session(&self.store.token(t).await?, c).await,
                        None => Err(OpError::conflict("no_token", "the agent holds no session canary")),
                    };
                    match session {
                        Ok(s) => Some(self.delivered_session(&s, agent.template.profile.as_deref())),
                        Err(e) => {
                            tracing::warn!(agent = agent.id, command = c.id, error = %e.message, "no fresh session yet");
                            continue;
                        }
                    }
                }
                CommandKind::Rotate => match self.rotation_key(c).await {
                    Ok(token) => Some(self.delivered_key(&token, agent.template.profile.as_deref()).await?),
                    Err(e) => {
                        tracing::warn!(agent = agent.id, command = c.id, error = %e.message, "no key for a rotation yet");
                        continue;
                    }
                },
            };
            commands.push(Command { id: c.id, kind: c.kind, key });
        }
        Ok(HeartbeatReply { commands, heartbeat_seconds: self.config.fleet.heartbeat_seconds })
    }

    async fn rotation_key(&self, c: &store::AgentCommand) -> OpResult<Token> {
        let id = match self.store.key_for_rotation(c.id).await {
            Err(StoreError::PoolEmpty) => {
                self.mint_for_pool(&Actor::system("fleet pool")).await?;
                self.store.key_for_rotation(c.id).await?
            }
            other => other?,
        };
        self.tokens_changed();
        Ok(self.store.token(id).await?)
    }

    /// The agent says how a command went. A rotation done retires the old
    /// key; a failed one retires the new key (never placed); a removal done
    /// retires the key.
    pub async fn command_done(
        &self,
        agent: &AgentSession,
        command_id: i64,
        done: &CommandDone,
    ) -> OpResult<AgentCommand> {
        let agent = &agent.0;
        check_files(&done.files)?;
        if done.removed.len() > MAX_FILES || done.removed.iter().any(|p| p.len() > 1024) {
            return Err(OpError::invalid(format!("at most {MAX_FILES} removed paths of at most 1024 bytes")));
        }
        let error: Option<String> =
            done.error.as_deref().map(|e| honeytrail_core::encoding::printable(e).chars().take(500).collect());
        let actor = Actor::system(&format!("agent #{}", agent.id));
        let command = agent
            .commands
            .iter()
            .find(|c| c.id == command_id)
            .ok_or_else(|| OpError::not_found(format!("command #{command_id} of this agent")))?;
        if done.ok && command.kind != CommandKind::Remove && done.files.is_empty() {
            return Err(OpError::invalid(format!(
                "a {} done names the files written with the new credentials",
                command.kind.as_str()
            )));
        }
        let action = format!("agent.{}", command.kind.as_str());
        let detail =
            if done.ok { "done".to_string() } else { format!("failed: {}", error.clone().unwrap_or_default()) };
        let (finished, before) = self
            .audited(&actor, &action, &agent.host.hostname, Some(&detail))
            .finish_command(agent.id, command_id, done.ok, &done.files, &done.removed, error.as_deref())
            .await?;
        let retire = match (finished.kind, done.ok) {
            (CommandKind::Rotate, true) => before.token_id.map(|t| (t, "rotated on its host")),
            (CommandKind::Rotate, false) => finished.new_token_id.map(|t| (t, "its host could not write it")),
            (CommandKind::Remove, true) => before.token_id.map(|t| (t, "its bait was removed from the host")),
            (CommandKind::Remove, false) => None,
            // The same canary before and after; a failed refresh leaves the
            // old session in place, and the next heartbeat tries again.
            (CommandKind::Refresh, _) => None,
        };
        if let Some((t, why)) = retire {
            self.retire_by(&actor, t, why).await?;
        }
        self.tokens_changed();
        Ok(finished)
    }

    /// Every enrolled host, newest first.
    pub async fn agents(&self, actor: &Actor) -> OpResult<Vec<Agent>> {
        actor.require(Permission::Read)?;
        Ok(self.store.agents().await?)
    }

    pub async fn agent(&self, actor: &Actor, id: i64) -> OpResult<Agent> {
        actor.require(Permission::Read)?;
        Ok(self.store.agent(id).await?)
    }

    /// Asks an agent to rotate or remove its bait on its next heartbeat.
    /// A rotation of a session canary's host is a refresh: a fresh session
    /// of the same canary (the ARN it is known by never changes).
    pub async fn command_agent(&self, actor: &Actor, id: i64, kind: CommandKind) -> OpResult<AgentCommand> {
        actor.require(Permission::Respond)?;
        let kind = match kind {
            CommandKind::Rotate if self.store.agent(id).await?.template.credential == Credential::Session => {
                CommandKind::Refresh
            }
            other => other,
        };
        let action = format!("agent.request_{}", kind.as_str());
        Ok(self.audited(actor, &action, &format!("agent #{id}"), None).request_command(id, kind, &actor.name).await?)
    }

    /// The pool's size, its target, and how near the canary account is to
    /// its IAM user quota.
    pub async fn pool_state(&self) -> OpResult<PoolState> {
        let size = self.store.pool_size().await?;
        let mut users: Vec<String> = self
            .store
            .list_tokens(&TokenFilter::active_minted())
            .await?
            .into_iter()
            .filter_map(|t| t.iam_user_name)
            .collect();
        users.sort();
        users.dedup();
        let quota = self.config.fleet.iam_user_quota;
        let warning = (users.len() as u64 * 10 >= u64::from(quota) * 9).then(|| {
            format!(
                "the canary account holds {} honey IAM users of its quota of {quota}: set mint.pack_two_keys = true \
                 (two keys per user), retire keys no longer placed, ask AWS for a higher IAM user quota, or use a \
                 second canary account",
                users.len()
            )
        });
        Ok(PoolState { size, target: self.config.fleet.pool_size, iam_users: users.len(), quota, warning })
    }

    /// Mints keys into the pool until it holds `fleet.pool_size` (at most
    /// `max` this call), pausing `fleet.mint_interval_ms` between mints.
    /// Stops, without minting, near the IAM user quota. Returns how many
    /// were minted.
    pub async fn fill_pool(&self, max: usize) -> OpResult<usize> {
        let state = self.pool_state().await?;
        if let Some(w) = &state.warning {
            tracing::warn!("{w}");
            if state.iam_users as u64 >= u64::from(state.quota) {
                return Ok(0);
            }
        }
        let want = (i64::from(state.target) - state.size).max(0) as usize;
        let actor = Actor::system("fleet pool");
        let mut minted = 0;
        for _ in 0..want.min(max) {
            if minted > 0 {
                tokio::time::sleep(StdDuration::from_millis(self.config.fleet.mint_interval_ms)).await;
            }
            self.mint_for_pool(&actor).await?;
            minted += 1;
        }
        Ok(minted)
    }

    /// Finds hosts silent for longer than `fleet.stale_after_seconds` (an
    /// incident on their key, low severity, once per silence) and keys
    /// handed out but never confirmed (retired, the agent failed).
    pub async fn fleet_sweep(&self) -> OpResult<Sweep> {
        let f = &self.config.fleet;
        let now = Utc::now();
        let stale = self.store.mark_stale(now - Duration::seconds(f.stale_after_seconds as i64)).await?;
        let mut events = Vec::new();
        for agent in &stale {
            let Some(token_id) = agent.token_id else { continue };
            let token = self.store.token(token_id).await?;
            let last = agent.last_seen_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "never".into());
            events.push(fleet_event(
                agent,
                &token,
                HOST_SILENT_EVENT,
                format!("{} sent no heartbeat since {last}", agent.host.hostname),
                now,
                "heartbeat",
            ));
        }
        if !events.is_empty() {
            Sink::new(self).add(&events).await?;
        }
        let unconfirmed =
            self.store.unconfirmed_agents(now - Duration::seconds(f.confirm_within_seconds as i64)).await?;
        let actor = Actor::system("fleet sweep");
        for agent in &unconfirmed {
            let why = format!("no confirmation within {} s of enrolment", f.confirm_within_seconds);
            match self.store.fail_agent(agent.id, &why).await {
                Ok(_) => {}
                Err(StoreError::Refused(_)) => continue, // confirmed meanwhile
                Err(e) => return Err(e.into()),
            }
            if let Some(t) = agent.token_id {
                self.retire_by(&actor, t, &why).await?;
            }
        }
        // Changes in AWS a killed process left half-done, once surely not
        // in flight any more; a failure waits for the next sweep.
        match self.reconcile_aws(&Actor::system("reconcile"), Duration::minutes(RECONCILE_AFTER_MINUTES)).await {
            Ok(done) if done.intents > 0 => tracing::warn!(
                intents = done.intents,
                keys_deleted = done.keys_deleted.len(),
                tokens_retired = done.tokens_retired.len(),
                "finished changes in AWS that a stopped process left half-done"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e.message, "cannot reconcile AWS with the store now; the next sweep tries again")
            }
        }
        Ok(Sweep { stale: stale.len(), unconfirmed: unconfirmed.len() })
    }

    /// Whether this token waits in the fleet's pool (handed to no host).
    pub async fn pooled(&self, token: &Token) -> OpResult<bool> {
        Ok(token.kind == TokenKind::AwsMinted
            && token.state == TokenState::Active
            && self.store.in_pool(token.id).await?)
    }
}

/// How old an unfinished change in AWS must be before the fleet job
/// finishes it: longer than any mint or retire takes (each AWS call gives
/// up after 90 s), so a change still in flight elsewhere is never raced.
const RECONCILE_AFTER_MINUTES: i64 = 10;

/// An event about a host rather than a use of its key.
fn fleet_event(
    agent: &store::Agent,
    token: &Token,
    name: &str,
    what: String,
    at: chrono::DateTime<Utc>,
    about: &str,
) -> TokenEvent {
    let raw = serde_json::json!({
        "agent": agent.id,
        "host": agent.host.hostname,
        "event": name,
        "about": about,
        "what": what,
    });
    TokenEvent {
        event_id: format!("fleet:{}:{name}:{}:{}", agent.id, about, at.timestamp_millis()),
        origin: format!("agent #{} on {}", agent.id, agent.host.hostname),
        ..host_event(token, name, what, at, raw)
    }
}

/// An event of the fleet on `token`'s key; `raw` is what the record keeps.
pub(crate) fn host_event(
    token: &Token,
    name: &str,
    what: String,
    at: chrono::DateTime<Utc>,
    raw: serde_json::Value,
) -> TokenEvent {
    TokenEvent {
        event_id: format!("fleet:{}:{name}:{}", token.id, at.timestamp_millis()),
        token_id: token.id,
        event_time: at,
        event_source: FLEET_SOURCE.into(),
        event_name: name.into(),
        aws_region: None,
        source_ip: None,
        user_agent: None,
        error_code: None,
        error_message: Some(what),
        access_key_id: Some(token.access_key_id.clone()),
        principal_arn: None,
        vpc_endpoint: None,
        vpc_endpoint_account: None,
        source: FLEET_SOURCE.into(),
        origin: FLEET_SOURCE.into(),
        raw: raw.to_string(),
    }
}
