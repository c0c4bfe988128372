//! Decoy resources in the match index: records that touch a decoy, whoever
//! made them.
//!
//! A key is recognised by the caller's identity; a decoy by what the call
//! was about. The scanner looks for every decoy's needle (a part of its name
//! that each form of it contains, see [`honeytrail_core::decoy::forms`]) in
//! SIMD passes of a few dozen names, and only documents with a hit are parsed. In a
//! parsed record the request parameters and the resources are then compared
//! exactly: a name that merely appears somewhere is not an access.
//!
//! Calls of the principal that made the decoys (creating, checking and
//! removing them) and of AWS services on their own account are not
//! incidents.

use std::collections::HashMap;

use aho_corasick::packed;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde_json::Value;

/// Strings of one record's parameters compared at most: a hostile request
/// with a million parameters costs no more than this.
const MAX_VALUES: usize = 4096;
/// Nesting followed at most inside request parameters.
const MAX_DEPTH: usize = 16;
/// Needles in one SIMD (Teddy) searcher: beyond a few dozen it stops being
/// fast, so more decoys mean more passes of this many, each far faster than
/// one automaton over all of them.
const NEEDLES_A_PASS: usize = 24;

/// One pass over a document for some of the needles.
#[derive(Debug, Clone)]
enum Pass {
    Packed(packed::Searcher),
    Automaton(AhoCorasick),
}

/// The decoys of an index, by every form a record names them in.
#[derive(Debug, Clone, Default)]
pub struct DecoyIndex {
    /// Needles compared as written (every service but IAM names
    /// resources case-sensitively) and IAM roles' (whose names are not).
    needles: Vec<String>,
    role_needles: Vec<String>,
    passes: Vec<Pass>,
    /// Whether `finder` lags `needles`.
    stale: bool,
    exact: HashMap<String, u32>,
    /// IAM roles' names and ARNs, lower-cased.
    exact_any_case: HashMap<String, u32>,
    prefixes: Vec<(String, u32)>,
    url_paths: Vec<(String, u32)>,
    /// The paths above each SSM decoy parameter (`/prod/ledger`, `/prod`,
    /// `/`): listing one with `GetParametersByPath` lists the decoy. With
    /// `recursive`, every ancestor; without, only the parent.
    ssm_parents: HashMap<String, u32>,
    ssm_ancestors: HashMap<String, u32>,
    /// ARNs of the principals that manage decoys; an assumed role's is kept
    /// as `arn:…:assumed-role/NAME/`, whatever the session's name.
    managers: Vec<String>,
}

impl DecoyIndex {
    /// Adds the decoy with `arn` under `slot`; `false` when `arn` is not an
    /// ARN honeytrail can read.
    pub(crate) fn insert(&mut self, arn: &str, slot: u32) -> bool {
        let Some(forms) = honeytrail_core::decoy::forms(arn) else {
            return false;
        };
        if let Some(path) = arn.split_once(":parameter/").map(|(_, p)| p).filter(|_| arn.contains(":ssm:")) {
            let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
            parts.pop();
            self.ssm_parents.entry(format!("/{}", parts.join("/"))).or_insert(slot);
            loop {
                self.ssm_ancestors.entry(format!("/{}", parts.join("/"))).or_insert(slot);
                if parts.pop().is_none() {
                    break;
                }
            }
        }
        let any_case = arn.contains(":iam::");
        if any_case {
            self.role_needles.push(forms.needle);
            for value in forms.exact {
                self.exact_any_case.insert(value.to_ascii_lowercase(), slot);
            }
        } else {
            self.needles.push(forms.needle);
            for value in forms.exact {
                self.exact.insert(value, slot);
            }
        }
        self.prefixes.extend(forms.prefixes.into_iter().map(|p| (p, slot)));
        self.url_paths.extend(forms.url_path.map(|p| (p, slot)));
        self.stale = true;
        true
    }

    /// Builds the search after additions.
    pub(crate) fn seal(&mut self) {
        if !self.stale {
            return;
        }
        self.stale = false;
        // IAM matches role names in any case, and a case-insensitive
        // automaton runs at a fifth of these passes' speed: roles' names
        // are looked for as written and lower-cased, and every record that
        // names a role in a request (`roleName`, `roleArn`) is read and
        // compared in any case (see `find`). AWS writes the resources' and
        // session issuers' ARNs as the role was created.
        let roles = self.role_needles.iter().flat_map(|n| [n.clone(), n.to_ascii_lowercase()]);
        let mut needles: Vec<String> = self.needles.iter().cloned().chain(roles).collect();
        needles.sort();
        needles.dedup();
        self.passes = needles
            .chunks(NEEDLES_A_PASS)
            .filter_map(|chunk| match packed::Searcher::new(chunk) {
                Some(s) => Some(Pass::Packed(s)),
                None => AhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostFirst)
                    .build(chunk)
                    .ok()
                    .map(Pass::Automaton),
            })
            .collect();
    }

    /// Sets the principals whose calls on decoys are honeytrail's own.
    pub fn set_managers(&mut self, managers: impl IntoIterator<Item = String>) {
        self.managers = managers.into_iter().map(|m| manager_form(&m)).collect();
        self.managers.sort();
        self.managers.dedup();
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty() && self.role_needles.is_empty()
    }

    /// Offsets in `bytes` where some decoy's needle starts, sorted.
    pub(crate) fn find(&self, bytes: &[u8]) -> Vec<usize> {
        let mut at = Vec::new();
        for pass in &self.passes {
            match pass {
                Pass::Packed(s) => at.extend(s.find_iter(bytes).map(|m| m.start())),
                Pass::Automaton(a) => at.extend(a.find_iter(bytes).map(|m| m.start())),
            }
        }
        if !self.role_needles.is_empty() {
            // A role named in a request, in any case: its value is read
            // where it lies and only a decoy's name makes the record parsed.
            for field in [&b"\"roleName\""[..], b"\"roleArn\""] {
                for hit in memchr::memmem::find_iter(bytes, field) {
                    let value = crate::scan::string_value_after(bytes, hit + field.len());
                    let named = value.is_some_and(|v| {
                        std::str::from_utf8(&v).is_ok_and(|v| self.exact_any_case.contains_key(&v.to_ascii_lowercase()))
                    });
                    if named {
                        at.push(hit);
                    }
                }
            }
        }
        if !self.ssm_ancestors.is_empty() {
            at.extend(memchr::memmem::find_iter(bytes, b"\"GetParametersByPath\""));
        }
        if self.passes.len() > 1 || !self.role_needles.is_empty() || !self.ssm_ancestors.is_empty() {
            at.sort_unstable();
        }
        at
    }

    /// The slot of the decoy a record touches, unless the caller is the
    /// decoys' manager or an AWS service.
    pub(crate) fn match_record(&self, record: &Value) -> Option<u32> {
        if self.is_empty() || self.is_own_call(record) {
            return None;
        }
        if let Some(slot) = self.lists_a_parameter(record) {
            return Some(slot);
        }
        let mut budget = MAX_VALUES;
        if let Some(params) = record.get("requestParameters") {
            if let Some(slot) = self.walk(params, 0, &mut budget) {
                return Some(slot);
            }
        }
        let resources = record.get("resources").and_then(Value::as_array)?;
        resources.iter().take(MAX_VALUES).find_map(|r| {
            ["ARN", "arn"].iter().find_map(|field| r.get(*field).and_then(Value::as_str).and_then(|v| self.names(v)))
        })
    }

    /// A `GetParametersByPath` whose path holds a decoy parameter.
    fn lists_a_parameter(&self, record: &Value) -> Option<u32> {
        if self.ssm_ancestors.is_empty()
            || record.get("eventName").and_then(Value::as_str) != Some("GetParametersByPath")
        {
            return None;
        }
        let params = record.get("requestParameters")?;
        let path = params.get("path").and_then(Value::as_str)?;
        let path = format!("/{}", path.split('/').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("/"));
        let recursive = params.get("recursive").and_then(Value::as_bool).unwrap_or(false);
        let holders = if recursive { &self.ssm_ancestors } else { &self.ssm_parents };
        holders.get(&path).copied()
    }

    fn walk(&self, value: &Value, depth: usize, budget: &mut usize) -> Option<u32> {
        if *budget == 0 || depth > MAX_DEPTH {
            return None;
        }
        match value {
            Value::String(s) => {
                *budget -= 1;
                self.names(s)
            }
            Value::Array(items) => items.iter().find_map(|v| self.walk(v, depth + 1, budget)),
            Value::Object(map) => map.values().find_map(|v| self.walk(v, depth + 1, budget)),
            _ => None,
        }
    }

    /// The decoy `value` names: exactly, as something inside it, or as a
    /// queue URL of any SQS endpoint.
    fn names(&self, value: &str) -> Option<u32> {
        if let Some(slot) = self.exact.get(value) {
            return Some(*slot);
        }
        if !self.exact_any_case.is_empty() && value.len() <= 2048 {
            if let Some(slot) = self.exact_any_case.get(&value.to_ascii_lowercase()) {
                return Some(*slot);
            }
        }
        if let Some((_, slot)) = self.prefixes.iter().find(|(p, _)| value.starts_with(p.as_str())) {
            return Some(*slot);
        }
        if value.starts_with("http") {
            let path = value.split(['?', '#']).next().unwrap_or(value).trim_end_matches('/');
            return self.url_paths.iter().find(|(p, _)| path.ends_with(p.as_str())).map(|(_, slot)| *slot);
        }
        None
    }

    fn is_own_call(&self, record: &Value) -> bool {
        let Some(identity) = record.get("userIdentity") else {
            return false;
        };
        if identity.get("type").and_then(Value::as_str) == Some("AWSService") {
            return true;
        }
        let arns = [identity.get("arn"), identity.pointer("/sessionContext/sessionIssuer/arn")];
        arns.iter().flatten().filter_map(|v| v.as_str()).any(|arn| {
            let arn = manager_form(arn);
            self.managers.binary_search(&arn).is_ok()
        })
    }
}

/// How a manager's ARN is compared: an assumed role's session name changes
/// from process to process, so only the role counts.
fn manager_form(arn: &str) -> String {
    match arn.split_once(":assumed-role/") {
        Some((head, rest)) => {
            let role = rest.split('/').next().unwrap_or(rest);
            format!("{head}:assumed-role/{role}/")
        }
        None => arn.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn index() -> DecoyIndex {
        let mut d = DecoyIndex::default();
        assert!(d.insert("arn:aws:s3:::ledger-exports-prod-1a2b", 0));
        assert!(d.insert("arn:aws:sqs:eu-west-1:123456789012:ledger-jobs-prod", 1));
        assert!(d.insert("arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/ledger/postgres-AbCdEf", 2));
        assert!(d.insert("arn:aws:iam::123456789012:role/ledger-deploy", 3));
        assert!(!d.insert("nonsense", 4));
        d.set_managers(["arn:aws:sts::123456789012:assumed-role/honeytrail-admin/session-1".to_string()]);
        d.seal();
        d
    }

    #[test]
    fn every_way_a_record_names_a_decoy_is_an_access() {
        let d = index();
        let call = |params: Value| json!({"userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/x"}, "requestParameters": params});
        assert_eq!(d.match_record(&call(json!({"bucketName": "ledger-exports-prod-1a2b", "key": "a.csv"}))), Some(0));
        let url = "https://sqs.eu-west-1.amazonaws.com/123456789012/ledger-jobs-prod";
        assert_eq!(d.match_record(&call(json!({"queueUrl": url}))), Some(1));
        let vpce = "https://vpce-0abc.sqs.eu-west-1.vpce.amazonaws.com/123456789012/ledger-jobs-prod/";
        assert_eq!(d.match_record(&call(json!({"queueUrl": vpce}))), Some(1), "a VPC endpoint's URL");
        assert_eq!(d.match_record(&call(json!({"secretId": "prod/ledger/postgres"}))), Some(2));
        let partial = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/ledger/postgres";
        assert_eq!(d.match_record(&call(json!({"secretId": partial}))), Some(2), "a partial ARN");
        assert_eq!(d.match_record(&call(json!({"roleArn": "arn:aws:iam::123456789012:role/ledger-deploy"}))), Some(3));
        assert_eq!(d.match_record(&call(json!({"names": ["x", "ledger-deploy"]}))), Some(3), "inside a list");
        let data_event = json!({"userIdentity": {"type": "AssumedRole"}, "requestParameters": {},
            "resources": [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::ledger-exports-prod-1a2b/x.csv"}]});
        assert_eq!(d.match_record(&data_event), Some(0), "an object's ARN in the resources");
        assert_eq!(d.match_record(&call(json!({"bucketName": "ledger-exports-prod-1a2b-other"}))), None);
        assert_eq!(
            d.match_record(&call(json!({"note": "ledger-jobs-prod is mentioned"}))),
            None,
            "a mention is not a name"
        );
    }

    #[test]
    fn listing_the_path_of_a_decoy_parameter_is_an_access() {
        let mut d = DecoyIndex::default();
        assert!(d.insert("arn:aws:ssm:eu-west-1:123456789012:parameter/prod/ledger/db-password", 5));
        d.seal();
        let list = |path: &str, recursive: bool| {
            json!({"eventName": "GetParametersByPath", "userIdentity": {"type": "IAMUser"},
                   "requestParameters": {"path": path, "recursive": recursive, "withDecryption": true}})
        };
        assert_eq!(d.match_record(&list("/prod/ledger", false)), Some(5), "the parent");
        assert_eq!(d.match_record(&list("/prod/ledger/", false)), Some(5), "a trailing slash");
        assert_eq!(d.match_record(&list("/prod", false)), None, "not recursive: only the parent's own");
        assert_eq!(d.match_record(&list("/prod", true)), Some(5));
        assert_eq!(d.match_record(&list("/", true)), Some(5), "everything");
        assert_eq!(d.match_record(&list("/staging", true)), None);
        let doc = br#"{"eventName":"GetParametersByPath","requestParameters":{"path":"/"}}"#;
        assert_eq!(d.find(doc).len(), 1, "the scanner reads every such call");
    }

    #[test]
    fn the_managers_own_calls_and_aws_services_are_not_accesses() {
        let d = index();
        let by = |identity: Value| json!({"userIdentity": identity, "requestParameters": {"secretId": "prod/ledger/postgres"}});
        let other_session =
            json!({"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/honeytrail-admin/another"});
        assert_eq!(d.match_record(&by(other_session)), None, "any session of the managing role");
        assert_eq!(d.match_record(&by(json!({"type": "AWSService", "invokedBy": "config.amazonaws.com"}))), None);
        let intruder =
            json!({"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/honeytrail-admin2/s"});
        assert_eq!(d.match_record(&by(intruder)), Some(2), "a role whose name only starts the same");
    }

    #[test]
    fn the_search_finds_every_needle_and_iam_names_in_any_case() {
        let d = index();
        let doc = br#"{"Records":[{"requestParameters":{"queueUrl":"https://x/123456789012/ledger-jobs-prod"}}]}"#;
        let at = doc.windows(16).position(|w| w == b"ledger-jobs-prod").unwrap();
        assert_eq!(d.find(doc), [at]);
        let role = br#"{"requestParameters":{"roleName":"LEDGER-Deploy"}}"#;
        assert_eq!(d.find(role).len(), 1, "IAM names are not case-sensitive");
        let call = json!({"userIdentity": {}, "requestParameters": {"roleName": "LEDGER-Deploy"}});
        assert_eq!(d.match_record(&call), Some(3));
        let queue = json!({"userIdentity": {}, "requestParameters": {"queueName": "LEDGER-JOBS-PROD"}});
        assert_eq!(d.match_record(&queue), None, "SQS names are: another queue");
        // Many decoys: several passes, every hit found, in order.
        let mut many = DecoyIndex::default();
        for i in 0..100 {
            many.insert(&format!("arn:aws:sqs:eu-west-1:123456789012:queue-number-{i:03}"), i);
        }
        many.seal();
        let text = (0..100).rev().map(|i| format!("queue-number-{i:03} ")).collect::<String>();
        let found = many.find(text.as_bytes());
        assert_eq!(found.len(), 100);
        assert!(found.windows(2).all(|w| w[0] < w[1]));
        assert!(d.find(b"{\"nothing\":1}").is_empty());
        let big = json!({"userIdentity": {}, "requestParameters": {"a": vec!["x"; 100_000]}});
        assert_eq!(d.match_record(&big), None, "a hostile list is walked up to its bound");
    }
}
