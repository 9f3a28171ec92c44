//! The IP reputation provider client, speaking proxycheck.io's v2 format:
//! `GET {base}/v2/{ip}?key=…&vpn=1&risk=1` answers
//! `{"status":"ok","1.2.3.4":{"proxy":"yes","type":"VPN","risk":66}}`. `status` is `ok`,
//! `warning` (answered, e.g. near the plan's limit), `denied` or `error` (no answer, with
//! a `message`). With `vpn=1` a VPN comes back as `proxy: yes, type: VPN`; here it counts
//! as a VPN and not also as a proxy. Answers are cached for an hour; the key is never
//! logged.

use super::{
    ip::Reputation,
    lookup::{Cached, Failure, base_url, log_failure},
};
use crate::config::Secret;
use serde_json::Value;
use std::{net::IpAddr, time::Duration};

/// How long a provider answer is kept.
const TTL: Duration = Duration::from_secs(3600);

/// The risk given to a proxy or VPN when the provider sends no score.
const DEFAULT_ANONYMOUS_RISK: u8 = 66;

/// The provider client (`LEADRELAY_IP_PROVIDER_URL`, `LEADRELAY_IP_PROVIDER_KEY`).
pub struct IpProvider {
    http: reqwest::Client,
    base: String,
    key: Option<Secret>,
    cache: Cached<IpAddr, Reputation>,
}

impl IpProvider {
    pub fn new(base: &str, key: Option<Secret>, http: reqwest::Client, timeout: Duration) -> Self {
        Self {
            http,
            base: base_url(base),
            key,
            cache: Cached::new(TTL, timeout),
        }
    }

    /// What the provider knows about `ip` (a public address).
    pub async fn reputation(&self, ip: IpAddr) -> Result<Reputation, Failure> {
        self.cache.get(ip, self.fetch(ip)).await
    }

    async fn fetch(&self, ip: IpAddr) -> Result<Reputation, Failure> {
        let mut request = self
            .http
            .get(format!("{}/v2/{ip}", self.base))
            .query(&[("vpn", "1"), ("risk", "1")]);
        if let Some(key) = &self.key {
            request = request.query(&[("key", key.expose())]);
        }
        let response = request
            .send()
            .await
            .map_err(|e| log_failure("ip provider", e))?;
        let status = response.status();
        // The provider answers errors with a JSON status too, sometimes under a 4xx.
        let body: Value = response
            .json()
            .await
            .map_err(|e| log_failure("ip provider", e))?;
        parse(&body, ip).ok_or_else(|| {
            let message = body["message"].as_str().unwrap_or("no result for the address");
            tracing::warn!(service = "ip provider", %status, provider_status = %body["status"], message, "lookup refused");
            Failure::Failed
        })
    }
}

/// The reputation of `ip` in a v2 answer; `None` when the answer holds none.
fn parse(body: &Value, ip: IpAddr) -> Option<Reputation> {
    if !matches!(body["status"].as_str(), Some("ok" | "warning")) {
        return None;
    }
    // Keyed by the address as asked; IPv6 may come back in another spelling.
    let result = body.get(ip.to_string()).or_else(|| {
        body.as_object()?
            .iter()
            .find(|(k, _)| k.parse::<IpAddr>().ok() == Some(ip))
            .map(|(_, v)| v)
    })?;
    let yes = |field: &str| {
        result[field]
            .as_str()
            .is_some_and(|v| v.eq_ignore_ascii_case("yes"))
    };
    let kind = result["type"].as_str().unwrap_or("");
    let vpn = yes("vpn") || (yes("proxy") && kind.to_ascii_uppercase().contains("VPN"));
    let proxy = yes("proxy") && !vpn;
    let risk = result["risk"]
        .as_u64()
        .or_else(|| result["risk"].as_str().and_then(|r| r.parse().ok()))
        .map(|r| u8::try_from(r.min(100)).unwrap_or(100))
        .unwrap_or(if proxy || vpn {
            DEFAULT_ANONYMOUS_RISK
        } else {
            0
        });
    Some(Reputation {
        proxy,
        vpn,
        tor: kind.eq_ignore_ascii_case("TOR"),
        hosting: false,
        risk,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{
        lookup::http_client,
        test_server::{Answer, TestServer},
    };
    use serde_json::json;
    use std::time::Instant;

    const TIMEOUT: Duration = Duration::from_millis(300);

    /// A provider answering as proxycheck.io does, by the address asked.
    fn proxycheck(target: &str) -> Answer {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let ip = path.strip_prefix("/v2/").unwrap_or("");
        let ok = |result: Value| {
            (
                200,
                json!({"status": "ok", ip: result}).to_string(),
                Duration::ZERO,
            )
        };
        if !query.contains("vpn=1") || !query.contains("risk=1") {
            return (
                400,
                json!({"status": "error", "message": "flags"}).to_string(),
                Duration::ZERO,
            );
        }
        match ip {
            "8.8.8.8" => ok(json!({"proxy": "no", "type": "Business", "risk": 0})),
            "1.2.3.4" => ok(json!({"proxy": "yes", "type": "VPN", "risk": 66})),
            "5.6.7.8" => ok(json!({"proxy": "yes", "type": "SOCKS5", "risk": 100})),
            "9.9.9.9" => ok(json!({"proxy": "yes", "type": "TOR"})),
            "2800:3f0:4001:800::200e" => {
                ok(json!({"proxy": "no", "type": "Residential", "risk": 12}))
            }
            "4.4.4.4" => (
                200,
                json!({"status": "warning", "message": "You're close to your limit.",
                       "4.4.4.4": {"proxy": "no", "risk": 3}})
                .to_string(),
                Duration::ZERO,
            ),
            "6.6.6.6" => (
                200,
                json!({"status": "denied", "message": "Your daily query limit has been reached."})
                    .to_string(),
                Duration::ZERO,
            ),
            "7.7.7.7" => (
                401,
                json!({"status": "error", "message": "Your API Key is invalid."}).to_string(),
                Duration::ZERO,
            ),
            "3.3.3.3" => (200, "not json".into(), Duration::ZERO),
            "2.2.2.2" => {
                let (status, body, _) = ok(json!({"proxy": "no", "risk": 1}));
                (status, body, Duration::from_secs(5))
            }
            _ => ok(json!({"proxy": "no", "risk": 0})),
        }
    }

    fn rep(proxy: bool, vpn: bool, tor: bool, risk: u8) -> Reputation {
        Reputation {
            proxy,
            vpn,
            tor,
            hosting: false,
            risk,
        }
    }

    #[tokio::test]
    async fn answers_map_to_proxy_vpn_and_risk() {
        let server = TestServer::start(proxycheck).await;
        let provider = IpProvider::new(
            &server.base,
            Some("k-123".parse().expect("key")),
            http_client(TIMEOUT).expect("client"),
            TIMEOUT,
        );
        let cases = [
            ("clean", "8.8.8.8", Ok(rep(false, false, false, 0))),
            ("vpn", "1.2.3.4", Ok(rep(false, true, false, 66))),
            ("socks proxy", "5.6.7.8", Ok(rep(true, false, false, 100))),
            (
                "tor without risk",
                "9.9.9.9",
                Ok(rep(true, false, true, 66)),
            ),
            (
                "ipv6",
                "2800:3f0:4001:800::200e",
                Ok(rep(false, false, false, 12)),
            ),
            (
                "warning still answers",
                "4.4.4.4",
                Ok(rep(false, false, false, 3)),
            ),
            ("denied", "6.6.6.6", Err(Failure::Failed)),
            ("error status", "7.7.7.7", Err(Failure::Failed)),
            ("not json", "3.3.3.3", Err(Failure::Failed)),
        ];
        for (case, ip, expected) in cases {
            let ip: IpAddr = ip.parse().expect("ip");
            assert_eq!(provider.reputation(ip).await, expected, "{case}");
        }
        let asked = server.asked();
        assert!(
            asked[0].starts_with("/v2/8.8.8.8?") && asked[0].contains("key=k-123"),
            "{asked:?}"
        );
    }

    #[tokio::test]
    async fn answers_are_cached_and_a_slow_provider_times_out() {
        let server = TestServer::start(proxycheck).await;
        let provider = IpProvider::new(
            &server.base,
            None,
            http_client(TIMEOUT).expect("client"),
            TIMEOUT,
        );
        let vpn: IpAddr = [1, 2, 3, 4].into();
        assert!(provider.reputation(vpn).await.is_ok_and(|r| r.vpn));
        assert!(provider.reputation(vpn).await.is_ok_and(|r| r.vpn));
        assert_eq!(
            server.asked().len(),
            1,
            "the second answer came from the cache"
        );
        assert!(
            !server.asked()[0].contains("key="),
            "no key configured, none sent"
        );

        let started = Instant::now();
        let slow: IpAddr = [2, 2, 2, 2].into();
        assert_eq!(provider.reputation(slow).await, Err(Failure::Timeout));
        let took = started.elapsed();
        assert!(took < TIMEOUT + Duration::from_millis(500), "{took:?}");
    }
}
