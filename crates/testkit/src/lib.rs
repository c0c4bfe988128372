//! Test support: real services, one per test.
//!
//! - [`Moto`] starts moto's server (`moto_server`) on a loopback port and
//!   stops it when dropped, so AWS tests run against a real IAM/STS API.
//! - [`postgres_database`] creates a fresh PostgreSQL database for one test on
//!   the server named by `HONEYTRAIL_TEST_POSTGRES` (`./scripts/test` starts
//!   one and sets it).
//! - [`PrivatePostgres`] runs a PostgreSQL server of one test's own, which
//!   the test may stop and start (database outages).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use sqlx::Executor;

/// A loopback port nothing listens on at this moment, for testing what an
/// unreachable endpoint does. Never start a server on it: a port found free
/// and bound later can be taken by a parallel test in between. Servers are
/// started on port 0 and report the port the system chose
/// ([`spawn_reporting_port`], [`listening_ports`]).
pub fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind a loopback port").local_addr().unwrap().port()
}

/// Spawns `cmd` (told to listen on port 0) with its `stream` (stdout or
/// stderr) piped, reads lines until `port_of` finds the port it says it
/// bound, and keeps draining the stream afterwards so a full pipe never
/// stops the child. `Err` holds what it said when it ended or went quiet
/// without naming a port.
pub fn spawn_reporting_port(
    cmd: &mut Command,
    stream: Stream,
    port_of: impl Fn(&str) -> Option<u16>,
) -> Result<(Child, u16), String> {
    use std::io::BufRead;
    match stream {
        Stream::Stdout => cmd.stdout(Stdio::piped()),
        Stream::Stderr => cmd.stderr(Stdio::piped()),
    };
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let out: Box<dyn Read + Send> = match stream {
        Stream::Stdout => Box::new(child.stdout.take().expect("piped")),
        Stream::Stderr => Box::new(child.stderr.take().expect("piped")),
    };
    let mut lines = std::io::BufReader::new(out).lines();
    let mut said = Vec::new();
    loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(port) = port_of(&line) {
                    std::thread::spawn(move || lines.for_each(drop));
                    return Ok((child, port));
                }
                said.push(line);
            }
            _ => {
                child.kill().ok(); // ended already is fine
                child.wait().ok(); // reaped is fine
                return Err(said.join("\n"));
            }
        }
    }
}

/// A loopback port held for a server that is down now and comes up later
/// on the same port: the socket is bound but not listening, so connections
/// are refused (the server is down) and no parallel test can take the port.
pub struct HeldPort {
    socket: socket2::Socket,
    pub port: u16,
}

impl HeldPort {
    pub fn new() -> HeldPort {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
        socket.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into()).expect("bind a loopback port");
        let port = socket.local_addr().unwrap().as_socket().unwrap().port();
        HeldPort { socket, port }
    }

    /// The server comes up: the same socket starts listening.
    pub fn listen(self) -> TcpListener {
        self.socket.listen(128).expect("listen on the held port");
        self.socket.into()
    }
}

impl Default for HeldPort {
    fn default() -> Self {
        HeldPort::new()
    }
}

/// Which output of a child names its port.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// The port at the end of the first `http://127.0.0.1:PORT` in `line`.
pub fn loopback_port_in(line: &str) -> Option<u16> {
    let rest = &line[line.find("://127.0.0.1:")? + "://127.0.0.1:".len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The TCP ports process `pid` listens on, from `/proc` (its socket inodes
/// matched against the kernel's listening sockets): for a server told to
/// listen on port 0 that does not say which port it got.
pub fn listening_ports(pid: u32) -> Vec<u16> {
    let mut inodes = std::collections::HashSet::new();
    if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let target = target.to_string_lossy().into_owned();
                if let Some(inode) = target.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']')) {
                    inodes.insert(inode.to_string());
                }
            }
        }
    }
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table).unwrap_or_default().lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local address, remote, state (0A: LISTEN), …, inode in column 9.
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                if let Some(port) = f[1].rsplit(':').next().and_then(|h| u16::from_str_radix(h, 16).ok()) {
                    ports.push(port);
                }
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// A moto server for one test.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    port: u16,
}

impl Moto {
    pub fn start() -> Moto {
        let bin = std::env::var("HONEYTRAIL_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        // Port 0: the system picks a free port and moto says which (" * Running
        // on http://127.0.0.1:PORT"); no port is guessed and bound later.
        let mut cmd = Command::new(&bin);
        cmd.args(["-H", "127.0.0.1", "-p", "0"]).stdout(Stdio::null());
        let (child, port) = spawn_reporting_port(&mut cmd, Stream::Stderr, loopback_port_in).unwrap_or_else(|said| {
            panic!("{bin} did not start: {said}; install it with `pip install 'moto[server]'` or run ./scripts/test")
        });
        let mut moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}"), port };
        if moto.wait_ready(Duration::from_secs(60)) {
            return moto;
        }
        moto.child.kill().ok(); // already gone is fine
        panic!("moto_server on port {port} did not answer within 60 s");
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok((200, _)) = self.request("GET", "/moto-api/data.json", "", "") {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Sends one HTTP/1.1 request to the server and returns status and body.
    pub fn request(&self, method: &str, path: &str, content_type: &str, body: &str) -> std::io::Result<(u16, String)> {
        http(self.port, method, path, &[("Content-Type", content_type)], body)
    }

    /// Lets the next `n` calls through unauthenticated, then enforces IAM
    /// policies on every call (moto's `reset-auth`).
    pub fn enforce_iam_after(&self, n: u32) {
        let (status, body) =
            self.request("POST", "/moto-api/reset-auth", "text/plain", &n.to_string()).expect("reset-auth");
        assert_eq!(status, 200, "reset-auth failed: {body}");
    }
}

/// Sends one HTTP/1.1 request to 127.0.0.1:`port` and returns status and body.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    http_full(port, method, path, headers, body).map(|(status, _, body)| (status, body))
}

/// Like [`http`], also returning the response head (status line and headers).
pub fn http_full(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    // One write of the whole request: written piecemeal, a body could arrive
    // after the server has answered (a refusal, a GET that reads no body) and
    // closed, and a close with unread data is a reset that can discard the
    // answer before it is read (seen as status 0 on a loaded machine).
    head.push_str("\r\n");
    head.push_str(body);
    stream.write_all(head.as_bytes())?;
    // Read the head, then exactly the body (Content-Length or chunked), so a
    // server that keeps the connection open does not leave us waiting.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break raw.len();
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head_text = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let lower = head_text.to_ascii_lowercase();
    let length =
        lower.lines().find_map(|l| l.strip_prefix("content-length:").and_then(|v| v.trim().parse::<usize>().ok()));
    let chunked = lower.contains("transfer-encoding: chunked");
    loop {
        let have = raw.len() - head_end;
        let done = match length {
            Some(n) => have >= n,
            None if chunked => raw[head_end..].ends_with(b"0\r\n\r\n"),
            None => false,
        };
        if done {
            break;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let mut body_bytes = raw[head_end..].to_vec();
    if chunked && length.is_none() {
        let mut out = Vec::new();
        let mut rest = &body_bytes[..];
        while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..i]).trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            let start = i + 2;
            out.extend_from_slice(&rest[start..(start + size).min(rest.len())]);
            rest = &rest[(start + size + 2).min(rest.len())..];
        }
        body_bytes = out;
    }
    let response = head_text;
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let head = response.trim_end_matches("\r\n\r\n");
    let body = String::from_utf8_lossy(&body_bytes).to_string();
    Ok((status, head.to_string(), body.to_string()))
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.child.kill().ok(); // already gone is fine
        self.child.wait().ok(); // already gone is fine
    }
}

/// The admin URL of the test PostgreSQL server.
pub fn postgres_admin_url() -> String {
    std::env::var("HONEYTRAIL_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!("HONEYTRAIL_TEST_POSTGRES is not set: every store test also runs on PostgreSQL. Run ./scripts/test, which starts PostgreSQL and sets it, or set it to postgres://USER:PASSWORD@127.0.0.1:5432/postgres for a role with CREATEDB")
    })
}

/// Creates an empty database for one test and returns its URL.
pub async fn postgres_database() -> String {
    sqlx::any::install_default_drivers();
    let admin = postgres_admin_url();
    let name = format!("ht_test_{}_{:08x}", std::process::id(), rand::thread_rng().gen::<u32>());
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL at HONEYTRAIL_TEST_POSTGRES: {e}"));
    conn.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create test database");
    let base = admin.rsplit_once('/').map(|(b, _)| b).expect("admin URL ends in /DATABASE");
    format!("{base}/{name}")
}

/// A fresh SQLite database file in a temporary directory (kept alive by the guard).
pub fn sqlite_database() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/honeytrail.sqlite", dir.path().display());
    (dir, url)
}

/// Runs the `aws` CLI against `endpoint` with the given key pair, as an
/// operator or an intruder would, and returns (success, stdout, stderr).
pub fn aws_cli(endpoint: &str, key_id: &str, secret: &str, args: &[&str]) -> (bool, String, String) {
    aws_cli_session(endpoint, (key_id, secret, None), args)
}

/// [`aws_cli`] with temporary credentials: key ID, secret and, for an
/// assumed role's, the session token.
pub fn aws_cli_session(endpoint: &str, creds: (&str, &str, Option<&str>), args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(std::env::var("HONEYTRAIL_AWS_CLI").unwrap_or_else(|_| "aws".into()));
    cmd.args(["--endpoint-url", endpoint, "--region", "us-east-1", "--output", "json"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", creds.0)
        .env("AWS_SECRET_ACCESS_KEY", creds.1)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    if let Some(token) = creds.2 {
        cmd.env("AWS_SESSION_TOKEN", token);
    }
    let out =
        cmd.output().unwrap_or_else(|e| panic!("cannot run the aws CLI: {e}; install it with `pip install awscli`"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A PostgreSQL server of one test's own: a fresh cluster in a temporary
/// directory, listening on a Unix socket there and on no TCP port, run as
/// the `postgres` user (tests run as root in CI). The test may stop and
/// start it; it is stopped when dropped.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    /// The database URL (`postgres://postgres@localhost/postgres?host=…`).
    pub url: String,
}

impl PrivatePostgres {
    /// Where PostgreSQL's programs are: `HONEYTRAIL_PG_BIN`, else the
    /// newest `/usr/lib/postgresql/*/bin`.
    fn bin(program: &str) -> std::path::PathBuf {
        if let Ok(dir) = std::env::var("HONEYTRAIL_PG_BIN") {
            return std::path::Path::new(&dir).join(program);
        }
        let mut versions: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).collect())
            .unwrap_or_default();
        versions.sort();
        versions
            .pop()
            .unwrap_or_else(|| panic!("no PostgreSQL under /usr/lib/postgresql: apt-get install postgresql"))
            .join(program)
    }

    fn as_postgres(&self, program: &str, args: &[&str]) {
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(Self::bin(program))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program} as postgres: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Makes the cluster and starts it.
    pub fn start() -> PrivatePostgres {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let socket = dir.path().join("socket");
        std::fs::create_dir(&socket).unwrap();
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
        let url = format!("postgres://postgres@localhost/postgres?host={}", socket.display());
        let pg = PrivatePostgres { dir, url };
        pg.as_postgres("initdb", &["-D", &pg.data(), "-A", "trust", "-U", "postgres", "--no-sync"]);
        pg.resume();
        pg
    }

    /// Stops the server (fast: sessions are ended, as when a database
    /// host is restarted), and waits until it has stopped.
    pub fn stop(&self) {
        self.as_postgres("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// Starts the server and waits until it accepts connections.
    pub fn resume(&self) {
        let socket = self.dir.path().join("socket").display().to_string();
        let options = format!("-k {socket} -c listen_addresses='' -c fsync=off");
        let log = self.dir.path().join("log").display().to_string();
        self.as_postgres("pg_ctl", &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"]);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Already stopped is fine; the directory goes with the TempDir.
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(Self::bin("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "-w", "stop"])
            .output()
            .ok();
    }
}
