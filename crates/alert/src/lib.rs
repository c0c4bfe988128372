//! honeytrail's alert channels.
//!
//! A channel turns an alert (an incident that opened, changed or got new
//! events) into a vendor's request and says whether a failed attempt is worth
//! retrying. The outbox in the store and the dispatcher decide when to try.
//! Channels read the typed record (`honeytrail_core::record::Alert`), never
//! string keys, so a field renamed in the record is a compile error here.
//!
//! **Architecture invariant:** channel configuration (URLs with tokens,
//! secrets) never reaches a log line or an error message.

pub mod channels;
pub mod retry;
pub mod runbook;
pub mod siem;
pub mod target;
pub mod text;

pub use channels::jsonl::JsonLinesConfig;
pub use channels::webhook::{WebhookConfig, DELIVERY_HEADER, SIGNATURE_HEADER};
pub use channels::{ChannelConfig, Outgoing};
pub use retry::{backoff, Failure, Retry};

/// The version of the alert JSON schema sent to generic webhooks.
pub use honeytrail_core::record::SCHEMA;

/// What the HTTP channels send with: one client, and the target policy.
#[derive(Debug, Clone)]
pub struct Sender {
    pub client: reqwest::Client,
    /// When not empty, the only hosts alerts may go to (`example.com`
    /// exactly, `.example.com` any host under it): HTTP, syslog and SMTP.
    pub allowed_hosts: Vec<String>,
    /// Where JSON-lines files may be written.
    pub files: channels::jsonl::FilePolicy,
}
