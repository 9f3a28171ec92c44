//! HubSpot: the lead becomes a contact, created or updated by email through the batch
//! upsert endpoint (`POST /crm/v3/objects/contacts/batch/upsert`, `idProperty: email`), so
//! a returning lead updates its contact instead of failing with 409 as a plain create
//! would. A lead without an email is created (`POST /crm/v3/objects/contacts`): there is
//! nothing to match it on. The private app's access token is the integration's header
//! `Authorization: Bearer …` (sealed at rest like every header value); the app needs the
//! `crm.objects.contacts.write` scope.
//!
//! Properties: `email`, `firstname` and `lastname` (the name split at its first space),
//! `phone` (E.164) and `company`. A mapping adds properties or overrides these: its
//! targets are HubSpot property internal names. `lifecyclestage` is not set by default:
//! HubSpot refuses to move it backwards, so upserting a customer would fail.
//!
//! Answers: 200/201 (and a 207 whose result holds no error) took the contact; a 207 or
//! 2xx with `errors`, and 400/401/403/404 and other 4xx, are configuration or data
//! problems, never retried; 423 (record locked), 429, 477 (account migrating) and 5xx
//! are transient.

use super::{
    Built, Input, Reading, Step, answer_json, bare_base, host_is, join, json_bytes, present,
};
use crate::transform::split_name;
use crate::{ladder::Class, outbound::Outcome};
use leadrelay_entity::IntegrationKind;
use regex::Regex;
use serde_json::{Value, json};
use std::sync::LazyLock;

/// The base URL of HubSpot's API, the integration's URL when none is given.
pub const BASE_URL: &str = "https://api.hubapi.com";
/// Creates or updates contacts by a unique property.
pub const UPSERT_PATH: &str = "/crm/v3/objects/contacts/batch/upsert";
/// Creates a contact.
pub const CREATE_PATH: &str = "/crm/v3/objects/contacts";

static HOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^api(?:-[a-z]{2}[0-9]+)?\.hubapi\.com$").expect("a valid pattern")
});

/// The contact's properties, and the mapped fields left out.
fn properties(input: &Input<'_>) -> (Value, Vec<crate::mapping::FieldIssue>) {
    let lead = input.lead;
    let (first, last) = lead.name.as_deref().map(split_name).unwrap_or_default();
    let defaults = present(vec![
        ("email", lead.email.clone()),
        ("firstname", first),
        ("lastname", last),
        ("phone", lead.phone.clone()),
        ("company", lead.company.clone()),
    ]);
    input.mapped_over(Value::Object(defaults))
}

pub(super) fn build(input: &Input<'_>) -> Built {
    let (properties, issues) = properties(input);
    let email = properties
        .get("email")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned);
    let (path, body) = match email {
        Some(email) => (
            UPSERT_PATH,
            json!({ "inputs": [{ "idProperty": "email", "id": email, "properties": properties }] }),
        ),
        None => (CREATE_PATH, json!({ "properties": properties })),
    };
    Built {
        url: join(input.url, path),
        content_type: "application/json",
        body: json_bytes(&body),
        issues,
        signed: false,
        step: Step::Only(IntegrationKind::Hubspot),
    }
}

/// The first error of a batch answer (`errors[0].message`), when it has any.
fn batch_error(answer: &Value) -> Option<String> {
    let count = answer["numErrors"].as_u64().unwrap_or(0);
    let errors = answer["errors"].as_array().filter(|e| !e.is_empty());
    if count == 0 && errors.is_none() {
        return None;
    }
    let first = errors.and_then(|e| e.first());
    Some(
        first
            .and_then(|e| e["message"].as_str().or_else(|| e["category"].as_str()))
            .unwrap_or("an error without a message")
            .to_owned(),
    )
}

pub(super) fn read(outcome: &Outcome) -> Reading {
    let Some(status) = outcome.status else {
        return Reading::generic(outcome);
    };
    let answer = answer_json(outcome);
    let message = answer
        .as_ref()
        .and_then(|a| a["message"].as_str())
        .map(str::to_owned);
    let said = |what: &str| match &message {
        Some(m) => format!("{what}: {m}"),
        None => what.to_owned(),
    };
    match status {
        200..=299 => {
            if let Some(error) = answer.as_ref().and_then(batch_error) {
                return Reading::because(
                    Class::Permanent,
                    format!("HubSpot did not take the contact: {error}"),
                );
            }
            let has_result = answer
                .as_ref()
                .is_some_and(|a| a["results"].as_array().is_some_and(|r| !r.is_empty()));
            if status == 207 && !has_result {
                return Reading::because(
                    Class::Permanent,
                    "HubSpot answered 207 without the contact",
                );
            }
            Reading::of(Class::Success)
        }
        401 => Reading::because(
            Class::Permanent,
            said(
                "HubSpot refused the token (401): check the private app's access token in the Authorization header",
            ),
        ),
        403 => Reading::because(
            Class::Permanent,
            said(
                "HubSpot denied access (403): the private app needs the crm.objects.contacts.write scope",
            ),
        ),
        423 => Reading::because(
            Class::Transient,
            said("HubSpot locked the record for a moment (423)"),
        ),
        477 => Reading::because(
            Class::Transient,
            said("HubSpot is migrating the account (477)"),
        ),
        _ => {
            let mut reading = Reading::generic(outcome);
            reading.note = message.map(|m| format!("HubSpot answered {status}: {m}"));
            reading
        }
    }
}

/// The base URL: HubSpot's API host (any host in development), without a path.
pub(super) fn check_url(url: &url::Url, development: bool) -> Result<(), String> {
    host_is(url, development, &HOST, "api.hubapi.com")?;
    bare_base(url, BASE_URL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        mapping::{BodyFormat, MappedField, Mapping, TransformSpec},
        preset::{self, Settings, fixtures},
    };

    fn built(lead: &leadrelay_entity::lead::Model, mapping: Option<&Mapping>) -> (Value, String) {
        let list = fixtures::list();
        let integration =
            fixtures::integration(IntegrationKind::Hubspot, "https://api.hubapi.com/");
        let b = preset::build(&Input {
            integration: &integration,
            url: &integration.url,
            mapping,
            settings: &Settings::default(),
            progress: None,
            lead,
            list: &list,
            region: crate::transform::Region::BR,
        });
        assert!(!b.signed);
        (serde_json::from_slice(&b.body).unwrap(), b.url)
    }

    #[test]
    fn a_lead_with_an_email_is_upserted_by_it() {
        let (body, url) = built(&fixtures::lead(), None);
        assert_eq!(
            url,
            "https://api.hubapi.com/crm/v3/objects/contacts/batch/upsert"
        );
        assert_eq!(
            body,
            json!({ "inputs": [{ "idProperty": "email", "id": "ana@example.com", "properties": {
                "email": "ana@example.com", "firstname": "Ana", "lastname": "Maria Silva",
                "phone": "+5511987654321", "company": "Acme" } }] })
        );
    }

    #[test]
    fn a_lead_without_an_email_is_created() {
        let mut lead = fixtures::lead();
        lead.email = None;
        lead.name = Some("Bo".into());
        let (body, url) = built(&lead, None);
        assert_eq!(url, "https://api.hubapi.com/crm/v3/objects/contacts");
        assert_eq!(
            body,
            json!({ "properties": { "firstname": "Bo", "phone": "+5511987654321", "company": "Acme" } })
        );
    }

    #[test]
    fn the_mapping_adds_and_overrides_properties() {
        let field =
            |target: &str, source: Option<&str>, value: Option<Value>, t: &[&str]| MappedField {
                target: target.into(),
                source: source.map(Into::into),
                value,
                transforms: t
                    .iter()
                    .map(|n| TransformSpec {
                        name: (*n).into(),
                        arg: None,
                    })
                    .collect(),
            };
        let mapping = Mapping {
            format: BodyFormat::Json,
            fields: vec![
                field("jobtitle", Some("lead.custom_fields.job_title"), None, &[]),
                field("company", Some("lead.company"), None, &["uppercase"]),
                field("lifecyclestage", None, Some(json!("lead")), &[]),
            ],
        };
        let (body, _) = built(&fixtures::lead(), Some(&mapping));
        let props = &body["inputs"][0]["properties"];
        assert_eq!(props["jobtitle"], "CTO");
        assert_eq!(props["company"], "ACME");
        assert_eq!(props["lifecyclestage"], "lead");
        assert_eq!(props["firstname"], "Ana");
    }

    fn answer(status: u16, body: Value) -> Outcome {
        Outcome {
            status: Some(status),
            answer: Some(serde_json::to_vec(&body).unwrap()),
            ..Outcome::default()
        }
    }

    #[test]
    fn answers_are_read_per_hubspot() {
        let ok = json!({"status": "COMPLETE", "results": [{"id": "101", "new": true, "properties": {}}]});
        assert_eq!(read(&answer(200, ok.clone())).class, Class::Success);
        assert_eq!(
            read(&answer(201, json!({"id": "101"}))).class,
            Class::Success
        );
        assert_eq!(read(&answer(207, ok)).class, Class::Success);
        let partial = json!({"status": "COMPLETE", "results": [], "numErrors": 1,
            "errors": [{"status": "error", "category": "VALIDATION_ERROR",
                        "message": "Property \"jobtitel\" does not exist"}]});
        let r = read(&answer(207, partial));
        assert_eq!(r.class, Class::Permanent);
        assert!(r.note.unwrap().contains("jobtitel"));
        for (status, class) in [
            (400, Class::Permanent),
            (401, Class::Permanent),
            (403, Class::Permanent),
            (404, Class::Permanent),
            (409, Class::Permanent),
            (423, Class::Transient),
            (429, Class::Transient),
            (477, Class::Transient),
            (500, Class::Transient),
            (502, Class::Transient),
        ] {
            let r = read(&answer(status, json!({"status": "error", "message": "m"})));
            assert_eq!(r.class, class, "{status}");
            assert!(r.note.unwrap().contains('m'), "{status}");
        }
        let r = read(&answer(401, json!({})));
        assert!(r.note.unwrap().contains("access token"));
    }

    #[test]
    fn the_base_url_is_hubspots_unless_in_development() {
        let url = |u: &str| url::Url::parse(u).unwrap();
        assert!(check_url(&url("https://api.hubapi.com"), false).is_ok());
        assert!(check_url(&url("https://api-eu1.hubapi.com/"), false).is_ok());
        assert!(check_url(&url("https://api.hubapi.com.evil.io/"), false).is_err());
        assert!(check_url(&url("https://api.hubapi.com/crm/v3"), false).is_err());
        assert!(check_url(&url("http://127.0.0.1:9000"), true).is_ok());
        assert!(check_url(&url("http://127.0.0.1:9000/x"), true).is_err());
    }
}
