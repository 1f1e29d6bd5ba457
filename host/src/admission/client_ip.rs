//! The client's IP: the TCP peer, or what `X-Forwarded-For` says when the peer is a trusted proxy
//! (`TRUSTED_PROXIES`). Anyone can write that header, so it is believed only from proxies.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

/// The configured trusted proxies.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    /// True when `ip` is one of the proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client address for a request that arrived from `peer`. `X-Forwarded-For` is read
    /// right to left (each proxy appends the address it saw) and the first hop that is not a
    /// trusted proxy is the client; a malformed entry stops the walk at the last good hop.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.parse::<IpAddr>() else {
                break;
            };
            client = ip.to_canonical();
            if !self.contains(client) {
                break;
            }
        }
        client
    }

    /// A forwarded header's first value, when `peer` is a trusted proxy.
    pub fn forwarded<'a>(
        &self,
        peer: IpAddr,
        headers: &'a HeaderMap,
        name: &str,
    ) -> Option<&'a str> {
        if !self.contains(peer) {
            return None;
        }
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies() -> TrustedProxies {
        TrustedProxies::new(vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ])
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        assert_eq!(
            proxies().client_ip(ip("203.0.113.9"), &xff("198.51.100.1")),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_trusted_peer_forwards_the_rightmost_untrusted_hop() {
        let p = proxies();
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), &xff("198.51.100.1")),
            ip("198.51.100.1")
        );
        // A client-written first entry is ignored: the proxy chain appended the real one.
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), &xff("1.2.3.4, 198.51.100.7, 10.1.1.1")),
            ip("198.51.100.7")
        );
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), &xff("garbage")),
            ip("127.0.0.1")
        );
        // IPv4-mapped IPv6 peers count as their IPv4 address.
        assert_eq!(
            p.client_ip(ip("::ffff:127.0.0.1"), &xff("198.51.100.2")),
            ip("198.51.100.2")
        );
    }

    #[test]
    fn forwarded_headers_only_from_proxies() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        let p = proxies();
        assert_eq!(
            p.forwarded(ip("10.2.3.4"), &h, "x-forwarded-proto"),
            Some("https")
        );
        assert_eq!(
            p.forwarded(ip("203.0.113.9"), &h, "x-forwarded-proto"),
            None
        );
    }
}
