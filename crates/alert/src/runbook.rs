//! Runbooks: what a responder does now, rendered into every alert.
//!
//! Templates use MiniJinja (Jinja2 syntax). A token gets the runbook whose
//! selector matches first: one of its labels (`label:team=payments` or
//! `label:team`), then the bait format of one of its placements
//! (`format:aws-credentials`), then the default. The shipped default follows
//! the field guidance: rule out a false positive first, then walk the chain of
//! custody, then the incident-response plan.
//!
//! Variables: `key`, `incident` (id, state, event_count, first_seen,
//! last_seen), `placement` (the sentence), `placements`, `owners`,
//! `custody` (hops), `activity` (apis, source_ips, user_agents, regions,
//! error_codes), `retired`.

use minijinja::Environment;
use serde_json::Value;

/// The runbook shipped with honeytrail, used when none is set.
pub const DEFAULT_TEMPLATE: &str = r#"Runbook for honey key {{ key }} (incident #{{ incident.id }}, {{ incident.state }})
{% if retired %}
Note: this key was retired before it was used; whoever holds it copied it earlier.
{% endif %}
1. Rule out a false positive first.
{%- if owners %}
   - Ask {{ owners | join(", ") }}: "Was this you?" Someone curious may have tried the key.
{%- else %}
   - Ask the team that owns the place where the key sits whether anyone tried it.
{%- endif %}
   - Check the host's file-access logs (auditd, EDR) for who read the bait file, and when.
   - If it was one of us, mark the incident false positive with the explanation.
2. If not, find what leaked it. {{ placement }}
   Any place the secret passed through may have leaked it:
{%- for hop in custody %}
   - {{ hop }}
{%- else %}
   - (no chain of custody recorded: consider every system that held the secret)
{%- endfor %}
3. Then follow the incident-response plan for the suspected system: preserve
   evidence, contain (isolate the host, rotate real credentials it held), scope
   what else the intruder reached, and notify as the plan says.
   Calls so far: {{ activity.apis | join(", ") or "none" }} from {{ activity.source_ips | join(", ") or "an unknown address" }}.
"#;

/// A stored runbook: a selector and a template.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Runbook {
    pub name: String,
    /// `label:NAME`, `label:NAME=VALUE`, `format:FORMAT` or `default`.
    pub selector: String,
    pub template: String,
}

/// Checks that a template compiles, naming the problem if not.
pub fn check(template: &str) -> Result<(), String> {
    let mut env = Environment::new();
    env.add_template("runbook", template).map(|_| ()).map_err(|e| format!("the runbook template does not compile: {e}"))
}

/// Checks a selector's shape.
pub fn check_selector(selector: &str) -> Result<(), String> {
    let ok = selector == "default"
        || selector.strip_prefix("label:").is_some_and(|l| !l.is_empty())
        || selector.strip_prefix("format:").is_some_and(|f| !f.is_empty());
    if ok {
        Ok(())
    } else {
        Err(format!("selector {selector:?} is not label:NAME[=VALUE], format:FORMAT or default"))
    }
}

/// Picks the runbook for a token from its labels and placement formats.
pub fn choose<'a>(runbooks: &'a [Runbook], labels: &[(String, String)], formats: &[String]) -> Option<&'a Runbook> {
    let by_label = runbooks.iter().find(|r| {
        r.selector.strip_prefix("label:").is_some_and(|sel| match sel.split_once('=') {
            Some((n, v)) => labels.iter().any(|(ln, lv)| ln == n && lv == v),
            None => labels.iter().any(|(ln, _)| ln == sel),
        })
    });
    let by_format =
        || runbooks.iter().find(|r| r.selector.strip_prefix("format:").is_some_and(|f| formats.iter().any(|x| x == f)));
    by_label.or_else(by_format).or_else(|| runbooks.iter().find(|r| r.selector == "default"))
}

/// Renders a template with the alert context. A template that fails at render
/// time falls back to the shipped default, with the error noted, so an alert
/// never goes out without a runbook.
pub fn render(template: &str, context: &Value) -> String {
    let attempt = |t: &str| -> Result<String, minijinja::Error> {
        let mut env = Environment::new();
        env.add_template("runbook", t)?;
        env.get_template("runbook")?.render(minijinja::value::Serde(context))
    };
    match attempt(template) {
        Ok(text) => text,
        Err(e) => {
            let fallback = attempt(DEFAULT_TEMPLATE).unwrap_or_default();
            format!("(the configured runbook failed to render: {e}; showing the default)\n{fallback}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context() -> Value {
        json!({"key": "AKIAX", "incident": {"id": 3, "state": "open"}, "placement": "Key AKIAX was placed on Maria's laptop.",
               "owners": ["Maria"], "custody": ["sent by email to maria@example.com"], "retired": false,
               "activity": {"apis": ["ListBuckets"], "source_ips": ["203.0.113.9"]}})
    }

    #[test]
    fn the_default_follows_the_guidance() {
        let text = render(DEFAULT_TEMPLATE, &context());
        let fp = text.find("Rule out a false positive").unwrap();
        let custody = text.find("sent by email to maria@example.com").unwrap();
        let plan = text.find("incident-response plan").unwrap();
        assert!(fp < custody && custody < plan, "{text}");
        assert!(text.contains("Ask Maria: \"Was this you?\""), "{text}");
        assert!(text.contains("ListBuckets from 203.0.113.9"), "{text}");
    }

    #[test]
    fn selection_and_errors() {
        let rb =
            |name: &str, selector: &str| Runbook { name: name.into(), selector: selector.into(), template: "x".into() };
        let all = vec![rb("d", "default"), rb("env", "format:dotenv"), rb("pay", "label:team=payments")];
        let labels = vec![("team".to_string(), "payments".to_string())];
        assert_eq!(choose(&all, &labels, &["dotenv".into()]).unwrap().name, "pay");
        assert_eq!(choose(&all, &[], &["dotenv".into()]).unwrap().name, "env");
        assert_eq!(choose(&all, &[], &[]).unwrap().name, "d");
        assert!(check("{% if %}").unwrap_err().contains("does not compile"));
        assert!(check_selector("team=payments").is_err() && check_selector("label:team").is_ok());
        assert!(render("{{ nope.deeper.still }}", &context()).contains("showing the default"));
    }
}
