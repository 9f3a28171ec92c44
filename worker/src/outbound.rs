//! The outbound HTTP client: names resolved by our [`PolicyResolver`] (every address
//! checked), literal addresses checked before sending, no proxies (so proxy variables
//! cannot bypass the target rules), no redirects, a timeout per request, and a capped
//! excerpt of each response.

use crate::{
    error::Error,
    resolver::{DnsOverride, PolicyResolver, ResolveError},
    targets::{TargetError, TargetPolicy},
};
use leadrelay_entity::AttemptErrorKind;
use rustls::pki_types::{CertificateDer, pem::PemObject};
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// The most of a response body kept in the attempt log.
pub const EXCERPT_BYTES: usize = 4096;

/// The most of a response body kept for a preset to read (a HubSpot contact with many
/// properties outgrows the excerpt).
pub const ANSWER_BYTES: usize = 64 * 1024;

/// One request to send.
pub struct OutboundRequest<'a> {
    pub url: &'a str,
    pub headers: &'a [(String, String)],
    pub body: Vec<u8>,
    pub timeout: Duration,
    /// Keep up to [`ANSWER_BYTES`] of the answer in [`Outcome::answer`] (presets read it).
    pub keep_answer: bool,
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
    /// The answer's body, up to [`ANSWER_BYTES`], when the request asked to keep it.
    pub answer: Option<Vec<u8>>,
}

impl Outcome {
    /// Whether the receiver accepted the request (any 2xx).
    pub fn is_success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// `LEADRELAY_EXTRA_CA_FILE`: CA certificates trusted besides the platform's, read and
/// validated at start-up.
#[derive(Clone)]
pub struct ExtraCa {
    pub path: PathBuf,
    pub certs: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for ExtraCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ExtraCa({}, {} certificate(s))",
            self.path.display(),
            self.certs.len()
        )
    }
}

impl ExtraCa {
    /// Reads a PEM file of one or more CA certificates; each must parse as a trust anchor.
    pub fn load(path: &str) -> Result<Self, String> {
        let path = Path::new(path.trim());
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{} is not a PEM file: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{} holds no PEM certificate", path.display()));
        }
        let mut store = rustls::RootCertStore::empty();
        for (i, cert) in certs.iter().enumerate() {
            store
                .add(cert.clone())
                .map_err(|e| format!("certificate {} of {}: {e}", i + 1, path.display()))?;
        }
        Ok(Self {
            path: path.to_owned(),
            certs,
        })
    }
}

/// The shared outbound client.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    policy: TargetPolicy,
}

impl Outbound {
    /// Builds the client: `policy` checks literal addresses before sending and every
    /// resolved address inside the resolver; `extra_ca` is trusted besides the platform's
    /// roots; `dns_overrides` answer those names instead of DNS (still checked).
    pub fn new(
        policy: TargetPolicy,
        extra_ca: Option<&ExtraCa>,
        dns_overrides: &[DnsOverride],
    ) -> Result<Self, Error> {
        // reqwest is built without a bundled crypto provider; ring is the one sqlx uses too.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let extra_roots = extra_ca
            .map(|ca| {
                ca.certs
                    .iter()
                    .map(|der| reqwest::Certificate::from_der(der))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
            .map_err(|e| Error::Client(format!("LEADRELAY_EXTRA_CA_FILE: {e}")))?
            .unwrap_or_default();
        let client = reqwest::Client::builder()
            .dns_resolver(PolicyResolver::new(policy.clone(), dns_overrides))
            .tls_certs_merge(extra_roots)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("LeadRelay/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::Client(error_chain(&e)))?;
        Ok(Self { client, policy })
    }

    /// The target rules this client enforces.
    pub fn policy(&self) -> &TargetPolicy {
        &self.policy
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
        let limit = if req.keep_answer {
            ANSWER_BYTES
        } else {
            EXCERPT_BYTES
        };
        let (body_excerpt, answer, error) = match read_body(response, limit).await {
            Ok(bytes) => (
                Some(excerpt(&bytes)),
                req.keep_answer.then_some(bytes),
                None,
            ),
            Err(e) => (None, None, Some(e)),
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
            answer,
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
    let (kind, error) = classify(e);
    Outcome {
        duration: started.elapsed(),
        error_kind: Some(kind),
        error: Some(error),
        ..Outcome::default()
    }
}

/// The attempt error kind of a failed send, and its message. Our resolver's errors are
/// found by type in the source chain (BLOCKED, DNS), as are rustls's (TLS).
fn classify(e: &reqwest::Error) -> (AttemptErrorKind, String) {
    match find_source::<ResolveError>(e) {
        Some(blocked @ ResolveError::Blocked { .. }) => {
            (AttemptErrorKind::Blocked, blocked.to_string())
        }
        Some(_) => (AttemptErrorKind::Dns, error_chain(e)),
        None if e.is_timeout() => (AttemptErrorKind::Timeout, error_chain(e)),
        None if find_source::<rustls::Error>(e).is_some() => {
            (AttemptErrorKind::Tls, error_chain(e))
        }
        None if e.is_connect() => (AttemptErrorKind::Connect, error_chain(e)),
        None => (AttemptErrorKind::Http, error_chain(e)),
    }
}

/// The first error of type `T` in `e`'s source chain. An `io::Error`'s `source()` skips
/// the error it wraps (where TLS errors travel, sometimes in nested `io::Error`s), so the
/// walk steps into the wrapped error instead.
fn find_source<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        current = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
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

/// Reads the body until at least `limit` bytes (or all of it) arrived.
async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    while bytes.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => return Err(format!("reading the response body: {}", error_chain(&e))),
        }
    }
    bytes.truncate(limit);
    Ok(bytes)
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

    async fn send(policy: TargetPolicy, overrides: &[&str], url: &str) -> Outcome {
        let overrides: Vec<_> = overrides
            .iter()
            .map(|o| DnsOverride::parse(o).unwrap())
            .collect();
        let outbound = Outbound::new(policy, None, &overrides).unwrap();
        outbound
            .post(OutboundRequest {
                url,
                headers: &[],
                body: b"{}".to_vec(),
                timeout: Duration::from_secs(5),
                keep_answer: false,
            })
            .await
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_refused_address_is_blocked_not_dns() {
        let dev = TargetPolicy {
            allow_insecure: true,
            allowlist: Vec::new(),
        };
        let outcome = send(dev, &["private.test=10.0.0.1"], "http://private.test:9/x").await;
        assert_eq!(outcome.error_kind, Some(AttemptErrorKind::Blocked));
        let error = outcome.error.unwrap();
        assert!(
            error.starts_with("target private.test points to a private"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_literal_refused_address_is_blocked_before_sending() {
        let outcome = send(
            TargetPolicy::default(),
            &[],
            "https://[::ffff:127.0.0.1]:9/",
        )
        .await;
        assert_eq!(outcome.error_kind, Some(AttemptErrorKind::Blocked));
    }

    #[tokio::test]
    async fn an_unknown_name_is_dns() {
        let outcome = send(
            TargetPolicy::default(),
            &[],
            "https://no-such-host.invalid/",
        )
        .await;
        assert_eq!(
            outcome.error_kind,
            Some(AttemptErrorKind::Dns),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_connect() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let dev = TargetPolicy {
            allow_insecure: true,
            allowlist: Vec::new(),
        };
        let outcome = send(
            dev,
            &["closed.test=127.0.0.1"],
            &format!("http://closed.test:{port}/"),
        )
        .await;
        assert_eq!(
            outcome.error_kind,
            Some(AttemptErrorKind::Connect),
            "{outcome:?}"
        );
    }
}
