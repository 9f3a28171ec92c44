//! Which outbound URLs LeadRelay may call (ARCHITECTURE §7): HTTPS only, and never a
//! loopback, private, link-local, CGNAT, multicast or metadata address. The development
//! switch allows `http` and loopback, and nothing else.

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
}

/// The rules in force for outbound targets.
#[derive(Debug, Clone, Copy, Default)]
pub struct TargetPolicy {
    /// `LEADRELAY_ALLOW_INSECURE_TARGETS`: http and loopback allowed (development only).
    pub allow_insecure: bool,
}

impl TargetPolicy {
    /// Checks a URL without any DNS lookup: its scheme, and its host when that is a literal
    /// address or `localhost`. Used at save time and again before each request.
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
                if (name == "localhost" || name.ends_with(".localhost")) && !self.allow_insecure {
                    Err(TargetError::Loopback)
                } else {
                    Ok(url)
                }
            }
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)).map(|()| url),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)).map(|()| url),
        }
    }

    /// Checks one address a target resolves to.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), TargetError> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
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
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: TargetPolicy = TargetPolicy {
        allow_insecure: false,
    };
    const DEV: TargetPolicy = TargetPolicy {
        allow_insecure: true,
    };

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
            "http://224.0.0.1/",
        ] {
            assert!(
                matches!(DEV.check_url(url), Err(TargetError::Reserved(_))),
                "{url}"
            );
        }
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
