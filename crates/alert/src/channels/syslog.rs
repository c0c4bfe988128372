//! Syslog (RFC 5424) over UDP or TCP (RFC 6587 octet counting), for a SIEM
//! or a log pipeline.
//!
//! `<PRI>1 TIMESTAMP HOST honeytrail PID MSGID [honeytrail@32473 …] MSG`, where
//! PRI is facility × 8 + severity (critical for a key's use, notice for a
//! state change), MSGID the alert kind, the structured data carries the
//! incident, key and state, and MSG a compact JSON summary.
//!
//! Example configuration (`honeytrail channel add syslog siem --address 10.0.0.5:514 --transport tcp`):
//! ```json
//! {"address": "10.0.0.5:514", "transport": "tcp", "facility": 10}
//! ```

use std::time::Duration;

use honeytrail_core::record::Alert;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::channels::{BoxFuture, Channel, Configured, Outgoing};
use crate::retry::{Failure, Retry};
use honeytrail_core::channel::{FieldSpec, FieldValue, KindSpec, Secrecy};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
}

fn default_facility() -> u8 {
    10 // authpriv: security and authorisation messages
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SyslogConfig {
    pub address: String,
    pub transport: Transport,
    #[serde(default = "default_facility")]
    pub facility: u8,
    /// What the message is: a short summary of the record, or an OCSF
    /// Detection Finding.
    #[serde(default, skip_serializing_if = "crate::siem::Format::is_default")]
    pub format: crate::siem::Format,
}

/// Escapes an SD-PARAM value (RFC 5424 §6.3.3).
fn sd_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace(']', "\\]")
}

/// The RFC 5424 message for an alert.
pub fn frame(config: &SyslogConfig, alert: &Alert, host: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    let (kind, sd, summary) = match alert {
        Alert::Test(_) => (
            "test".to_string(),
            "[honeytrail@32473 incident=\"0\" key=\"\" state=\"\"]".to_string(),
            json!({
                "kind": "test", "incident": null, "access_key_id": null, "state": null, "events": null,
                "placement": null, "apis": null, "source_ips": null, "test": true,
            }),
        ),
        Alert::Incident(record) => {
            let incident = &record.incident;
            let kind = record.alert_kind().to_string();
            let summary = json!({
                "kind": kind,
                "incident": incident.id,
                "access_key_id": incident.access_key_id,
                "state": incident.state,
                "events": incident.event_count,
                "placement": record.placement,
                "apis": record.activity.apis,
                "source_ips": record.activity.source_ips,
                "test": false,
            });
            let mut summary = summary;
            if let Some(r) = &record.read_before {
                summary["read_before"] = r.as_str().into();
            }
            if let Some(c) = record.context.as_ref().filter(|c| !c.is_empty()) {
                summary["context"] = c.summary.clone().into();
            }
            let sd = format!(
                "[honeytrail@32473 incident=\"{}\" key=\"{}\" state=\"{}\"]",
                incident.id,
                sd_escape(&incident.access_key_id),
                sd_escape(incident.state.as_str())
            );
            (kind, sd, summary)
        }
    };
    let summary = match config.format {
        crate::siem::Format::Ocsf => crate::siem::ocsf_within(alert, crate::siem::SYSLOG_OCSF_MAX),
        _ => summary,
    };
    let severity = if kind == "incident.state" || kind == "test" { 5 } else { 2 };
    let pri = u32::from(config.facility.min(23)) * 8 + severity;
    let host: String = host.chars().filter(|c| c.is_ascii_graphic()).take(255).collect();
    format!(
        "<{pri}>1 {} {} honeytrail {} {} {sd} {summary}",
        now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        if host.is_empty() { "-" } else { &host },
        std::process::id(),
        kind.chars().filter(|c| c.is_ascii_graphic()).take(32).collect::<String>()
    )
}

/// The host and port of `host:port` or `[v6]:port`.
pub fn split_address(address: &str) -> Result<(&str, u16), Failure> {
    let bad = || Failure {
        message: format!("the syslog address {address:?} is not HOST:PORT (e.g. siem.example.com:514)"),
        retry: Retry::Never,
    };
    let (host, port) = address.trim().rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || (host.contains(':') && !host.starts_with('[')) {
        return Err(bad());
    }
    Ok((host.trim_start_matches('[').trim_end_matches(']'), port))
}

/// Checks a syslog target before it is stored and before each delivery.
pub fn check(config: &SyslogConfig, allowlist: &[String]) -> Result<(), Failure> {
    let (host, _) = split_address(&config.address)?;
    crate::target::check_host(host, allowlist, "syslog address")
}

pub async fn deliver(sender: &crate::Sender, config: &SyslogConfig, alert: &Alert, host: &str) -> Result<(), Failure> {
    check(config, &sender.allowed_hosts)?;
    let (target, port) = split_address(&config.address)?;
    let message = frame(config, alert, host, chrono::Utc::now());
    let fail = |what: &str, e: std::io::Error| Failure {
        message: format!("syslog {what} {} failed: {e}", config.address),
        retry: Retry::Backoff,
    };
    let io = async {
        // Resolved here and filtered: never a link-local or metadata address.
        let addrs = crate::target::resolve(target, port).await?;
        match config.transport {
            Transport::Udp => {
                let socket = tokio::net::UdpSocket::bind(if addrs[0].is_ipv6() { "[::]:0" } else { "0.0.0.0:0" })
                    .await
                    .map_err(|e| fail("bind for", e))?;
                socket.send_to(message.as_bytes(), addrs[0]).await.map_err(|e| fail("send to", e))?;
            }
            Transport::Tcp => {
                let mut stream = tokio::net::TcpStream::connect(&addrs[..]).await.map_err(|e| fail("connect to", e))?;
                // RFC 6587 octet counting: the length, a space, the message.
                stream
                    .write_all(format!("{} {message}", message.len()).as_bytes())
                    .await
                    .map_err(|e| fail("write to", e))?;
                stream.flush().await.map_err(|e| fail("flush to", e))?;
            }
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(10), io).await.unwrap_or_else(|_| {
        Err(Failure { message: format!("syslog to {} timed out", config.address), retry: Retry::Backoff })
    })
}

static SPEC: KindSpec = KindSpec {
    name: "syslog",
    summary: "Syslog (RFC 5424) over UDP or TCP",
    fields: &[
        FieldSpec {
            key: "address",
            flag: "address",
            help: "host:port of the syslog receiver",
            value: FieldValue::Text,
            required: true,
            default: None,
            secret: Secrecy::Plain,
        },
        FieldSpec {
            key: "transport",
            flag: "transport",
            help: "udp or tcp",
            value: FieldValue::Choice { values: &["udp", "tcp"] },
            required: false,
            default: Some("udp"),
            secret: Secrecy::Plain,
        },
        FieldSpec {
            key: "facility",
            flag: "facility",
            help: "Syslog facility number (10 = authpriv)",
            value: FieldValue::Number { min: 0, max: 23 },
            required: false,
            default: Some("10"),
            secret: Secrecy::Plain,
        },
        FieldSpec {
            key: "format",
            flag: "format",
            help: "The message: a summary of honeytrail.alert.v1, or an OCSF Detection Finding",
            value: FieldValue::Choice { values: &["honeytrail", "ocsf"] },
            required: false,
            default: Some("honeytrail"),
            secret: Secrecy::Plain,
        },
    ],
};

impl Configured for SyslogConfig {
    const SPEC: &'static KindSpec = &SPEC;

    fn prepare(config: &mut serde_json::Value) {
        if let Some(obj) = config.as_object_mut() {
            obj.entry("transport").or_insert_with(|| "udp".into());
        }
    }

    fn validate(&mut self) -> Result<(), String> {
        if !self.address.contains(':') {
            return Err(format!("the syslog address {:?} needs a port, like 10.0.0.5:514", self.address));
        }
        if self.format == crate::siem::Format::Ecs {
            return Err("syslog sends a summary or OCSF; ECS is for JSON lines".into());
        }
        Ok(())
    }
}

impl Channel for SyslogConfig {
    fn summary(&self) -> String {
        format!("syslog to {}", self.address)
    }

    fn check<'a>(&'a self, sender: &'a crate::Sender) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move { check(self, &sender.allowed_hosts) })
    }

    fn deliver<'a>(
        &'a self,
        sender: &'a crate::Sender,
        out: &'a Outgoing<'a>,
    ) -> BoxFuture<'a, Result<Option<String>, Failure>> {
        Box::pin(async move { deliver(sender, self, out.alert, &crate::channels::hostname()).await.map(|()| None) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_follow_rfc_5424() {
        let config =
            SyslogConfig { address: "x".into(), transport: Transport::Udp, facility: 10, format: Default::default() };
        let mut record = honeytrail_core::record::AlertRecord::skeleton(4, "AKIAX");
        record.alert = Some(honeytrail_core::record::AlertRef { id: 1, kind: "incident.opened".into() });
        record.placement = "p".into();
        let rec = Alert::Incident(Box::new(record));
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-28T09:00:00Z").unwrap().with_timezone(&chrono::Utc);
        let f = frame(&config, &rec, "ht-1", now);
        assert!(f.starts_with("<82>1 2026-11-28T09:00:00.000Z ht-1 honeytrail "), "{f}");
        assert!(f.contains(" incident.opened [honeytrail@32473 incident=\"4\" key=\"AKIAX\" state=\"open\"] {"), "{f}");
        assert_eq!(sd_escape(r#"a"b]c\"#), r#"a\"b\]c\\"#);
    }
}
