//! Trusted reverse proxies: which peers may tell the client's address (`X-Forwarded-For`) and scheme (`X-Forwarded-Proto`).
//!
//! Headers from any other peer are ignored, so that a client cannot pick its own address to
//! dodge the per-address limits, nor claim https.

use http::HeaderMap;
use std::net::IpAddr;
use thiserror::Error;

/// How the request reached this server, as a request extension: over TLS or not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transport {
    pub tls: bool,
}

/// A `trust_proxy` entry that is neither an address nor a CIDR block.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{0:?} is not an IP address or CIDR block such as 10.0.0.0/8")]
pub struct BadProxy(pub String);

/// One address or block of addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Block {
    net: IpAddr,
    prefix: u8,
}

impl Block {
    fn parse(s: &str) -> Result<Block, BadProxy> {
        let bad = || BadProxy(s.to_string());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Block { net, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 address mapped into IPv6 (a dual-stack listener's peers) as plain IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The proxies whose forwarding headers count (the `trust_proxy` setting).
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    blocks: Vec<Block>,
}

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR blocks (empty: trust none).
    pub fn parse(list: &str) -> Result<TrustedProxies, BadProxy> {
        let blocks = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Block::parse)
            .collect::<Result<_, _>>()?;
        Ok(TrustedProxies { blocks })
    }

    /// Is `ip` one of the trusted proxies?
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.blocks.iter().any(|b| b.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

/// The client's address: the TCP peer, unless the peer is a trusted proxy; then the rightmost
/// address in `X-Forwarded-For` that is not itself a trusted proxy (the first one that a
/// trusted hop vouches for).
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trust: &TrustedProxies) -> IpAddr {
    let peer = canonical(peer);
    if !trust.trusts(peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // Garbage from a hop we cannot vouch for: the last good address stands.
            break;
        };
        client = ip;
        if !trust.trusts(ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, maybe bracketed or with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = hop.parse::<std::net::SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    hop.trim_start_matches('[')
        .split(']')
        .next()
        .and_then(|s| s.parse().ok())
        .map(canonical)
}

/// Did the client reach us over https? Yes over our own TLS; behind a trusted proxy, when its
/// `X-Forwarded-Proto` (the last one, the proxy's own) says so.
pub fn is_https(tls: bool, peer: IpAddr, headers: &HeaderMap, trust: &TrustedProxies) -> bool {
    if tls {
        return true;
    }
    if !trust.trusts(canonical(peer)) {
        return false;
    }
    headers
        .get_all("x-forwarded-proto")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// Did the client of this request reach us over https (see [`is_https`])?
pub fn request_is_https(parts: &http::request::Parts, trust: &TrustedProxies) -> bool {
    let tls = parts.extensions.get::<Transport>().is_some_and(|t| t.tls);
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    match peer {
        Some(peer) => is_https(tls, peer, &parts.headers, trust),
        None => tls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn lists_parse_and_match_addresses_and_blocks() {
        let t = TrustedProxies::parse(" 10.0.0.0/8, 192.168.1.7 ,::1, fd00::/8").unwrap();
        assert!(t.trusts(ip("10.200.3.4")));
        assert!(t.trusts(ip("192.168.1.7")));
        assert!(!t.trusts(ip("192.168.1.8")));
        assert!(t.trusts(ip("::1")));
        assert!(t.trusts(ip("fd12::1")));
        assert!(t.trusts(ip("::ffff:10.1.2.3")), "IPv4 mapped into IPv6");
        assert!(!t.trusts(ip("11.0.0.1")));
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        for bad in ["10.0.0.0/33", "proxy.local", "1.2.3.4/x"] {
            assert_eq!(
                TrustedProxies::parse(bad).unwrap_err(),
                BadProxy(bad.into())
            );
        }
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_peers() {
        let trust = TrustedProxies::parse("10.0.0.1, 10.0.0.2").unwrap();
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 203.0.113.9"),
            ("x-forwarded-proto", "https"),
        ]);
        // An untrusted peer's headers are ignored.
        assert_eq!(
            client_addr(ip("198.51.100.1"), &h, &trust),
            ip("198.51.100.1")
        );
        assert!(!is_https(false, ip("198.51.100.1"), &h, &trust));
        // The trusted proxy vouches for the rightmost entry; the spoofed one to its left is not believed.
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &trust), ip("203.0.113.9"));
        assert!(is_https(false, ip("10.0.0.1"), &h, &trust));
        // Through two trusted proxies.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &trust), ip("203.0.113.9"));
        // Ports and brackets are allowed; garbage leaves the last good address.
        let h = headers(&[("x-forwarded-for", "[2001:db8::1]:4711")]);
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &trust), ip("2001:db8::1"));
        let h = headers(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &trust), ip("10.0.0.1"));
        // No trust configured: the peer, always.
        let none = TrustedProxies::default();
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &none), ip("10.0.0.1"));
        assert!(is_https(true, ip("10.0.0.1"), &h, &none), "our own TLS");
    }
}
