//! Generic webhook: the alert as versioned JSON, signed with HMAC-SHA256 over
//! a timestamp and the body, so a receiver can check it came from us and is
//! fresh.
//!
//! Headers: `X-Honeytrail-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>" under the shared secret>`, and `X-Honeytrail-Delivery: <id>`
//! with the same value as `Idempotency-Key: <id>`, which stays the same
//! across retries (and replicas) so receivers can drop duplicates.
//!
//! Example configuration (`honeytrail channel add webhook soc --url … --secret …`):
//! ```json
//! {"url": "https://soc.example.com/hooks/honeytrail", "secret": "…", "headers": {"X-Team": "secops"}}
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::channels::{BoxFuture, Channel, Configured, Outgoing};
use crate::retry::{Failure, Retry};
use crate::Sender;
use honeytrail_core::channel::{FieldSpec, FieldValue, KindSpec, Secrecy};

pub const SIGNATURE_HEADER: &str = "X-Honeytrail-Signature";
pub const DELIVERY_HEADER: &str = "X-Honeytrail-Delivery";
/// The same value as [`DELIVERY_HEADER`], under the name idempotent
/// receivers (and API gateways) look for: one alert to one channel keeps
/// it across retries and replicas.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Where to POST; http or https.
    pub url: String,
    /// Shared secret for the signature; empty means unsigned.
    #[serde(default)]
    pub secret: String,
    /// Extra headers (an API key a gateway wants, a routing hint).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// What the body is: `honeytrail.alert.v1` or an OCSF Detection Finding.
    #[serde(default, skip_serializing_if = "crate::siem::Format::is_default")]
    pub format: crate::siem::Format,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookConfig(***)")
    }
}

/// `t=…,v1=…` for `body` at unix time `t`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

pub use crate::target::allowed;

/// Checks a webhook target before it is stored: the URL as the client
/// parses it (http(s) only, on the allowlist when there is one, never a
/// link-local or metadata address) and, for a name, what it resolves to now.
/// At delivery the resolver checks again, at connection time.
pub async fn check_target(url: &str, allowlist: &[String]) -> Result<(), Failure> {
    let parsed = crate::target::check_url(url, allowlist)?;
    if let Some(url::Host::Domain(name)) = parsed.host() {
        crate::target::resolve(name, parsed.port_or_known_default().unwrap_or(443)).await?;
    }
    Ok(())
}

/// Parses `Retry-After` given in seconds (the HTTP-date form falls back to backoff).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(|s| Duration::from_secs(s.min(3600)))
}

/// Sends one alert. `delivery_id` is constant across retries.
pub async fn deliver(sender: &Sender, config: &WebhookConfig, delivery_id: &str, body: &[u8]) -> Result<(), Failure> {
    post_json(sender, config, Some(delivery_id), body).await.map(|_| ())
}

/// A webhook target with nothing but a URL (Slack, Teams, PagerDuty).
pub(crate) fn plain(url: &str) -> WebhookConfig {
    WebhookConfig {
        url: url.to_string(),
        secret: String::new(),
        headers: Default::default(),
        format: Default::default(),
    }
}

/// POSTs a JSON body to a checked target and classifies the answer; shared by
/// every HTTP channel. Signs it when the configuration has a secret. Returns
/// the response body (at most 1 MiB of it).
pub(crate) async fn post_json(
    sender: &Sender,
    config: &WebhookConfig,
    delivery_id: Option<&str>,
    body: &[u8],
) -> Result<Vec<u8>, Failure> {
    let url = crate::target::check_url(&config.url, &sender.allowed_hosts)?;
    let mut request =
        sender.client.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_vec());
    if let Some(id) = delivery_id {
        request = request.header(DELIVERY_HEADER, id).header(IDEMPOTENCY_HEADER, id);
    }
    if !config.secret.is_empty() {
        request = request.header(SIGNATURE_HEADER, signature(&config.secret, chrono::Utc::now().timestamp(), body));
    }
    for (k, v) in &config.headers {
        request = request.header(k.as_str(), v.as_str());
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            // reqwest's message may contain the URL (and a token in it): keep only the kind.
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            return Err(Failure { message: format!("webhook {kind}"), retry: Retry::Backoff });
        }
    };
    let status = response.status();
    if status.is_success() {
        let mut response = response;
        let mut out = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            out.extend_from_slice(&chunk);
            if out.len() > 1 << 20 {
                break;
            }
        }
        return Ok(out);
    }
    let retry = match status.as_u16() {
        429 | 503 => retry_after(response.headers()).map(Retry::After).unwrap_or(Retry::Backoff),
        408 | 425 | 500..=599 => Retry::Backoff,
        _ => Retry::Never,
    };
    Err(Failure { message: format!("webhook answered HTTP {}", status.as_u16()), retry })
}

static SPEC: KindSpec = KindSpec {
    name: "webhook",
    summary: "Generic webhook: versioned JSON, HMAC-SHA256 signed",
    fields: &[
        FieldSpec {
            key: "url",
            flag: "url",
            help: "http(s) URL to POST alerts to",
            value: FieldValue::Text,
            required: true,
            default: None,
            secret: Secrecy::Plain,
        },
        FieldSpec {
            key: "secret",
            flag: "secret",
            help: "Read the signing secret from standard input",
            value: FieldValue::Text,
            required: false,
            default: None,
            secret: Secrecy::StdinOnFlag,
        },
        FieldSpec {
            key: "headers",
            flag: "header",
            help: "Extra header NAME=VALUE (repeatable)",
            value: FieldValue::Map,
            required: false,
            default: None,
            secret: Secrecy::Plain,
        },
        FieldSpec {
            key: "format",
            flag: "format",
            help: "The body: honeytrail.alert.v1 or an OCSF Detection Finding",
            value: FieldValue::Choice { values: &["honeytrail", "ocsf"] },
            required: false,
            default: Some("honeytrail"),
            secret: Secrecy::Plain,
        },
    ],
};

impl Configured for WebhookConfig {
    const SPEC: &'static KindSpec = &SPEC;

    fn validate(&mut self) -> Result<(), String> {
        if self.format == crate::siem::Format::Ecs {
            return Err("a webhook sends honeytrail.alert.v1 or OCSF; ECS is for JSON lines".into());
        }
        Ok(())
    }
}

impl Channel for WebhookConfig {
    fn summary(&self) -> String {
        if self.secret.is_empty() { "webhook, unsigned" } else { "webhook, signed" }.into()
    }

    fn check<'a>(&'a self, sender: &'a Sender) -> BoxFuture<'a, Result<(), Failure>> {
        crate::channels::check_http(&self.url, sender)
    }

    fn deliver<'a>(
        &'a self,
        sender: &'a Sender,
        out: &'a Outgoing<'a>,
    ) -> BoxFuture<'a, Result<Option<String>, Failure>> {
        Box::pin(
            async move { deliver(sender, self, out.delivery_id, &self.format.encode(out.alert)).await.map(|()| None) },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_over_timestamp_and_body() {
        // Independently computed: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret
        assert_eq!(
            signature("s3cret", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
        );
    }

    #[tokio::test]
    async fn the_allowlist_admits_exact_hosts_and_subdomains_only() {
        let list = vec!["hooks.slack.com".to_string(), ".example.com".to_string(), "*.corp.test".to_string()];
        assert!(allowed("hooks.slack.com", &list));
        assert!(allowed("HOOKS.slack.com.", &list));
        assert!(allowed("soc.example.com", &list));
        assert!(allowed("a.b.corp.test", &list));
        assert!(!allowed("example.com.evil.net", &list));
        assert!(!allowed("evilexample.com", &list));
        assert!(!allowed("slack.com", &list));
        let refused = check_target("http://127.0.0.1:9/x", &list).await.unwrap_err();
        assert_eq!(refused.retry, Retry::Never);
        assert!(refused.message.contains("allowlist"), "{}", refused.message);
        check_target("http://127.0.0.1:9/x", &[]).await.unwrap();
    }

    #[tokio::test]
    async fn metadata_and_link_local_targets_are_refused() {
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/",
            "http://metadata.google.internal/",
            "file:///etc/passwd",
            "gopher://x",
        ] {
            let err = check_target(url, &[]).await.unwrap_err();
            assert_eq!(err.retry, Retry::Never, "{url}");
        }
        assert!(check_target("http://127.0.0.1:9/hook", &[]).await.is_ok());
    }
}
