//! What the network-backed checks share: a bounded wait and a cache of answers.
//! Answers (positive and negative: "no MX", "CNPJ not found") are kept for a TTL;
//! failures (timeouts, errors) are not, so the next lead asks again. Concurrent lookups
//! of one key make one request.

use moka::future::Cache;
use std::{future::Future, hash::Hash, time::Duration};

/// How many answers each cache keeps at most (the least used go first).
const CACHE_CAPACITY: u64 = 50_000;

/// Why a lookup gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No answer within the lookup timeout.
    Timeout,
    /// The service failed or answered something unreadable.
    Failed,
}

/// A bounded, cached network lookup keyed by `K`.
pub struct Cached<K, V> {
    cache: Cache<K, V>,
    timeout: Duration,
}

impl<K, V> Cached<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Answers kept for `ttl`; each lookup waits at most `timeout`.
    pub fn new(ttl: Duration, timeout: Duration) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(ttl)
                .build(),
            timeout,
        }
    }

    /// The cached answer for `key`, or the answer of `lookup` within the timeout.
    pub async fn get(
        &self,
        key: K,
        lookup: impl Future<Output = Result<V, Failure>>,
    ) -> Result<V, Failure> {
        let bounded = async {
            tokio::time::timeout(self.timeout, lookup)
                .await
                .unwrap_or(Err(Failure::Timeout))
        };
        self.cache.try_get_with(key, bounded).await.map_err(|e| *e)
    }
}

/// The HTTP client of the lookup services: no proxy variables (as every outbound client
/// here), no redirects, and the lookup timeout on every request.
pub fn http_client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a bundled crypto provider; ring is the one sqlx uses too.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("LeadRelay/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .build()?)
}

/// A base URL without its trailing slash.
pub fn base_url(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}

/// Logs a failed request without its URL (the provider's key travels in the query).
pub fn log_failure(service: &'static str, error: reqwest::Error) -> Failure {
    use std::error::Error as _;
    let failure = if error.is_timeout() {
        Failure::Timeout
    } else {
        Failure::Failed
    };
    let error = error.without_url();
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    tracing::warn!(service, error = %text, "lookup failed");
    failure
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    #[tokio::test]
    async fn answers_are_cached_and_failures_are_not() {
        let cached: Cached<&str, u8> =
            Cached::new(Duration::from_secs(60), Duration::from_millis(50));
        let calls = Arc::new(AtomicUsize::new(0));
        let lookup = |answer: Result<u8, Failure>| {
            let calls = calls.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                answer
            }
        };
        assert_eq!(cached.get("a", lookup(Ok(1))).await, Ok(1));
        assert_eq!(cached.get("a", lookup(Ok(2))).await, Ok(1), "cached");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            cached.get("b", lookup(Err(Failure::Failed))).await,
            Err(Failure::Failed)
        );
        assert_eq!(
            cached.get("b", lookup(Ok(3))).await,
            Ok(3),
            "a failure is not kept"
        );
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(4)
        };
        let started = std::time::Instant::now();
        assert_eq!(cached.get("c", slow).await, Err(Failure::Timeout));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
