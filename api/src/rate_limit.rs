//! Per-list inbound rate limits: a token bucket (`governor`) per list allowing
//! `rateLimitPerMinute` leads a minute, in bursts of up to that many. The buckets live in
//! each api process, so N replicas allow up to N times the limit.

use governor::{
    DefaultDirectRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex, PoisonError},
};

/// A list's bucket and the limit it was made for.
type Bucket = (NonZeroU32, Arc<DefaultDirectRateLimiter>);

/// The buckets of the lists that have a limit.
#[derive(Clone, Default)]
pub struct RateLimits(Arc<Mutex<HashMap<String, Bucket>>>);

impl RateLimits {
    /// Takes a token from the list's bucket (none is needed without a limit); when the
    /// bucket is empty, `Err` holds the whole seconds until the next token.
    pub fn check(&self, list_id: &str, per_minute: Option<i32>) -> Result<(), u64> {
        let Some(limit) = per_minute
            .and_then(|n| u32::try_from(n).ok())
            .and_then(NonZeroU32::new)
        else {
            return Ok(());
        };
        let bucket = {
            let mut buckets = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = buckets.entry(list_id.to_owned()).or_insert_with(|| {
                (
                    limit,
                    Arc::new(RateLimiter::direct(Quota::per_minute(limit))),
                )
            });
            if entry.0 != limit {
                *entry = (
                    limit,
                    Arc::new(RateLimiter::direct(Quota::per_minute(limit))),
                );
            }
            entry.1.clone()
        };
        bucket.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_says_when_to_retry() {
        let limits = RateLimits::default();
        for case in [None, Some(0), Some(-5)] {
            assert!(
                (0..100).all(|_| limits.check("lst_a", case).is_ok()),
                "{case:?}: no limit"
            );
        }
        assert!(
            (0..3).all(|_| limits.check("lst_a", Some(3)).is_ok()),
            "a burst of 3"
        );
        let retry = limits
            .check("lst_a", Some(3))
            .expect_err("the fourth waits");
        assert!((1..=20).contains(&retry), "{retry}");
        assert!(
            limits.check("lst_b", Some(3)).is_ok(),
            "buckets are per list"
        );
        assert!(
            limits.check("lst_a", Some(10)).is_ok(),
            "a changed limit starts a new bucket"
        );
    }
}
