//! The client's address behind our own reverse proxies. `X-Forwarded-For` is believed
//! only when the socket peer is a configured trusted proxy; then the right-most address
//! in it that is not itself a trusted proxy is the client (the addresses to its left
//! were written by the client and cannot be believed). From any other peer the header is
//! ignored, so a spoofed header cannot change the address.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

/// The `X-Forwarded-For` header.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The proxies whose `X-Forwarded-For` is believed (`LEADRELAY_TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    pub fn new(nets: &[IpNet]) -> Self {
        Self(nets.into())
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address of a request from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if self.0.is_empty() || !self.trusts(peer) {
            return peer;
        }
        // Several header lines count as one comma-separated list, in order.
        let hops: Vec<Option<IpAddr>> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .flat_map(|value| match value.to_str() {
                Ok(text) => text.split(',').map(parse_hop).collect(),
                Err(_) => vec![None],
            })
            .collect();
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            // A malformed hop breaks the chain: the last trusted address is all we know.
            let Some(ip) = hop else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:80`,
/// `[2001:db8::1]:80`) or in brackets.
fn parse_hop(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    let ip = raw
        .parse::<IpAddr>()
        .ok()
        .or_else(|| raw.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            raw.strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|r| r.parse().ok())
        })?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_client_address_is_chosen_safely() {
        const PROXIES: [&str; 3] = ["10.0.0.0/8", "127.0.0.1/32", "2001:db8:ff::/48"];
        /// (case, trusted, peer, X-Forwarded-For lines, client)
        type Case<'a> = (&'a str, &'a [&'a str], &'a str, &'a [&'a str], &'a str);
        let cases: &[Case] = &[
            (
                "no trusted proxies",
                &[],
                "127.0.0.1",
                &["8.8.8.8"],
                "127.0.0.1",
            ),
            (
                "spoofed header from an untrusted peer",
                &PROXIES,
                "203.0.113.7",
                &["8.8.8.8"],
                "203.0.113.7",
            ),
            (
                "trusted peer, no header",
                &PROXIES,
                "10.1.2.3",
                &[],
                "10.1.2.3",
            ),
            (
                "trusted peer, one hop",
                &PROXIES,
                "127.0.0.1",
                &["8.8.8.8"],
                "8.8.8.8",
            ),
            (
                "client-written entries on the left are ignored",
                &PROXIES,
                "10.0.0.5",
                &["1.1.1.1, 9.9.9.9, 8.8.8.8"],
                "8.8.8.8",
            ),
            (
                "trusted hops on the right are skipped",
                &PROXIES,
                "10.0.0.5",
                &["1.1.1.1, 8.8.8.8, 10.9.9.9, 127.0.0.1"],
                "8.8.8.8",
            ),
            (
                "several header lines in order",
                &PROXIES,
                "10.0.0.5",
                &["1.1.1.1", "8.8.8.8, 10.0.0.9"],
                "8.8.8.8",
            ),
            (
                "only trusted hops: the farthest one",
                &PROXIES,
                "10.0.0.5",
                &["10.0.0.7, 10.0.0.6"],
                "10.0.0.7",
            ),
            (
                "garbage right of the client stops the walk",
                &PROXIES,
                "10.0.0.5",
                &["8.8.8.8, not-an-ip, 10.0.0.6"],
                "10.0.0.6",
            ),
            (
                "garbage only",
                &PROXIES,
                "10.0.0.5",
                &["unknown"],
                "10.0.0.5",
            ),
            ("empty header", &PROXIES, "10.0.0.5", &[""], "10.0.0.5"),
            (
                "port on the hop",
                &PROXIES,
                "10.0.0.5",
                &["8.8.8.8:4711"],
                "8.8.8.8",
            ),
            (
                "ipv6 hop in brackets with port",
                &PROXIES,
                "10.0.0.5",
                &["[2800:3f0:4001:800::200e]:443"],
                "2800:3f0:4001:800::200e",
            ),
            (
                "ipv6 trusted proxy",
                &PROXIES,
                "2001:db8:ff::1",
                &["8.8.4.4"],
                "8.8.4.4",
            ),
            (
                "v4-mapped peer counts as v4",
                &PROXIES,
                "::ffff:10.0.0.5",
                &["8.8.8.8"],
                "8.8.8.8",
            ),
            (
                "v4-mapped untrusted peer",
                &PROXIES,
                "::ffff:8.8.8.8",
                &["1.1.1.1"],
                "8.8.8.8",
            ),
        ];
        for (case, trusted, peer, lines, expected) in cases {
            let nets: Vec<IpNet> = trusted.iter().map(|n| n.parse().expect("net")).collect();
            let mut headers = HeaderMap::new();
            for line in *lines {
                headers.append(X_FORWARDED_FOR, HeaderValue::from_static(line));
            }
            let peer: IpAddr = peer.parse().expect("peer");
            let got = TrustedProxies::new(&nets).client_ip(peer, &headers);
            assert_eq!(got.to_string(), *expected, "{case}");
        }
    }

    #[test]
    fn a_non_ascii_header_stops_the_walk() {
        let nets = ["127.0.0.1/32".parse().expect("net")];
        let mut headers = HeaderMap::new();
        headers.append(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"8.8.8.8\xff").expect("value"),
        );
        let peer: IpAddr = [127, 0, 0, 1].into();
        assert_eq!(TrustedProxies::new(&nets).client_ip(peer, &headers), peer);
    }
}
