//! Routing rules: which channels an alert goes to.
//!
//! A route names channels and optional conditions — a token label, a
//! placement owner or host (case-insensitive substring of any active
//! placement), incident states, a minimum severity, and conditions on the
//! incident's context (`--if network=corp`, `--unless tool=*`). An alert goes to the channels of every route
//! whose conditions all hold. Routes marked default apply only when no other
//! route matched. With no routes at all, every channel gets every alert.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::enrich::{conditions_hold, Condition, IncidentContext};
use crate::incident::{IncidentState, Severity};
use crate::model::Labels;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Route {
    pub name: String,
    pub channels: Vec<String>,
    /// `(name, value)`; no value matches any value of that label.
    #[serde(default)]
    pub label: Option<(String, Option<String>)>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    /// Empty: any state.
    #[serde(default)]
    pub states: Vec<IncidentState>,
    /// Only incidents at least this severe.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Applies only when no other route matched.
    #[serde(default)]
    pub default: bool,
    /// Conditions on the incident's context that must all hold
    /// (`network=corp`, `tool=*`; see [`Condition`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "if")]
    pub when: Vec<Condition>,
    /// Conditions of which none may hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unless: Vec<Condition>,
}

/// What routing looks at.
#[derive(Debug, Clone)]
pub struct AlertContext<'a> {
    pub labels: &'a Labels,
    /// `(owner, host)` of each active placement.
    pub placements: Vec<(Option<&'a str>, &'a str)>,
    pub state: Option<IncidentState>,
    pub severity: Severity,
    /// What enrichment found (source networks, tools): `None` is an empty context.
    pub context: Option<&'a IncidentContext>,
}

fn contains(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

impl Route {
    pub fn matches(&self, ctx: &AlertContext<'_>) -> bool {
        let label_ok = match &self.label {
            None => true,
            Some((name, None)) => ctx.labels.contains_key(name),
            Some((name, Some(value))) => ctx.labels.get(name) == Some(value),
        };
        let owner_ok = self
            .owner
            .as_deref()
            .is_none_or(|o| ctx.placements.iter().any(|(owner, _)| owner.is_some_and(|x| contains(x, o))));
        let host_ok = self.host.as_deref().is_none_or(|h| ctx.placements.iter().any(|(_, host)| contains(host, h)));
        let state_ok = self.states.is_empty() || ctx.state.is_some_and(|s| self.states.contains(&s));
        let severity_ok = self.min_severity.is_none_or(|min| ctx.severity >= min);
        let empty = IncidentContext::default();
        let context_ok = conditions_hold(ctx.context.unwrap_or(&empty), &self.when, &self.unless);
        label_ok && owner_ok && host_ok && state_ok && severity_ok && context_ok
    }
}

/// The channel names an alert goes to; `None` when there are no routes (then
/// every channel gets it).
pub fn select(routes: &[Route], ctx: &AlertContext<'_>) -> Option<BTreeSet<String>> {
    if routes.is_empty() {
        return None;
    }
    let pick = |default: bool| -> BTreeSet<String> {
        routes
            .iter()
            .filter(|r| r.default == default && r.matches(ctx))
            .flat_map(|r| r.channels.iter().cloned())
            .collect()
    };
    let chosen = pick(false);
    Some(if chosen.is_empty() { pick(true) } else { chosen })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, channel: &str) -> Route {
        Route { name: name.into(), channels: vec![channel.into()], ..Route::default() }
    }

    #[test]
    fn routes_by_label_owner_host_state_with_a_default() {
        let routes = vec![
            Route { label: Some(("team".into(), Some("payments".into()))), ..route("payments", "pay-slack") },
            Route { owner: Some("maria".into()), ..route("maria", "maria-email") },
            Route { host: Some("prod".into()), states: vec![IncidentState::Open], ..route("prod-pager", "pagerduty") },
            Route { default: true, ..route("catch-all", "soc") },
        ];
        let labels = Labels::from([("team".into(), "payments".into())]);
        let none = Labels::new();
        let ctx = |labels, placements, state| AlertContext {
            labels,
            placements,
            state: Some(state),
            severity: Severity::High,
            context: None,
        };
        let set = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
        assert_eq!(select(&routes, &ctx(&labels, vec![], IncidentState::Open)), set(&["pay-slack"]));
        assert_eq!(
            select(&routes, &ctx(&none, vec![(Some("Maria Lopez"), "web-prod-1")], IncidentState::Open)),
            set(&["maria-email", "pagerduty"])
        );
        assert_eq!(
            select(&routes, &ctx(&none, vec![(None, "web-prod-1")], IncidentState::Resolved)),
            set(&["soc"]),
            "state filter, then default"
        );
        assert_eq!(select(&[], &ctx(&none, vec![], IncidentState::Open)), None);
    }

    #[test]
    fn routes_by_minimum_severity() {
        use crate::incident::IncidentKind;
        let routes = vec![
            Route { min_severity: Some(Severity::Critical), ..route("page", "pagerduty") },
            Route { default: true, ..route("rest", "soc") },
        ];
        let labels = Labels::new();
        let ctx = |severity| AlertContext { labels: &labels, placements: vec![], state: None, severity, context: None };
        let set = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
        assert_eq!(select(&routes, &ctx(Severity::Critical)), set(&["pagerduty"]));
        assert_eq!(select(&routes, &ctx(Severity::High)), set(&["soc"]));
        let lab = Labels::from([("severity".into(), "Medium".into())]);
        assert_eq!(Severity::of(&lab, IncidentState::Open, IncidentKind::Use), Severity::Medium);
        assert_eq!(Severity::of(&lab, IncidentState::Confirmed, IncidentKind::Use), Severity::Critical);
        assert_eq!(Severity::of(&Labels::new(), IncidentState::Acknowledged, IncidentKind::Use), Severity::High);
        assert_eq!(Severity::of(&Labels::new(), IncidentState::Open, IncidentKind::Report), Severity::Low);
    }

    #[test]
    fn routes_by_the_incident_context() {
        use crate::enrich::Condition;
        let cond = |s: &str| Condition::parse(s).unwrap();
        let routes = vec![
            Route { when: vec![cond("tool=*")], ..route("tools", "pagerduty") },
            Route { unless: vec![cond("network=corp")], ..route("outside", "soc") },
        ];
        let labels = Labels::new();
        let ours = IncidentContext { networks: vec!["corp".into()], ..Default::default() };
        let kali = IncidentContext { tools: vec!["Kali Linux".into()], ..Default::default() };
        let ctx = |context| AlertContext {
            labels: &labels,
            placements: vec![],
            state: None,
            severity: Severity::High,
            context,
        };
        let set = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
        assert_eq!(select(&routes, &ctx(Some(&ours))), set(&[]));
        assert_eq!(select(&routes, &ctx(Some(&kali))), set(&["pagerduty", "soc"]));
        assert_eq!(select(&routes, &ctx(None)), set(&["soc"]));
        let json = serde_json::to_string(&routes[0]).unwrap();
        assert!(json.contains(r#""if":[{"key":"tool","value":null}]"#), "{json}");
        assert_eq!(serde_json::from_str::<Route>(&json).unwrap(), routes[0]);
    }
}
