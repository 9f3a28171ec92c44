//! What happens after an attempt (ARCHITECTURE §4): delivered, failed for good (a
//! configuration problem), retried on the ladder, moved to the fallback, or exhausted.

use crate::{config::Ladder, outbound::Outcome};
use leadrelay_entity::{AttemptErrorKind, DeliveryStatus};
use std::time::Duration;

/// The longest a receiver's `Retry-After` may push an attempt back.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);

/// The decision after one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Any 2xx.
    Delivered,
    /// A 3xx, a 4xx other than 408/429, or a blocked target: waiting will not help.
    Failed,
    /// Try the same endpoint again after this delay.
    Retry(Duration),
    /// The primary's ladder is spent; continue on the fallback URL.
    Failover,
    /// The last attempt of the last endpoint failed.
    Exhausted,
    /// This request of a several-request preset went through (e.g. the Pipedrive person
    /// before its lead): the next one follows at once, on a fresh ladder.
    Continue,
}

impl Verdict {
    /// The delivery's status after this verdict.
    pub fn status(&self) -> DeliveryStatus {
        match self {
            Verdict::Delivered => DeliveryStatus::Delivered,
            Verdict::Failed => DeliveryStatus::Failed,
            Verdict::Exhausted => DeliveryStatus::Error,
            Verdict::Retry(_) | Verdict::Failover => DeliveryStatus::RetryScheduled,
            Verdict::Continue => DeliveryStatus::InFlight,
        }
    }

    /// Whether the delivery has reached a final state.
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            Verdict::Retry(_) | Verdict::Failover | Verdict::Continue
        )
    }

    /// The metrics label of the attempt's outcome.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Delivered => "delivered",
            Verdict::Failed => "failed",
            Verdict::Retry(_) => "retry",
            Verdict::Failover => "failover",
            Verdict::Exhausted => "error",
            Verdict::Continue => "step",
        }
    }
}

/// How an attempt went, as far as retrying goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The receiver took the lead.
    Success,
    /// A configuration or data problem: waiting will not help, so it is never retried.
    Permanent,
    /// It may pass by itself: retried on the ladder.
    Transient,
}

/// Whether an attempt's failure may go away by itself (timeouts, connection, DNS and TLS
/// errors, 5xx, 408, 429).
pub fn is_transient(outcome: &Outcome) -> bool {
    match outcome.status {
        Some(status) => status >= 500 || status == 408 || status == 429,
        None => !matches!(outcome.error_kind, Some(AttemptErrorKind::Blocked)),
    }
}

/// The generic reading of an attempt (ARCHITECTURE §4): any 2xx is a success, the
/// failures of [`is_transient`] are transient, anything else is permanent. Presets refine
/// it (`crate::preset`).
pub fn classify(outcome: &Outcome) -> Class {
    if outcome.is_success() {
        Class::Success
    } else if is_transient(outcome) {
        Class::Transient
    } else {
        Class::Permanent
    }
}

/// Decides what follows an attempt read the generic way ([`classify`]). See
/// [`decide_class`].
pub fn decide(
    outcome: &Outcome,
    ladder: &Ladder,
    attempts_on_ladder: usize,
    can_fail_over: bool,
) -> Verdict {
    decide_class(
        classify(outcome),
        outcome,
        ladder,
        attempts_on_ladder,
        can_fail_over,
    )
}

/// Decides what follows an attempt of class `class`. `attempts_on_ladder` counts the
/// attempts made on the current endpoint's ladder, this one included; `can_fail_over` is
/// true while on the primary with a fallback URL configured. A `Retry-After` is honoured
/// on 429, 503 and HubSpot's 477 (account migration), when longer than the step.
pub fn decide_class(
    class: Class,
    outcome: &Outcome,
    ladder: &Ladder,
    attempts_on_ladder: usize,
    can_fail_over: bool,
) -> Verdict {
    match class {
        Class::Success => return Verdict::Delivered,
        Class::Permanent => return Verdict::Failed,
        Class::Transient => {}
    }
    match ladder.0.get(attempts_on_ladder) {
        Some(step) => {
            let asked = match outcome.status {
                Some(429 | 477 | 503) => outcome.retry_after.map(|d| d.min(RETRY_AFTER_CAP)),
                _ => None,
            };
            Verdict::Retry(asked.map_or(*step, |asked| asked.max(*step)))
        }
        None if can_fail_over => Verdict::Failover,
        None => Verdict::Exhausted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ladder() -> Ladder {
        Ladder(vec![
            Duration::ZERO,
            Duration::from_secs(60),
            Duration::from_secs(300),
        ])
    }

    fn answered(status: u16) -> Outcome {
        Outcome {
            status: Some(status),
            ..Outcome::default()
        }
    }

    fn failed(kind: AttemptErrorKind) -> Outcome {
        Outcome {
            error_kind: Some(kind),
            ..Outcome::default()
        }
    }

    #[test]
    fn each_verdict_has_its_status_and_finality() {
        for (verdict, status, is_final) in [
            (Verdict::Delivered, DeliveryStatus::Delivered, true),
            (Verdict::Failed, DeliveryStatus::Failed, true),
            (Verdict::Exhausted, DeliveryStatus::Error, true),
            (
                Verdict::Retry(Duration::from_secs(1)),
                DeliveryStatus::RetryScheduled,
                false,
            ),
            (Verdict::Failover, DeliveryStatus::RetryScheduled, false),
            (Verdict::Continue, DeliveryStatus::InFlight, false),
        ] {
            assert_eq!(verdict.status(), status, "{verdict:?}");
            assert_eq!(verdict.is_final(), is_final, "{verdict:?}");
        }
    }

    #[test]
    fn any_2xx_is_delivered() {
        for status in [200, 201, 202, 204, 299] {
            assert_eq!(
                decide(&answered(status), &ladder(), 1, false),
                Verdict::Delivered,
                "{status}"
            );
        }
    }

    #[test]
    fn client_errors_redirects_and_blocked_targets_fail_at_once() {
        for status in [301, 302, 400, 401, 403, 404, 409, 410, 422] {
            assert_eq!(
                decide(&answered(status), &ladder(), 1, true),
                Verdict::Failed,
                "{status}"
            );
        }
        assert_eq!(
            decide(&failed(AttemptErrorKind::Blocked), &ladder(), 1, true),
            Verdict::Failed
        );
    }

    #[test]
    fn transient_failures_climb_the_ladder() {
        for outcome in [
            answered(500),
            answered(503),
            answered(408),
            answered(429),
            failed(AttemptErrorKind::Timeout),
            failed(AttemptErrorKind::Connect),
            failed(AttemptErrorKind::Dns),
            failed(AttemptErrorKind::Tls),
        ] {
            assert_eq!(
                decide(&outcome, &ladder(), 1, false),
                Verdict::Retry(Duration::from_secs(60)),
                "{outcome:?}"
            );
            assert_eq!(
                decide(&outcome, &ladder(), 2, false),
                Verdict::Retry(Duration::from_secs(300)),
                "{outcome:?}"
            );
        }
    }

    #[test]
    fn the_last_rung_fails_over_or_is_exhausted() {
        assert_eq!(
            decide(&answered(503), &ladder(), 3, true),
            Verdict::Failover
        );
        assert_eq!(
            decide(&answered(503), &ladder(), 3, false),
            Verdict::Exhausted
        );
    }

    #[test]
    fn a_presets_reading_overrides_the_status() {
        assert_eq!(
            decide_class(Class::Permanent, &answered(200), &ladder(), 1, true),
            Verdict::Failed,
            "Pipedrive's success: false"
        );
        assert_eq!(
            decide_class(Class::Transient, &answered(423), &ladder(), 1, false),
            Verdict::Retry(Duration::from_secs(60)),
            "HubSpot's locked record"
        );
        let migrating = Outcome {
            status: Some(477),
            retry_after: Some(Duration::from_secs(600)),
            ..Outcome::default()
        };
        assert_eq!(
            decide_class(Class::Transient, &migrating, &ladder(), 1, false),
            Verdict::Retry(Duration::from_secs(600))
        );
        assert_eq!(classify(&answered(204)), Class::Success);
        assert_eq!(classify(&answered(404)), Class::Permanent);
        assert_eq!(classify(&failed(AttemptErrorKind::Tls)), Class::Transient);
    }

    #[test]
    fn retry_after_is_honoured_only_when_longer_and_capped() {
        let with = |status, secs| Outcome {
            status: Some(status),
            retry_after: Some(Duration::from_secs(secs)),
            ..Outcome::default()
        };
        assert_eq!(
            decide(&with(429, 120), &ladder(), 1, false),
            Verdict::Retry(Duration::from_secs(120))
        );
        assert_eq!(
            decide(&with(503, 10), &ladder(), 1, false),
            Verdict::Retry(Duration::from_secs(60))
        );
        assert_eq!(
            decide(&with(429, 86_400), &ladder(), 1, false),
            Verdict::Retry(RETRY_AFTER_CAP)
        );
        assert_eq!(
            decide(&with(500, 120), &ladder(), 1, false),
            Verdict::Retry(Duration::from_secs(60)),
            "only 429/503"
        );
    }
}
