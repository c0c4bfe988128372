//! honeytrail's application layer: what every front door (the command line,
//! the REST API, the web UI) calls.
//!
//! - [`ops`]: the operations — tokens, placements, custody, bait, incidents,
//!   channels, routes, runbooks, deliveries, users, API tokens, employee
//!   reports. Each takes the acting [`Actor`], checks its permission,
//!   validates, and writes its audit entry in the same transaction as the
//!   change. Each fails with one [`OpError`].
//! - [`sources`]: where CloudTrail arrives from (local files, S3 polling,
//!   SQS, the EventBridge and canarytokens receivers, the safety net), all
//!   feeding one [`sources::Sink`]: detector → store → wake the dispatcher.
//! - [`dispatch`]: the alert dispatcher: fan-out, leases, retries.
//! - [`record`]: the incident record every alert and export is made from.
//! - [`config`] and [`context`]: configuration, the store, the canary account.
//!
//! No HTTP server and no argument parsing live here: those are the server
//! and command-line crates, which only translate.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use honeytrail_app::{config::Config, context::App, Actor};
//! let app = App::new(Config::load(&Default::default())?, None);
//! let ops = app.ops().await?;
//! let note = honeytrail_app::ops::NoteRequest { text: "called Maria: it was not her".into() };
//! ops.add_note(&Actor::command_line("alice"), 3, &note).await?;
//! # Ok(()) }
//! ```

mod actor;
pub mod alloc;
pub mod backup;
pub mod config;
pub mod context;
pub mod dispatch;
pub mod enrichment;
mod error;
pub mod identity;
pub mod imap;
pub mod measure;
pub mod ops;
pub mod record;
pub mod response;
pub mod sources;

pub use actor::Actor;

/// A fault-test hook: when `HONEYTRAIL_FAILPOINT` names this point, the
/// process sends itself SIGKILL here. The fault tests stop a process at an
/// exact step (a key made in AWS and not yet recorded) instead of at a
/// moment guessed with a timer. Unset, it costs one environment read, at
/// steps that wait on AWS or a database write anyway.
pub(crate) fn failpoint(name: &str) {
    if std::env::var_os("HONEYTRAIL_FAILPOINT").is_some_and(|v| v == name) {
        tracing::warn!(failpoint = name, "HONEYTRAIL_FAILPOINT: killing this process here");
        // SAFETY: getpid and kill have no preconditions; SIGKILL ends the
        // process without running anything of ours.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
pub use context::{App, Ops};
pub use error::{OpError, OpErrorKind, OpResult};
