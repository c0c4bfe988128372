//! The agent's one connection: the honeytrail server's fleet API, over
//! HTTPS (plain HTTP only to this machine's loopback, for a local TLS proxy
//! and for tests).

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub struct Client {
    http: reqwest::Client,
    base: String,
    credential: Option<String>,
}

/// Whether `host` is this machine's loopback.
fn loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The error and every cause below it, on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

impl Client {
    /// A client for the server at `server` (`https://host[:port]`), trusting
    /// only the CAs in `ca_file` when one is given.
    pub fn new(server: &str, ca_file: Option<&Path>) -> Result<Client> {
        let base = server.trim().trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&base)
            .with_context(|| format!("--server {base:?} is not a URL like https://honeytrail.example.com"))?;
        match url.scheme() {
            "https" => {}
            "http" if url.host_str().is_some_and(loopback) => {}
            "http" => bail!(
                "--server {base}: the key travels over this connection, so it must be https:// (plain http only to this machine's loopback)"
            ),
            other => bail!("--server {base}: {other}:// is not supported; use https://"),
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("agent/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = ca_file {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read --ca-file {}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| anyhow!("--ca-file {}: not PEM certificates: {e}", ca.display()))?;
            if certs.is_empty() {
                bail!("--ca-file {}: holds no certificate", ca.display());
            }
            builder = builder.tls_certs_only(certs);
        }
        let http = builder.build().map_err(|e| anyhow!("cannot set up HTTPS: {}", chain(&e)))?;
        Ok(Client { http, base, credential: None })
    }

    pub fn with_credential(mut self, credential: &str) -> Client {
        self.credential = Some(credential.trim().to_string());
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// POSTs `body` as JSON to `/api/v1{path}` and reads the answer.
    pub async fn post<B: Serialize, R: DeserializeOwned>(&self, path: &str, body: &B) -> Result<R> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut request = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body)?);
        if let Some(c) = &self.credential {
            request = request.bearer_auth(c);
        }
        let response = request.send().await.map_err(|e| {
            let detail = chain(&e);
            let tls = self.base.starts_with("https://")
                && ["certificate", "tls", "handshake", "corrupt message", "invalidcontenttype", "invalidmessage", "alert", "unknownissuer"]
                    .iter()
                    .any(|w| detail.to_lowercase().contains(w));
            if tls {
                anyhow!(
                    "the TLS connection to {} failed: {detail}; if the server has a certificate from an internal CA, pass it with --ca-file",
                    self.base
                )
            } else if e.is_timeout() {
                anyhow!("the server at {} did not answer in time: {detail}", self.base)
            } else {
                anyhow!("cannot reach the server at {}: {detail}; is it running, and is --server right?", self.base)
            }
        })?;
        let status = response.status();
        let bytes =
            response.bytes().await.map_err(|e| anyhow!("reading the answer of {}: {}", self.base, chain(&e)))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
            let message = honeytrail_core::encoding::printable(&message).into_owned();
            bail!("the server refused ({}): {message}", status.as_u16());
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| anyhow!("the server at {} answered something this agent does not understand: {e}", self.base))
    }
}
