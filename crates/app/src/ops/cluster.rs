//! Replicas: every `serve` on one database registers itself and beats; the
//! periodic jobs (the fleet's upkeep, the response runner, S3 polling) run
//! on one replica at a time, under a lease in the database that the holder
//! renews with its heartbeat. A replica that dies stops renewing, and the
//! next replica to ask takes the job within one lease.
//!
//! Work that spreads by itself needs no lease: receivers answer on every
//! replica, SQS hands each message to one consumer, the outbox is claimed
//! with `FOR UPDATE SKIP LOCKED`.

use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};
use honeytrail_core::access::Permission;
use serde::Serialize;

use crate::{Actor, OpResult, Ops};

/// This process as a member of the cluster, once `serve` joined it.
#[derive(Debug, Clone)]
pub struct Membership {
    pub id: String,
    pub lease: Duration,
}

/// A replica as `cluster status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaView {
    pub id: String,
    pub address: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub last_heartbeat: DateTime<Utc>,
    /// `up`, `stopped` (cleanly) or `silent` (no heartbeat within a lease).
    pub state: &'static str,
}

/// A periodic job as `cluster status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub name: String,
    /// The replica running it now; none when its lease ran out.
    pub holder: Option<String>,
    pub lease_end: Option<DateTime<Utc>>,
    pub last_run: Option<DateTime<Utc>>,
    pub last_run_by: Option<String>,
    pub last_error: Option<String>,
}

/// The replicas and who runs which job.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    pub replicas: Vec<ReplicaView>,
    pub jobs: Vec<JobView>,
    pub lease_seconds: u64,
}

/// A replica's identity: the host and a random part, new at every start.
fn replica_id() -> String {
    format!("{}-{:06x}", crate::context::hostname(), rand::random::<u32>() & 0xff_ffff)
}

impl Ops {
    /// This process's membership, when `serve` joined the cluster.
    pub fn membership(&self) -> Option<&Membership> {
        self.signals().membership.get()
    }

    /// Registers this process as a replica listening at `address`. Its
    /// identity is kept for the jobs it runs.
    pub async fn join_cluster(&self, address: &str) -> OpResult<Membership> {
        let lease = Duration::seconds(self.config.cluster.lease_seconds.clamp(2, 3600) as i64);
        let membership = Membership { id: replica_id(), lease };
        self.store.register_replica(&membership.id, address, env!("CARGO_PKG_VERSION")).await?;
        let kept = self.signals().membership.get_or_init(|| membership);
        tracing::info!(replica = %kept.id, "joined the cluster");
        Ok(kept.clone())
    }

    /// The heartbeat: this replica is alive, and so are its leases. Returns
    /// the jobs it holds.
    pub async fn cluster_heartbeat(&self) -> OpResult<Vec<String>> {
        let Some(m) = self.membership() else { return Ok(Vec::new()) };
        Ok(self.store.replica_heartbeat(&m.id, m.lease).await?)
    }

    /// Leaves the cluster on a clean stop: its leases go at once.
    pub async fn leave_cluster(&self) -> OpResult<()> {
        if let Some(m) = self.membership() {
            self.store.stop_replica(&m.id).await?;
        }
        Ok(())
    }

    /// Whether this process may run `job` now: it holds the job's lease
    /// (taking it when it ran out). A process outside a cluster (a command
    /// of its own) always may.
    pub async fn hold(&self, job: &str) -> OpResult<bool> {
        let Some(m) = self.membership() else { return Ok(true) };
        Ok(self.store.take_lease(job, &m.id, m.lease).await?)
    }

    /// When `job` last ran, on any replica.
    pub async fn job_last_run(&self, job: &str) -> OpResult<Option<chrono::DateTime<Utc>>> {
        Ok(self.store.job_leases().await?.into_iter().find(|j| j.name == job).and_then(|j| j.last_run_at))
    }

    /// Records a run of `job` by this replica and how it went.
    pub async fn job_ran(&self, job: &str, error: Option<&str>) {
        let Some(m) = self.membership() else { return };
        if let Err(e) = self.store.record_job_run(job, &m.id, error).await {
            tracing::warn!(job, error = %e, "cannot record a job's run");
        }
    }

    /// The replicas (up, or seen within a day) and every job with its holder.
    pub async fn cluster_status(&self, actor: &Actor) -> OpResult<ClusterStatus> {
        actor.require(Permission::Administer)?;
        let lease_seconds = self.config.cluster.lease_seconds;
        let now = Utc::now();
        let silent_after = Duration::seconds(lease_seconds as i64);
        let replicas = self
            .store
            .replicas(now - Duration::days(1))
            .await?
            .into_iter()
            .map(|r| ReplicaView {
                state: if r.stopped_at.is_some() {
                    "stopped"
                } else if now - r.heartbeat_at > silent_after {
                    "silent"
                } else {
                    "up"
                },
                id: r.id,
                address: r.address,
                version: r.version,
                started_at: r.started_at,
                last_heartbeat: r.heartbeat_at,
            })
            .collect();
        let jobs = self
            .store
            .job_leases()
            .await?
            .into_iter()
            .map(|j| JobView {
                lease_end: j.holder.as_ref().map(|_| j.lease_until),
                name: j.name,
                holder: j.holder,
                last_run: j.last_run_at,
                last_run_by: j.last_run_by,
                last_error: j.last_error,
            })
            .collect();
        Ok(ClusterStatus { replicas, jobs, lease_seconds })
    }
}

/// Where a process keeps its membership (in the operations' shared signals).
pub type MembershipCell = OnceLock<Membership>;
