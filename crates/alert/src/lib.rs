//! honeytrail's alert channels.
//!
//! A channel turns an alert (an incident that opened, changed or got new
//! events) into a vendor's request and says whether a failed attempt is worth
//! retrying. The outbox in the store and the dispatcher decide when to try.
//!
//! **Architecture invariant:** channel configuration (URLs with tokens,
//! secrets) never reaches a log line or an error message.

pub mod channels;
pub mod retry;
pub mod runbook;

pub use channels::jsonl::JsonLinesConfig;
pub use channels::webhook::{WebhookConfig, DELIVERY_HEADER, SIGNATURE_HEADER};
pub use channels::ChannelConfig;
pub use retry::{backoff, Failure, Retry};

/// The version of the alert JSON schema sent to generic webhooks.
pub const SCHEMA: &str = "honeytrail.alert.v1";
