//! The offline IP check of the request's source address. A private, loopback,
//! link-local or shared (CGNAT) source is "not assessed": it says nothing about the
//! lead (a proxy of our own, a local test), so it has no risk score and costs no points.
//! A public source in a bogon or reserved range cannot be a real client and is flagged.
//! Proxy and VPN detection need a provider or a database and stay null without one: a
//! [`Reputation`] from either is merged in by [`crate::verify::Lookups`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What is worth knowing about an address besides its score, proxy and VPN fields.
pub mod reason {
    /// A Tor exit node.
    pub const TOR: &str = "ip_tor_exit_node";
    /// A hosting or data-centre network.
    pub const HOSTING: &str = "ip_hosting_provider";
    /// The provider did not answer within the lookup timeout.
    pub const PROVIDER_TIMEOUT: &str = "ip_provider_timeout";
    /// The provider failed, refused (limit, key) or answered something unreadable.
    pub const PROVIDER_FAILED: &str = "ip_provider_failed";
}

/// The risk of a source address in a bogon or reserved range.
const BOGON_RISK: u8 = 100;

/// The outcome of the IP check.
#[derive(Debug, Clone, PartialEq)]
pub struct IpCheck {
    /// 0–100, `None` when the address is not assessed.
    pub risk_score: Option<u8>,
    /// The address is in a bogon or reserved range (`None` when not assessed).
    pub bogon: Option<bool>,
}

impl IpCheck {
    /// Whether the check said anything about the address.
    pub fn assessed(&self) -> bool {
        self.risk_score.is_some()
    }
}

/// What a database or a provider tells about a public address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reputation {
    /// An open, residential or Tor proxy (a VPN is not counted here).
    pub proxy: bool,
    pub vpn: bool,
    pub tor: bool,
    /// A hosting or data-centre network: no person browses from there.
    pub hosting: bool,
    /// 0–100.
    pub risk: u8,
}

impl Reputation {
    /// Nothing against the address.
    pub const CLEAN: Reputation = Reputation {
        proxy: false,
        vpn: false,
        tor: false,
        hosting: false,
        risk: 0,
    };
}

/// IPv4 ranges that are local to a network: not assessed.
const V4_LOCAL: &[([u8; 4], u8)] = &[
    ([10, 0, 0, 0], 8),
    ([100, 64, 0, 0], 10),
    ([127, 0, 0, 0], 8),
    ([169, 254, 0, 0], 16),
    ([172, 16, 0, 0], 12),
    ([192, 168, 0, 0], 16),
];

/// IPv4 bogons and reserved ranges that no client on the internet sends from.
const V4_BOGON: &[([u8; 4], u8)] = &[
    ([0, 0, 0, 0], 8),
    ([192, 0, 0, 0], 24),
    ([192, 0, 2, 0], 24),
    ([198, 18, 0, 0], 15),
    ([198, 51, 100, 0], 24),
    ([203, 0, 113, 0], 24),
    ([224, 0, 0, 0], 4),
    ([240, 0, 0, 0], 4),
];

/// IPv6 ranges local to a network: loopback, unique local, link-local.
const V6_LOCAL: &[(u128, u8)] = &[(1, 128), (0xfc00 << 112, 7), (0xfe80 << 112, 10)];

/// IPv6 bogons inside global unicast (2000::/3): the documentation prefixes. (The rest of
/// the IETF block 2001::/23 holds Teredo, which real clients use.)
const V6_BOGON_IN_GLOBAL: &[(u128, u8)] = &[(0x2001_0db8 << 96, 32), (0x3fff << 112, 20)];

fn in_v4(ip: Ipv4Addr, ranges: &[([u8; 4], u8)]) -> bool {
    ranges.iter().any(|(net, len)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
        u32::from(ip) & mask == u32::from(Ipv4Addr::from(*net)) & mask
    })
}

fn in_v6(ip: Ipv6Addr, ranges: &[(u128, u8)]) -> bool {
    ranges.iter().any(|(net, len)| {
        let mask = u128::MAX.checked_shl(128 - u32::from(*len)).unwrap_or(0);
        u128::from(ip) & mask == net & mask
    })
}

/// Checks the request's source address.
pub fn check(ip: IpAddr) -> IpCheck {
    let bogon = match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => classify_v4(v4),
            None if in_v6(v6, V6_LOCAL) => None,
            // Only 2000::/3 is allocated for global unicast.
            None => Some(!in_v6(v6, &[(0x2000 << 112, 3)]) || in_v6(v6, V6_BOGON_IN_GLOBAL)),
        },
    };
    IpCheck {
        risk_score: bogon.map(|b| if b { BOGON_RISK } else { 0 }),
        bogon,
    }
}

/// `None` when local, else whether it is a bogon.
fn classify_v4(ip: Ipv4Addr) -> Option<bool> {
    if in_v4(ip, V4_LOCAL) {
        None
    } else {
        Some(in_v4(ip, V4_BOGON))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn addresses() {
        // (case, address, risk score)
        let cases = [
            ("v4 loopback", "127.0.0.1", None),
            ("v4 private 10/8", "10.1.2.3", None),
            ("v4 private 172.16/12", "172.31.255.255", None),
            ("v4 private 192.168/16", "192.168.0.10", None),
            ("v4 link-local", "169.254.169.254", None),
            ("v4 CGNAT", "100.64.0.1", None),
            ("v4 public", "8.8.8.8", Some(0)),
            ("v4 public next to private", "172.32.0.1", Some(0)),
            ("v4 this network", "0.1.2.3", Some(100)),
            ("v4 TEST-NET-1", "192.0.2.1", Some(100)),
            ("v4 TEST-NET-3", "203.0.113.9", Some(100)),
            ("v4 benchmarking", "198.19.0.1", Some(100)),
            ("v4 multicast", "239.1.1.1", Some(100)),
            ("v4 reserved", "250.0.0.1", Some(100)),
            ("v4 broadcast", "255.255.255.255", Some(100)),
            ("v6 loopback", "::1", None),
            ("v6 unique local", "fd00::1", None),
            ("v6 link-local", "fe80::1", None),
            ("v6 mapped private", "::ffff:192.168.1.1", None),
            ("v6 mapped public", "::ffff:8.8.8.8", Some(0)),
            ("v6 public", "2800:3f0:4001:800::200e", Some(0)),
            ("v6 documentation", "2001:db8::1", Some(100)),
            ("v6 unspecified", "::", Some(100)),
            ("v6 multicast", "ff02::1", Some(100)),
        ];
        for (case, text, risk) in cases {
            let ip: IpAddr = text.parse().unwrap_or_else(|e| panic!("{case}: {e}"));
            let got = check(ip);
            assert_eq!(got.risk_score, risk, "{case}: {text}");
            assert_eq!(got.assessed(), risk.is_some(), "{case}");
        }
    }

    proptest! {
        #[test]
        fn ip_never_panics(v4 in any::<u32>(), v6 in any::<u128>()) {
            let _ = check(IpAddr::V4(Ipv4Addr::from(v4)));
            let _ = check(IpAddr::V6(Ipv6Addr::from(v6)));
        }
    }
}
