//! The outbound HTTP client: no proxies (so proxy variables cannot bypass the target
//! rules), no redirects, a timeout per request, and a capped excerpt of each response.

use crate::{
    error::Error,
    targets::{TargetError, TargetPolicy},
};
use leadrelay_entity::AttemptErrorKind;
use std::time::{Duration, Instant};

/// The most of a response body kept in the attempt log.
pub const EXCERPT_BYTES: usize = 4096;

/// One request to send.
pub struct OutboundRequest<'a> {
    pub url: &'a str,
    pub headers: &'a [(String, String)],
    pub body: Vec<u8>,
    pub timeout: Duration,
}

/// What happened to one request, as the attempt log records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub status: Option<u16>,
    pub body_excerpt: Option<String>,
    pub duration: Duration,
    pub error_kind: Option<AttemptErrorKind>,
    pub error: Option<String>,
    /// The receiver's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

impl Outcome {
    /// Whether the receiver accepted the request (any 2xx).
    pub fn is_success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The shared outbound client.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    policy: TargetPolicy,
}

impl Outbound {
    /// Builds the client for the given target policy.
    pub fn new(policy: TargetPolicy) -> Result<Self, Error> {
        // reqwest is built without a bundled crypto provider; ring is the one sqlx uses too.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("LeadRelay/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::Client(e.to_string()))?;
        Ok(Self { client, policy })
    }

    /// The target rules this client enforces.
    pub fn policy(&self) -> TargetPolicy {
        self.policy
    }

    /// POSTs the request; never fails, every problem becomes part of the outcome.
    pub async fn post(&self, req: OutboundRequest<'_>) -> Outcome {
        let started = Instant::now();
        let url = match self.policy.check_url(req.url) {
            Ok(url) => url,
            Err(e) => return blocked(e, started),
        };
        let mut builder = self.client.post(url).timeout(req.timeout).body(req.body);
        for (name, value) in req.headers {
            builder = builder.header(name, value);
        }
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return failed(&e, started),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let (body_excerpt, error) = match read_excerpt(response).await {
            Ok(text) => (Some(text), None),
            Err(e) => (None, Some(e)),
        };
        Outcome {
            status: Some(status),
            body_excerpt,
            duration: started.elapsed(),
            error_kind: (!(200..300).contains(&status)).then_some(AttemptErrorKind::Http),
            error: error.or_else(|| {
                (!(200..300).contains(&status)).then(|| format!("receiver answered HTTP {status}"))
            }),
            retry_after,
        }
    }
}

/// Reads `Retry-After` as delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

fn blocked(e: TargetError, started: Instant) -> Outcome {
    Outcome {
        duration: started.elapsed(),
        error_kind: Some(AttemptErrorKind::Blocked),
        error: Some(format!("target {e}")),
        ..Outcome::default()
    }
}

fn failed(e: &reqwest::Error, started: Instant) -> Outcome {
    let chain = error_chain(e);
    let kind = if e.is_timeout() {
        AttemptErrorKind::Timeout
    } else if chain.contains("dns error") || chain.contains("failed to lookup address") {
        AttemptErrorKind::Dns
    } else if chain.contains("certificate") || chain.contains("tls") || chain.contains("handshake")
    {
        AttemptErrorKind::Tls
    } else if e.is_connect() {
        AttemptErrorKind::Connect
    } else {
        AttemptErrorKind::Http
    };
    Outcome {
        duration: started.elapsed(),
        error_kind: Some(kind),
        error: Some(chain),
        ..Outcome::default()
    }
}

/// The error and its sources in one line, e.g. `error sending request: connection refused`.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// Reads at most [`EXCERPT_BYTES`] of the body and decodes it, cutting at a character
/// boundary.
async fn read_excerpt(mut response: reqwest::Response) -> Result<String, String> {
    let mut bytes = Vec::new();
    while bytes.len() < EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => return Err(format!("reading the response body: {}", error_chain(&e))),
        }
    }
    Ok(excerpt(&bytes))
}

/// Up to [`EXCERPT_BYTES`] of `bytes` as text, never splitting a UTF-8 character.
pub fn excerpt(bytes: &[u8]) -> String {
    let mut end = bytes.len().min(EXCERPT_BYTES);
    if let Err(e) = std::str::from_utf8(&bytes[..end])
        && e.error_len().is_none()
    {
        end = e.valid_up_to();
    }
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_caps_at_4_kib() {
        assert_eq!(excerpt(&[b'a'; 10_000]).len(), EXCERPT_BYTES);
    }

    #[test]
    fn excerpt_never_splits_a_character() {
        let mut body = vec![b'a'; EXCERPT_BYTES - 1];
        body.extend_from_slice("é".as_bytes());
        let text = excerpt(&body);
        assert_eq!(text.len(), EXCERPT_BYTES - 1);
        assert!(text.chars().all(|c| c == 'a'));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        let parsed = parse_retry_after(&soon).unwrap();
        assert!(
            parsed > Duration::from_secs(80) && parsed <= Duration::from_secs(90),
            "{parsed:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            None,
            "a past date asks for no delay"
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        assert_eq!(excerpt(b"ok \xff end"), "ok \u{fffd} end");
    }
}
