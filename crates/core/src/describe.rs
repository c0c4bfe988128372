//! The sentences an alert is built from: where a key was placed and every
//! place it passed through on the way.

use std::fmt;

use crate::model::{CustodyHop, Placement, Spot, Token, TokenState};

/// A delay in the units a person reads: `45 s`, `30 min`, `2 h 5 min`,
/// `3 d 4 h` (never "after 1800 s"); negative delays (clocks apart) as `0 s`.
pub fn duration_words(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60);
    match (d, h, m, sec) {
        (0, 0, 0, sec) => format!("{sec} s"),
        (0, 0, m, 0) => format!("{m} min"),
        (0, 0, m, sec) => format!("{m} min {sec} s"),
        (0, h, 0, _) => format!("{h} h"),
        (0, h, m, _) => format!("{h} h {m} min"),
        (d, 0, _, _) => format!("{d} d"),
        (d, h, _, _) => format!("{d} d {h} h"),
    }
}

/// "Maria Lopez's MacBook Pro (host maria-mbp, serial C02XYZ) in ~/.aws/credentials"
pub fn spot_phrase(spot: &Spot) -> String {
    let owner = spot.owner.as_deref().filter(|s| !s.is_empty()).map(possessive);
    let has_owner = owner.is_some();
    let asset = spot.asset.as_deref().filter(|s| !s.is_empty());
    let mut details = Vec::new();
    let subject = match (owner, asset) {
        (Some(o), Some(a)) => format!("{o} {a}"),
        (Some(o), None) => format!("{o} machine"),
        (None, Some(a)) => a.to_string(),
        (None, None) => format!("host {}", spot.host),
    };
    if (has_owner || asset.is_some()) && !spot.host.is_empty() {
        details.push(format!("host {}", spot.host));
    }
    if let Some(serial) = spot.serial.as_deref().filter(|s| !s.is_empty()) {
        details.push(format!("serial {serial}"));
    }
    let mut out = subject;
    if !details.is_empty() {
        out.push_str(&format!(" ({})", details.join(", ")));
    }
    if !spot.path.is_empty() {
        out.push_str(&format!(" in {}", spot.path));
    }
    out
}

fn possessive(name: &str) -> String {
    if name.ends_with('s') {
        format!("{name}'")
    } else {
        format!("{name}'s")
    }
}

/// Everything a responder needs to know about where a key has been.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Description {
    /// One sentence: the key and where it was placed.
    pub headline: String,
    /// One line per active placement, beyond the headline's.
    pub placements: Vec<String>,
    /// The chain of custody, oldest first: places that may have leaked it.
    pub custody: Vec<String>,
}

/// Builds the description of `token` from its active placements and hops.
pub fn describe(token: &Token, placements: &[Placement], hops: &[CustodyHop]) -> Description {
    let key = &token.access_key_id;
    let active: Vec<&Placement> = placements.iter().filter(|p| p.removed_at.is_none()).collect();
    let retired = if token.state == TokenState::Retired { " (retired)" } else { "" };
    let headline = match active.as_slice() {
        [] => format!("Key {key}{retired} has no recorded placement."),
        [one] => format!("Key {key}{retired} was placed on {}.", spot_phrase(&one.spot)),
        // One host, several files (a fleet host: one per user's home): say the host first.
        many if !many[0].spot.host.is_empty() && many.iter().all(|p| p.spot.host == many[0].spot.host) => {
            format!("Key {key}{retired} was placed on host {} in {} files:", many[0].spot.host, many.len())
        }
        many => format!("Key {key}{retired} was placed in {} places:", many.len()),
    };
    let placements = if active.len() > 1 {
        active
            .iter()
            .map(|p| {
                let by = p.spot.placed_by.as_deref().map(|b| format!(", by {b}")).unwrap_or_default();
                format!("on {} (placed {}{by})", spot_phrase(&p.spot), p.placed_at.format("%Y-%m-%d"))
            })
            .collect()
    } else {
        Vec::new()
    };
    let custody = hops
        .iter()
        .map(|h| {
            let actor = h.actor.as_deref().map(|a| format!(" (by {a})")).unwrap_or_default();
            format!("{} — {}{actor}", h.at.format("%Y-%m-%d %H:%M UTC"), h.description)
        })
        .collect();
    Description { headline, placements, custody }
}

impl fmt::Display for Description {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.headline)?;
        for (i, p) in self.placements.iter().enumerate() {
            writeln!(f, "  {}. {p}", i + 1)?;
        }
        if self.custody.is_empty() {
            writeln!(f, "No chain of custody is recorded: any place the secret passed through may have leaked it.")?;
        } else {
            writeln!(f, "It may have leaked at any hop of its chain of custody:")?;
            for (i, h) in self.custody.iter().enumerate() {
                writeln!(f, "  {}. {h}", i + 1)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_read_in_human_units() {
        for (secs, words) in [
            (0, "0 s"),
            (45, "45 s"),
            (60, "1 min"),
            (95, "1 min 35 s"),
            (1800, "30 min"),
            (3600, "1 h"),
            (7500, "2 h 5 min"),
            (86_400, "1 d"),
            (273_600, "3 d 4 h"),
            (-5, "0 s"),
        ] {
            assert_eq!(duration_words(secs), words, "{secs}");
        }
    }
    use crate::model::{Labels, TokenKind};
    use chrono::{TimeZone, Utc};

    fn token() -> Token {
        Token {
            id: 1,
            kind: TokenKind::AwsImported,
            access_key_id: "AKIAQYLPMN5HHHFPZAM2".into(),
            has_secret: false,
            iam_user_name: None,
            iam_user_arn: None,
            account_id: None,
            source: None,
            memo: String::new(),
            labels: Labels::new(),
            state: TokenState::Active,
            created_at: Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap(),
            retired_at: None,
            rotated_from: None,
        }
    }

    fn placement(spot: Spot) -> Placement {
        Placement {
            id: 1,
            token_id: 1,
            spot,
            placed_at: Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap(),
            removed_at: None,
        }
    }

    #[test]
    fn the_guidance_sentence() {
        let spot = Spot {
            host: "maria-mbp".into(),
            path: "~/.aws/credentials".into(),
            owner: Some("Maria".into()),
            asset: Some("MacBook Pro".into()),
            serial: Some("C02XYZ".into()),
            ..Spot::default()
        };
        let d = describe(&token(), &[placement(spot)], &[]);
        assert_eq!(
            d.headline,
            "Key AKIAQYLPMN5HHHFPZAM2 was placed on Maria's MacBook Pro (host maria-mbp, serial C02XYZ) in ~/.aws/credentials."
        );
    }

    #[test]
    fn phrases_for_sparse_spots() {
        let bare = Spot { host: "web-1".into(), path: "/srv/app/.env".into(), ..Spot::default() };
        assert_eq!(spot_phrase(&bare), "host web-1 in /srv/app/.env");
        let owner = Spot { owner: Some("James".into()), ..bare.clone() };
        assert_eq!(spot_phrase(&owner), "James' machine (host web-1) in /srv/app/.env");
    }

    #[test]
    fn several_placements_and_custody() {
        let a =
            placement(Spot { host: "a".into(), path: "/x".into(), placed_by: Some("alice".into()), ..Spot::default() });
        let mut b = placement(Spot { host: "b".into(), path: "/y".into(), ..Spot::default() });
        b.id = 2;
        let mut gone = b.clone();
        gone.removed_at = Some(Utc::now());
        let hop = CustodyHop {
            id: 1,
            token_id: 1,
            seq: 1,
            at: Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap(),
            description: "sent by email to ops@example.com".into(),
            actor: Some("alice".into()),
            automatic: false,
        };
        let d = describe(&token(), &[a, b, gone], &[hop]);
        assert_eq!(d.headline, "Key AKIAQYLPMN5HHHFPZAM2 was placed in 2 places:");
        assert_eq!(d.placements[0], "on host a in /x (placed 2026-11-02, by alice)");
        assert_eq!(d.custody, ["2026-11-01 09:00 UTC — sent by email to ops@example.com (by alice)"]);
        assert!(d.to_string().contains("It may have leaked at any hop"));
        let c = placement(Spot { host: "a".into(), path: "/z".into(), ..Spot::default() });
        let a = placement(Spot { host: "a".into(), path: "/x".into(), ..Spot::default() });
        let d = describe(&token(), &[a, c], &[]);
        assert_eq!(d.headline, "Key AKIAQYLPMN5HHHFPZAM2 was placed on host a in 2 files:");
        assert_eq!(d.placements[1], "on host a in /z (placed 2026-11-02)");
    }
}
