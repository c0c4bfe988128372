//! How one request type is read from every front door: the command line
//! (clap, behind the `clap` feature), an API body (JSON) and a web form
//! (`application/x-www-form-urlencoded`, where a list sent with one value
//! arrives as a plain string).

use serde::{Deserialize, Deserializer};

/// A list given as a JSON array, or as one string (a form field).
pub fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(v) => vec![v],
        OneOrMany::Many(v) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "one_or_many")]
        items: Vec<String>,
    }

    #[test]
    fn a_list_is_read_from_an_array_or_one_string() {
        let p: Probe = serde_json::from_str(r#"{"items": ["a", "b"]}"#).unwrap();
        assert_eq!(p.items, ["a", "b"]);
        let p: Probe = serde_json::from_str(r#"{"items": "a, b"}"#).unwrap();
        assert_eq!(p.items, ["a, b"]);
        let p: Probe = serde_json::from_str("{}").unwrap();
        assert!(p.items.is_empty());
        assert!(serde_json::from_str::<Probe>(r#"{"items": 3}"#).is_err());
    }
}

/// Labels given as a JSON object (`{"team": "web"}`), as `NAME=VALUE`
/// strings, or as one text of them separated by commas or lines (a form
/// field: `team=web, env=prod`).
pub fn labels<'de, D: Deserializer<'de>>(d: D) -> Result<honeytrail_core::Labels, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Map(honeytrail_core::Labels),
        Text(String),
        Pairs(Vec<String>),
    }
    let parsed = match Given::deserialize(d)? {
        Given::Map(m) => return Ok(m),
        Given::Text(t) => honeytrail_core::parse_label_text(&t),
        Given::Pairs(p) => p.iter().try_fold(honeytrail_core::Labels::default(), |mut all, text| {
            all.extend(honeytrail_core::parse_label_text(text)?);
            Ok(all)
        }),
    };
    parsed.map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod label_tests {
    use super::*;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "labels")]
        labels: honeytrail_core::Labels,
    }

    #[test]
    fn labels_are_read_from_an_object_pairs_or_a_text() {
        for body in [r#"{"team":"web","env":"prod"}"#, r#"["team=web","env=prod"]"#, r#""team=web, env=prod""#] {
            let p: Probe = serde_json::from_str(&format!(r#"{{"labels": {body}}}"#)).unwrap();
            assert_eq!(p.labels.get("team").map(String::as_str), Some("web"), "{body}");
            assert_eq!(p.labels.len(), 2, "{body}");
        }
        assert!(serde_json::from_str::<Probe>(r#"{"labels": "not a name!=x"}"#).is_err());
    }
}
