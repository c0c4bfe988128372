//! The operations behind every front door, as methods of [`Ops`](crate::Ops).
//!
//! **Invariant:** an operation checks the actor's permission before it reads
//! or changes anything, validates its input with the core's rules, and
//! writes its audit entry in the same transaction as its change
//! ([`Ops::audited`](crate::Ops::audited)).
//!
//! To add an operation: a method in the file of its subject here, taking
//! `&Actor` first; the command line calls it from `crates/cli/commands/`,
//! the API from `crates/server/src/api.rs`, the UI from `ui.rs`.

pub mod actions;
pub mod agents;
pub mod alerting;
pub mod canary;
pub mod custody;
pub mod deploy;
pub mod enrich;
pub mod evidence;
pub mod fleet;
pub mod import;
pub mod incidents;
pub mod people;
pub mod placements;
pub mod tokens;

pub use actions::ActionRequest;
pub use custody::{RenderInto, Written};
pub use import::{FileFormat, ImportRequest};
pub use incidents::IncidentQuery;
pub use placements::{PlacementQuery, PlacementRequest};
pub use tokens::{MintRequest, Page, Retired, Rotated, TokenQuery, PAGE_DEFAULT, PAGE_MAX};
