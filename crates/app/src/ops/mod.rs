//! The operations behind every front door, as methods of [`Ops`](crate::Ops).
//!
//! **Invariant:** an operation checks the actor's permission before it reads
//! or changes anything, validates its input with the core's rules, and
//! writes its audit entry in the same transaction as its change
//! ([`Ops::audited`](crate::Ops::audited)).
//!
//! **Invariant:** an operation takes one request type and returns a typed
//! result defined here or in `honeytrail-core`, never a store row: the
//! store's rows derive no `Serialize`, and the front doors cannot name them
//! (`crates/server` and the binary do not depend on `honeytrail-store`).
//!
//! To add an operation: a method in the file of its subject here, taking
//! `&Actor` first; the command line calls it from `crates/cli/commands/`,
//! the API from `crates/server/src/api/<subject>.rs`, the UI from
//! `crates/server/src/ui/<subject>.rs`.

pub mod accounts;
pub mod actions;
pub mod agents;
pub mod alerting;
pub mod answers;
pub mod canary;
pub mod charts;
pub mod ci;
pub mod cluster;
pub mod custody;
pub mod decoys;
pub mod deploy;
pub mod enrich;
pub mod evidence;
pub mod fleet;
pub mod import;
pub mod incidents;
pub mod input;
pub mod overview;
pub mod people;
pub mod placements;
pub mod session_canaries;
pub mod sessions;
pub mod tokens;

pub use accounts::AccountRequest;
pub use actions::{Action, ActionRequest, ActionRun};
pub use agents::{Agent, AgentCommand, AgentFile, AgentSession};
pub use alerting::{Channel, ChannelRequest, Delivery, Runbook, RunbookRequest, TestTarget};
pub use ci::{CiRunDetail, CiRunQuery, CiRunView, CiSweep};
pub use custody::{RenderInto, Written};
pub use decoys::{DecoyApplied, DecoyPlan, DecoyPlanRequest, DecoyView};
pub use evidence::{EvidenceQuery, FiledRead};
pub use fleet::{EnrolmentSecret, EnrolmentSecretRequest, NewEnrolmentSecret};
pub use honeytrail_core::pool::PoolAccount;
pub use import::{FileFormat, ImportRequest};
pub use incidents::{IncidentQuery, IncidentView, NoteRequest, StateChange};
pub use people::{ApiToken, ApiTokenRequest, AuditEntry, LookupRequest, NewApiToken, NewUser, User, UserRequest};
pub use placements::{PlacementQuery, PlacementRequest};
pub use tokens::{MintRequest, Page, Retired, Rotated, TokenDetail, TokenQuery, PAGE_DEFAULT, PAGE_MAX};
