//! What the end-to-end test binaries share: a scratch installation that runs
//! the real `honeytrail` binary, CloudTrail records in the real format, a
//! running server, and local HTTP receivers.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// A scratch installation: its own data directory and HOME.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub database: Option<String>,
    pub moto: Option<String>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "command failed\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
    pub fn fails(self) -> Run {
        assert_ne!(self.code, 0, "command should have failed\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

impl Env {
    pub fn new() -> Env {
        Env { dir: tempfile::tempdir().unwrap(), database: None, moto: None }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        // HONEYTRAIL_TEST_BINARY runs the tests against another build (an
        // older release, to compare what the API answers).
        let bin = std::env::var("HONEYTRAIL_TEST_BINARY").unwrap_or_else(|_| env!("CARGO_BIN_EXE_honeytrail").into());
        let mut cmd = Command::new(bin);
        for (k, _) in std::env::vars() {
            if k.starts_with("HONEYTRAIL_") || k.starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        std::fs::create_dir_all(self.home()).unwrap();
        cmd.env("HOME", self.home()).env("USER", "alice").arg("--data-dir").arg(self.data());
        // JSON-lines channels of the tests write into the test's own directory.
        cmd.env("HONEYTRAIL_ALERTS_JSONL_DIR", self.dir.path());
        if let Some(db) = &self.database {
            cmd.args(["--database", db]);
        }
        if let Some(endpoint) = &self.moto {
            cmd.args(["--aws-endpoint", endpoint])
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_CONFIG_FILE", "/dev/null")
                .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        }
        cmd.args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_stdin(args, "")
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child =
            self.command(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out: Output = child.wait_with_output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

pub const KEY: &str = "AKIARZPUZDIKAWS2LJNF";
pub const SECRET: &str = "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";

pub fn ingest_records(env: &Env, records: Vec<serde_json::Value>) {
    let log = env.dir.path().join(format!("trail-{}.json", next_log_number()));
    std::fs::write(&log, serde_json::json!({"Records": records}).to_string()).unwrap();
    env.run(&["ingest", log.to_str().unwrap()]).ok();
}

pub fn next_log_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A CloudTrail record of the honey key's use, in the real format.
pub fn trail_record(
    key: &str,
    user: &str,
    event_id: &str,
    time: &str,
    source: &str,
    name: &str,
    error: Option<&str>,
) -> serde_json::Value {
    let mut r = serde_json::json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLEEXAMPLE01", "arn": format!("arn:aws:iam::123456789012:user/{user}"),
                         "accountId": "123456789012", "accessKeyId": key, "userName": user},
        "eventTime": time, "eventSource": source, "eventName": name, "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.23", "userAgent": "aws-cli/1.45.11 Python/3.11.7 Linux/6.1 botocore/1.43.11",
        "requestParameters": null, "responseElements": null, "requestID": format!("req-{event_id}"), "eventID": event_id,
        "readOnly": true, "eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": "123456789012",
        "eventCategory": "Management", "tlsDetails": {"tlsVersion": "TLSv1.3", "clientProvidedHostHeader": format!("{}", source)}
    });
    if let Some(code) = error {
        r["errorCode"] = code.into();
        r["errorMessage"] =
            format!("User: arn:aws:iam::123456789012:user/{user} is not authorized to perform: {name}").into();
    }
    r
}

/// The bearer token of `/metrics` on test servers.
pub const METRICS_TOKEN: &str = "metrics-token-for-tests-0123456789abcdef";

pub struct Server {
    pub child: std::process::Child,
    pub port: u16,
}

impl Server {
    /// Starts `serve` on port 0 and reads the port the system gave it from
    /// what it says ("honeytrail is serving on http://127.0.0.1:PORT"): no
    /// port is guessed free and bound later.
    pub fn start(env: &Env, secrets: &[(&str, &str)]) -> Server {
        let mut cmd = env.command(&["serve"]);
        cmd.env("HONEYTRAIL_SERVE_LISTEN", "127.0.0.1:0");
        cmd.stdout(Stdio::null());
        cmd.env("HONEYTRAIL_METRICS_TOKEN", METRICS_TOKEN);
        for (k, v) in secrets {
            cmd.env(k, v);
        }
        let (child, port) =
            honeytrail_testkit::spawn_reporting_port(&mut cmd, honeytrail_testkit::Stream::Stderr, |line| {
                line.strip_prefix("honeytrail is serving on ").and_then(honeytrail_testkit::loopback_port_in)
            })
            .unwrap_or_else(|said| panic!("honeytrail serve did not come up:\n{said}"));
        let server = Server { child, port };
        eventually("serve to answer /healthz", || matches!(server.call("GET", "/healthz", &[], ""), (200, _)));
        server
    }

    pub fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
        honeytrail_testkit::http(self.port, method, path, headers, body).unwrap_or((0, String::new()))
    }

    /// Confirms an enrolment (`POST /fleet/enroll`'s answer) as an agent that
    /// wrote its bait to `/root/.aws/credentials` would; the server must accept it.
    pub fn confirm_placed(&self, enrolled: &serde_json::Value) {
        let bearer = format!("Bearer {}", enrolled["credential"].as_str().expect("the enrolment's credential"));
        let confirm = serde_json::json!({"files": [{"path": "/root/.aws/credentials", "user": "root", "digest": format!("sha256:{:064x}", 1)}]});
        let (status, body) = self.call(
            "POST",
            "/api/v1/fleet/confirm",
            &[("Content-Type", "application/json"), ("Authorization", &bearer)],
            &confirm.to_string(),
        );
        assert_eq!(status, 200, "{body}");
    }

    /// `/metrics`, read with the metrics token every test server has.
    pub fn metrics(&self) -> String {
        let bearer = format!("Bearer {METRICS_TOKEN}");
        let (status, text) = self.call("GET", "/metrics", &[("Authorization", &bearer)], "");
        assert_eq!(status, 200, "{text}");
        text
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok(); // already gone is fine
        self.child.wait().ok(); // already gone is fine
    }
}

/// A local webhook receiver: records each request and answers with the next
/// scripted response (then 200).
pub struct Receiver {
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    /// The port it listens on (the one asked for, or one the system chose for 0).
    pub port: u16,
}

impl Receiver {
    /// Listens on `port`; 0 lets the system choose, which never races with
    /// another test for a port found free a moment before.
    pub fn start(port: u16, script: Vec<&'static str>) -> Receiver {
        Receiver::on(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap(), script)
    }

    /// Serves on a listener of the caller's (a [`honeytrail_testkit::HeldPort`]
    /// coming up).
    pub fn on(listener: std::net::TcpListener, script: Vec<&'static str>) -> Receiver {
        let port = listener.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        let script = std::sync::Arc::new(std::sync::Mutex::new(script.into_iter()));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (seen, script) = (seen.clone(), script.clone());
                // One thread per connection, so a request left hanging does not block the next.
                std::thread::spawn(move || {
                    use std::io::{BufRead, BufReader, Read};
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    reader.read_exact(&mut body).unwrap();
                    seen.lock().unwrap().push((head, String::from_utf8(body).unwrap()));
                    let response =
                        script.lock().unwrap().next().unwrap_or("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                    if response == "HANG" {
                        std::thread::sleep(std::time::Duration::from_secs(120));
                        return;
                    }
                    // A client that hung up early is the test's business, not the receiver's.
                    stream.write_all(response.as_bytes()).ok();
                });
            }
        });
        Receiver { requests, port }
    }
}

/// One message an [`SmtpSink`] accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The decoded `AUTH PLAIN` credentials, `user:password`, if any.
    pub auth: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
    /// The message came over TLS (after STARTTLS).
    pub tls: bool,
}

impl Mail {
    /// The decoded body of the part with this content type.
    pub fn part(&self, content_type: &str) -> Option<String> {
        use base64::Engine;
        let at = self.data.find(&format!("Content-Type: {content_type}"))?;
        let rest = &self.data[at..];
        let body_start = rest.find("\r\n\r\n")? + 4;
        let body_end = rest[body_start..].find("\r\n--").map_or(rest.len(), |e| body_start + e);
        let encoded: String = rest[body_start..body_end].split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
        String::from_utf8(bytes).ok()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        let head = &self.data[..self.data.find("\r\n\r\n")?];
        head.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
    }
}

/// A local SMTP server that speaks just enough of RFC 5321 (EHLO, STARTTLS,
/// AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT) to accept and keep messages.
pub struct SmtpSink {
    pub port: u16,
    pub mails: std::sync::Arc<std::sync::Mutex<Vec<Mail>>>,
}

trait Io: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> Io for T {}

/// What one SMTP conversation (or its part before STARTTLS) ended with.
enum Ended {
    Closed,
    StartTls,
}

/// Runs the SMTP conversation over `io`; with `tls_offered`, EHLO offers
/// STARTTLS, and AUTH and MAIL are refused until it happened (`secure`).
fn converse(
    io: &mut dyn Io,
    tls_offered: bool,
    secure: bool,
    kept: &std::sync::Mutex<Vec<Mail>>,
    greet: bool,
) -> Ended {
    use base64::Engine;
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(ReadHalf(io));
    let say = |r: &mut std::io::BufReader<ReadHalf>, s: &str| {
        r.get_mut().0.write_all(format!("{s}\r\n").as_bytes()).ok();
        r.get_mut().0.flush().ok();
    };
    if greet {
        say(&mut reader, "220 sink.test ESMTP ready");
    }
    let (mut auth, mut from, mut to) = (None, String::new(), Vec::new());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return Ended::Closed;
        }
        let line = line.trim_end().to_string();
        let upper = line.to_ascii_uppercase();
        let must_upgrade = tls_offered && !secure;
        if upper.starts_with("EHLO") {
            if must_upgrade {
                say(&mut reader, "250-sink.test\r\n250-STARTTLS\r\n250 8BITMIME");
            } else {
                say(&mut reader, "250-sink.test\r\n250-AUTH PLAIN\r\n250 8BITMIME");
            }
        } else if upper == "STARTTLS" && must_upgrade {
            say(&mut reader, "220 2.0.0 Ready to start TLS");
            return Ended::StartTls;
        } else if must_upgrade && (upper.starts_with("AUTH") || upper.starts_with("MAIL")) {
            say(&mut reader, "530 5.7.0 Must issue a STARTTLS command first");
        } else if let Some(b64) = line.strip_prefix("AUTH PLAIN ") {
            let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).unwrap_or_default();
            let parts: Vec<String> = raw.split(|b| *b == 0).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
            auth = Some(format!(
                "{}:{}",
                parts.get(1).cloned().unwrap_or_default(),
                parts.get(2).cloned().unwrap_or_default()
            ));
            say(&mut reader, "235 2.7.0 Authentication successful");
        } else if upper.starts_with("MAIL FROM:") {
            from = line[10..].trim().trim_matches(['<', '>']).split('>').next().unwrap_or("").to_string();
            to.clear();
            say(&mut reader, "250 OK");
        } else if upper.starts_with("RCPT TO:") {
            to.push(line[8..].trim().trim_matches(['<', '>']).to_string());
            say(&mut reader, "250 OK");
        } else if upper == "DATA" {
            say(&mut reader, "354 End data with <CR><LF>.<CR><LF>");
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).unwrap_or(0) == 0 {
                    return Ended::Closed;
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(l.strip_prefix('.').filter(|_| l.starts_with("..")).unwrap_or(&l));
            }
            kept.lock().unwrap().push(Mail {
                auth: auth.clone(),
                from: from.clone(),
                to: to.clone(),
                data,
                tls: secure,
            });
            say(&mut reader, "250 OK queued");
        } else if upper == "QUIT" {
            say(&mut reader, "221 Bye");
            return Ended::Closed;
        } else if upper == "RSET" || upper == "NOOP" {
            say(&mut reader, "250 OK");
        } else {
            say(&mut reader, "502 Command not implemented");
        }
    }
}

/// Lets a `BufReader` read from an `Io` while writes still reach it.
struct ReadHalf<'a>(&'a mut dyn Io);

impl std::io::Read for ReadHalf<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl SmtpSink {
    /// A plain sink (no TLS).
    pub fn start() -> SmtpSink {
        SmtpSink::start_with(None)
    }

    /// A sink that requires STARTTLS with this certificate and key (PEM).
    pub fn start_tls(cert_pem: &[u8], key_pem: &[u8]) -> SmtpSink {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem).collect::<Result<_, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_slice(key_pem).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        SmtpSink::start_with(Some(std::sync::Arc::new(config)))
    }

    fn start_with(tls: Option<std::sync::Arc<rustls::ServerConfig>>) -> SmtpSink {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = mails.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (kept, tls) = (kept.clone(), tls.clone());
                std::thread::spawn(move || {
                    if let Ended::StartTls = converse(&mut stream, tls.is_some(), false, &kept, true) {
                        let conn = rustls::ServerConnection::new(tls.unwrap()).unwrap();
                        let mut secure = rustls::StreamOwned::new(conn, stream);
                        converse(&mut secure, true, true, &kept, false);
                    }
                });
            }
        });
        SmtpSink { port, mails }
    }

    /// Waits until at least `n` messages arrived.
    pub fn wait_for(&self, n: usize) -> Vec<Mail> {
        for _ in 0..150 {
            let mails = self.mails.lock().unwrap().clone();
            if mails.len() >= n {
                return mails;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the SMTP sink got {} message(s), expected {n}", self.mails.lock().unwrap().len());
    }
}

/// The one-time password `user add` prints.
pub fn add_user(env: &Env, name: &str, role: &str) -> String {
    let out = env.run(&["user", "add", name, "--role", role]).ok();
    out.stdout.split("one-time password: ").nth(1).unwrap().lines().next().unwrap().trim().to_string()
}

/// Checks `done` until it holds (every 100 ms, at most 60 s): waits on what
/// the test is about to assert — a delivery made once its backoff passed, a
/// sweep that finds a window over — instead of sleeping a fixed time that a
/// busy machine may overrun. Panics naming `what` when it never holds.
pub fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The password [`ui_cookie`] chooses at the first sign-in.
pub const UI_PASSWORD: &str = "a long new passphrase";

/// Signs `user` in to the web UI over HTTP, choosing [`UI_PASSWORD`] in
/// place of the one-time `password`, and returns the session cookie.
pub fn ui_cookie(server: &Server, user: &str, password: &str) -> String {
    let port = server.port;
    let (_, head, _) = honeytrail_testkit::http_full(port, "GET", "/login", &[], "").unwrap();
    let cookie_of = |head: &str, name: &str| {
        head.lines().find_map(|l| {
            l.strip_prefix(&format!("set-cookie: {name}=")).map(|v| v.split(';').next().unwrap().to_string())
        })
    };
    let nonce = cookie_of(&head, "ht_login").unwrap();
    let form = format!("user={user}&password={password}&csrf={nonce}");
    let login_cookie = format!("ht_login={nonce}");
    let (_, head, _) = honeytrail_testkit::http_full(
        port,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", &login_cookie)],
        &form,
    )
    .unwrap();
    let cookie = format!("ht_session={}", cookie_of(&head, "ht_session").expect("signed in"));
    let (_, page) = server.call("GET", "/account", &[("Cookie", &cookie)], "");
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let change = format!("csrf={csrf}&current={password}&new=a+long+new+passphrase&repeat=a+long+new+passphrase");
    let form = [("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", cookie.as_str())];
    let (status, head, _) = honeytrail_testkit::http_full(port, "POST", "/account", &form, &change).unwrap();
    assert_eq!(status, 303, "{head}");
    format!("ht_session={}", cookie_of(&head, "ht_session").expect("a new session"))
}
