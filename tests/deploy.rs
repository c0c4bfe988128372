//! Bait placed by automation in a cloud account: Lambda functions (on
//! moto), with the real `aws` CLI creating the function and reading it back.

use honeytrail_testkit::{aws_cli, Moto};
use serde_json::Value;

mod common;
use common::*;

fn aws(moto: &Moto, args: &[&str]) -> Value {
    let (ok, stdout, stderr) = aws_cli(&moto.endpoint, "testing", "testing", args);
    assert!(ok, "aws {args:?}: {stderr}");
    serde_json::from_str(&stdout).unwrap_or(Value::Null)
}

fn variables(moto: &Moto, function: &str) -> serde_json::Map<String, Value> {
    let c = aws(moto, &["lambda", "get-function-configuration", "--function-name", function]);
    c["Environment"]["Variables"].as_object().cloned().unwrap_or_default()
}

/// A function with variables of its own, as a team would have it.
fn function(moto: &Moto, dir: &std::path::Path, name: &str) -> String {
    let zip = dir.join(format!("{name}.zip"));
    let made = std::process::Command::new("python3")
        .args(["-c", "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1], 'w'); z.writestr('handler.py', 'def run(e, c):\\n    return 1\\n'); z.close()"])
        .arg(&zip)
        .status()
        .unwrap();
    assert!(made.success());
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = aws(
        moto,
        &["iam", "create-role", "--role-name", &format!("{name}-role"), "--assume-role-policy-document", trust],
    );
    let created = aws(
        moto,
        &[
            "lambda",
            "create-function",
            "--function-name",
            name,
            "--runtime",
            "python3.12",
            "--handler",
            "handler.run",
            "--role",
            role["Role"]["Arn"].as_str().unwrap(),
            "--zip-file",
            &format!("fileb://{}", zip.display()),
            "--environment",
            "Variables={DB_HOST=db.internal,API_TOKEN=abc123,LOG_LEVEL=info}",
        ],
    );
    created["FunctionArn"].as_str().unwrap().to_string()
}

#[test]
fn a_lambda_function_gets_a_key_beside_its_own_variables_and_loses_it_again() {
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    let arn = function(&moto, env.dir.path(), "nightly-export");
    let before = variables(&moto, "nightly-export");

    // The wrong account: refused before anything is minted or changed.
    let out = env.run(&["deploy", "lambda", "nightly-export", "--account", "999999999999"]).fails();
    assert!(out.stderr.contains("not 999999999999") && out.stderr.contains("--profile"), "{}", out.stderr);
    assert_eq!(variables(&moto, "nightly-export"), before);
    assert!(env.run(&["token", "list", "--json"]).ok().json().as_array().unwrap().is_empty());
    // A function that does not exist: a clear error, no key minted.
    let out = env.run(&["deploy", "lambda", "no-such-function"]).fails();
    assert!(out.stderr.contains("lambda:GetFunctionConfiguration"), "{}", out.stderr);
    assert!(env.run(&["token", "list", "--json"]).ok().json().as_array().unwrap().is_empty());

    let placed = env.run(&["deploy", "lambda", "nightly-export", "--account", "123456789012", "--json"]).ok().json();
    assert_eq!(placed["function_arn"], arn.as_str());
    assert_eq!(placed["variables"], serde_json::json!(["BACKUP_AWS_ACCESS_KEY_ID", "BACKUP_AWS_SECRET_ACCESS_KEY"]));
    let key = placed["access_key_id"].as_str().unwrap().to_string();
    let after = variables(&moto, "nightly-export");
    for (name, value) in &before {
        assert_eq!(after.get(name), Some(value), "{name} changed");
    }
    assert_eq!(after.len(), before.len() + 2);
    assert_eq!(after["BACKUP_AWS_ACCESS_KEY_ID"], key.as_str());
    // The pair works as a key (whoever reads the function's configuration can use it, and we hear of it).
    let secret = after["BACKUP_AWS_SECRET_ACCESS_KEY"].as_str().unwrap();
    let (ok, who, _) = aws_cli(&moto.endpoint, &key, secret, &["sts", "get-caller-identity"]);
    assert!(ok, "the placed key does not work");
    assert!(!who.contains("nightly-export"), "{who}");

    // The placement: the function's ARN and the variable names; the custody hop says where the secret went.
    let placements = env.run(&["placement", "list", &key, "--json"]).ok().json();
    assert_eq!(placements[0]["host"], arn.as_str());
    assert_eq!(placements[0]["path"], "environment: BACKUP_AWS_ACCESS_KEY_ID, BACKUP_AWS_SECRET_ACCESS_KEY");
    assert_eq!(placements[0]["format"], "lambda-env");
    let hops = env.run(&["custody", "list", &key, "--json"]).ok().json();
    assert_eq!(hops.as_array().unwrap().len(), 2, "{hops}");
    assert!(hops[1]["description"].as_str().unwrap().contains(&format!("Lambda function {arn}")), "{hops}");

    // A second key on the same function takes other names; removing the first leaves the second and the rest.
    let second = env.run(&["deploy", "lambda", &arn, "--json"]).ok().json();
    assert_eq!(second["variables"][0], "EXPORT_AWS_ACCESS_KEY_ID");
    let removed = env.run(&["deploy", "lambda", "nightly-export", "--remove", "--key", &key, "--json"]).ok().json();
    assert_eq!(removed["retired"], true);
    let now = variables(&moto, "nightly-export");
    assert!(!now.contains_key("BACKUP_AWS_ACCESS_KEY_ID") && !now.contains_key("BACKUP_AWS_SECRET_ACCESS_KEY"));
    assert_eq!(now["EXPORT_AWS_ACCESS_KEY_ID"], second["access_key_id"]);
    for (name, value) in &before {
        assert_eq!(now.get(name), Some(value), "{name} changed");
    }
    assert_eq!(env.run(&["token", "show", &key, "--json"]).ok().json()["state"], "retired");
    assert!(env.run(&["placement", "list", &key, "--json"]).ok().json().as_array().unwrap().is_empty());

    // Variables someone changed by hand are not ours to take: nothing is touched.
    let second_key = second["access_key_id"].as_str().unwrap();
    let mut edited: serde_json::Map<String, Value> = now.clone();
    edited.insert("EXPORT_AWS_ACCESS_KEY_ID".into(), "AKIAIOSFODNN7EXAMPLE".into());
    let vars = edited.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap())).collect::<Vec<_>>().join(",");
    aws(
        &moto,
        &[
            "lambda",
            "update-function-configuration",
            "--function-name",
            "nightly-export",
            "--environment",
            &format!("Variables={{{vars}}}"),
        ],
    );
    let out = env.run(&["deploy", "lambda", "nightly-export", "--remove", "--key", second_key]).fails();
    assert!(out.stderr.contains("nothing changed"), "{}", out.stderr);
    assert_eq!(variables(&moto, "nightly-export"), edited);
}

/// A throwaway Dovecot on a loopback port: TLS with a certificate of its
/// own CA, one user with a Maildir, stopped when dropped.
struct Dovecot {
    dir: tempfile::TempDir,
    port: u16,
}

const DOVECOT: &str = "/usr/sbin/dovecot";

impl Dovecot {
    fn start() -> Option<Dovecot> {
        if !std::path::Path::new(DOVECOT).exists() || !rustix_is_root() {
            eprintln!("skipped: needs Dovecot (apt-get install dovecot-imapd) and root; ./scripts/test provides both");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let sh = |script: &str| {
            let out = std::process::Command::new("sh").arg("-c").arg(script).current_dir(d).output().unwrap();
            assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
        };
        sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-mail-ca \
            && openssl req -newkey rsa:2048 -nodes -keyout key.pem -out req.csr -subj /CN=localhost \
            && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\n' > ext.cnf \
            && openssl x509 -req -in req.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 2 -extfile ext.cnf \
            && mkdir -p run state mail && chown 65534:65534 mail && chmod 755 .");
        std::fs::write(d.join("passwd"), "maria@example.com:{PLAIN}s3cret-pass::::::\n").unwrap();
        // Dovecot cannot listen on port 0 (0 disables a listener) and does not
        // take a socket from its parent, so this is the one server started on
        // a port found free: when another process took it meanwhile, Dovecot
        // fails to bind and is started again on another.
        for _attempt in 0..5 {
            let port = honeytrail_testkit::dead_port();
            let p = d.display();
            let conf = format!(
            "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {p}/run\nstate_dir = {p}/state\nlog_path = {p}/dovecot.log\n\
             ssl = required\nssl_cert = <{p}/cert.pem\nssl_key = <{p}/key.pem\nauth_mechanisms = plain\nfirst_valid_uid = 100\n\
             mail_location = maildir:{p}/mail/%u\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {p}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid=65534 gid=65534 home={p}/mail/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    port = 0\n  }}\n  inet_listener imaps {{\n    port = {port}\n    ssl = yes\n  }}\n}}\n\
             namespace inbox {{\n  inbox = yes\n  mailbox Archive {{\n    auto = create\n  }}\n}}\n"
        );
            std::fs::write(d.join("dovecot.conf"), conf).unwrap();
            // Dovecot forks into the background: its output goes to its log, not to a pipe we would wait on.
            let started = std::process::Command::new(DOVECOT)
                .arg("-c")
                .arg(d.join("dovecot.conf"))
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            let said = std::fs::read_to_string(d.join("dovecot.log")).unwrap_or_default();
            if !started.success() && said.contains("Address already in use") {
                continue;
            }
            assert!(started.success(), "dovecot: {said}");
            for _ in 0..300 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(Dovecot { dir, port });
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            break;
        }
        panic!("Dovecot did not listen: {}", std::fs::read_to_string(d.join("dovecot.log")).unwrap_or_default());
    }

    fn ca(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }

    /// The messages in a folder, as files of the Maildir.
    fn messages(&self, folder: &str) -> Vec<String> {
        let base = self.dir.path().join("mail/maria@example.com");
        let dir = if folder == "INBOX" { base } else { base.join(format!(".{folder}")) };
        let mut out = Vec::new();
        for sub in ["cur", "new"] {
            for e in std::fs::read_dir(dir.join(sub)).into_iter().flatten() {
                out.push(std::fs::read_to_string(e.unwrap().path()).unwrap());
            }
        }
        out
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let conf = self.dir.path().join("dovecot.conf");
        // Stopped already is fine.
        std::process::Command::new(DOVECOT)
            .arg("-c")
            .arg(conf)
            .arg("stop")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .ok();
    }
}

fn rustix_is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

#[test]
fn a_mailbox_gets_a_message_with_a_key_and_loses_only_that_message() {
    let Some(dovecot) = Dovecot::start() else { return };
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    let url = format!("imaps://127.0.0.1:{}", dovecot.port);
    let base = ["deploy", "mailbox", "--imap-url", url.as_str(), "--user", "maria@example.com", "--folder", "Archive"];
    let with = |extra: &[&str]| -> Vec<String> { base.iter().chain(extra).map(|s| s.to_string()).collect() };
    let run = |args: &[String], stdin: &str| env.run_stdin(&args.iter().map(String::as_str).collect::<Vec<_>>(), stdin);

    // Failures first, each leaving no key behind: wrong password, untrusted certificate, no such folder.
    let out = run(&with(&["--ca-file", &dovecot.ca()]), "wrong\n").fails();
    assert!(out.stderr.contains("refused the user or password"), "{}", out.stderr);
    assert!(!out.stderr.contains("wrong"), "the password is echoed: {}", out.stderr);
    let out = run(&with(&[]), "s3cret-pass\n").fails();
    assert!(out.stderr.contains("TLS") && out.stderr.contains("--ca-file"), "{}", out.stderr);
    let mut no_folder = with(&["--ca-file", &dovecot.ca()]);
    no_folder[7] = "Nowhere".into();
    let out = run(&no_folder, "s3cret-pass\n").fails();
    assert!(out.stderr.contains("no folder \"Nowhere\""), "{}", out.stderr);
    let active = env.run(&["token", "list", "--json"]).ok().json();
    assert!(active.as_array().unwrap().is_empty(), "a key is left active: {active}");
    let all = env.run(&["token", "list", "--state", "all", "--json"]).ok().json();
    assert_eq!(all.as_array().unwrap().len(), 1, "the key minted for the folder that is not there: {all}");

    // A message of the mailbox's own, which must survive.
    let keep = "From: Ops <ops@example.com>\r\nTo: <maria@example.com>\r\nSubject: rota\r\nMessage-ID: <rota-1@example.com>\r\n\r\nSee you Monday.\r\n";
    let placed = run(&with(&["--ca-file", &dovecot.ca(), "--json"]), "s3cret-pass\n").ok().json();
    let key = placed["access_key_id"].as_str().unwrap().to_string();
    let message_id = placed["message_id"].as_str().unwrap().to_string();
    let in_folder = dovecot.messages("Archive");
    assert_eq!(in_folder.len(), 1, "{in_folder:?}");
    // Dovecot keeps Maildir files with LF line endings.
    let m = &in_folder[0].replace("\r\n", "\n");
    for header in ["From: ", "To: <maria@example.com>", "Subject: Re: ", "Date: ", "In-Reply-To: <", "References: <"] {
        assert!(m.contains(&format!("\n{header}")) || m.starts_with(header), "no {header}: {m}");
    }
    assert!(
        m.contains(&format!("Message-ID: {message_id}")) && m.contains(&format!("aws_access_key_id = {key}")),
        "{m}"
    );
    assert!(message_id.ends_with("@example.com>"), "{message_id}");
    let lower = m.to_lowercase();
    assert!(!lower.contains("honey") && !lower.contains("canar") && !lower.contains("bait"), "{m}");

    let placements = env.run(&["placement", "list", &key, "--json"]).ok().json();
    assert_eq!(placements[0]["host"], format!("{url} mailbox maria@example.com"));
    assert_eq!(placements[0]["path"], format!("{message_id} in Archive"));
    assert_eq!(placements[0]["format"], "imap-message");
    let hops = env.run(&["custody", "list", &key, "--json"]).ok().json();
    assert_eq!(hops.as_array().unwrap().len(), 2, "{hops}");

    // Put the mailbox's own message beside ours, then remove: only ours goes, the key is retired.
    let own = dovecot.dir.path().join("mail/maria@example.com/.Archive/new/1700000000.M1P1.test");
    std::fs::write(&own, keep).unwrap();
    std::process::Command::new("chown").args(["65534:65534", own.to_str().unwrap()]).status().unwrap();
    let removed = run(&with(&["--ca-file", &dovecot.ca(), "--remove", "--json"]), "s3cret-pass\n").ok().json();
    assert_eq!(removed["message_id"], message_id.as_str());
    assert_eq!(removed["retired"], true);
    let left = dovecot.messages("Archive");
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].contains("Message-ID: <rota-1@example.com>"));
    assert_eq!(env.run(&["token", "show", &key, "--json"]).ok().json()["state"], "retired");
}

/// The same over the API: the CA as PEM text in the body, a responder's
/// token; a viewer is refused, a metadata address is never connected to,
/// the password never comes back.
#[test]
fn a_mailbox_is_placed_and_cleared_over_the_api() {
    let Some(dovecot) = Dovecot::start() else { return };
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    add_user(&env, "rob", "responder");
    add_user(&env, "vera", "viewer");
    let token = |user: &str| env.run(&["user", "token", user, "--for", "tests"]).ok().stdout.trim().to_string();
    let (rob, vera) = (token("rob"), token("vera"));
    let server = Server::start(&env, &[]);
    let ca = std::fs::read_to_string(dovecot.ca()).unwrap();
    let url = format!("imaps://127.0.0.1:{}", dovecot.port);
    let call = |bearer: &str, body: &Value| {
        let auth = format!("Bearer {bearer}");
        let (status, text) = server.call(
            "POST",
            "/api/v1/deploy/mailbox",
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            &body.to_string(),
        );
        (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)))
    };
    let body = serde_json::json!({"imap_url": url, "user": "maria@example.com", "password": "s3cret-pass",
        "folder": "Archive", "ca_pem": ca});

    let (status, answer) = call(&vera, &body);
    assert_eq!(status, 403, "{answer}");
    let metadata =
        serde_json::json!({"imap_url": "imaps://169.254.169.254:993", "user": "u", "password": "p", "folder": "INBOX"});
    let (status, answer) = call(&rob, &metadata);
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("metadata"), "{answer}");
    let wrong = serde_json::json!({"imap_url": url, "user": "maria@example.com", "password": "not-it",
        "folder": "Archive", "ca_pem": ca});
    let (status, answer) = call(&rob, &wrong);
    assert!(status >= 400 && !answer.to_string().contains("not-it"), "{status} {answer}");

    let (status, placed) = call(&rob, &body);
    assert_eq!(status, 201, "{placed}");
    assert!(!placed.to_string().contains("s3cret-pass"), "{placed}");
    let key = placed["access_key_id"].as_str().unwrap().to_string();
    let in_folder = dovecot.messages("Archive");
    assert_eq!(in_folder.len(), 1);
    assert!(in_folder[0].contains(&format!("aws_access_key_id = {key}")));

    let mut remove = body.clone();
    remove["remove"] = true.into();
    let (status, removed) = call(&rob, &remove);
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["retired"], true);
    assert!(dovecot.messages("Archive").is_empty());
    let audit = env.run(&["audit", "list", "--json"]).ok().stdout;
    assert!(audit.contains("deploy.mailbox") && !audit.contains("s3cret-pass"), "{audit}");
}

/// The shipped systemd units pass `systemd-analyze verify`, and the
/// server's sandbox scores as "OK" in `systemd-analyze security` (the agent
/// writes into users' homes as root, so it cannot be sandboxed as tightly).
#[test]
fn the_shipped_systemd_units_verify_and_the_server_unit_is_sandboxed() {
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_honeytrail");
    let root = env!("CARGO_MANIFEST_DIR");
    for (unit, installed) in [
        ("honeytrail.service", "/usr/local/bin/honeytrail"),
        ("honeytrail-agent.service", "/usr/local/sbin/host-inventory"),
    ] {
        let text = std::fs::read_to_string(format!("{root}/packaging/systemd/{unit}")).unwrap();
        assert!(text.contains(&format!("ExecStart={installed} ")), "{unit}: {text}");
        // verify checks that the program exists: point it at this build.
        let copy = dir.path().join(unit);
        std::fs::write(&copy, text.replace(&format!("ExecStart={installed}"), &format!("ExecStart={binary}"))).unwrap();
        let out = std::process::Command::new("systemd-analyze")
            .args(["verify", copy.to_str().unwrap()])
            .output()
            .unwrap_or_else(|e| panic!("systemd-analyze (Debian package systemd; ./scripts/test installs it): {e}"));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && said.trim().is_empty(), "{unit}: {said}");
    }
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true", dir.path().join("honeytrail.service").to_str().unwrap()])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let score: f64 = report
        .lines()
        .find_map(|l| l.split("Overall exposure level for honeytrail.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {report}"));
    assert!(score <= 2.0, "the server unit's exposure is {score}: {report}");
}

/// The container image: built by scripts/build-image with buildah (no
/// engine, no base image), it holds the binary, its libraries, CA
/// certificates and a non-root user, and `serve` runs from it: /healthz and
/// the sign-in page answer.
#[test]
fn the_container_image_builds_without_an_engine_and_serves() {
    let root = env!("CARGO_MANIFEST_DIR");
    let tag = format!("localhost/honeytrail-test-{}:latest", std::process::id());
    let vfs = ["--storage-driver", "vfs"];
    let built = std::process::Command::new(format!("{root}/scripts/build-image"))
        .arg(&tag)
        .env("HONEYTRAIL_BINARY", env!("CARGO_BIN_EXE_honeytrail"))
        .output()
        .unwrap();
    assert!(built.status.success(), "scripts/build-image: {}", String::from_utf8_lossy(&built.stderr));
    let buildah = |args: &[&str]| {
        let out = std::process::Command::new("buildah").args(vfs).args(args).output().unwrap();
        assert!(out.status.success(), "buildah {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let config: Value = serde_json::from_str(&buildah(&["inspect", "--type", "image", &tag])).unwrap();
    let oci = &config["OCIv1"]["config"];
    assert_eq!(oci["User"], "10001:10001", "{oci}");
    assert_eq!(oci["Entrypoint"][0], "/usr/local/bin/honeytrail");
    let container = buildah(&["from", &tag]);
    let mount = buildah(&["mount", &container]);
    let has = |p: &str| std::path::Path::new(&mount).join(p.trim_start_matches('/')).exists();
    assert!(has("/usr/local/bin/honeytrail") && has("/etc/ssl/certs/ca-certificates.crt") && has("/etc/passwd"));
    assert!(!has("/bin/sh") && !has("/usr/bin/env"), "no shell in the image");
    buildah(&["umount", &container]);

    let mut run = std::process::Command::new("buildah");
    run.args(vfs).args([
        "run",
        "--isolation",
        "chroot",
        "--env",
        "HONEYTRAIL_SERVE_LISTEN=127.0.0.1:0",
        &container,
        "--",
    ]);
    run.args(["/usr/local/bin/honeytrail", "serve"]);
    // Killing buildah alone leaves the server it started running in the
    // chroot (its parent is gone, it is not): buildah, its chroot helper and
    // the server share a process group of their own, killed whole at the end,
    // and on a failed assertion too.
    std::os::unix::process::CommandExt::process_group(&mut run, 0);
    let (mut child, port) =
        honeytrail_testkit::spawn_reporting_port(&mut run, honeytrail_testkit::Stream::Stderr, |l| {
            l.strip_prefix("honeytrail is serving on ").and_then(honeytrail_testkit::loopback_port_in)
        })
        .unwrap_or_else(|said| panic!("serve did not start in the image: {said}"));
    struct KillGroup(i32);
    impl Drop for KillGroup {
        fn drop(&mut self) {
            // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
            unsafe { libc::kill(-self.0, libc::SIGKILL) };
        }
    }
    let group = KillGroup(child.id() as i32);
    eventually("the image's server to answer", || {
        matches!(honeytrail_testkit::http(port, "GET", "/healthz", &[], ""), Ok((200, _)))
    });
    let (status, page) = honeytrail_testkit::http(port, "GET", "/login", &[], "").unwrap();
    assert!(status == 200 && page.contains("Sign in"), "{status}: {page}");
    drop(group);
    child.wait().ok(); // already gone is fine
    eventually("the image's server to be gone with its process group", || {
        honeytrail_testkit::http(port, "GET", "/healthz", &[], "").is_err()
    });
    buildah(&["rm", &container]);
    buildah(&["rmi", &tag]);
}

/// The Prometheus rules name only metrics a server exports, and the rules
/// and the compose file are YAML (checked with PyYAML, which the aws CLI the
/// tests install brings; compose itself is not run: no engine here).
#[test]
fn the_prometheus_rules_name_real_metrics_and_the_shipped_yaml_parses() {
    let root = env!("CARGO_MANIFEST_DIR");
    for file in ["compose.yaml", "packaging/prometheus/honeytrail-alerts.yml"] {
        let out = std::process::Command::new("python3")
            .args(["-c", "import sys, yaml; yaml.safe_load(open(sys.argv[1]))", &format!("{root}/{file}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let rules = std::fs::read_to_string(format!("{root}/packaging/prometheus/honeytrail-alerts.yml")).unwrap();
    let env = Env::new();
    env.run(&["enrol", "create", "--uses", "1"]).ok(); // so the fleet metrics are there
    let server = Server::start(&env, &[]);
    let metrics = server.metrics();
    let named: std::collections::BTreeSet<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("honeytrail_"))
        .collect();
    assert!(named.len() >= 5, "{named:?}");
    for metric in named {
        assert!(metrics.contains(&format!("# TYPE {metric} ")), "{metric} is not exported:\n{metrics}");
    }
}

/// The canary account as CloudFormation (`packaging/cloudformation/
/// canary-account.yaml`), deployed as a StackSet would: one stack in the home
/// region, one in another. moto's CloudFormation skips four of its resource
/// types and the bucket's notification property; `honeytrail aws verify`
/// passes every item built from the rest, and `aws bootstrap` completes what
/// moto skipped under the same names, after which every item passes.
#[test]
fn the_canary_account_template_makes_what_bootstrap_makes() {
    let moto = Moto::start();
    let template = format!("file://{}/packaging/cloudformation/canary-account.yaml", env!("CARGO_MANIFEST_DIR"));
    for region in ["us-east-1", "eu-west-1"] {
        let (ok, _, err) = aws_cli(
            &moto.endpoint,
            "testing",
            "testing",
            &["--region", region, "cloudformation", "create-stack", "--stack-name", "honeytrail-canary"]
                .into_iter()
                .chain(["--template-body", template.as_str(), "--capabilities", "CAPABILITY_NAMED_IAM"])
                .collect::<Vec<_>>(),
        );
        assert!(ok, "{region}: {err}");
        let (_, out, _) = aws_cli(
            &moto.endpoint,
            "testing",
            "testing",
            &["--region", region, "cloudformation", "describe-stacks", "--stack-name", "honeytrail-canary"],
        );
        assert!(out.contains("CREATE_COMPLETE"), "{region}: {out}");
    }
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    let verify = || {
        let out = env.run(&["aws", "verify", "--regions", "us-east-1,eu-west-1"]);
        let mut items = std::collections::BTreeMap::new();
        for line in out.stdout.lines().filter(|l| !l.starts_with(' ')) {
            if let Some((item, status)) = line.split_once("  ") {
                items.insert(item.trim().to_string(), status.trim().to_string());
            }
        }
        (items, out.stdout)
    };
    // What moto's CloudFormation cannot make, and the items that need it.
    let skipped_by_moto = [
        ("bucket policy", "AWS::S3::BucketPolicy"),
        ("notifications queue", "AWS::SQS::QueuePolicy"),
        ("events queue", "AWS::SQS::QueuePolicy"),
        ("bucket notification", "AWS::S3::Bucket NotificationConfiguration"),
        ("trail", "AWS::CloudTrail::Trail"),
        ("trail settings", "AWS::CloudTrail::Trail"),
        ("event selectors", "AWS::CloudTrail::Trail"),
        ("trail logging", "AWS::CloudTrail::Trail"),
        ("deny-all guard", "AWS::IAM::Group"),
        // moto keeps a role's inline policy from a template as a Python repr
        // (single quotes), which no JSON reader takes; AWS keeps the JSON.
        ("session role", "AWS::IAM::Role Policies as JSON"),
    ];
    let (items, said) = verify();
    assert_eq!(items.len(), 17, "{said}");
    for (item, status) in &items {
        match skipped_by_moto.iter().find(|(i, _)| i == item) {
            Some((_, because)) => eprintln!("judged without {item}: moto's CloudFormation does not make {because}"),
            None => assert_eq!(status, "ok", "{item} from the template: {said}"),
        }
    }
    // Bootstrap fills in what moto skipped, under the template's names; the
    // honey role's policy, which bootstrap never overwrites (a role that is
    // not plainly deny-all may be somebody's), is put back as the JSON AWS
    // would have kept.
    let (ok, _, err) = aws_cli(
        env.moto.as_deref().unwrap(),
        "testing",
        "testing",
        &[
            "iam",
            "put-role-policy",
            "--role-name",
            "app-instance-role",
            "--policy-name",
            "default",
            "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#,
        ],
    );
    assert!(ok, "{err}");
    env.run(&["aws", "bootstrap", "--regions", "us-east-1,eu-west-1"]).ok();
    let (items, said) = verify();
    assert!(items.values().all(|s| s == "ok"), "{said}");
}
