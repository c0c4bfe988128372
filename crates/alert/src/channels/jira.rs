//! Jira: one issue per incident through the REST API (v2, which Jira Cloud
//! and Data Center both serve), and a comment on it for every update.
//!
//! The key of the created issue is handed back to the dispatcher, which keeps
//! it per channel and incident; later alerts of the incident comment on it.
//! Authentication: with `email`, HTTP Basic with the email and an API token
//! (Jira Cloud); without, a bearer personal access token (Data Center).
//!
//! Example configuration (`honeytrail channel add jira sec --url https://acme.atlassian.net --project SEC --email bot@acme.com < api-token.txt`):
//! ```json
//! {"base_url": "https://acme.atlassian.net", "project": "SEC", "issue_type": "Task",
//!  "labels": ["honey-token"], "email": "bot@acme.com", "token": "…"}
//! ```

use base64::Engine;
use honeytrail_core::record::Alert;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::channels::webhook::{post_json, WebhookConfig};
use crate::channels::{BoxFuture, Channel, Configured, Outgoing};
use crate::retry::{Failure, Retry};
use crate::{text, Sender};
use honeytrail_core::channel::{FieldSpec, FieldValue, KindSpec, Secrecy};

fn default_issue_type() -> String {
    "Task".into()
}

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JiraConfig {
    /// The site, e.g. `https://acme.atlassian.net`.
    pub base_url: String,
    /// Project key, e.g. `SEC`.
    pub project: String,
    #[serde(default = "default_issue_type")]
    pub issue_type: String,
    /// Labels put on every issue (besides `honeytrail` and `honeytrail-incident-<id>`).
    #[serde(default)]
    pub labels: Vec<String>,
    /// Jira Cloud account email for Basic auth; none means a bearer token.
    #[serde(default)]
    pub email: Option<String>,
    /// API token (Cloud) or personal access token (Data Center). A secret.
    pub token: String,
}

impl std::fmt::Debug for JiraConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JiraConfig(***)")
    }
}

impl JiraConfig {
    fn target(&self, path: &str) -> WebhookConfig {
        let auth = match &self.email {
            Some(email) => {
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{email}:{}", self.token)))
            }
            None => format!("Bearer {}", self.token),
        };
        WebhookConfig {
            url: format!("{}{path}", self.base_url.trim_end_matches('/')),
            secret: String::new(),
            headers: [("Authorization".to_string(), auth), ("Accept".to_string(), "application/json".to_string())]
                .into(),
            format: Default::default(),
        }
    }
}

/// Jira labels cannot hold spaces.
fn label(s: &str) -> String {
    s.trim().replace(char::is_whitespace, "-")
}

/// Jira's limit on a text field (description, comment body), in characters.
pub const JIRA_TEXT_MAX: usize = 32_767;

/// The alert as Jira wiki markup (REST v2 renders descriptions and comments
/// as wiki markup): the link to the incident, which is ours, as a link; the
/// alert text, which carries what the intruder wrote (user agents, request
/// data, addresses), inside a `{noformat}` block, where Jira interprets no
/// markup (no links, images, mentions or macros). A `{noformat}` in that
/// text, which would end the block early, is broken up.
pub fn wiki(alert: &Alert) -> String {
    let url = alert.record().and_then(|r| r.incident.url.as_deref());
    // Jira refuses text fields over 32 767 characters; leave room for the frame.
    let text = text::fit(&text::body(alert), JIRA_TEXT_MAX - 200, url);
    let mut safe = String::with_capacity(text.len());
    let lower = text.to_ascii_lowercase();
    let mut last = 0;
    for (at, _) in lower.match_indices("{noformat") {
        safe.push_str(&text[last..at + 1]);
        safe.push(' ');
        last = at + 1;
    }
    safe.push_str(&text[last..]);
    let link = match alert.record().and_then(|r| r.incident.url.as_deref()) {
        Some(url) if !url.contains(['|', ']', '[', ' ']) => format!("[Open the incident in honeytrail|{url}]\n"),
        _ => String::new(),
    };
    format!("{link}{{noformat}}\n{safe}{{noformat}}")
}

/// The create-issue request for an alert.
pub fn new_issue(config: &JiraConfig, alert: &Alert) -> Value {
    let mut labels: Vec<String> = config.labels.iter().map(|l| label(l)).filter(|l| !l.is_empty()).collect();
    labels.push("honeytrail".into());
    match alert.record() {
        None => labels.push("honeytrail-test".into()),
        Some(record) => labels.push(format!("honeytrail-incident-{}", record.incident.id)),
    }
    let summary: String = text::title(alert).chars().take(250).collect();
    json!({
        "fields": {
            "project": {"key": config.project},
            "summary": summary,
            "issuetype": {"name": config.issue_type},
            "labels": labels,
            "description": wiki(alert),
        }
    })
}

/// The comment for a later alert of the same incident.
pub fn comment(alert: &Alert) -> Value {
    json!({"body": format!("*{}*\n\n{}", text::title(alert).replace(['*', '{', '}', '[', ']', '|'], ""), wiki(alert))})
}

/// Creates the incident's issue, or comments on `reference` (its key) when
/// there is one. Returns the issue key to remember.
pub async fn deliver(
    sender: &Sender,
    config: &JiraConfig,
    alert: &Alert,
    reference: Option<&str>,
) -> Result<Option<String>, Failure> {
    if let Some(key) = reference.filter(|_| !alert.is_test()) {
        let body = serde_json::to_vec(&comment(alert)).expect("comments serialise");
        post_json(sender, &config.target(&format!("/rest/api/2/issue/{key}/comment")), None, &body).await?;
        return Ok(Some(key.to_string()));
    }
    let body = serde_json::to_vec(&new_issue(config, alert)).expect("issues serialise");
    let answer = post_json(sender, &config.target("/rest/api/2/issue"), None, &body).await?;
    let key = serde_json::from_slice::<Value>(&answer).ok().and_then(|v| v["key"].as_str().map(str::to_string));
    match key {
        Some(key) if !alert.is_test() => Ok(Some(key)),
        Some(_) => Ok(None),
        None => Err(Failure {
            message: "Jira created the issue but its answer names no issue key; check the base URL".into(),
            retry: Retry::Never,
        }),
    }
}

static SPEC: KindSpec = KindSpec {
    name: "jira",
    summary: "Jira: an issue per incident, a comment per update; the API token is read from standard input",
    fields: &[
        FieldSpec {
            key: "base_url",
            flag: "url",
            help: "The Jira site, e.g. https://acme.atlassian.net",
            value: FieldValue::Text,
            required: true,
            default: None,
            secret: Secrecy::Plain,
        },
        FieldSpec {
            key: "project",
            flag: "project",
            help: "Project key, e.g. SEC",
            value: FieldValue::Text,
            required: true,
            default: None,
            secret: Secrecy::Plain,
        },
        FieldSpec {
            key: "issue_type",
            flag: "issue-type",
            help: "The issue type of new issues",
            value: FieldValue::Text,
            required: false,
            default: Some("Task"),
            secret: Secrecy::Plain,
        },
        FieldSpec {
            key: "labels",
            flag: "label",
            help: "Label for every issue (repeatable)",
            value: FieldValue::List,
            required: false,
            default: None,
            secret: Secrecy::Plain,
        },
        FieldSpec {
            key: "email",
            flag: "email",
            help:
                "Jira Cloud account email (Basic auth with the API token); omit for a Data Center personal access token",
            value: FieldValue::Text,
            required: false,
            default: None,
            secret: Secrecy::Plain,
        },
        FieldSpec {
            key: "token",
            flag: "token",
            help: "API token (Cloud) or personal access token (Data Center)",
            value: FieldValue::Text,
            required: true,
            default: None,
            secret: Secrecy::Stdin,
        },
    ],
};

impl Configured for JiraConfig {
    const SPEC: &'static KindSpec = &SPEC;

    fn validate(&mut self) -> Result<(), String> {
        self.base_url = self.base_url.trim_end_matches('/').to_string();
        Ok(())
    }
}

impl Channel for JiraConfig {
    fn summary(&self) -> String {
        format!("Jira project {}", self.project)
    }

    fn check<'a>(&'a self, sender: &'a Sender) -> BoxFuture<'a, Result<(), Failure>> {
        crate::channels::check_http(&self.base_url, sender)
    }

    fn deliver<'a>(
        &'a self,
        sender: &'a Sender,
        out: &'a Outgoing<'a>,
    ) -> BoxFuture<'a, Result<Option<String>, Failure>> {
        Box::pin(deliver(sender, self, out.alert, out.reference))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_carry_project_type_labels_and_the_alert_text() {
        let config = JiraConfig {
            base_url: "https://acme.atlassian.net/".into(),
            project: "SEC".into(),
            issue_type: "Bug".into(),
            labels: vec!["honey token".into()],
            email: Some("bot@acme.com".into()),
            token: "tok".into(),
        };
        let mut record = honeytrail_core::record::AlertRecord::skeleton(3, "AKIAX");
        record.alert = Some(honeytrail_core::record::AlertRef { id: 1, kind: "incident.opened".into() });
        record.placement = "Key AKIAX was placed on h.".into();
        let issue = new_issue(&config, &Alert::Incident(Box::new(record)));
        assert_eq!(issue["fields"]["project"]["key"], "SEC");
        assert_eq!(issue["fields"]["issuetype"]["name"], "Bug");
        assert_eq!(issue["fields"]["labels"], json!(["honey-token", "honeytrail", "honeytrail-incident-3"]));
        assert!(issue["fields"]["description"].as_str().unwrap().contains("Key AKIAX was placed on h."));
        let t = config.target("/rest/api/2/issue");
        assert_eq!(t.url, "https://acme.atlassian.net/rest/api/2/issue");
        // printf bot@acme.com:tok | base64
        assert_eq!(t.headers["Authorization"], "Basic Ym90QGFjbWUuY29tOnRvaw==");
    }
}
