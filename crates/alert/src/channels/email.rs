//! Email over SMTP: a plain-text and an HTML part in one message, to every
//! recipient of the channel. Updates of an incident reply to its first
//! message (`In-Reply-To`/`References`), so mail clients thread them.
//!
//! With `ask_owner`, the owner of each placement whose owner is an email
//! address also gets a short "was this you?" message when the incident opens,
//! with a one-time link to answer (see `owner_questions` in the record).
//!
//! TLS: `starttls` (default, port 587; required, so nothing goes out in the
//! clear if the server cannot upgrade), `tls` (implicit TLS, port 465) or
//! `none` (a local relay only). Certificates are checked against the public
//! roots and, with `ca_file`, an internal CA. The password is a secret.
//!
//! Example configuration (`honeytrail channel add email soc --host smtp.acme.com --from honeytrail@acme.com --to soc@acme.com --username honeytrail --password-stdin`):
//! ```json
//! {"host": "smtp.acme.com", "port": 587, "tls": "starttls", "username": "honeytrail", "password": "…",
//!  "from": "honeytrail@acme.com", "to": ["soc@acme.com"], "ask_owner": true}
//! ```

use std::time::Duration;

use honeytrail_core::record::{Alert, AlertRecord};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::channels::{BoxFuture, Channel, Configured, Outgoing};
use crate::retry::{Failure, Retry};
use crate::text::{self, html_escape};
use honeytrail_core::channel::{FieldSpec, FieldValue, KindSpec, Secrecy};

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Upgrade a plain connection with STARTTLS; refuse to go on without it.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// No encryption: only for a relay on the same host or network.
    None,
}

impl std::str::FromStr for TlsMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "starttls" => Ok(TlsMode::Starttls),
            "tls" => Ok(TlsMode::Tls),
            "none" => Ok(TlsMode::None),
            other => Err(format!("unknown TLS mode {other:?}; use starttls, tls or none")),
        }
    }
}

fn default_port() -> u16 {
    587
}

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EmailConfig {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub tls: TlsMode,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    /// Ask placement owners "was this you?" when an incident opens.
    #[serde(default)]
    pub ask_owner: bool,
    /// A PEM file of extra CA certificates to trust for this server (an
    /// internal CA); the public roots are trusted in any case.
    #[serde(default)]
    pub ca_file: Option<String>,
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmailConfig(***)")
    }
}

fn never(message: String) -> Failure {
    Failure { message, retry: Retry::Never }
}

fn mailbox(address: &str, what: &str) -> Result<Mailbox, Failure> {
    address.trim().parse().map_err(|_| never(format!("the {what} address {address:?} is not an email address")))
}

/// Checks a configuration before it is stored.
pub fn check(config: &EmailConfig) -> Result<(), String> {
    let f = |e: Failure| e.message;
    mailbox(&config.from, "from").map_err(f)?;
    if config.to.is_empty() {
        return Err("an email channel needs at least one recipient (--to)".into());
    }
    for to in &config.to {
        mailbox(to, "to").map_err(f)?;
    }
    if config.host.trim().is_empty() {
        return Err("the SMTP host is empty".into());
    }
    if config.username.is_some() != config.password.is_some() {
        return Err("give both a username and a password, or neither".into());
    }
    if let Some(path) = &config.ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read the CA file {path}: {e}"))?;
        ca_certificate(&pem).map_err(|e| format!("the CA file {path} {e}"))?;
    }
    Ok(())
}

/// Whether an owner (as recorded on a placement) is an email address we can ask.
pub fn is_address(owner: &str) -> bool {
    owner.trim().parse::<Mailbox>().is_ok() && owner.contains('@')
}

/// The Message-ID of an incident's first message, which updates refer to.
fn thread_id(incident_id: i64, domain: &str) -> String {
    format!("<honeytrail-incident-{incident_id}@{domain}>")
}

fn alternative(plain: String, html: String) -> MultiPart {
    // Base64 keeps long lines and non-ASCII intact through any relay.
    MultiPart::alternative()
        .singlepart(
            SinglePart::builder().header(ContentType::TEXT_PLAIN).header(ContentTransferEncoding::Base64).body(plain),
        )
        .singlepart(
            SinglePart::builder().header(ContentType::TEXT_HTML).header(ContentTransferEncoding::Base64).body(html),
        )
}

fn html_page(title: &str, lead: &str, link: Option<(&str, &str)>, pre: &str) -> String {
    let button = link
        .map(|(url, label)| {
            format!(
                "<p><a href=\"{}\" style=\"background:#b91c1c;color:#fff;padding:8px 14px;text-decoration:none;border-radius:4px\">{}</a></p>",
                html_escape(url),
                html_escape(label)
            )
        })
        .unwrap_or_default();
    format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><h2>{}</h2><p><strong>{}</strong></p>{button}<pre style=\"white-space:pre-wrap\">{}</pre></body></html>",
        html_escape(&text::line(title)),
        html_escape(&text::line(lead)),
        html_escape(pre)
    )
}

/// The subject, the plain text and the HTML of the message to the
/// channel's recipients.
pub fn team_parts(alert: &Alert) -> (String, String, String) {
    let title = text::title(alert);
    let plain = text::body(alert);
    let record = alert.record();
    let link = record.and_then(|r| r.incident.url.as_deref()).map(|u| (u, "Open the incident"));
    let html = html_page(&title, record.map(|r| r.placement.as_str()).unwrap_or(""), link, &plain);
    (format!("[honeytrail] {title}"), plain, html)
}

/// The message to the channel's recipients.
pub fn team_message(config: &EmailConfig, alert: &Alert, domain: &str) -> Result<Message, Failure> {
    let (subject, plain, html) = team_parts(alert);
    let mut builder = Message::builder().from(mailbox(&config.from, "from")?).subject(subject);
    for to in &config.to {
        builder = builder.to(mailbox(to, "to")?);
    }
    if let Some(record) = alert.record() {
        let thread = thread_id(record.incident.id, domain);
        builder = if record.alert.as_ref().is_some_and(|a| a.kind == "incident.opened") {
            builder.message_id(Some(thread))
        } else {
            builder.in_reply_to(thread.clone()).references(thread).message_id(None)
        };
    }
    builder.multipart(alternative(plain, html)).map_err(|e| never(format!("cannot build the email: {e}")))
}

/// The "was this you?" message to one placement owner.
pub fn owner_message(config: &EmailConfig, record: &AlertRecord, owner: &str, url: &str) -> Result<Message, Failure> {
    let a = &record.activity;
    let list = |v: &[String]| v.join(", ");
    let placement = record.placement.as_str();
    let plain = format!(
        "Hello,\n\nyou are recorded as the owner of this AWS access key:\n\n  {placement}\n\n\
         It was just used: {} from {} (first call {}).\n\n\
         Was this you — for example while testing? Please tell the security team either way with one click:\n\n  {url}\n\n\
         The link works once. Do not use the key again. If you did not use it, someone else has it.\n\n— honeytrail, for the security team\n",
        list(&a.apis),
        list(&a.source_ips),
        text::when(record.incident.first_seen)
    );
    let html = html_page("Was this you?", placement, Some((url, "Answer: was this you?")), &plain);
    Message::builder()
        .from(mailbox(&config.from, "from")?)
        .to(mailbox(owner, "owner")?)
        .subject(format!("Was this you? An AWS key you own was used (incident #{})", record.incident.id))
        .multipart(alternative(plain, html))
        .map_err(|e| never(format!("cannot build the email: {e}")))
}

/// A PEM CA certificate, refusing files that hold none.
fn ca_certificate(pem: &[u8]) -> Result<Certificate, String> {
    if !String::from_utf8_lossy(pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err("is not a PEM certificate (no BEGIN CERTIFICATE block)".into());
    }
    Certificate::from_pem(pem).map_err(|e| format!("is not a PEM certificate: {e}"))
}

fn tls_parameters(config: &EmailConfig) -> Result<TlsParameters, Failure> {
    let host = config.host.trim();
    let mut params = TlsParameters::builder(host.to_string());
    if let Some(path) = &config.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| Failure { message: format!("cannot read the CA file {path}: {e}"), retry: Retry::Backoff })?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| never(format!("the CA file {path} is not a PEM certificate: {e}")))?;
        params = params.add_root_certificate(cert);
    }
    params.build().map_err(|e| never(format!("cannot set up TLS for {host}: {e}")))
}

/// The transport to the server, connecting to an address the target policy
/// allows (resolved here and filtered); TLS still checks the server's name.
async fn transport(
    sender: &crate::Sender,
    config: &EmailConfig,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, Failure> {
    let name = config.host.trim();
    crate::target::check_host(name, &sender.allowed_hosts, "SMTP host")?;
    let address = crate::target::resolve(name, config.port).await?[0].ip().to_string();
    let host = address.as_str();
    let tls = match config.tls {
        // STARTTLS is required: without it nothing (no password, no alert) is sent.
        TlsMode::Starttls => Tls::Required(tls_parameters(config)?),
        TlsMode::Tls => Tls::Wrapper(tls_parameters(config)?),
        TlsMode::None => Tls::None,
    };
    let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).tls(tls);
    let mut builder = builder.port(config.port).timeout(Some(Duration::from_secs(20)));
    if let (Some(user), Some(password)) = (&config.username, &config.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

async fn send(
    smtp: &AsyncSmtpTransport<Tokio1Executor>,
    config: &EmailConfig,
    message: Message,
) -> Result<(), Failure> {
    smtp.send(message).await.map(|_| ()).map_err(|e| {
        // lettre's errors name the server's answer, never the password.
        let retry = if e.is_permanent() { Retry::Never } else { Retry::Backoff };
        Failure { message: format!("SMTP to {}:{} failed: {e}", config.host, config.port), retry }
    })
}

/// Sends the alert to the recipients and, when the incident opens and the
/// channel asks owners, the "was this you?" messages.
pub async fn deliver(sender: &crate::Sender, config: &EmailConfig, alert: &Alert, domain: &str) -> Result<(), Failure> {
    let smtp = transport(sender, config).await?;
    send(&smtp, config, team_message(config, alert, domain)?).await?;
    if let Some(record) = alert.record().filter(|r| config.ask_owner && r.alert_kind() == "incident.opened") {
        for q in &record.owner_questions {
            send(&smtp, config, owner_message(config, record, &q.owner, &q.url)?).await?;
        }
    }
    Ok(())
}

static SPEC: KindSpec = KindSpec {
    name: "email",
    summary: "Email over SMTP (plain text + HTML); the password, if any, is read from standard input",
    fields: &[
        FieldSpec {
            key: "host",
            flag: "host",
            help: "SMTP server host name",
            value: FieldValue::Text,
            required: true,
            default: None,
            secret: Secrecy::Plain,
        },
        FieldSpec {
            key: "port",
            flag: "port",
            help: "Default: 587 for starttls, 465 for tls, 25 for none",
            value: FieldValue::Number { min: 1, max: 65535 },
            required: false,
            default: None,
            secret: Secrecy::Plain,
        },
        FieldSpec {
            key: "tls",
            flag: "tls",
            help: "starttls, tls (from the first byte) or none",
            value: FieldValue::Choice { values: &["starttls", "tls", "none"] },
            required: false,
            default: Some("starttls"),
            secret: Secrecy::Plain,
        },
        FieldSpec {
            key: "username",
            flag: "username",
            help: "SMTP user name; its password is read from standard input",
            value: FieldValue::Text,
            required: false,
            default: None,
            secret: Secrecy::Plain,
        },
        FieldSpec {
            key: "password",
            flag: "password",
            help: "The SMTP password",
            value: FieldValue::Text,
            required: false,
            default: None,
            secret: Secrecy::StdinWith { key: "username" },
        },
        FieldSpec {
            key: "from",
            flag: "from",
            help: "The sender address",
            value: FieldValue::Text,
            required: true,
            default: None,
            secret: Secrecy::Plain,
        },
        FieldSpec {
            key: "to",
            flag: "to",
            help: "Recipient (repeatable)",
            value: FieldValue::List,
            required: true,
            default: None,
            secret: Secrecy::Plain,
        },
        FieldSpec {
            key: "ask_owner",
            flag: "ask-owner",
            help:
                "Also ask placement owners (whose owner is an email address) \"was this you?\" when an incident opens",
            value: FieldValue::Flag,
            required: false,
            default: None,
            secret: Secrecy::Plain,
        },
        FieldSpec {
            key: "ca_file",
            flag: "ca-file",
            help: "PEM file of an internal CA to trust for this SMTP server",
            value: FieldValue::Path,
            required: false,
            default: None,
            secret: Secrecy::Plain,
        },
    ],
};

impl Configured for EmailConfig {
    const SPEC: &'static KindSpec = &SPEC;

    /// The port follows the TLS mode unless it is given.
    fn prepare(config: &mut serde_json::Value) {
        if let Some(obj) = config.as_object_mut() {
            if !obj.contains_key("port") {
                let port = match obj.get("tls").and_then(|t| t.as_str()) {
                    Some("tls") => 465,
                    Some("none") => 25,
                    _ => 587,
                };
                obj.insert("port".into(), port.into());
            }
        }
    }
}

impl Channel for EmailConfig {
    fn summary(&self) -> String {
        format!("email to {} recipient(s) via {}:{}", self.to.len(), self.host, self.port)
    }

    fn check<'a>(&'a self, sender: &'a crate::Sender) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            check(self).map_err(|message| Failure { message, retry: Retry::Never })?;
            crate::target::check_host(&self.host, &sender.allowed_hosts, "SMTP host")
        })
    }

    fn asks_owners(&self) -> bool {
        self.ask_owner
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

    fn config() -> EmailConfig {
        EmailConfig {
            host: "127.0.0.1".into(),
            port: 25,
            tls: TlsMode::None,
            username: None,
            password: None,
            from: "honeytrail@acme.test".into(),
            to: vec!["soc@acme.test".into(), "ir@acme.test".into()],
            ask_owner: true,
            ca_file: None,
        }
    }

    #[test]
    fn updates_reply_to_the_first_message_of_the_incident() {
        let alert = |kind: &str| {
            let mut r = AlertRecord::skeleton(5, "AKIAX");
            r.alert = Some(honeytrail_core::record::AlertRef { id: 1, kind: kind.into() });
            Alert::Incident(Box::new(r))
        };
        let (opened, updated) = (alert("incident.opened"), alert("incident.updated"));
        let first = String::from_utf8(team_message(&config(), &opened, "h.test").unwrap().formatted()).unwrap();
        let next = String::from_utf8(team_message(&config(), &updated, "h.test").unwrap().formatted()).unwrap();
        assert!(first.contains("Message-ID: <honeytrail-incident-5@h.test>"), "{first}");
        assert!(next.contains("In-Reply-To: <honeytrail-incident-5@h.test>"), "{next}");
        assert!(first.contains("To: soc@acme.test, ir@acme.test"), "{first}");
        assert!(first.contains("multipart/alternative") && first.contains("text/html"));
    }

    #[test]
    fn configurations_are_checked() {
        assert!(check(&config()).is_ok());
        assert!(check(&EmailConfig { to: vec![], ..config() }).unwrap_err().contains("recipient"));
        assert!(check(&EmailConfig { from: "nope".into(), ..config() }).unwrap_err().contains("\"nope\""));
        assert!(check(&EmailConfig { username: Some("u".into()), ..config() }).unwrap_err().contains("both"));
        assert!(is_address("maria@acme.test"));
        assert!(!is_address("Maria Lopez"));
    }
}
