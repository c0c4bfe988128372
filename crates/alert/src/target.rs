//! Where alerts may go: the one policy every outbound channel applies.
//!
//! An administrator's channel URL is checked with the parser the HTTP client
//! itself uses (the WHATWG URL standard, via `reqwest::Url`), so what is
//! checked is what is connected to: `http://127.0.0.1:9\@allowed.example/`
//! is a request to 127.0.0.1, and is judged as one. Addresses are
//! canonicalised before they are judged (IPv4-mapped, IPv4-compatible, NAT64
//! and 6to4 IPv6 addresses carry an IPv4 address), and names are resolved
//! by [`GuardedResolver`] at connection time, so a name that resolves to an
//! allowed address when checked and to the metadata service when connected
//! (DNS rebinding) still never reaches it. Syslog and SMTP targets go
//! through the same checks ([`resolve`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::retry::{Failure, Retry};

fn never(message: String) -> Failure {
    Failure { message, retry: Retry::Never }
}

/// The IPv4 address an IPv6 address carries, or the address itself.
pub fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    // NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48).
    if (s[0], s[1], s[2], s[3], s[4], s[5]) == (0x64, 0xff9b, 0, 0, 0, 0) || (s[0], s[1], s[2]) == (0x64, 0xff9b, 1) {
        return IpAddr::V4(low);
    }
    // IPv4-compatible (deprecated, ::a.b.c.d), but not :: and ::1.
    if s[..6].iter().all(|&x| x == 0) && s[6] != 0 {
        return IpAddr::V4(low);
    }
    // 6to4: 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
    if s[0] == 0x2002 {
        return IpAddr::V4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
    }
    ip
}

/// Addresses no alert may go to: link-local (where every cloud keeps its
/// instance metadata service), the unspecified and broadcast addresses, and
/// the metadata addresses outside link-local (AWS's IPv6 one, Alibaba's).
pub fn forbidden(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            v4.is_link_local()
                || v4.is_unspecified()
                || v4.octets()[0] == 0
                || v4.is_broadcast()
                || v4 == Ipv4Addr::new(100, 100, 100, 200)
        }
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.is_unspecified()
                || v6 == "fd00:ec2::254".parse::<Ipv6Addr>().expect("a valid address")
        }
    }
}

/// Names of metadata services that resolve only inside a cloud.
fn metadata_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "metadata.google.internal"
        || host == "metadata"
        || host == "instance-data"
        || host.ends_with(".internal.metadata")
        || host == "metadata.azure.com"
}

/// Whether `host` is on an allowlist: `example.com` allows exactly that
/// host, `.example.com` (or `*.example.com`) any host under it.
pub fn allowed(host: &str, allowlist: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    allowlist.iter().any(|entry| {
        let entry = entry.trim().to_ascii_lowercase();
        match entry.strip_prefix('*').unwrap_or(&entry).strip_prefix('.') {
            Some(suffix) => host.ends_with(&format!(".{suffix}")),
            None => host == entry,
        }
    })
}

/// Checks a host name or address literal a channel connects to: on the
/// allowlist when there is one, never a metadata name, never a forbidden
/// address literal. `what` names the setting in messages.
pub fn check_host(host: &str, allowlist: &[String], what: &str) -> Result<(), Failure> {
    let bare = host.trim().trim_start_matches('[').trim_end_matches(']');
    if bare.is_empty() {
        return Err(never(format!("the {what} has no host")));
    }
    if !allowlist.is_empty() && !allowed(bare, allowlist) {
        return Err(never(format!(
            "the {what} {bare} is not on the target allowlist (alerts.allowed_hosts); add it there or choose another"
        )));
    }
    if metadata_name(bare) {
        return Err(never(format!("refusing to connect to the cloud metadata host {bare} (the {what})")));
    }
    if let Ok(ip) = bare.parse::<IpAddr>() {
        if forbidden(ip) {
            return Err(never(format!(
                "refusing to connect to {bare} (the {what}): link-local and metadata addresses are never targets"
            )));
        }
    }
    Ok(())
}

/// Parses an HTTP channel's URL exactly as the client will and checks where
/// it points. Returns the parsed URL, which is what must be requested.
pub fn check_url(raw: &str, allowlist: &[String]) -> Result<reqwest::Url, Failure> {
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|e| never(format!("the alert URL is not a valid URL ({e}); write it as https://host/path")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(never(format!("the alert URL must be http:// or https://, not {}://", url.scheme())));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(never(
            "the alert URL carries a user name or password before the host; put credentials in the channel's settings"
                .into(),
        ));
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(v4)) => v4.to_string(),
        Some(url::Host::Ipv6(v6)) => v6.to_string(),
        None => return Err(never("the alert URL has no host".into())),
    };
    check_host(&host, allowlist, "alert URL")?;
    Ok(url)
}

/// Resolves a channel's host and keeps only the addresses alerts may go to;
/// refuses when none is left. Used by the channels that connect themselves
/// (syslog, SMTP) and by [`GuardedResolver`].
pub async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Failure> {
    let bare = host.trim().trim_start_matches('[').trim_end_matches(']');
    let found: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| Failure { message: format!("cannot resolve {bare}: {e}"), retry: Retry::Backoff })?
            .collect(),
    };
    let (refused, kept): (Vec<SocketAddr>, Vec<SocketAddr>) = found.into_iter().partition(|a| forbidden(a.ip()));
    if kept.is_empty() {
        return Err(match refused.first() {
            Some(a) => never(format!(
                "refusing to send alerts to {bare} ({}): link-local and metadata addresses are never alert targets",
                a.ip()
            )),
            None => Failure { message: format!("{bare} resolves to no address"), retry: Retry::Backoff },
        });
    }
    Ok(kept)
}

/// The HTTP client's resolver: every name an alert connects to is resolved
/// here, at connection time, and forbidden addresses are dropped.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = resolve(&host, 0)
                .await
                .map_err(|f| -> Box<dyn std::error::Error + Send + Sync> { f.message.into() })?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// An HTTP client that can only reach allowed addresses: no redirects
/// (a redirect is a new target nobody checked), the guarded resolver, no
/// proxy from the environment (it would connect where we did not check).
pub fn client(timeout: std::time::Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(std::time::Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(std::sync::Arc::new(GuardedResolver))
        .no_proxy()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_ipv4_addresses_are_judged_as_ipv4() {
        for (v6, v4) in [
            ("::ffff:169.254.169.254", "169.254.169.254"),
            ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
            ("64:ff9b:1::a9fe:a9fe", "169.254.169.254"),
            ("::169.254.169.254", "169.254.169.254"),
            ("2002:a9fe:a9fe::1", "169.254.169.254"),
        ] {
            let ip: IpAddr = v6.parse().unwrap();
            assert_eq!(canonical(ip), v4.parse::<IpAddr>().unwrap(), "{v6}");
            assert!(forbidden(ip), "{v6}");
        }
        for ok in ["127.0.0.1", "::1", "10.0.0.5", "2001:db8::1", "::ffff:10.0.0.1"] {
            assert!(!forbidden(ok.parse().unwrap()), "{ok}");
        }
        for bad in ["169.254.169.254", "fd00:ec2::254", "fe80::1", "0.0.0.0", "::", "100.100.100.200"] {
            assert!(forbidden(bad.parse().unwrap()), "{bad}");
        }
    }

    #[test]
    fn urls_are_judged_as_the_client_parses_them() {
        let list = vec!["allowed.example".to_string()];
        // WHATWG: a backslash ends the authority in http(s) URLs, so the host is 127.0.0.1.
        let err = check_url("http://127.0.0.1:9\\@allowed.example/", &list).unwrap_err();
        assert!(err.message.contains("allowlist"), "{}", err.message);
        assert!(check_url("http://user:pw@allowed.example/", &list).is_err(), "credentials before the host");
        assert!(check_url("https://allowed.example/hook", &list).is_ok());
        assert!(check_url("https://ALLOWED.example./hook", &list).is_ok());
        for bad in [
            "http://[::ffff:169.254.169.254]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://0xa9fea9fe/",
            "http://2852039166/",
            "http://169.254.43518/",
            "http://metadata.google.internal./",
            "file:///etc/passwd",
            "gopher://x/",
        ] {
            let err = check_url(bad, &[]).unwrap_err();
            assert_eq!(err.retry, Retry::Never, "{bad}");
        }
    }

    #[tokio::test]
    async fn resolution_drops_forbidden_addresses() {
        assert!(resolve("169.254.169.254", 80).await.is_err());
        assert!(resolve("[::ffff:169.254.169.254]", 80).await.is_err());
        assert_eq!(resolve("127.0.0.1", 80).await.unwrap(), vec!["127.0.0.1:80".parse().unwrap()]);
        assert!(!resolve("localhost", 80).await.unwrap().is_empty());
    }
}
