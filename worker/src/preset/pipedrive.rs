//! Pipedrive: the lead becomes a person (API v2, `POST /api/v2/persons` on the company's
//! domain) with `emails` and `phones` arrays, and, with the `create_lead` setting, a lead
//! in the Leads Inbox linked to it (`POST /api/v1/leads`: leads have no v2 endpoint).
//! The API token is the integration's header `x-api-token` (sealed at rest like every
//! header value).
//!
//! Person: `name` (the lead's, else its email or phone), `emails` (`work`, primary),
//! `phones` (`mobile`, primary, E.164). A mapping is merged over it: targets are person
//! fields (`org_id`, `custom_fields.<key>`, `label_ids`…). Pipedrive keeps duplicate
//! persons (its merge tool handles them); LeadRelay does not search first, as its search
//! index lags behind writes by seconds and a returning lead would be missed anyway.
//!
//! The lead needs the new person's id, so it is a second request. Each request is an
//! attempt of its own in the log; when the person is created, its id is kept as the
//! delivery's progress, so a failed lead is retried (or resent) on its own instead of
//! creating the person again.
//!
//! Answers: 2xx with `success: true` took it; `success: false`, 400, 401, 402, 403,
//! 404, 410, 422 and other 4xx are configuration or data problems, never retried; 429
//! and 5xx are transient.

use super::{Built, Input, Reading, Step, answer_json, bare_base, host_is, join, json_bytes};
use crate::{ladder::Class, outbound::Outcome};
use leadrelay_entity::{lead, list};
use regex::Regex;
use serde_json::{Value, json};
use std::sync::LazyLock;

/// Creates a person.
pub const PERSONS_PATH: &str = "/api/v2/persons";
/// Creates a lead.
pub const LEADS_PATH: &str = "/api/v1/leads";

static HOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.pipedrive\.com$").expect("a valid pattern")
});

/// How the person and the lead are called: the lead's name, else its email or phone.
fn display_name(lead: &lead::Model) -> String {
    [&lead.name, &lead.email, &lead.phone]
        .into_iter()
        .flatten()
        .map(|s| s.trim())
        .find(|s| !s.is_empty())
        .map_or_else(|| format!("Lead {}", lead.id), str::to_owned)
}

/// The person's body (before the mapping).
fn person(lead: &lead::Model) -> Value {
    let mut body = json!({ "name": display_name(lead) });
    let entry =
        |value: &str, label: &str| json!([{ "value": value, "primary": true, "label": label }]);
    if let Some(email) = lead.email.as_deref().filter(|e| !e.trim().is_empty()) {
        body["emails"] = entry(email, "work");
    }
    if let Some(phone) = lead.phone.as_deref().filter(|p| !p.trim().is_empty()) {
        body["phones"] = entry(phone, "mobile");
    }
    body
}

/// The lead's body, linked to `person_id`: titled after the person and the list.
fn lead_body(lead: &lead::Model, list: &list::Model, person_id: Value) -> Value {
    json!({
        "title": format!("{} ({})", display_name(lead), list.name),
        "person_id": person_id,
    })
}

/// The lead request as `renderPreview` describes it (the person's id is known only from
/// the first answer).
pub(super) fn lead_preview(base: &str, lead: &lead::Model, list: &list::Model) -> String {
    format!(
        "POST {} {}",
        join(base, LEADS_PATH),
        lead_body(lead, list, json!("<the id of the person created>"))
    )
}

/// The person created by an earlier request of this delivery at `base`, if any.
fn created_person(progress: Option<&Value>, base: &str) -> Option<Value> {
    let progress = progress?;
    let same_account = progress["base"].as_str() == Some(base);
    let id = &progress["pipedrive_person_id"];
    (same_account && id.is_number()).then(|| id.clone())
}

pub(super) fn build(input: &Input<'_>) -> Built {
    let base = input.url;
    let (url, body, issues, step) =
        match created_person(input.progress, base).filter(|_| input.settings.create_lead) {
            Some(person_id) => (
                join(base, LEADS_PATH),
                lead_body(input.lead, input.list, person_id),
                Vec::new(),
                Step::PipedriveLead,
            ),
            None => {
                let (body, issues) = input.mapped_over(person(input.lead));
                let lead_at = input.settings.create_lead.then(|| base.to_owned());
                (
                    join(base, PERSONS_PATH),
                    body,
                    issues,
                    Step::PipedrivePerson { lead_at },
                )
            }
        };
    Built {
        url,
        content_type: "application/json",
        body: json_bytes(&body),
        issues,
        signed: false,
        step,
    }
}

pub(super) fn read(step: &Step, outcome: &Outcome) -> Reading {
    let Some(status) = outcome.status else {
        return Reading::generic(outcome);
    };
    let answer = answer_json(outcome);
    let error = answer
        .as_ref()
        .and_then(|a| a["error"].as_str())
        .map(str::to_owned);
    let said = |what: &str| match &error {
        Some(e) => format!("{what}: {e}"),
        None => what.to_owned(),
    };
    match status {
        200..=299 => {
            let Some(answer) = answer else {
                return Reading::because(
                    Class::Permanent,
                    "Pipedrive's answer is not its JSON: check the URL",
                );
            };
            if answer["success"] != Value::Bool(true) {
                return Reading::because(
                    Class::Permanent,
                    said("Pipedrive answered success: false"),
                );
            }
            match step {
                Step::PipedrivePerson {
                    lead_at: Some(base),
                } => {
                    let id = &answer["data"]["id"];
                    if !id.is_number() {
                        return Reading::because(
                            Class::Permanent,
                            "Pipedrive's answer has no person id to link the lead to",
                        );
                    }
                    Reading {
                        class: Class::Success,
                        note: None,
                        next: Some(json!({ "pipedrive_person_id": id, "base": base })),
                    }
                }
                _ => Reading::of(Class::Success),
            }
        }
        401 => Reading::because(
            Class::Permanent,
            said("Pipedrive refused the API token (401): check the x-api-token header"),
        ),
        402 => Reading::because(
            Class::Permanent,
            said(
                "Pipedrive answered 402 Payment Required: the company's subscription does not allow it",
            ),
        ),
        403 => Reading::because(
            Class::Permanent,
            said("Pipedrive denied access (403): the token's user may not add persons or leads"),
        ),
        404 => Reading::because(
            Class::Permanent,
            said("Pipedrive answered 404: check the company domain of the URL"),
        ),
        _ => {
            let mut reading = Reading::generic(outcome);
            reading.note = error.map(|e| format!("Pipedrive answered {status}: {e}"));
            reading
        }
    }
}

/// The base URL: the company's domain (`https://acme.pipedrive.com`; any host in
/// development), without a path.
pub(super) fn check_url(url: &url::Url, development: bool) -> Result<(), String> {
    host_is(
        url,
        development,
        &HOST,
        "your company's Pipedrive domain (https://<company>.pipedrive.com)",
    )?;
    bare_base(url, "https://acme.pipedrive.com")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset::{self, Settings, fixtures};
    use leadrelay_entity::IntegrationKind;

    const BASE: &str = "https://acme.pipedrive.com/";

    fn built(settings: &Settings, progress: Option<&Value>) -> preset::Built {
        let (lead, list) = (fixtures::lead(), fixtures::list());
        let integration = fixtures::integration(IntegrationKind::Pipedrive, BASE);
        preset::build(&Input {
            integration: &integration,
            url: &integration.url,
            mapping: None,
            settings,
            progress,
            lead: &lead,
            list: &list,
            region: crate::transform::Region::BR,
        })
    }

    fn body(b: &preset::Built) -> Value {
        serde_json::from_slice(&b.body).unwrap()
    }

    #[test]
    fn the_person_carries_emails_and_phones_arrays() {
        let b = built(&Settings::default(), None);
        assert_eq!(b.url, "https://acme.pipedrive.com/api/v2/persons");
        assert_eq!(b.step, Step::PipedrivePerson { lead_at: None });
        assert!(!b.signed);
        assert_eq!(
            body(&b),
            json!({ "name": "Ana Maria Silva",
                "emails": [{ "value": "ana@example.com", "primary": true, "label": "work" }],
                "phones": [{ "value": "+5511987654321", "primary": true, "label": "mobile" }] })
        );
    }

    #[test]
    fn a_created_person_is_followed_by_its_lead() {
        let with_lead = Settings { create_lead: true };
        let first = built(&with_lead, None);
        assert_eq!(
            first.step,
            Step::PipedrivePerson {
                lead_at: Some(BASE.into())
            }
        );
        let created = Outcome {
            status: Some(201),
            answer: Some(br#"{"success":true,"data":{"id":42,"name":"Ana"}}"#.to_vec()),
            ..Outcome::default()
        };
        let reading = read(&first.step, &created);
        assert_eq!(reading.class, Class::Success);
        let progress = reading.next.expect("the lead follows");
        let second = built(&with_lead, Some(&progress));
        assert_eq!(second.url, "https://acme.pipedrive.com/api/v1/leads");
        assert_eq!(second.step, Step::PipedriveLead);
        assert_eq!(
            body(&second),
            json!({ "title": "Ana Maria Silva (Solar)", "person_id": 42 })
        );
        // Another account's person is not reused, nor is one when leads are off.
        let elsewhere =
            json!({ "pipedrive_person_id": 42, "base": "https://other.pipedrive.com/" });
        assert_eq!(built(&with_lead, Some(&elsewhere)).step, first.step);
        assert_eq!(
            built(&Settings::default(), Some(&progress)).step,
            Step::PipedrivePerson { lead_at: None }
        );
    }

    #[test]
    fn answers_are_read_per_pipedrive() {
        let person = Step::PipedrivePerson { lead_at: None };
        let answer = |status: u16, body: &str| Outcome {
            status: Some(status),
            answer: Some(body.as_bytes().to_vec()),
            ..Outcome::default()
        };
        assert_eq!(
            read(&person, &answer(200, r#"{"success":true,"data":{"id":1}}"#)).class,
            Class::Success
        );
        let refused = read(
            &person,
            &answer(200, r#"{"success":false,"error":"Bad name"}"#),
        );
        assert_eq!(refused.class, Class::Permanent);
        assert_eq!(
            refused.note.as_deref(),
            Some("Pipedrive answered success: false: Bad name")
        );
        assert_eq!(
            read(&person, &answer(200, "<html>")).class,
            Class::Permanent
        );
        let no_id = read(
            &Step::PipedrivePerson {
                lead_at: Some(BASE.into()),
            },
            &answer(201, r#"{"success":true,"data":{}}"#),
        );
        assert_eq!(no_id.class, Class::Permanent);
        for (status, class) in [
            (400, Class::Permanent),
            (401, Class::Permanent),
            (402, Class::Permanent),
            (403, Class::Permanent),
            (404, Class::Permanent),
            (410, Class::Permanent),
            (422, Class::Permanent),
            (429, Class::Transient),
            (500, Class::Transient),
            (503, Class::Transient),
        ] {
            let r = read(
                &Step::PipedriveLead,
                &answer(status, r#"{"success":false,"error":"e!"}"#),
            );
            assert_eq!(r.class, class, "{status}");
            assert!(r.note.unwrap().ends_with("e!"), "{status}");
        }
        let timeout = Outcome {
            error_kind: Some(leadrelay_entity::AttemptErrorKind::Timeout),
            ..Outcome::default()
        };
        assert_eq!(read(&person, &timeout).class, Class::Transient);
    }

    #[test]
    fn the_base_url_is_the_company_domain_unless_in_development() {
        let url = |u: &str| url::Url::parse(u).unwrap();
        assert!(check_url(&url("https://acme.pipedrive.com"), false).is_ok());
        assert!(check_url(&url("https://acme.pipedrive.com.evil.io"), false).is_err());
        assert!(check_url(&url("https://pipedrive.com"), false).is_err());
        assert!(check_url(&url("https://acme.pipedrive.com/api/v2"), false).is_err());
        assert!(check_url(&url("http://127.0.0.1:9/"), true).is_ok());
    }
}
