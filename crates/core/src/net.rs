//! Networks written as CIDR blocks (`10.0.0.0/8`, `2001:db8::/32`) or bare
//! addresses: where an enrolment may come from, and (later) which source
//! addresses are the team's own.

use std::fmt;
use std::net::IpAddr;

use crate::Invalid;

/// One block of addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    base: IpAddr,
    prefix: u8,
}

pub(crate) fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

/// `ip` as the address family it really is: an IPv4-mapped IPv6 address
/// (`::ffff:10.0.0.1`, what a dual-stack socket reports) is IPv4.
pub(crate) fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl Network {
    /// `10.0.0.0/8`, `192.0.2.7` (one address), `2001:db8::/32`. The bits
    /// after the prefix must be zero, so a typo such as `10.1.2.3/8` is
    /// refused rather than read as a wider block than meant.
    pub fn parse(raw: &str) -> Result<Network, Invalid> {
        let raw = raw.trim();
        let bad = |why: &str| Invalid(format!("{raw:?} is not a network: {why} (write e.g. 10.0.0.0/8 or 192.0.2.7)"));
        let (addr, prefix) = match raw.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (raw, None),
        };
        let base: IpAddr = addr.parse().map_err(|_| bad("not an IP address"))?;
        let base = unmapped(base);
        let (value, width) = bits(base);
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| bad(&format!("the prefix length is 0 to {width}")))?,
        };
        let host_bits = u32::from(width - prefix);
        let host_mask = 1u128.checked_shl(host_bits).map_or(u128::MAX, |b| b - 1);
        if value & host_mask != 0 {
            return Err(bad("it has bits set after the prefix"));
        }
        Ok(Network { base, prefix })
    }

    /// Whether `ip` is in this block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = unmapped(ip);
        let ((net, width), (addr, other)) = (bits(self.base), bits(ip));
        if width != other {
            return false;
        }
        let host_bits = u32::from(width - self.prefix);
        if host_bits >= 128 {
            return true;
        }
        (net >> host_bits) == (addr >> host_bits)
    }
}

impl Network {
    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether this is an IPv6 block.
    pub fn is_v6(&self) -> bool {
        self.base.is_ipv6()
    }

    /// The block's bits as a number: what [`masked`] gives for any address in it.
    pub(crate) fn bits(&self) -> u128 {
        bits(self.base).0
    }
}

/// `ip`'s first `prefix` bits (the rest zero), and whether it is IPv6; what
/// [`Network::bits`] is for the block of that length that holds `ip`.
pub(crate) fn masked(ip: IpAddr, prefix: u8) -> u128 {
    let (value, width) = bits(unmapped(ip));
    let host_bits = u32::from(width.saturating_sub(prefix));
    if host_bits >= 128 {
        0
    } else {
        (value >> host_bits) << host_bits
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// The non-blank entries of `items`, each of which may itself be a
/// comma-separated list (as flags and form fields give them).
pub(crate) fn comma_separated<S: AsRef<str>>(items: &[S]) -> impl Iterator<Item = &str> {
    items.iter().flat_map(|i| i.as_ref().split(',')).filter(|s| !s.trim().is_empty())
}

/// The entries of `items`, each of which may itself list several separated
/// by commas, spaces or lines (a form field of networks or account IDs).
pub fn spaced_items<S: AsRef<str>>(items: &[S]) -> impl Iterator<Item = &str> {
    items.iter().flat_map(|i| i.as_ref().split(|c: char| c == ',' || c.is_whitespace())).filter(|s| !s.is_empty())
}

/// Every network in `items` (each item may itself list several, separated
/// by commas, spaces or lines).
pub fn parse_networks<S: AsRef<str>>(items: &[S]) -> Result<Vec<Network>, Invalid> {
    spaced_items(items).map(Network::parse).collect()
}

/// Whether the address `raw` (as the server records a caller's) is in any
/// of `networks`; an address that does not parse is in none.
pub fn within(raw: &str, networks: &[Network]) -> bool {
    raw.trim().parse::<IpAddr>().is_ok_and(|ip| networks.iter().any(|n| n.contains(ip)))
}

/// The key a rate limit counts a client address under: an IPv4 address as
/// it is, an IPv6 address by its /64 (one host usually holds a whole /64, so
/// counting single addresses would let it walk through its own network).
/// Text that is not an address is its own key.
pub fn limit_key(addr: &str) -> String {
    match addr.trim().parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        _ => canonical_address(addr),
    }
}

/// A caller's address as CloudTrail writes addresses: an IPv4 client seen
/// through a dual-stack socket (`::ffff:203.0.113.9`) as plain IPv4, IPv6 in
/// its compressed form. Text that is not an address is kept as it is.
pub fn canonical_address(addr: &str) -> String {
    match addr.trim().parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or_else(|| v6.to_string(), |v4| v4.to_string()),
        Ok(ip) => ip.to_string(),
        Err(_) => addr.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_cloudtrail_writes_them() {
        assert_eq!(canonical_address("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(canonical_address("2001:0db8:0000:0000:0000:0000:0000:0001"), "2001:db8::1");
        assert_eq!(canonical_address(" 198.51.100.4 "), "198.51.100.4");
        assert_eq!(canonical_address("unknown"), "unknown");
    }

    #[test]
    fn limits_count_ipv6_clients_by_their_64() {
        assert_eq!(limit_key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(limit_key("2001:db8:1:2:ffff::9"), limit_key("2001:db8:1:2::1"));
        assert_ne!(limit_key("2001:db8:1:3::1"), limit_key("2001:db8:1:2::1"));
        assert_eq!(limit_key("::ffff:198.51.100.7"), "198.51.100.7");
        assert_eq!(limit_key("198.51.100.7"), "198.51.100.7");
        assert_eq!(limit_key("not an address"), "not an address");
    }

    #[test]
    fn blocks_contain_what_they_should() {
        let n = Network::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.200.3.4".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.1.1".parse().unwrap()), "IPv4-mapped");
        assert!(!n.contains("2001:db8::1".parse().unwrap()));
        let one = Network::parse("192.0.2.7").unwrap();
        assert_eq!(one.to_string(), "192.0.2.7/32");
        assert!(one.contains("192.0.2.7".parse().unwrap()) && !one.contains("192.0.2.8".parse().unwrap()));
        let v6 = Network::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()) && !v6.contains("2001:db9::1".parse().unwrap()));
        assert!(Network::parse("0.0.0.0/0").unwrap().contains("203.0.113.9".parse().unwrap()));
        assert!(Network::parse("::/0").unwrap().contains("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn typos_are_refused() {
        for bad in
            ["", "10.0.0.0/33", "10.1.2.3/8", "10.0.0/8", "host.example", "10.0.0.0/-1", "::/129", "10.0.0.0/8/9"]
        {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
        let list = parse_networks(&["10.0.0.0/8, 192.0.2.0/24", "2001:db8::/32"]).unwrap();
        assert_eq!(list.len(), 3);
        assert!(within("192.0.2.200", &list) && !within("198.51.100.1", &list) && !within("unknown", &list));
    }
}
