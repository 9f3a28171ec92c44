//! Zapier, Make and n8n catch hooks: the lead as one flat JSON object (or the mapping's
//! body), POSTed to the hook's URL, signed like a webhook. Flat, because these tools show
//! a sample's top-level keys as the fields to map: `email`, `first_name`, `score`,
//! `email_valid`, each custom field under its own name (prefixed `custom_` when it would
//! shadow one of ours), instead of `lead.custom_fields.job_title`.
//!
//! URLs: Zapier `https://hooks.zapier.com/hooks/catch/{account}/{hook}/`; Make
//! `https://hook.{zone}.make.com/{token}` (also `make.celonis.com` zones and the legacy
//! `hook.integromat.com`); n8n is self-hosted or on n8n Cloud, so any host, with a path
//! through the Webhook node's `/webhook/…` (or `/webhook-test/…` while testing).
//! Answers are read as a webhook's; n8n's 404 gets a hint.

use super::{Built, Input, Reading, host_is};
use crate::{ladder::Class, outbound::Outcome, payload};
use leadrelay_entity::{IntegrationKind, lead, list};
use regex::Regex;
use serde_json::{Map, Value};
use std::sync::LazyLock;

static ZAPIER_HOST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^hooks\.zapier\.com$").expect("a valid pattern"));
static ZAPIER_PATH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^/hooks/catch/[0-9]+/[A-Za-z0-9]+/?$").expect("a valid pattern"));
static MAKE_HOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^hook\.(?:[a-z]{2}[0-9]+\.make\.com|[a-z]{2}[0-9]+\.make\.celonis\.com|(?:[a-z]{2}[0-9]+\.)?integromat\.com)$")
        .expect("a valid pattern")
});
static MAKE_PATH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^/[A-Za-z0-9]+/?$").expect("a valid pattern"));

/// The request: the mapping's body, or the lead flat.
pub(super) fn build(input: &Input<'_>) -> Built {
    input.mapped_or(|| flat(input.lead, input.list))
}

/// The keys of the flat body before the verifications and custom fields.
const OURS: &[&str] = &[
    "event",
    "lead_id",
    "email",
    "name",
    "first_name",
    "last_name",
    "phone",
    "company",
    "score",
    "status",
    "created_at",
    "qualified_at",
    "list_id",
    "list_name",
];

/// The lead as one flat object: the `lead.qualified` event's fields at the top, the
/// name split, the verifications' keys, then each custom field by its name (`custom_`
/// before a name that is one of ours). Nested custom values are kept as they are.
pub fn flat(lead: &lead::Model, list: &list::Model) -> Value {
    let event = payload::lead_qualified(lead, list);
    let at = |key: &str| event["lead"].get(key).cloned().unwrap_or(Value::Null);
    let (first, last) = lead
        .name
        .as_deref()
        .map(crate::transform::split_name)
        .unwrap_or_default();
    let mut out = Map::new();
    for (key, value) in [
        ("event", event["event"].clone()),
        ("lead_id", at("id")),
        ("email", at("email")),
        ("name", at("name")),
        ("first_name", first.map_or(Value::Null, Value::String)),
        ("last_name", last.map_or(Value::Null, Value::String)),
        ("phone", at("phone")),
        ("company", at("company")),
        ("score", at("score")),
        ("status", at("status")),
        ("created_at", at("created_at")),
        ("qualified_at", at("qualified_at")),
        ("list_id", event["list"]["id"].clone()),
        ("list_name", event["list"]["name"].clone()),
    ] {
        out.insert(key.to_owned(), value);
    }
    if let Value::Object(verifications) = at("verifications") {
        for (key, value) in verifications {
            if !OURS.contains(&key.as_str()) {
                out.insert(key, value);
            }
        }
    }
    if let Value::Object(custom) = at("custom_fields") {
        for (key, value) in custom {
            let key = if out.contains_key(&key) {
                format!("custom_{key}")
            } else {
                key
            };
            out.entry(key).or_insert(value);
        }
    }
    Value::Object(out)
}

/// Checks a hook URL of `kind` (see the module's comment); the host is not checked in
/// development.
pub(super) fn check_url(
    kind: IntegrationKind,
    url: &url::Url,
    development: bool,
) -> Result<(), String> {
    match kind {
        IntegrationKind::Zapier => {
            host_is(url, development, &ZAPIER_HOST, "hooks.zapier.com")?;
            if !ZAPIER_PATH.is_match(url.path()) {
                return Err(
                    "is not a Zapier catch hook: expected https://hooks.zapier.com/hooks/catch/<account>/<hook>/"
                        .into(),
                );
            }
        }
        IntegrationKind::Make => {
            host_is(
                url,
                development,
                &MAKE_HOST,
                "a Make webhook host (hook.<zone>.make.com, e.g. hook.eu1.make.com)",
            )?;
            if !MAKE_PATH.is_match(url.path()) {
                return Err(
                    "is not a Make custom webhook: expected https://hook.<zone>.make.com/<token>"
                        .into(),
                );
            }
        }
        IntegrationKind::N8n => {
            let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
            let hook = segments
                .iter()
                .position(|s| matches!(*s, "webhook" | "webhook-test"));
            if hook.is_none_or(|i| i + 1 >= segments.len()) {
                return Err(
                    "is not an n8n Webhook node URL: expected https://<your n8n>/webhook/<path> (or /webhook-test/<path>)"
                        .into(),
                );
            }
        }
        _ => {}
    }
    Ok(())
}

/// Reads a hook's answer as a webhook's; n8n's 404 means the workflow is not listening.
pub(super) fn read(kind: IntegrationKind, outcome: &Outcome) -> Reading {
    match (kind, outcome.status) {
        (IntegrationKind::N8n, Some(404)) => Reading::because(
            Class::Permanent,
            "n8n answered 404: the workflow is not active (a /webhook-test/ URL listens only \
             while the editor waits for a test event)",
        ),
        _ => Reading::generic(outcome),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset::fixtures;
    use serde_json::json;

    fn parse(url: &str) -> url::Url {
        url::Url::parse(url).unwrap()
    }

    #[test]
    fn zapier_urls() {
        let ok = "https://hooks.zapier.com/hooks/catch/123456/abcdef1/";
        assert!(check_url(IntegrationKind::Zapier, &parse(ok), false).is_ok());
        assert!(
            check_url(
                IntegrationKind::Zapier,
                &parse("https://hooks.zapier.com/hooks/catch/123456/abcdef1"),
                false
            )
            .is_ok()
        );
        for bad in [
            "https://hooks.zapier.evil.com/hooks/catch/123456/abcdef1/",
            "https://zapier.com/hooks/catch/123456/abcdef1/",
            "https://hooks.zapier.com/hooks/standard/123456/abcdef1/",
            "https://hooks.zapier.com/hooks/catch/abc/abcdef1/",
        ] {
            assert!(
                check_url(IntegrationKind::Zapier, &parse(bad), false).is_err(),
                "{bad}"
            );
        }
        // The development switch skips the host, not the path.
        assert!(
            check_url(
                IntegrationKind::Zapier,
                &parse("http://127.0.0.1:8080/hooks/catch/1/a/"),
                true
            )
            .is_ok()
        );
        assert!(
            check_url(
                IntegrationKind::Zapier,
                &parse("http://127.0.0.1:8080/x"),
                true
            )
            .is_err()
        );
    }

    #[test]
    fn make_urls() {
        for ok in [
            "https://hook.eu1.make.com/abc123xyz",
            "https://hook.us2.make.com/abc123xyz",
            "https://hook.eu1.make.celonis.com/abc123xyz",
            "https://hook.integromat.com/abc123xyz",
        ] {
            assert!(
                check_url(IntegrationKind::Make, &parse(ok), false).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "https://hook.make.com.evil.io/abc",
            "https://eu1.make.com/abc",
            "https://hook.eu1.make.com/",
            "https://hook.eu1.make.com/a/b",
        ] {
            assert!(
                check_url(IntegrationKind::Make, &parse(bad), false).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn n8n_urls_need_a_webhook_path_on_any_host() {
        for ok in [
            "https://n8n.example.com/webhook/3f1c2a9e-1b2c-4d5e-8f90-1234567890ab",
            "https://acme.app.n8n.cloud/webhook-test/leads",
            "https://example.com/n8n/webhook/leads/new",
        ] {
            assert!(
                check_url(IntegrationKind::N8n, &parse(ok), false).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "https://n8n.example.com/",
            "https://n8n.example.com/webhook/",
            "https://n8n.example.com/hooks/x",
        ] {
            assert!(
                check_url(IntegrationKind::N8n, &parse(bad), false).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_flat_body_lifts_everything_to_the_top() {
        let mut lead = fixtures::lead();
        lead.company = None;
        lead.custom_fields = json!({"job_title": "CTO", "score": "x", "address": {"city": "SP"}});
        let body = flat(&lead, &fixtures::list());
        assert_eq!(body["event"], "lead.qualified");
        assert_eq!(body["lead_id"], "lead_1");
        assert_eq!(body["email"], "ana@example.com");
        assert_eq!(body["first_name"], "Ana");
        assert_eq!(body["last_name"], "Maria Silva");
        assert_eq!(body["company"], Value::Null);
        assert_eq!(body["score"], 85);
        assert_eq!(body["status"], "qualified");
        assert_eq!(body["email_valid"], true);
        assert_eq!(body["job_title"], "CTO");
        assert_eq!(
            body["custom_score"], "x",
            "a custom field never shadows ours"
        );
        assert_eq!(body["address"], json!({"city": "SP"}));
        assert_eq!(body["list_name"], "Solar");
        assert_eq!(body["created_at"], "2026-02-23T14:30:00.000Z");
    }

    #[test]
    fn n8n_404_is_explained_and_not_retried() {
        let outcome = Outcome {
            status: Some(404),
            ..Outcome::default()
        };
        let reading = read(IntegrationKind::N8n, &outcome);
        assert_eq!(reading.class, Class::Permanent);
        assert!(reading.note.unwrap().contains("not active"));
        let reading = read(
            IntegrationKind::Zapier,
            &Outcome {
                status: Some(503),
                ..Outcome::default()
            },
        );
        assert_eq!(reading.class, Class::Transient);
    }
}
