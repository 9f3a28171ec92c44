//! Integrations of a known service (the kinds besides WEBHOOK). Each is a small module
//! that builds the request from the lead (and the integration's mapping) and reads the
//! answer; the engine, the ladder, the attempt log and `renderPreview` are the same for
//! every kind.
//!
//! | kind | request | body | signed |
//! |---|---|---|---|
//! | WEBHOOK | `POST url` | the mapping's, or the `lead.qualified` event | yes |
//! | ZAPIER, MAKE, N8N | `POST` the catch-hook URL | the mapping's, or the lead flat ([`hooks`]) | yes |
//! | HUBSPOT | `POST {url}/crm/v3/objects/contacts/batch/upsert` | [`hubspot`] | no |
//! | PIPEDRIVE | `POST {url}/api/v2/persons`, then optionally `POST {url}/api/v1/leads` | [`pipedrive`] | no |
//!
//! Requests to HubSpot and Pipedrive are not signed: their APIs ignore the Standard
//! Webhooks headers, and without them the request is exactly what their docs show. Hooks
//! keep them, so a Make or n8n scenario can verify the sender.
//!
//! The integration's `url` is the service's base URL for the CRMs, so tests (and a
//! development setup) can point a preset at a local server: with the development switch
//! (`LEADRELAY_ALLOW_INSECURE_TARGETS`) the host-name checks of [`check_url`] are skipped;
//! the target rules (SSRF) apply to every kind.

pub mod hooks;
pub mod hubspot;
pub mod pipedrive;

use crate::{
    ladder::{self, Class},
    mapping::{BodyFormat, FieldIssue, Mapping},
    outbound::Outcome,
    payload::{self, Invalid},
    transform::Region,
};
use leadrelay_entity::{IntegrationKind, integration, lead, list};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A preset's settings, stored on the integration (`settings`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// PIPEDRIVE: also create a lead (Leads Inbox) linked to the person.
    #[serde(default)]
    pub create_lead: bool,
}

impl Settings {
    /// The integration's settings (the defaults when it has none).
    pub fn stored(integration: &integration::Model) -> Result<Self, serde_json::Error> {
        match &integration.settings {
            Some(v) if !v.is_null() => serde_json::from_value(v.clone()),
            _ => Ok(Self::default()),
        }
    }
}

/// Which request of a delivery this is, with what reading its answer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The only request of a webhook, hook or HubSpot delivery.
    Only(IntegrationKind),
    /// Pipedrive's person; with `lead_at`, the base URL where the linked lead is created
    /// next.
    PipedrivePerson { lead_at: Option<String> },
    /// Pipedrive's lead, linked to the person an earlier request created.
    PipedriveLead,
}

impl Step {
    /// Whether reading the answer needs its body (the CRMs' answers say more than their
    /// status).
    pub fn reads_answer(&self) -> bool {
        !matches!(
            self,
            Step::Only(
                IntegrationKind::Webhook
                    | IntegrationKind::Zapier
                    | IntegrationKind::Make
                    | IntegrationKind::N8n
            )
        )
    }
}

/// One request as a preset builds it: everything but our headers.
#[derive(Debug, Clone)]
pub struct Built {
    pub url: String,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Mapped fields left out of the body, and why.
    pub issues: Vec<FieldIssue>,
    /// Whether the Standard Webhooks headers go with it.
    pub signed: bool,
    pub step: Step,
}

/// What builds a request: the integration's stored configuration, read.
pub struct Input<'a> {
    pub integration: &'a integration::Model,
    /// The endpoint's URL (the base URL for the CRMs).
    pub url: &'a str,
    pub mapping: Option<&'a Mapping>,
    pub settings: &'a Settings,
    /// The delivery's progress (see `delivery::Model::progress`).
    pub progress: Option<&'a Value>,
    pub lead: &'a lead::Model,
    pub list: &'a list::Model,
    /// The region phone numbers without a country code are read in (the list's).
    pub region: Region,
}

impl Input<'_> {
    /// The path space mappings read from ([`payload::context`]).
    fn context(&self) -> Value {
        payload::context(self.lead, self.list, &self.integration.name)
    }

    /// The signed request to the integration's URL with the mapping's body, or
    /// `default` as JSON without a mapping.
    fn mapped_or(&self, default: impl FnOnce() -> Value) -> Built {
        let (content_type, body, issues) = match self.mapping {
            Some(mapping) => {
                let rendered = mapping.render(&self.context(), self.region);
                (rendered.content_type, rendered.body, rendered.issues)
            }
            None => ("application/json", json_bytes(&default()), Vec::new()),
        };
        Built {
            url: self.url.to_owned(),
            content_type,
            body,
            issues,
            signed: true,
            step: Step::Only(self.integration.kind),
        }
    }

    /// The mapping's body as JSON merged over `defaults` (the mapping wins), and the
    /// fields it left out. A preset's mapping is JSON ([`check_mapping`]).
    fn mapped_over(&self, defaults: Value) -> (Value, Vec<FieldIssue>) {
        let Some(mapping) = self.mapping else {
            return (defaults, Vec::new());
        };
        let rendered = mapping.render(&self.context(), self.region);
        let mapped = serde_json::from_slice(&rendered.body).unwrap_or(Value::Null);
        let mut body = defaults;
        merge(&mut body, mapped);
        (body, rendered.issues)
    }
}

/// Builds the request for the delivery's next step.
pub fn build(input: &Input<'_>) -> Built {
    match input.integration.kind {
        IntegrationKind::Webhook => {
            input.mapped_or(|| payload::lead_qualified(input.lead, input.list))
        }
        IntegrationKind::Zapier | IntegrationKind::Make | IntegrationKind::N8n => {
            hooks::build(input)
        }
        IntegrationKind::Hubspot => hubspot::build(input),
        IntegrationKind::Pipedrive => pipedrive::build(input),
    }
}

/// What the answer to a request of `step` means: a success (with the progress of the
/// request that follows, if one does), a permanent failure (never retried) or a
/// transient one; `note` says why in the service's terms when the status alone does not.
pub fn read(step: &Step, outcome: &Outcome) -> Reading {
    match step {
        Step::Only(IntegrationKind::Webhook) => Reading::generic(outcome),
        Step::Only(IntegrationKind::Hubspot) => hubspot::read(outcome),
        Step::Only(
            kind @ (IntegrationKind::Zapier | IntegrationKind::Make | IntegrationKind::N8n),
        ) => hooks::read(*kind, outcome),
        Step::Only(IntegrationKind::Pipedrive)
        | Step::PipedrivePerson { .. }
        | Step::PipedriveLead => pipedrive::read(step, outcome),
    }
}

/// The requests that follow `built` when it succeeds, as `renderPreview` describes them
/// (their bodies depend on its answer).
pub fn follow_ups(built: &Built, lead: &lead::Model, list: &list::Model) -> Vec<String> {
    match &built.step {
        Step::PipedrivePerson {
            lead_at: Some(base),
        } => vec![pipedrive::lead_preview(base, lead, list)],
        _ => Vec::new(),
    }
}

/// How an answer reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub class: Class,
    /// Why, in the service's terms; shown as the attempt's error (a 2xx can be a
    /// failure: Pipedrive's `success: false`, HubSpot's 207 with errors).
    pub note: Option<String>,
    /// With a success: the delivery's progress, when another request follows at once.
    pub next: Option<Value>,
}

impl Reading {
    /// The generic reading (ARCHITECTURE §4).
    pub fn generic(outcome: &Outcome) -> Self {
        Self::of(ladder::classify(outcome))
    }

    fn of(class: Class) -> Self {
        Self {
            class,
            note: None,
            next: None,
        }
    }

    fn because(class: Class, note: impl Into<String>) -> Self {
        Self {
            class,
            note: Some(note.into()),
            next: None,
        }
    }
}

/// The URL of an integration of `kind` when none is given; None: it must be given.
pub fn default_url(kind: IntegrationKind) -> Option<&'static str> {
    match kind {
        IntegrationKind::Hubspot => Some(hubspot::BASE_URL),
        _ => None,
    }
}

/// Whether an integration of `kind` may have a fallback URL: not the CRMs (their body
/// fits their own API only).
pub fn takes_fallback(kind: IntegrationKind) -> bool {
    !matches!(kind, IntegrationKind::Hubspot | IntegrationKind::Pipedrive)
}

/// Checks that `url` (already through the target rules) fits `kind`: the service's host,
/// unless `development` (the development switch) is on, and the shape of its path. The
/// error is shown to the customer after the field's name.
pub fn check_url(kind: IntegrationKind, url: &url::Url, development: bool) -> Result<(), String> {
    match kind {
        IntegrationKind::Webhook => Ok(()),
        IntegrationKind::Hubspot => hubspot::check_url(url, development),
        IntegrationKind::Pipedrive => pipedrive::check_url(url, development),
        IntegrationKind::Zapier | IntegrationKind::Make | IntegrationKind::N8n => {
            hooks::check_url(kind, url, development)
        }
    }
}

/// Checks that the integration's headers (names lowercase) carry the credential its
/// kind needs.
pub fn check_headers(kind: IntegrationKind, headers: &[(String, String)]) -> Result<(), String> {
    let value = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    match kind {
        IntegrationKind::Hubspot => match value("authorization") {
            Some(v)
                if v.len() > 7
                    && v[..7].eq_ignore_ascii_case("bearer ")
                    && !v[7..].trim().is_empty() =>
            {
                Ok(())
            }
            _ => Err(
                "HubSpot needs the private app's access token as the header \
                      `Authorization: Bearer <token>`"
                    .into(),
            ),
        },
        IntegrationKind::Pipedrive => match value("x-api-token") {
            Some(v) if !v.is_empty() => Ok(()),
            _ => Err("Pipedrive needs the API token as the header `x-api-token`".into()),
        },
        _ => Ok(()),
    }
}

/// Checks that a mapping fits `kind`: the CRMs take JSON, and HubSpot's targets are
/// property names (flat).
pub fn check_mapping(kind: IntegrationKind, mapping: &Mapping) -> Result<(), Invalid> {
    let name = match kind {
        IntegrationKind::Hubspot => "HubSpot",
        IntegrationKind::Pipedrive => "Pipedrive",
        _ => return Ok(()),
    };
    if mapping.format != BodyFormat::Json {
        return Err(Invalid::new(
            "mapping.format",
            format!("{name} takes JSON: its fields are merged into the preset's body"),
        ));
    }
    if kind == IntegrationKind::Hubspot
        && let Some(i) = mapping.fields.iter().position(|f| f.target.contains('.'))
    {
        return Err(Invalid::new(
            format!("mapping.fields[{i}].target"),
            "a HubSpot property's internal name (e.g. `jobtitle`), without dots",
        ));
    }
    Ok(())
}

/// Merges `over` into `base`: objects key by key (recursively), anything else replaces.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, Value::Null) if base.is_object() => {}
        (base, over) => *base = over,
    }
}

/// `base` (a URL, perhaps with a trailing slash) joined with `path`.
fn join(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// The answer's body as JSON, if it is JSON.
fn answer_json(outcome: &Outcome) -> Option<Value> {
    outcome
        .answer
        .as_deref()
        .and_then(|bytes| serde_json::from_slice(bytes).ok())
}

/// `pairs` whose value is present, as a JSON object.
fn present(pairs: Vec<(&str, Option<String>)>) -> Map<String, Value> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| {
            v.filter(|v| !v.trim().is_empty())
                .map(|v| (k.to_owned(), Value::String(v)))
        })
        .collect()
}

/// The checks of a host name against a pattern, skipped in development.
fn host_is(
    url: &url::Url,
    development: bool,
    pattern: &regex::Regex,
    expected: &str,
) -> Result<(), String> {
    if development {
        return Ok(());
    }
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    if pattern.is_match(host.trim_end_matches('.')) {
        Ok(())
    } else {
        Err(format!("must be on {expected}, not {host}"))
    }
}

/// A CRM's base URL: scheme and host (and port) only.
fn bare_base(url: &url::Url, example: &str) -> Result<(), String> {
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "is the API's base URL, without a path or query (e.g. {example})"
        ));
    }
    Ok(())
}

/// A lead and a list for the presets' tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use chrono::{TimeZone, Utc};
    use leadrelay_entity::{IntegrationKind, LeadStatus, integration, lead, list};
    use serde_json::json;

    /// Ana Maria Silva of Acme, qualified on 2026-02-23.
    pub fn lead() -> lead::Model {
        let at = Utc.with_ymd_and_hms(2026, 2, 23, 14, 30, 0).unwrap();
        lead::Model {
            id: "lead_1".into(),
            tenant_id: "ten_1".into(),
            list_id: "list_1".into(),
            email: Some("ana@example.com".into()),
            name: Some("Ana Maria Silva".into()),
            phone: Some("+5511987654321".into()),
            company: Some("Acme".into()),
            custom_fields: json!({"job_title": "CTO"}),
            verifications: json!({"email_valid": true, "ip_vpn": false}),
            score: Some(85),
            score_reasons: json!([]),
            status: LeadStatus::Qualified,
            reasons: json!([]),
            duplicate_of: None,
            is_test: false,
            source_ip: None,
            raw_body: "{}".into(),
            created_at: at,
            qualified_at: Some(at),
        }
    }

    /// An integration of `kind` to `url`, without mapping or settings.
    pub fn integration(kind: IntegrationKind, url: &str) -> integration::Model {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        integration::Model {
            id: "int_1".into(),
            tenant_id: "ten_1".into(),
            list_id: "list_1".into(),
            name: "CRM".into(),
            kind,
            url: url.into(),
            fallback_url: None,
            active: true,
            timeout_ms: 10_000,
            max_in_flight: 8,
            signing_secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            previous_signing_secret: None,
            previous_secret_expires_at: None,
            auto_pause_after: None,
            consecutive_failures: 0,
            last_success_at: None,
            last_failure_at: None,
            paused_reason: None,
            filter: None,
            mapping: None,
            settings: None,
            created_at: at,
            updated_at: at,
        }
    }

    /// The list "Solar" (phone region BR).
    pub fn list() -> list::Model {
        list::Model {
            id: "list_1".into(),
            tenant_id: "ten_1".into(),
            name: "Solar".into(),
            active: true,
            inbound_token: "tok".into(),
            default_phone_region: "BR".into(),
            min_score: 0,
            required_checks: json!([]),
            required_fields: json!([]),
            dedupe_window_days: 0,
            dedupe_fields: json!([]),
            aliases: json!([]),
            api_key_hash: None,
            thank_you_url: None,
            rate_limit_per_minute: None,
            score_weights: json!({}),
            created_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            config_version: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_lets_the_mapping_win_key_by_key() {
        let mut base = json!({"name": "A", "emails": [1], "custom_fields": {"a": 1}});
        merge(
            &mut base,
            json!({"name": "B", "custom_fields": {"b": 2}, "org_id": 7}),
        );
        assert_eq!(
            base,
            json!({"name": "B", "emails": [1], "custom_fields": {"a": 1, "b": 2}, "org_id": 7})
        );
    }

    #[test]
    fn credentials_are_required_per_kind() {
        let h = |n: &str, v: &str| vec![(n.to_owned(), v.to_owned())];
        assert!(
            check_headers(
                IntegrationKind::Hubspot,
                &h("authorization", "Bearer pat-na1-x")
            )
            .is_ok()
        );
        for bad in [
            h("authorization", "pat-na1-x"),
            h("authorization", "Bearer  "),
            h("x-api-key", "Bearer x"),
            vec![],
        ] {
            assert!(
                check_headers(IntegrationKind::Hubspot, &bad).is_err(),
                "{bad:?}"
            );
        }
        assert!(check_headers(IntegrationKind::Pipedrive, &h("x-api-token", "abc")).is_ok());
        assert!(
            check_headers(IntegrationKind::Pipedrive, &h("authorization", "Bearer x")).is_err()
        );
        assert!(check_headers(IntegrationKind::Zapier, &[]).is_ok());
        assert!(check_headers(IntegrationKind::Webhook, &[]).is_ok());
    }

    #[test]
    fn crm_mappings_are_json_and_hubspot_targets_flat() {
        let mapping = |format, target: &str| Mapping {
            format,
            fields: vec![crate::mapping::MappedField {
                target: target.into(),
                source: Some("lead.email".into()),
                value: None,
                transforms: Vec::new(),
            }],
        };
        let err = check_mapping(
            IntegrationKind::Hubspot,
            &mapping(BodyFormat::Form, "email"),
        )
        .unwrap_err();
        assert_eq!(err.field, "mapping.format");
        let err =
            check_mapping(IntegrationKind::Hubspot, &mapping(BodyFormat::Json, "a.b")).unwrap_err();
        assert_eq!(err.field, "mapping.fields[0].target");
        assert!(
            check_mapping(
                IntegrationKind::Pipedrive,
                &mapping(BodyFormat::Json, "custom_fields.abc")
            )
            .is_ok()
        );
        assert!(check_mapping(IntegrationKind::Zapier, &mapping(BodyFormat::Form, "a")).is_ok());
    }
}
