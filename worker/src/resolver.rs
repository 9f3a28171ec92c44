//! Our own DNS resolver for the outbound client (ARCHITECTURE §7): every address a name
//! resolves to is checked by the [`TargetPolicy`] before reqwest may connect, so a public
//! name that points inside the network (or is rebound to it) is refused at delivery time.
//! Since the checked addresses are the ones reqwest connects to, nothing can change
//! between the check and the connection.

use crate::targets::{TargetError, TargetPolicy};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

/// One `name=ip` pair of `LEADRELAY_DNS_OVERRIDES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsOverride {
    pub name: String,
    pub ip: IpAddr,
}

impl DnsOverride {
    /// Parses `name=ip`; the name is compared without case and trailing dot.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bad = || format!("{raw:?} is not a pair like hooks.example.com=203.0.113.7");
        let (name, ip) = raw.trim().split_once('=').ok_or_else(bad)?;
        let name = normalize(name);
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
        if !valid_name {
            return Err(bad());
        }
        let ip = ip.trim().parse().map_err(|_| bad())?;
        Ok(Self { name, ip })
    }
}

/// Why a name could not be turned into addresses we may connect to. Found again by
/// [`crate::outbound`] in reqwest's error chain to tell BLOCKED from DNS.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A resolved address is refused by the policy.
    #[error("target {host} {reason}")]
    Blocked { host: String, reason: TargetError },
    /// The lookup itself failed.
    #[error("cannot resolve {host}: {source}")]
    Lookup {
        host: String,
        source: std::io::Error,
    },
    /// The lookup succeeded with no address.
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
}

/// The resolver reqwest uses: names from the override map when configured there, else
/// from the system resolver; then every address is checked by the policy.
#[derive(Debug, Clone)]
pub struct PolicyResolver {
    policy: TargetPolicy,
    overrides: Arc<BTreeMap<String, Vec<IpAddr>>>,
}

impl PolicyResolver {
    /// A resolver enforcing `policy`, answering the names of `overrides` itself (tests and
    /// staging: their addresses are still checked, so overrides never bypass the rules).
    pub fn new(policy: TargetPolicy, overrides: &[DnsOverride]) -> Self {
        let mut map: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for o in overrides {
            map.entry(o.name.clone()).or_default().push(o.ip);
        }
        Self {
            policy,
            overrides: Arc::new(map),
        }
    }

    /// The addresses of `host`, all of them allowed by the policy; refused if any is not.
    pub async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let key = normalize(host);
        let ips: Vec<IpAddr> = match self.overrides.get(&key) {
            Some(ips) => ips.clone(),
            None => tokio::net::lookup_host((key.as_str(), 0))
                .await
                .map_err(|source| ResolveError::Lookup {
                    host: key.clone(),
                    source,
                })?
                .map(|addr| addr.ip())
                .collect(),
        };
        if ips.is_empty() {
            return Err(ResolveError::NoAddress { host: key });
        }
        for ip in &ips {
            self.policy
                .check_ip(*ip)
                .map_err(|reason| ResolveError::Blocked {
                    host: key.clone(),
                    reason,
                })?;
        }
        Ok(ips)
    }
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.clone();
        Box::pin(async move {
            let ips = resolver.lookup(name.as_str()).await?;
            // Port 0: reqwest puts in the URL's port (or the scheme's).
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(allow_insecure: bool, pairs: &[&str]) -> PolicyResolver {
        let overrides: Vec<_> = pairs
            .iter()
            .map(|p| DnsOverride::parse(p).unwrap())
            .collect();
        PolicyResolver::new(
            TargetPolicy {
                allow_insecure,
                allowlist: Vec::new(),
            },
            &overrides,
        )
    }

    #[tokio::test]
    async fn overridden_public_name_resolves() {
        let r = resolver(false, &["Hooks.Example.com.=93.184.216.34"]);
        let ips = r.lookup("hooks.example.com").await.unwrap();
        assert_eq!(ips, vec!["93.184.216.34".parse::<IpAddr>().unwrap()]);
    }

    #[tokio::test]
    async fn overridden_private_names_are_blocked_even_with_the_switch() {
        let r = resolver(
            true,
            &[
                "private.test=10.0.0.1",
                "meta.test=169.254.169.254",
                "mapped.test=::ffff:192.168.1.1",
            ],
        );
        for host in ["private.test", "meta.test", "mapped.test"] {
            assert!(
                matches!(r.lookup(host).await, Err(ResolveError::Blocked { .. })),
                "{host}"
            );
        }
    }

    #[tokio::test]
    async fn one_refused_address_among_many_blocks_the_name() {
        let r = resolver(false, &["mixed.test=93.184.216.34", "mixed.test=127.0.0.1"]);
        let err = r.lookup("mixed.test").await.unwrap_err();
        assert!(
            matches!(
                err,
                ResolveError::Blocked {
                    reason: TargetError::Loopback,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().starts_with("target mixed.test "), "{err}");
    }

    #[tokio::test]
    async fn system_lookup_of_localhost_is_checked_too() {
        let strict = resolver(false, &[]);
        assert!(matches!(
            strict.lookup("localhost").await,
            Err(ResolveError::Blocked { .. })
        ));
        let dev = resolver(true, &[]);
        assert!(dev.lookup("localhost").await.is_ok());
    }

    #[tokio::test]
    async fn a_missing_name_is_a_lookup_failure_not_a_block() {
        let r = resolver(false, &[]);
        assert!(matches!(
            r.lookup("no-such-host.invalid").await,
            Err(ResolveError::Lookup { .. })
        ));
    }

    #[test]
    fn bad_override_pairs_are_refused() {
        for raw in [
            "a.test",
            "a.test=",
            "=10.0.0.1",
            "a.test=10.0.0",
            "a/b=1.2.3.4",
        ] {
            assert!(DnsOverride::parse(raw).is_err(), "{raw}");
        }
        assert_eq!(
            DnsOverride::parse(" A.test = ::1 ").unwrap(),
            DnsOverride {
                name: "a.test".into(),
                ip: "::1".parse().unwrap()
            }
        );
    }
}
