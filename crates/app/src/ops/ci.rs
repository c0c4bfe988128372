//! CI canaries: a key per CI run, its expected-activity window, and the
//! retirement of run keys `fleet.ci_keep_days` after their window ended.
//! The run authenticates with an enrolment secret (its guards apply: uses,
//! expiry, revocation, the networks it is for) and closes its own window
//! with the close token it was given, which closes nothing else.

use chrono::{Duration, Utc};
use honeytrail_core::access::Permission;
use honeytrail_core::ci::{CiRun, CiRunOpened, CiRunRequest, ExpectedUse, MAX_WINDOW_MINUTES};
use honeytrail_core::net::{parse_networks, within};
use honeytrail_core::{new_bearer, TokenState};
use honeytrail_store::{AuditRecord, IncidentFilter, NewCiRun, StoreError};
use serde::Serialize;

use super::agents::refusal;
use super::tokens::{cursor_at, page_limit, page_of};
use super::Page;
use crate::{Actor, OpError, OpResult, Ops};

/// The script a CI job runs (`packaging/ci/honeytrail-ci.sh`), served at
/// `/ci/honeytrail-ci.sh`.
pub const SCRIPT: &str = include_str!("../../../../packaging/ci/honeytrail-ci.sh");
/// The GitLab CI template (`packaging/ci/gitlab/honeytrail-ci.yml`), served
/// at `/ci/gitlab.yml`.
pub const GITLAB_TEMPLATE: &str = include_str!("../../../../packaging/ci/gitlab/honeytrail-ci.yml");

/// The most expected uses a run's detail lists.
const DETAIL_USES: i64 = 200;
/// The most run keys one sweep retires (the next sweep takes the rest).
pub const RETIRE_PER_SWEEP: i64 = 100;

/// Which runs to list: a page of `limit` (default 50), after `cursor`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CiRunQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// A run as lists show it.
#[derive(Debug, Clone, Serialize)]
pub struct CiRunView {
    #[serde(flatten)]
    pub run: CiRun,
    /// `open`, `closed` or `lapsed`.
    pub state: &'static str,
    /// The run in one line.
    pub described: String,
}

impl CiRunView {
    fn of(run: CiRun) -> CiRunView {
        CiRunView { state: run.state(Utc::now()), described: run.request().describe(), run }
    }
}

/// A run with the uses its window expected and the incidents on its key.
#[derive(Debug, Clone, Serialize)]
pub struct CiRunDetail {
    #[serde(flatten)]
    pub view: CiRunView,
    pub expected: Vec<ExpectedUse>,
    /// Incidents on the run's key: uses its window did not expect.
    pub incidents: Vec<i64>,
}

/// What a keep-days sweep did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CiSweep {
    /// Runs looked at: a full batch means more may be waiting.
    pub examined: usize,
    pub retired: usize,
    pub failed: Vec<String>,
}

impl Ops {
    /// The window a run gets: the run's ask, bounded by
    /// `fleet.ci_window_minutes` (itself at most a day).
    fn ci_window(&self, asked: Option<u32>) -> OpResult<Duration> {
        let most = self.config.fleet.ci_window_minutes;
        if most == 0 || most > MAX_WINDOW_MINUTES {
            return Err(OpError::invalid(format!(
                "fleet.ci_window_minutes is {most}; set it between 1 and {MAX_WINDOW_MINUTES} (HONEYTRAIL_FLEET_CI_WINDOW_MINUTES)"
            )));
        }
        Ok(Duration::minutes(i64::from(asked.map_or(most, |a| a.min(most)))))
    }

    /// A CI run asks for its key with an enrolment secret: the secret and
    /// its network guard are checked (a refusal is counted on the secret
    /// and raised on the key it last gave out), one use is spent, a pool
    /// key is labelled with the run and handed out, and the run's window
    /// opens. The key and the close token are in the answer, and only there.
    pub async fn open_ci_run(&self, secret: &str, req: &CiRunRequest, from: &str) -> OpResult<CiRunOpened> {
        req.check()?;
        let window = self.ci_window(req.window_minutes)?;
        // Compared with CloudTrail's sourceIPAddress, so written as it writes it.
        let from = &honeytrail_core::net::canonical_address(from);
        let runner = format!("{} runner", req.provider().as_str());
        let known = self.active_enrolment(secret, &runner, from).await?;
        let guard = &known.guard;
        let why = if !guard.ec2_accounts.is_empty() {
            Some(format!(
                "enrolment secret #{} is bound to EC2 instances; a CI run needs a secret made without --bind ec2",
                known.id
            ))
        } else if !guard.allowed_from.is_empty() && !within(from, &parse_networks(&guard.allowed_from)?) {
            Some(format!(
                "enrolment secret #{} is for callers in {}; this CI run came from {from}",
                known.id,
                guard.allowed_from.join(", ")
            ))
        } else {
            None
        };
        if let Some(why) = why {
            self.enrolment_refused(&known, &runner, from, &why).await;
            return Err(refusal(why));
        }
        let close_token = new_bearer("");
        let new = NewCiRun {
            request: req,
            source_address: from,
            expect: req.expect.unwrap_or_default(),
            window_ends_at: Utc::now() + window,
            close_token: close_token.expose(),
        };
        let mut minted_now = false;
        let taken = loop {
            let store = self.store.audited(AuditRecord {
                actor: format!("enrolment #{}", known.id),
                action: "ci.open".into(),
                target: req.describe(),
                detail: Some(format!("expects {} uses, window {} min", new.expect.as_str(), window.num_minutes())),
                from: Some(from.to_string()),
            });
            match store.open_ci_run(secret, &new).await {
                Err(StoreError::PoolEmpty) if !minted_now => {
                    tracing::warn!("the fleet's key pool is empty; minting for a CI run now (raise fleet.pool_size)");
                    self.mint_for_pool(&Actor::system("fleet pool")).await?;
                    minted_now = true;
                }
                Err(StoreError::Refused(why)) => {
                    self.enrolment_refused(&known, &runner, from, &why).await;
                    return Err(refusal(why));
                }
                Err(e) => return Err(e.into()),
                Ok(t) => break t,
            }
        };
        self.tokens_changed();
        let key = self.delivered_key(&taken.token, None).await?;
        Ok(CiRunOpened {
            run: taken.run,
            access_key_id: key.access_key_id,
            secret_access_key: key.secret_access_key,
            region: key.region,
            close_token: close_token.expose().to_string(),
        })
    }

    /// Closes run `id`'s window with its close token. Closing twice, or
    /// after the window's bound, changes nothing.
    pub async fn close_ci_run(&self, id: i64, close_token: &str, from: &str) -> OpResult<CiRunView> {
        let store = self.store.audited(AuditRecord {
            actor: format!("CI run #{id}"),
            action: "ci.close".into(),
            target: format!("CI run #{id}"),
            detail: None,
            from: Some(from.to_string()),
        });
        let run = store.close_ci_run(id, close_token).await?.ok_or_else(|| {
            OpError::forbidden(format!(
                "CI run #{id} does not exist or this is not its close token (the one its opening answered with)"
            ))
        })?;
        Ok(CiRunView::of(run))
    }

    /// CI runs, newest first, a page at a time.
    pub async fn ci_runs(&self, actor: &Actor, q: &CiRunQuery) -> OpResult<Page<CiRunView>> {
        actor.require(Permission::Read)?;
        let limit = page_limit(q.limit)?;
        let before = cursor_at(&q.cursor, 'c', |s| s.parse::<i64>().ok())?;
        let runs = self.store.ci_runs(before, limit + 1).await?.into_iter().map(CiRunView::of).collect();
        Ok(page_of(runs, limit, |r: &CiRunView| format!("c{}", r.run.id)))
    }

    /// A page of runs, each with its expected uses and incidents: three
    /// queries for the page, whatever its length.
    pub async fn ci_runs_detailed(&self, actor: &Actor, q: &CiRunQuery) -> OpResult<Page<CiRunDetail>> {
        let page = self.ci_runs(actor, q).await?;
        let ids: Vec<i64> = page.items.iter().map(|r| r.run.id).collect();
        let tokens: Vec<i64> = page.items.iter().map(|r| r.run.token_id).collect();
        let mut expected = self.store.expected_uses_of(&ids, DETAIL_USES).await?;
        let mut incidents = self.store.incident_ids_of(&tokens).await?;
        let items = page
            .items
            .into_iter()
            .map(|view| CiRunDetail {
                expected: expected.remove(&view.run.id).unwrap_or_default(),
                incidents: incidents.remove(&view.run.token_id).unwrap_or_default(),
                view,
            })
            .collect();
        Ok(Page { items, next: page.next })
    }

    pub async fn ci_run(&self, actor: &Actor, id: i64) -> OpResult<CiRunDetail> {
        actor.require(Permission::Read)?;
        let run = self.store.ci_run(id).await?;
        let expected = self.store.expected_uses(id, DETAIL_USES).await?;
        let incidents = self
            .store
            .incidents(&IncidentFilter { token_id: Some(run.token_id), ..Default::default() })
            .await?
            .into_iter()
            .map(|i| i.id)
            .collect();
        Ok(CiRunDetail { view: CiRunView::of(run), expected, incidents })
    }

    /// Retires the keys of runs whose window ended more than
    /// `fleet.ci_keep_days` ago (0: never), a bounded number per sweep: the
    /// fleet job's part.
    pub async fn ci_sweep(&self) -> OpResult<CiSweep> {
        match self.config.fleet.ci_keep_days {
            0 => Ok(CiSweep::default()),
            days => self.retire_ci_keys(&Actor::system("CI keep-days"), days).await,
        }
    }

    /// Retires the keys of runs whose window ended more than `days` ago
    /// (0: every run whose window ended), as `honeytrail ci sweep` asks.
    pub async fn retire_ci_keys(&self, actor: &Actor, days: u32) -> OpResult<CiSweep> {
        actor.require(Permission::Respond)?;
        let mut sweep = CiSweep::default();
        let before = Utc::now() - Duration::days(i64::from(days));
        let runs = self.store.ci_runs_to_retire(before, RETIRE_PER_SWEEP).await?;
        sweep.examined = runs.len();
        for run in runs {
            let token = self.store.token(run.token_id).await?;
            if token.state == TokenState::Active {
                let why = format!("CI run #{}'s window ended over {days} day(s) ago (kept fleet.ci_keep_days)", run.id);
                if let Err(e) = self.retire_by(actor, run.token_id, &why).await {
                    sweep.failed.push(format!("CI run #{}: {}", run.id, e.message));
                    continue;
                }
                sweep.retired += 1;
            }
            self.store.note_ci_run_retired(run.id).await?;
        }
        if sweep.retired > 0 {
            self.tokens_changed();
        }
        Ok(sweep)
    }
}
