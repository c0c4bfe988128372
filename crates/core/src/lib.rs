//! The pure core of honeytrail: domain types and the logic that needs no I/O.
//!
//! Nothing here touches the network, the file system or a database, so every
//! rule (naming, key-ID decoding, bait rendering and merging, stealth checks,
//! the sentences alerts are made of) is tested in microseconds. Adapters in
//! the other crates (store, AWS, CLI) sit around it.
//!
//! # Example
//! ```
//! use honeytrail_core::keyid::{decode_account, AccountDecode};
//! assert_eq!(decode_account("ASIAY34FZKBOKMUTVV7A"), AccountDecode::Account("609629065308".into()));
//! ```

pub mod access;
pub mod action;
pub mod alerting;
pub mod auditd;
pub mod bait;
pub mod channel;
pub mod ci;
pub mod decoy;
pub mod describe;
pub mod encoding;
pub mod enrich;
mod error;
pub mod evidence;
pub mod fleet;
pub mod incident;
pub mod keyid;
pub mod lambda;
pub mod mail;
pub mod model;
pub mod naming;
pub mod net;
pub mod pool;
pub mod record;
pub mod route;
pub mod secret;
pub mod snippet;
pub mod stealth;
pub mod template;

pub use error::Invalid;
pub use model::{
    parse_label_text, parse_labels, CustodyHop, LabelFilter, Labels, NewToken, Placement, Spot, Token, TokenKind,
    TokenState,
};
pub use secret::{bearer_hash, new_bearer, Secret, SecretBox};
