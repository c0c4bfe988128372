//! Bait in a mailbox: a realistic RFC 5322 message in which a colleague
//! sends "the keys for the backup job", dated some days back, as a reply in
//! a thread, from a plausible sender at the mailbox's own domain. Nothing in
//! it (headers, Message-ID, body) names honeytrail or says bait.

use chrono::{DateTime, Duration, Utc};
use rand::seq::SliceRandom;
use rand::Rng;

use crate::Invalid;

/// The format name of this kind of placement.
pub const FORMAT: &str = "imap-message";

const SENDERS: &[(&str, &str)] = &[
    ("Dana Whitfield", "dana.whitfield"),
    ("Marcus Brandt", "marcus.brandt"),
    ("Priya Raman", "priya.raman"),
    ("Tomas Ferreira", "tomas.ferreira"),
    ("Hannah Okafor", "hannah.okafor"),
    ("Jonas Lindqvist", "jonas.lindqvist"),
];

const JOBS: &[(&str, &str)] = &[
    ("the keys for the backup job", "nightly backup job"),
    ("access keys for the export job", "reporting export job"),
    ("credentials for the archive sync", "S3 archive sync"),
];

/// What goes into the message.
#[derive(Clone)]
pub struct MessageInput<'a> {
    /// The mailbox's own address (its IMAP user when that is an address).
    pub to: &'a str,
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
    pub now: DateTime<Utc>,
}

/// A rendered message and what identifies it in the folder.
#[derive(Clone)]
pub struct Message {
    pub message_id: String,
    pub date: DateTime<Utc>,
    /// CRLF line endings, as IMAP APPEND wants them.
    pub text: String,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("message_id", &self.message_id)
            .field("date", &self.date)
            .finish_non_exhaustive()
    }
}

fn plain_header(name: &str, value: &str) -> Result<(), Invalid> {
    if value.is_empty() || value.len() > 254 || value.chars().any(|c| c.is_control() || !c.is_ascii()) {
        return Err(Invalid(format!("{name}: printable ASCII, at most 254 characters")));
    }
    Ok(())
}

/// The domain of an address, or `None` when it is no address.
fn domain_of(address: &str) -> Option<&str> {
    let (local, domain) = address.rsplit_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    ok.then_some(domain)
}

fn random_id(rng: &mut impl Rng, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

/// Renders the message. `to` must be an address (`maria@example.com`):
/// the sender and the Message-IDs take its domain.
pub fn render(input: &MessageInput<'_>, rng: &mut impl Rng) -> Result<Message, Invalid> {
    plain_header("to", input.to)?;
    let domain = domain_of(input.to)
        .ok_or_else(|| Invalid(format!("{:?} is not an address: say the mailbox's address (--address)", input.to)))?;
    plain_header("region", input.region)?;
    let &(name, local) = SENDERS.choose(rng).unwrap_or(&SENDERS[0]);
    let &(subject, job) = JOBS.choose(rng).unwrap_or(&JOBS[0]);
    // Sent some days ago, in working hours; asked for the day before.
    let date = (input.now - Duration::days(rng.gen_range(6..40)))
        .date_naive()
        .and_hms_opt(rng.gen_range(9..17), rng.gen_range(0..60), rng.gen_range(0..60))
        .map_or(input.now, |t| t.and_utc());
    let asked = date - Duration::hours(rng.gen_range(2..26));
    let message_id = format!("<{}.{}@{domain}>", random_id(rng, 16), date.timestamp());
    let parent_id = format!("<{}.{}@{domain}>", random_id(rng, 16), asked.timestamp());
    let me = input.to.split('@').next().unwrap_or("").split(['.', '_', '-']).next().unwrap_or("");
    let greeting = match me.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => format!("Hi {}{},", c.to_ascii_uppercase(), &me[c.len_utf8()..]),
        _ => "Hi,".to_string(),
    };
    let first = name.split(' ').next().unwrap_or(name);
    let lines = [
        format!("From: {name} <{local}@{domain}>"),
        format!("To: <{}>", input.to),
        format!("Subject: Re: {subject}"),
        format!("Date: {}", date.to_rfc2822()),
        format!("Message-ID: {message_id}"),
        format!("In-Reply-To: {parent_id}"),
        format!("References: {parent_id}"),
        "MIME-Version: 1.0".to_string(),
        "Content-Type: text/plain; charset=utf-8".to_string(),
        "Content-Transfer-Encoding: 8bit".to_string(),
        String::new(),
        greeting,
        String::new(),
        format!("as discussed, here are the keys for the {job}. They can only"),
        "write to the backup bucket; please keep them out of git and the wiki.".to_string(),
        String::new(),
        "[default]".to_string(),
        format!("aws_access_key_id = {}", input.access_key_id),
        format!("aws_secret_access_key = {}", input.secret_access_key),
        format!("region = {}", input.region),
        String::new(),
        "Thanks,".to_string(),
        first.to_string(),
        String::new(),
        format!("On {}, {} wrote:", asked.format("%a, %-d %b %Y at %H:%M"), input.to),
        format!("> Could you send me the access keys for the {job}? The old ones"),
        "> were rotated and the job has been failing since Monday.".to_string(),
    ];
    let mut text = lines.join("\r\n");
    text.push_str("\r\n");
    Ok(Message { message_id, date, text })
}

/// The placement path of a message: `MESSAGE-ID in FOLDER`.
pub fn placement_path(message_id: &str, folder: &str) -> String {
    format!("{message_id} in {folder}")
}

/// The Message-ID and folder back from a placement path.
pub fn parts_of(path: &str) -> Option<(&str, &str)> {
    let end = path.find('>')?;
    let (id, rest) = path.split_at(end + 1);
    let folder = rest.strip_prefix(" in ")?;
    (id.starts_with('<') && !folder.is_empty()).then_some((id, folder))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_message_reads_like_mail_and_says_nothing() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let now = Utc::now();
        let input = MessageInput {
            to: "maria.lopez@example.com",
            access_key_id: "AKIAQYLPMN5HHHFPZAM2",
            secret_access_key: "tfteSlswRu7BJ86wekitnifILbZam1KYY3TG+Qp/",
            region: "eu-west-1",
            now,
        };
        let m = render(&input, &mut rng).unwrap();
        assert!(m.text.contains("\r\nMessage-ID: ") && m.message_id.ends_with("@example.com>"));
        assert!(m.text.contains("aws_access_key_id = AKIAQYLPMN5HHHFPZAM2\r\n"));
        assert!(m.text.contains("Hi Maria,") && m.text.contains("In-Reply-To: <"));
        assert!(m.date < now - Duration::days(5));
        assert!(!m.text.replace("\r\n", "").contains('\n'), "bare LF");
        let lower = m.text.to_lowercase();
        for w in ["honey", "canar", "decoy", "bait", "trap", "deception"] {
            assert!(!lower.contains(w), "says {w}");
        }
        let path = placement_path(&m.message_id, "Archive/2026");
        assert_eq!(parts_of(&path), Some((m.message_id.as_str(), "Archive/2026")));
        for bad in ["maria", "maria@localhost", "a\r\nBcc: x@y.z", "m@exämple.com"] {
            assert!(render(&MessageInput { to: bad, ..input.clone() }, &mut rng).is_err(), "{bad:?}");
        }
    }
}
