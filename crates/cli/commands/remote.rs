//! Talking to a running `honeytrail serve` instead of a local store:
//! `honeytrail --server URL --token htk_… incident list` and friends. The
//! token comes from `--token` or, better (no shell history), `HONEYTRAIL_TOKEN`.

use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;

use serde_json::Value;

/// A client of the REST API.
pub struct Remote {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Remote {
    /// A client of the server at `server`, trusting only the CAs in `ca_file`
    /// when one is given. The API token travels with every request, so plain
    /// http is accepted for this machine's loopback only.
    pub fn new(server: &str, token: Option<&str>, ca_file: Option<&Path>) -> Result<Remote> {
        let server = server.trim().trim_end_matches('/');
        let url = reqwest::Url::parse(server)
            .map_err(|_| anyhow!("--server {server:?} must be an http(s) URL like https://honeytrail.example.com"))?;
        match url.scheme() {
            "https" => {}
            "http" if url.host_str().is_some_and(is_loopback) => {}
            "http" => bail!(
                "--server {server}: the API token travels over this connection, so it must be https:// (plain http only to this machine's loopback)"
            ),
            _ => bail!("--server {server:?} must be an http(s) URL like https://honeytrail.example.com"),
        }
        let token = token
            .map(str::to_string)
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| anyhow!("--server needs an API token: set HONEYTRAIL_TOKEN (or pass --token); create one on the server's API tokens page or with `honeytrail user token`"))?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(60));
        if let Some(path) = ca_file {
            builder = builder.tls_certs_only(trusted_cas(path)?);
        }
        let client = builder.build().context("cannot build the HTTP client")?;
        Ok(Remote { base: format!("{server}/api/v1"), token: token.trim().to_string(), client })
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<reqwest::Response> {
        let mut request = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(b.to_string());
        }
        let response = request.send().await.map_err(|e| {
            let detail = error_chain(&e);
            if self.base.starts_with("https://") && looks_like_tls(&detail) {
                return anyhow!(
                    "the TLS connection to {} failed: {detail}; if the server's certificate comes from an internal CA, pass that CA with --ca-file (or HONEYTRAIL_CA_FILE)",
                    self.base
                );
            }
            let kind = if e.is_connect() {
                "cannot connect"
            } else if e.is_timeout() {
                "timed out"
            } else {
                "request failed"
            };
            anyhow!("{kind}: {} (is `honeytrail serve` running there?)", self.base)
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or(text);
        bail!("the server answered {}: {message}", status.as_u16())
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        parse(self.send(reqwest::Method::GET, path, None).await?).await
    }

    /// Every page of a paged list: follows `X-Next-Cursor` to the end.
    pub async fn get_all(&self, path: &str) -> Result<Vec<Value>> {
        self.get_up_to(path, usize::MAX).await
    }

    /// The first `max` items of a paged list, following `X-Next-Cursor`.
    pub async fn get_up_to(&self, path: &str, max: usize) -> Result<Vec<Value>> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        while items.len() < max {
            let limit = (max - items.len()).min(1000);
            let url = match &cursor {
                Some(c) => format!("{path}{sep}limit={limit}&cursor={}", q(c)),
                None => format!("{path}{sep}limit={limit}"),
            };
            let response = self.send(reqwest::Method::GET, &url, None).await?;
            let next = response.headers().get("x-next-cursor").and_then(|v| v.to_str().ok()).map(str::to_string);
            match parse(response).await? {
                Value::Array(page) => items.extend(page),
                other => bail!("the server answered a list with {other}"),
            }
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        Ok(items)
    }

    pub async fn get_text(&self, path: &str) -> Result<String> {
        Ok(self.send(reqwest::Method::GET, path, None).await?.text().await?)
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        parse(self.send(reqwest::Method::POST, path, Some(body)).await?).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value> {
        parse(self.send(reqwest::Method::DELETE, path, None).await?).await
    }
}

/// Percent-encodes a query value.
pub fn q(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A string field of a JSON value, or "".
pub fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

async fn parse(response: reqwest::Response) -> Result<Value> {
    let text = response.text().await.context("the server's answer was cut off")?;
    serde_json::from_str(&text).context("the server's answer is not JSON; is --server the honeytrail address?")
}

/// The certificates of a `--ca-file`, refused when it holds none.
fn trusted_cas(path: &Path) -> Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read --ca-file {}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| anyhow!("--ca-file {}: not PEM certificates ({e})", path.display()))?;
    if certs.is_empty() {
        bail!("--ca-file {}: holds no PEM certificate", path.display());
    }
    Ok(certs)
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Every cause of `e`, outermost first: reqwest's own message alone
/// ("error sending request") never says that the certificate was the problem.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn looks_like_tls(detail: &str) -> bool {
    let detail = detail.to_lowercase();
    ["certificate", "unknownissuer", "handshake", "tls", "invalidcontenttype"].iter().any(|w| detail.contains(w))
}
