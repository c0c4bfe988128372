//! Just enough IMAP (RFC 9051 / 3501) over TLS to place one message in a
//! folder and take it out again: LOGIN, APPEND, SELECT, UID SEARCH, UID
//! STORE, UID EXPUNGE, LOGOUT. The server's replies are read as text with
//! literals; nothing it says reaches a terminal unescaped.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Where a mailbox is: `imaps://host[:port]` (TLS from the first byte;
/// port 993 by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    pub host: String,
    pub port: u16,
}

impl ImapUrl {
    pub fn parse(raw: &str) -> Result<ImapUrl, String> {
        let rest = raw.trim().strip_prefix("imaps://").ok_or_else(|| {
            format!("{raw:?}: give imaps://host[:port]; the password and the key travel over it, so only TLS")
        })?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h, p.parse::<u16>().map_err(|_| format!("{raw:?}: the port {p:?} is not a number"))?)
            }
            _ => (rest, 993),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b)) {
            return Err(format!("{raw:?}: no host name in it"));
        }
        Ok(ImapUrl { host: host.to_string(), port })
    }

    pub fn display(&self) -> String {
        format!("imaps://{}:{}", self.host, self.port)
    }
}

/// An IMAP session, logged in.
pub struct Session<S> {
    stream: BufReader<S>,
    tag: u32,
    url: String,
}

const TIMEOUT: Duration = Duration::from_secs(30);

/// The certificates of the CA an IMAP server's certificate is checked
/// against, instead of the system's: an internal CA.
#[derive(Debug, Clone)]
pub struct TrustedCa {
    pem: Vec<u8>,
    /// Where they came from, for messages (`--ca-file F`, `ca_pem`).
    named: String,
}

/// The most PEM text taken for a CA (a chain of a few certificates).
const MAX_CA_PEM: u64 = 1 << 20;

impl TrustedCa {
    pub fn from_file(path: &Path) -> Result<TrustedCa, String> {
        use std::io::Read;
        let mut pem = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_CA_PEM).read_to_end(&mut pem))
            .map_err(|e| format!("cannot read --ca-file {}: {e}", path.display()))?;
        Ok(TrustedCa { pem, named: format!("--ca-file {}", path.display()) })
    }

    pub fn from_pem(text: &str, named: &str) -> Result<TrustedCa, String> {
        if text.len() as u64 > MAX_CA_PEM {
            return Err(format!("{named}: more than {} KiB of PEM", MAX_CA_PEM >> 10));
        }
        Ok(TrustedCa { pem: text.as_bytes().to_vec(), named: named.to_string() })
    }
}

fn tls_config(ca: Option<&TrustedCa>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(ca) => {
            let named = &ca.named;
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&ca.pem)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{named}: not PEM certificates: {e}"))?;
            if certs.is_empty() {
                return Err(format!("{named}: holds no certificate"));
            }
            for c in certs {
                roots.add(c).map_err(|e| format!("{named}: {e}"))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                // A system certificate rustls cannot use is skipped, as the system's own clients do.
                roots.add(c).ok();
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A quoted IMAP string; `None` when the text needs a literal (CR, LF, NUL
/// or non-ASCII), which [`Session::command_with_literal`] sends instead.
fn quoted(s: &str) -> Option<String> {
    if s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0 || !b.is_ascii()) {
        return None;
    }
    Some(format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
}

/// Text from the server, made safe to show: at most 200 characters, no
/// control characters.
fn shown(text: &str) -> String {
    honeytrail_core::encoding::printable(&text.chars().take(200).collect::<String>()).into_owned()
}

/// Connects over TLS and logs in.
pub async fn connect(
    url: &ImapUrl,
    user: &str,
    password: &str,
    ca: Option<&TrustedCa>,
) -> Result<Session<tokio_rustls::client::TlsStream<TcpStream>>, String> {
    let shown_url = url.display();
    // Resolved as alert targets are: never a link-local or metadata address, also after DNS.
    let addresses = honeytrail_alert::target::resolve(&url.host, url.port)
        .await
        .map_err(|f| format!("{shown_url}: {}", f.message))?;
    let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect(&addresses[..]))
        .await
        .map_err(|_| format!("{shown_url}: no answer within {} s", TIMEOUT.as_secs()))?
        .map_err(|e| format!("cannot connect to {shown_url}: {e}"))?;
    let name = ServerName::try_from(url.host.clone()).map_err(|e| format!("{shown_url}: {e}"))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(ca)?));
    let tls = tokio::time::timeout(TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| format!("{shown_url}: the TLS handshake did not finish"))?
        .map_err(|e| format!("TLS with {shown_url} failed: {e} (an internal CA? give its certificate: --ca-file)"))?;
    let mut session = Session { stream: BufReader::new(tls), tag: 0, url: shown_url };
    let greeting = session.read_line().await?;
    if !greeting.starts_with("* OK") && !greeting.starts_with("* PREAUTH") {
        return Err(format!("{}: not an IMAP server ready for us: {}", session.url, shown(&greeting)));
    }
    let (Some(u), Some(p)) = (quoted(user), quoted(password)) else {
        return Err("the user name and password must be ASCII without line breaks".into());
    };
    session.command(&format!("LOGIN {u} {p}")).await.map_err(|e| {
        if e.contains(" NO ") || e.contains("AUTHENTICATIONFAILED") {
            format!("{}: the server refused the user or password", session.url)
        } else {
            e
        }
    })?;
    Ok(session)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    async fn read_line(&mut self) -> Result<String, String> {
        let mut line = Vec::new();
        let read = tokio::time::timeout(TIMEOUT, (&mut self.stream).take(64 * 1024).read_until(b'\n', &mut line))
            .await
            .map_err(|_| format!("{}: no answer within {} s", self.url, TIMEOUT.as_secs()))?
            .map_err(|e| format!("{}: {e}", self.url))?;
        if read == 0 {
            return Err(format!("{}: the server closed the connection", self.url));
        }
        let mut text = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
        // A literal inside a reply: `{n}` at the end of the line, then n bytes.
        if let Some(n) =
            text.rsplit_once('{').and_then(|(_, n)| n.strip_suffix('}')).and_then(|n| n.parse::<u64>().ok())
        {
            let mut literal = Vec::new();
            (&mut self.stream).take(n.min(1 << 20)).read_to_end(&mut literal).await.map_err(|e| e.to_string())?;
            text.push_str(&String::from_utf8_lossy(&literal));
            text.push_str(&Box::pin(self.read_line()).await?);
        }
        Ok(text)
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("a{}", self.tag)
    }

    /// Reads until the tagged reply; the untagged lines before it on OK.
    async fn finish(&mut self, tag: &str, what: &str) -> Result<Vec<String>, String> {
        let mut untagged = Vec::new();
        loop {
            let line = self.read_line().await?;
            if let Some(status) = line.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
                return if status.starts_with("OK") {
                    Ok(untagged)
                } else {
                    Err(format!("{}: {what} refused: {tag} {}", self.url, shown(status)))
                };
            }
            untagged.push(line);
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let stream = self.stream.get_mut();
        stream.write_all(bytes).await.map_err(|e| format!("{}: {e}", self.url))?;
        stream.flush().await.map_err(|e| format!("{}: {e}", self.url))
    }

    /// One command; the untagged replies on OK.
    pub async fn command(&mut self, command: &str) -> Result<Vec<String>, String> {
        let tag = self.next_tag();
        self.send(format!("{tag} {command}\r\n").as_bytes()).await?;
        let what = command.split(' ').next().unwrap_or(command).to_string();
        self.finish(&tag, &what).await
    }

    /// `APPEND folder (flags) "date" {n}` and the message as a literal.
    pub async fn append(&mut self, folder: &str, flags: &str, date: &str, message: &[u8]) -> Result<(), String> {
        let f = quoted(folder).ok_or("the folder name must be ASCII")?;
        let tag = self.next_tag();
        self.send(format!("{tag} APPEND {f} ({flags}) \"{date}\" {{{}}}\r\n", message.len()).as_bytes()).await?;
        let go = self.read_line().await?;
        if !go.starts_with('+') {
            return Err(if go.contains("TRYCREATE") {
                format!(
                    "{}: there is no folder {folder:?} in this mailbox; create it first or choose another",
                    self.url
                )
            } else {
                format!("{}: APPEND refused: {}", self.url, shown(&go))
            });
        }
        self.send(message).await?;
        self.send(b"\r\n").await?;
        self.finish(&tag, "APPEND").await.map(|_| ()).map_err(|e| {
            if e.contains("TRYCREATE") {
                format!(
                    "{}: there is no folder {folder:?} in this mailbox; create it first or choose another",
                    self.url
                )
            } else {
                e
            }
        })
    }

    /// The UIDs in the selected folder of messages with this Message-ID.
    pub async fn uids_of(&mut self, folder: &str, message_id: &str) -> Result<Vec<u32>, String> {
        let f = quoted(folder).ok_or("the folder name must be ASCII")?;
        self.command(&format!("SELECT {f}")).await?;
        let id = quoted(message_id).ok_or("the Message-ID must be ASCII")?;
        let lines = self.command(&format!("UID SEARCH HEADER Message-ID {id}")).await?;
        Ok(lines
            .iter()
            .filter_map(|l| l.strip_prefix("* SEARCH"))
            .flat_map(|rest| rest.split_whitespace().filter_map(|n| n.parse().ok()).collect::<Vec<u32>>())
            .collect())
    }

    /// Deletes exactly these messages (UID EXPUNGE: no other message
    /// marked deleted goes with them).
    pub async fn delete(&mut self, uids: &[u32]) -> Result<(), String> {
        let set = uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        self.command(&format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)")).await?;
        self.command(&format!("UID EXPUNGE {set}")).await.map(|_| ())
    }

    pub async fn logout(mut self) {
        // The work is done; a server that hangs up first is fine.
        self.command("LOGOUT").await.ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_strings() {
        assert_eq!(
            ImapUrl::parse("imaps://mail.example.com").unwrap(),
            ImapUrl { host: "mail.example.com".into(), port: 993 }
        );
        assert_eq!(ImapUrl::parse("imaps://127.0.0.1:10993/").unwrap().port, 10993);
        for bad in ["imap://mail.example.com", "https://x", "imaps://", "imaps://x:port", "imaps://a b"] {
            assert!(ImapUrl::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(quoted(r#"a"b\c"#).unwrap(), r#""a\"b\\c""#);
        assert_eq!(quoted("a\r\nb"), None);
        assert_eq!(shown("x\u{1b}[31m"), "x\\u{1b}[31m");
    }
}
