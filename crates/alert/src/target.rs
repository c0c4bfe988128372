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

/// Addresses inside a network: loopback, RFC 1918, the shared address space
/// (100.64.0.0/10), IPv6 unique-local (fc00::/7). Alert channels may reach
/// them (an internal SIEM is common); response actions, which an incident
/// sets off unattended, only when `alerts.allowed_hosts` lists the host.
pub fn internal(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_private() || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// Why a response action may not go to `host` (`addresses`: what it is or
/// resolves to), or `None` when it may.
fn refused_for_action(host: &str, addresses: &[IpAddr], allowlist: &[String]) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if allowed(&host, allowlist) {
        return None;
    }
    let local_name = host == "localhost" || host.ends_with(".localhost");
    if local_name || addresses.iter().any(|ip| internal(*ip)) {
        return Some(format!(
            "refusing to send a response action to {host}: private and loopback addresses are targets only when alerts.allowed_hosts lists the host"
        ));
    }
    None
}

/// Parses and checks a response webhook's URL: as [`check_url`], and no
/// private or loopback address unless the allowlist lists the host.
pub fn check_action_url(raw: &str, allowlist: &[String]) -> Result<reqwest::Url, Failure> {
    let url = check_url(raw, allowlist)?;
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
    let literal: Vec<IpAddr> = host.parse::<IpAddr>().into_iter().collect();
    match refused_for_action(&host, &literal, allowlist) {
        Some(why) => Err(never(why)),
        None => Ok(url),
    }
}

/// Checks a response webhook before it is stored: its URL, and, for a name,
/// what it resolves to now. At each call [`ActionResolver`] checks again.
pub async fn check_action_target(raw: &str, allowlist: &[String]) -> Result<(), Failure> {
    let url = check_action_url(raw, allowlist)?;
    if let Some(url::Host::Domain(name)) = url.host() {
        let found = resolve(name, url.port_or_known_default().unwrap_or(443)).await?;
        let ips: Vec<IpAddr> = found.iter().map(|a| a.ip()).collect();
        if let Some(why) = refused_for_action(name, &ips, allowlist) {
            return Err(never(why));
        }
    }
    Ok(())
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
    builder(timeout).dns_resolver(std::sync::Arc::new(GuardedResolver)).build()
}

fn builder(timeout: std::time::Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(std::time::Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
}

/// The resolver of response actions: [`GuardedResolver`], and a name that
/// resolves to a private or loopback address is refused unless the
/// allowlist lists it, so a name re-pointed after it was checked (DNS
/// rebinding) reaches no internal service.
#[derive(Debug, Clone, Default)]
pub struct ActionResolver {
    allowlist: Vec<String>,
}

impl reqwest::dns::Resolve for ActionResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let allowlist = self.allowlist.clone();
        Box::pin(async move {
            let addrs = resolve(&host, 0)
                .await
                .map_err(|f| -> Box<dyn std::error::Error + Send + Sync> { f.message.into() })?;
            let ips: Vec<IpAddr> = addrs.iter().map(|a| a.ip()).collect();
            if let Some(why) = refused_for_action(&host, &ips, &allowlist) {
                return Err(why.into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client of response actions (see [`ActionResolver`]).
pub fn action_client(timeout: std::time::Duration, allowlist: &[String]) -> reqwest::Result<reqwest::Client> {
    builder(timeout).dns_resolver(std::sync::Arc::new(ActionResolver { allowlist: allowlist.to_vec() })).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_actions_reach_internal_addresses_only_when_listed() {
        for url in [
            "http://127.0.0.1:9/x",
            "http://10.1.2.3/x",
            "http://172.16.0.1/x",
            "http://192.168.1.1/x",
            "http://100.64.0.1/x",
            "http://[::1]/x",
            "http://[fd00::1]/x",
            "http://[::ffff:10.0.0.1]/x",
            "http://localhost:8080/x",
            "http://a.localhost/x",
        ] {
            let e = check_action_url(url, &[]).unwrap_err().message;
            assert!(e.contains("alerts.allowed_hosts"), "{url}: {e}");
            assert!(check_url(url, &[]).is_ok(), "alert channels may: {url}");
        }
        assert!(check_action_url("http://127.0.0.1:9/x", &["127.0.0.1".into()]).is_ok());
        assert!(check_action_url("https://hooks.example.com/x", &[]).is_ok());
        assert!(check_action_url("http://203.0.113.10/x", &[]).is_ok());
        assert!(check_action_url("http://169.254.169.254/x", &["169.254.169.254".into()]).is_err(), "never metadata");
        let name_to_loopback = refused_for_action("soar.example.com", &["127.0.0.1".parse().unwrap()], &[]);
        assert!(name_to_loopback.is_some(), "a name resolving inside is refused too");
        assert!(refused_for_action("soar.example.com", &["127.0.0.1".parse().unwrap()], &["soar.example.com".into()])
            .is_none());
    }

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
