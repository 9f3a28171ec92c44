//! Which outbound URLs LeadRelay may call (ARCHITECTURE §7): HTTPS only, and never a
//! loopback, private, link-local, CGNAT, multicast or metadata address. The development
//! switch allows `http` and loopback, and nothing else; the allowlist exempts chosen
//! ranges (on-premise receivers).

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a target URL is refused; the message is shown to the customer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("is not a valid absolute URL")]
    Invalid,
    #[error("must use https (http is allowed only with LEADRELAY_ALLOW_INSECURE_TARGETS)")]
    Scheme,
    #[error("must not carry a user name or password")]
    Credentials,
    #[error("points to a loopback address, allowed only with LEADRELAY_ALLOW_INSECURE_TARGETS")]
    Loopback,
    #[error("points to a private, link-local or reserved address ({0})")]
    Reserved(IpAddr),
    #[error("points to a cloud metadata address ({0})")]
    Metadata(IpAddr),
}

/// Cloud instance-metadata endpoints: they hand out credentials, so no setting, not even
/// the allowlist, makes them a valid target.
const METADATA: [IpAddr; 4] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)), // AWS, GCP, Azure, OpenStack
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),   // AWS ECS task credentials
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)), // Alibaba Cloud
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)), // AWS over IPv6
];

/// The rules in force for outbound targets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// `LEADRELAY_ALLOW_INSECURE_TARGETS`: http and loopback allowed (development only).
    pub allow_insecure: bool,
    /// `LEADRELAY_TARGET_ALLOWLIST`: an address inside one of these ranges passes
    /// [`TargetPolicy::check_ip`] even when it is private, loopback, link-local or
    /// otherwise reserved, so on-premise receivers can be reached without the development
    /// switch. It never exempts a metadata address, and https is still required.
    pub allowlist: Vec<IpNet>,
}

impl TargetPolicy {
    /// Checks a URL without any DNS lookup: its scheme, and its host when that is a literal
    /// address or `localhost`. Used at save time and again before each request; names are
    /// checked at delivery time by [`crate::resolver::PolicyResolver`].
    pub fn check_url(&self, raw: &str) -> Result<reqwest::Url, TargetError> {
        let url = reqwest::Url::parse(raw.trim()).map_err(|_| TargetError::Invalid)?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_insecure => {}
            _ => return Err(TargetError::Scheme),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetError::Credentials);
        }
        match url.host() {
            None => Err(TargetError::Invalid),
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name == "localhost" || name.ends_with(".localhost") {
                    // `localhost` is loopback whatever DNS says: allowed exactly when
                    // 127.0.0.1 is (the switch, or an allowlisted range).
                    self.check_ip(Ipv4Addr::LOCALHOST.into()).map(|()| url)
                } else {
                    Ok(url)
                }
            }
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)).map(|()| url),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)).map(|()| url),
        }
    }

    /// Checks one address a target resolves to. IPv4-mapped IPv6 addresses
    /// (`::ffff:10.0.0.1`) are judged as the IPv4 address they carry.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), TargetError> {
        let raw = ip;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if METADATA.contains(&ip) {
            return Err(TargetError::Metadata(ip));
        }
        if self
            .allowlist
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&raw))
        {
            return Ok(());
        }
        if ip.is_loopback() {
            return if self.allow_insecure {
                Ok(())
            } else {
                Err(TargetError::Loopback)
            };
        }
        if is_reserved(ip) {
            return Err(TargetError::Reserved(ip));
        }
        Ok(())
    }
}

fn is_reserved(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_reserved_v4(v4),
        IpAddr::V6(v6) => is_reserved_v6(v6),
    }
}

fn is_reserved_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved, including broadcast
}

fn is_reserved_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local, incl. fd00:ec2::254 (metadata)
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || (first == 0x0064 && ip.segments()[1] == 0xff9b) // NAT64
        || ip.segments()[..6] == [0; 6] // IPv4-compatible (deprecated), ::/96
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: TargetPolicy = TargetPolicy {
        allow_insecure: false,
        allowlist: Vec::new(),
    };
    const DEV: TargetPolicy = TargetPolicy {
        allow_insecure: true,
        allowlist: Vec::new(),
    };

    fn allowing(ranges: &[&str]) -> TargetPolicy {
        TargetPolicy {
            allow_insecure: false,
            allowlist: ranges.iter().map(|r| r.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn https_public_host_is_allowed() {
        assert!(STRICT.check_url("https://hooks.example.com/x?a=1").is_ok());
        assert!(STRICT.check_url("https://93.184.216.34/").is_ok());
    }

    #[test]
    fn http_is_refused_without_the_switch() {
        assert_eq!(
            STRICT.check_url("http://example.com/"),
            Err(TargetError::Scheme)
        );
        assert_eq!(
            STRICT.check_url("ftp://example.com/"),
            Err(TargetError::Scheme)
        );
        assert!(DEV.check_url("http://example.com/").is_ok());
    }

    #[test]
    fn loopback_needs_the_switch() {
        for url in [
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://localhost/",
            "https://a.localhost./",
        ] {
            assert_eq!(STRICT.check_url(url), Err(TargetError::Loopback), "{url}");
            assert!(DEV.check_url(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn private_link_local_and_metadata_stay_blocked_with_the_switch() {
        for url in [
            "http://10.0.0.1/",
            "http://172.16.5.4/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::10.0.0.1]/",
            "http://224.0.0.1/",
        ] {
            assert!(
                matches!(
                    DEV.check_url(url),
                    Err(TargetError::Reserved(_) | TargetError::Metadata(_))
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn the_allowlist_exempts_its_ranges_only() {
        let policy = allowing(&["10.20.0.0/16", "127.0.0.1/32", "fd12:3456::/32"]);
        for ip in ["10.20.3.4", "127.0.0.1", "::ffff:10.20.0.1", "fd12:3456::1"] {
            assert_eq!(policy.check_ip(ip.parse().unwrap()), Ok(()), "{ip}");
        }
        assert!(matches!(
            policy.check_ip("10.21.0.1".parse().unwrap()),
            Err(TargetError::Reserved(_))
        ));
        assert_eq!(
            policy.check_ip("127.0.0.2".parse().unwrap()),
            Err(TargetError::Loopback)
        );
        assert!(policy.check_ip("93.184.216.34".parse().unwrap()).is_ok());
    }

    #[test]
    fn the_allowlist_applies_to_literal_urls_and_localhost_but_not_to_the_scheme() {
        let policy = allowing(&["10.0.0.0/8", "127.0.0.0/8"]);
        assert!(policy.check_url("https://10.1.2.3:8443/x").is_ok());
        assert!(policy.check_url("https://localhost:8443/x").is_ok());
        assert_eq!(
            policy.check_url("http://10.1.2.3/x"),
            Err(TargetError::Scheme)
        );
        assert!(matches!(
            policy.check_url("https://192.168.0.1/x"),
            Err(TargetError::Reserved(_))
        ));
    }

    #[test]
    fn metadata_addresses_are_never_exempt() {
        let policy = TargetPolicy {
            allow_insecure: true,
            allowlist: vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()],
        };
        for ip in [
            "169.254.169.254",
            "169.254.170.2",
            "100.100.100.200",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
        ] {
            assert!(
                matches!(
                    policy.check_ip(ip.parse().unwrap()),
                    Err(TargetError::Metadata(_))
                ),
                "{ip}"
            );
        }
        assert!(policy.check_ip("169.254.1.1".parse().unwrap()).is_ok());
    }

    #[test]
    fn garbage_and_credentials_are_refused() {
        assert_eq!(STRICT.check_url("not a url"), Err(TargetError::Invalid));
        assert_eq!(
            STRICT.check_url("https://user:pw@example.com/"),
            Err(TargetError::Credentials)
        );
    }
}
