//! What each kind of alert channel is configured with, as data.
//!
//! Every kind (`crates/alert/src/channels/<kind>.rs`) describes its settings
//! once in a [`KindSpec`]; the command line builds `channel add <kind>`'s
//! flags from it, the web UI its form, and both turn what was given into
//! the same JSON object the API takes ([`config_json`]). The kind itself
//! then reads that object, so the three front doors cannot drift apart.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::Invalid;

/// A kind of channel: its name, what it is, and its settings.
#[derive(Debug, Serialize)]
pub struct KindSpec {
    /// `webhook`, `slack`, …: the `kind` of the API and the command's name.
    pub name: &'static str,
    /// One line for `--help` and the web form.
    pub summary: &'static str,
    pub fields: &'static [FieldSpec],
}

/// One setting of a channel kind.
#[derive(Debug, Serialize)]
pub struct FieldSpec {
    /// Its key in the configuration JSON.
    pub key: &'static str,
    /// Its flag on the command line (`--url`), without the dashes.
    pub flag: &'static str,
    /// What it is, for `--help` and the web form.
    pub help: &'static str,
    pub value: FieldValue,
    pub required: bool,
    /// What it is when not given (shown in `--help`; the kind applies it).
    pub default: Option<&'static str>,
    pub secret: Secrecy,
}

/// What a setting holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum FieldValue {
    Text,
    /// A whole number within the bounds.
    Number {
        min: u32,
        max: u32,
    },
    /// On or off.
    Flag,
    /// One of these words.
    Choice {
        values: &'static [&'static str],
    },
    /// Several values (a repeated flag, one per line in the web form).
    List,
    /// `NAME=VALUE` pairs (a repeated flag, one per line in the web form).
    Map,
    /// A file on the server; the command line makes it absolute.
    Path,
}

/// Whether a setting is a credential, and how the command line asks for it
/// (never as a flag: flags end up in shell history and process lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum Secrecy {
    Plain,
    /// Read from standard input, always.
    Stdin,
    /// Read from standard input when `--<flag>-stdin` is given.
    StdinOnFlag,
    /// Read from standard input when the setting named here is given.
    StdinWith {
        key: &'static str,
    },
}

impl FieldSpec {
    pub fn is_secret(&self) -> bool {
        self.secret != Secrecy::Plain
    }
}

impl KindSpec {
    pub fn field(&self, key: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.key == key)
    }
}

/// The configuration object for `spec` from values given as text (flags,
/// form fields): numbers parsed, flags on, lists and `NAME=VALUE` maps
/// gathered. A setting given no value is left out, for the kind's default.
pub fn config_json(spec: &KindSpec, given: &[(&str, Vec<String>)]) -> Result<Value, Invalid> {
    let mut out = Map::new();
    for (key, values) in given {
        let field =
            spec.field(key).ok_or_else(|| Invalid(format!("a {} channel has no setting {key:?}", spec.name)))?;
        let values: Vec<&str> = values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()).collect();
        let Some(first) = values.first().copied() else { continue };
        let value = match field.value {
            FieldValue::Text | FieldValue::Path => Value::String(first.to_string()),
            FieldValue::Choice { values: allowed } => {
                if !allowed.contains(&first) {
                    return Err(Invalid(format!(
                        "{first:?} is not a {} of a {} channel; use {}",
                        field.flag,
                        spec.name,
                        allowed.join(", ")
                    )));
                }
                Value::String(first.to_string())
            }
            FieldValue::Number { min, max } => {
                let n: u32 = first.parse().ok().filter(|n| (min..=max).contains(n)).ok_or_else(|| {
                    Invalid(format!("{} must be a whole number from {min} to {max}, not {first:?}", field.flag))
                })?;
                Value::from(n)
            }
            FieldValue::Flag => Value::Bool(!matches!(first, "false" | "off" | "no" | "0")),
            FieldValue::List => Value::from(values.iter().map(|v| v.to_string()).collect::<Vec<_>>()),
            FieldValue::Map => {
                let mut map = Map::new();
                for pair in &values {
                    let (k, v) = pair
                        .split_once('=')
                        .ok_or_else(|| Invalid(format!("{} {pair:?} is not NAME=VALUE", field.flag)))?;
                    map.insert(k.trim().to_string(), Value::String(v.trim().to_string()));
                }
                Value::Object(map)
            }
        };
        out.insert(field.key.to_string(), value);
    }
    for field in spec.fields.iter().filter(|f| f.required) {
        if !out.contains_key(field.key) {
            return Err(Invalid(format!("a {} channel needs {}", spec.name, field.flag)));
        }
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: KindSpec = KindSpec {
        name: "probe",
        summary: "a test kind",
        fields: &[
            FieldSpec {
                key: "base_url",
                flag: "url",
                help: "",
                value: FieldValue::Text,
                required: true,
                default: None,
                secret: Secrecy::Plain,
            },
            FieldSpec {
                key: "port",
                flag: "port",
                help: "",
                value: FieldValue::Number { min: 1, max: 65535 },
                required: false,
                default: None,
                secret: Secrecy::Plain,
            },
            FieldSpec {
                key: "headers",
                flag: "header",
                help: "",
                value: FieldValue::Map,
                required: false,
                default: None,
                secret: Secrecy::Plain,
            },
            FieldSpec {
                key: "tls",
                flag: "tls",
                help: "",
                value: FieldValue::Choice { values: &["on", "off"] },
                required: false,
                default: Some("on"),
                secret: Secrecy::Plain,
            },
            FieldSpec {
                key: "loud",
                flag: "loud",
                help: "",
                value: FieldValue::Flag,
                required: false,
                default: None,
                secret: Secrecy::Plain,
            },
        ],
    };

    fn given(pairs: &[(&'static str, &[&str])]) -> Vec<(&'static str, Vec<String>)> {
        pairs.iter().map(|(k, v)| (*k, v.iter().map(|s| s.to_string()).collect())).collect()
    }

    #[test]
    fn text_values_become_the_configuration_object() {
        let v = config_json(
            &SPEC,
            &given(&[
                ("base_url", &["https://x"]),
                ("port", &["25"]),
                ("headers", &["A=b", "C = d"]),
                ("loud", &["on"]),
            ]),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"base_url": "https://x", "port": 25, "headers": {"A": "b", "C": "d"}, "loud": true})
        );
        let blank = config_json(&SPEC, &given(&[("base_url", &["https://x"]), ("port", &[" "])])).unwrap();
        assert_eq!(blank, serde_json::json!({"base_url": "https://x"}), "a blank form field is left out");
    }

    #[test]
    fn wrong_values_are_named() {
        let e = config_json(&SPEC, &given(&[("port", &["25"])])).unwrap_err();
        assert!(e.0.contains("needs url"), "{e}");
        let e = config_json(&SPEC, &given(&[("base_url", &["x"]), ("port", &["99999"])])).unwrap_err();
        assert!(e.0.contains("from 1 to 65535"), "{e}");
        let e = config_json(&SPEC, &given(&[("base_url", &["x"]), ("tls", &["maybe"])])).unwrap_err();
        assert!(e.0.contains("use on, off"), "{e}");
        let e = config_json(&SPEC, &given(&[("base_url", &["x"]), ("headers", &["nope"])])).unwrap_err();
        assert!(e.0.contains("NAME=VALUE"), "{e}");
        assert!(config_json(&SPEC, &given(&[("base_url", &["x"]), ("other", &["y"])])).is_err());
    }
}
