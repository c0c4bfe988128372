//! The EC2 instance metadata service (IMDSv2): the instance identity
//! document and its signature, which prove to the server that this host is
//! the EC2 instance it says it is (for enrolment secrets bound to EC2).

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use honeytrail_core::fleet::{Ec2Identity, MAX_IDENTITY_DOCUMENT};

/// Where the metadata service answers on every EC2 instance.
pub const DEFAULT_URL: &str = "http://169.254.169.254";

/// Reads the identity document and its signature, with a session token
/// (IMDSv2, which instances may require; IMDSv1 is not used).
pub async fn identity(base: &str) -> Result<Ec2Identity> {
    let base = base.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(base).with_context(|| format!("--imds-url {base:?} is not a URL"))?;
    if url.scheme() != "http" {
        bail!("--imds-url {base}: the metadata service speaks plain http:// on the instance's link-local address");
    }
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| anyhow!("cannot set up a client for the metadata service: {e}"))?;
    let unreachable = |e: reqwest::Error| {
        anyhow!(
            "the EC2 metadata service at {base} did not answer ({e}): --ec2-identity works only on an EC2 instance \
             with the metadata service enabled (and a hop limit of 2 or more inside a container)"
        )
    };
    let token = http
        .put(format!("{base}/latest/api/token"))
        .header("X-aws-ec2-metadata-token-ttl-seconds", "300")
        .send()
        .await
        .map_err(unreachable)?;
    let token = bounded_text(token, "a session token").await?;
    let get = |path: &'static str| {
        let (http, token) = (&http, &token);
        async move {
            let answer = http
                .get(format!("{base}{path}"))
                .header("X-aws-ec2-metadata-token", token.trim())
                .send()
                .await
                .map_err(unreachable)?;
            bounded_text(answer, path).await
        }
    };
    let document = get("/latest/dynamic/instance-identity/document").await?;
    let signature = get("/latest/dynamic/instance-identity/signature").await?;
    let identity = Ec2Identity { document, signature: signature.trim().to_string() };
    identity.check().map_err(|e| anyhow!("the metadata service answered something else than an identity: {}", e.0))?;
    Ok(identity)
}

/// The answer's text, refused when it is an error or too long.
async fn bounded_text(answer: reqwest::Response, what: &str) -> Result<String> {
    let status = answer.status();
    if !status.is_success() {
        bail!("the EC2 metadata service refused {what} ({})", status.as_u16());
    }
    let bytes = answer.bytes().await.map_err(|e| anyhow!("reading {what} from the metadata service: {e}"))?;
    if bytes.len() > MAX_IDENTITY_DOCUMENT {
        bail!("the metadata service sent {} bytes for {what}; an identity is far shorter", bytes.len());
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| anyhow!("the metadata service sent {what} that is not text"))
}
