//! A list's qualification rules (minimum score, required checks, required fields) and
//! duplicate settings: validated when the owner sets them, applied to every lead.

use crate::{
    error::{ApiError, ApiResult},
    input,
    normalise::Normalised,
    verify::{Verifications, registry::CnpjStatus},
};
use leadrelay_entity::list;
use serde_json::Value;

/// Checks a list can require, each true only when the verification passed.
pub const CHECKS: &[&str] = &[
    "email_valid",
    "phone_valid",
    "cnpj_valid",
    "email_not_disposable",
    "email_not_role",
    "cnpj_active",
    "ip_not_anonymous",
];

/// Fields a duplicate can be matched on (any one equal makes a duplicate).
pub const DEDUPE_FIELDS: &[&str] = &["email", "phone"];

/// Whether the named check passed: `None` when it was not done (no such field).
fn check(name: &str, v: &Verifications) -> Option<bool> {
    match name {
        "email_valid" => v.email_valid,
        "phone_valid" => v.phone_valid,
        "cnpj_valid" => v.cnpj_valid,
        "email_not_disposable" => v.email_disposable.map(|d| !d),
        "email_not_role" => v.email_role.map(|r| !r),
        // Not done without the registry lookup, or when it gave no answer.
        "cnpj_active" => v.cnpj_status.map(|s| s == CnpjStatus::Active),
        // Not done without an IP database or provider, or for a local source.
        "ip_not_anonymous" => match (v.ip_proxy, v.ip_vpn) {
            (None, None) => None,
            (proxy, vpn) => Some(proxy != Some(true) && vpn != Some(true)),
        },
        _ => None,
    }
}

/// A JSON array of strings stored on the list (anything else reads as empty).
pub fn strings(json: &Value) -> Vec<String> {
    serde_json::from_value(json.clone()).unwrap_or_default()
}

/// Why `lead` fails the list's rules; empty when it qualifies.
pub fn reasons(
    list: &list::Model,
    lead: &Normalised,
    v: &Verifications,
    score: i32,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if score < list.min_score {
        reasons.push(format!(
            "score {score} is below the minimum {}",
            list.min_score
        ));
    }
    for name in strings(&list.required_checks) {
        match check(&name, v) {
            Some(true) => {}
            Some(false) => reasons.push(format!("required check {name} failed")),
            None => reasons.push(format!("required check {name} not done")),
        }
    }
    for field in strings(&list.required_fields) {
        if !has_field(lead, &field) {
            reasons.push(format!("required field {field} missing"));
        }
    }
    reasons
}

fn has_field(lead: &Normalised, field: &str) -> bool {
    match field {
        "email" => lead.email.is_some(),
        "phone" => lead.phone.is_some(),
        "name" => lead.name.is_some(),
        "company" => lead.company.is_some(),
        other => lead
            .custom_fields
            .get(other)
            .is_some_and(|v| !v.is_null() && v.as_str() != Some("")),
    }
}

/// The `(field, value)` keys a duplicate of `lead` would share with it on this list;
/// empty when the list does not look for duplicates.
pub fn dedupe_keys(list: &list::Model, lead: &Normalised) -> Vec<(String, String)> {
    if list.dedupe_window_days <= 0 {
        return Vec::new();
    }
    strings(&list.dedupe_fields)
        .into_iter()
        .filter_map(|field| {
            let value = match field.as_str() {
                "email" => lead.email.clone(),
                "phone" => lead.phone.clone(),
                _ => None,
            }?;
            Some((field, value))
        })
        .collect()
}

/// `minScore`: 0 to 100.
pub fn min_score(n: i32) -> ApiResult<i32> {
    input::in_range("minScore", n, 0..=100)
}

/// `dedupeWindowDays`: 0 (off) to 3650.
pub fn dedupe_window(n: i32) -> ApiResult<i32> {
    input::in_range("dedupeWindowDays", n, 0..=3650)
}

/// Names from `known`, sorted and without repeats; an unknown one is an error naming
/// `field` and the choices.
pub fn one_of(field: &str, names: &[String], known: &[&str]) -> ApiResult<Value> {
    let mut out: Vec<&str> = Vec::with_capacity(names.len());
    for name in names {
        let name = name.trim();
        if !known.contains(&name) {
            return Err(ApiError::BadInput(format!(
                "{field}: unknown {name:?} (expected one of {})",
                known.join(", ")
            )));
        }
        out.push(name);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out.into())
}

/// `requiredFields`: up to 50 field names of 1 to 100 characters.
pub fn required_fields(names: &[String]) -> ApiResult<Value> {
    if names.len() > 50 {
        return Err(ApiError::BadInput("requiredFields: at most 50".into()));
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ApiError::BadInput(
                "requiredFields: each must be 1 to 100 characters".into(),
            ));
        }
        out.push(name.to_owned());
    }
    out.sort_unstable();
    out.dedup();
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{Region, verify};
    use chrono::Utc;
    use serde_json::json;

    fn list(min_score: i32, checks: &[&str], fields: &[&str]) -> list::Model {
        list::Model {
            id: "lst_x".into(),
            tenant_id: "ten_x".into(),
            name: "L".into(),
            active: true,
            inbound_token: "t".into(),
            default_phone_region: "BR".into(),
            min_score,
            required_checks: json!(checks),
            required_fields: json!(fields),
            dedupe_window_days: 30,
            dedupe_fields: json!(["email", "phone"]),
            aliases: json!([]),
            api_key_hash: None,
            thank_you_url: None,
            rate_limit_per_minute: None,
            score_weights: json!({}),
            created_at: Utc::now(),
            config_version: 0,
        }
    }

    fn lead(email: Option<&str>, phone: Option<&str>) -> Normalised {
        Normalised {
            email: email.map(str::to_owned),
            phone: phone.map(str::to_owned),
            ..Normalised::default()
        }
    }

    #[test]
    fn rules_give_reasons() {
        let good = lead(Some("ana@example.com"), Some("11987654321"));
        let bad_email = lead(Some("not an email"), None);
        let cases: [(&str, list::Model, &Normalised, i32, Vec<&str>); 6] = [
            (
                "neutral defaults accept anything",
                list(0, &[], &[]),
                &bad_email,
                0,
                vec![],
            ),
            (
                "below the minimum score",
                list(50, &[], &[]),
                &good,
                40,
                vec!["score 40 is below the minimum 50"],
            ),
            (
                "at the minimum score",
                list(50, &[], &[]),
                &good,
                50,
                vec![],
            ),
            (
                "required check failed and not done",
                list(0, &["email_valid", "phone_valid"], &[]),
                &bad_email,
                0,
                vec![
                    "required check email_valid failed",
                    "required check phone_valid not done",
                ],
            ),
            (
                "required checks passed",
                list(0, &["email_valid", "phone_valid"], &[]),
                &good,
                0,
                vec![],
            ),
            (
                "required field missing",
                list(0, &[], &["email", "state"]),
                &good,
                0,
                vec!["required field state missing"],
            ),
        ];
        for (case, list, lead, score, expected) in cases {
            let (v, _) = verify(lead, [127, 0, 0, 1].into(), Region::BR);
            assert_eq!(reasons(&list, lead, &v, score), expected, "{case}");
        }
    }

    #[test]
    fn lookup_checks_are_not_done_without_their_lookup() {
        let good = lead(Some("ana@example.com"), None);
        let (mut v, _) = verify(&good, [8, 8, 8, 8].into(), Region::BR);
        let l = list(0, &["cnpj_active", "ip_not_anonymous"], &[]);
        assert_eq!(
            reasons(&l, &good, &v, 0),
            [
                "required check cnpj_active not done",
                "required check ip_not_anonymous not done"
            ]
        );
        v.cnpj_status = Some(CnpjStatus::Active);
        v.ip_proxy = Some(false);
        v.ip_vpn = Some(false);
        assert!(reasons(&l, &good, &v, 0).is_empty());
        v.cnpj_status = Some(CnpjStatus::Suspended);
        v.ip_vpn = Some(true);
        assert_eq!(
            reasons(&l, &good, &v, 0),
            [
                "required check cnpj_active failed",
                "required check ip_not_anonymous failed"
            ]
        );
    }

    #[test]
    fn dedupe_keys_follow_the_list() {
        let both = lead(Some("a@b.co"), Some("+5511987654321"));
        let mut l = list(0, &[], &[]);
        assert_eq!(
            dedupe_keys(&l, &both),
            [
                ("email".to_owned(), "a@b.co".to_owned()),
                ("phone".to_owned(), "+5511987654321".to_owned())
            ]
        );
        l.dedupe_fields = json!(["phone"]);
        assert_eq!(dedupe_keys(&l, &lead(Some("a@b.co"), None)), []);
        l.dedupe_window_days = 0;
        assert_eq!(dedupe_keys(&l, &both), []);
    }

    #[test]
    fn validation_names_the_field() {
        let cases: [(&str, ApiResult<Value>, &str); 6] = [
            (
                "min score too high",
                min_score(101).map(Value::from),
                "minScore:",
            ),
            (
                "negative min score",
                min_score(-1).map(Value::from),
                "minScore:",
            ),
            (
                "window too long",
                dedupe_window(3651).map(Value::from),
                "dedupeWindowDays:",
            ),
            (
                "unknown check",
                one_of(
                    "requiredChecks",
                    &["email_valid".into(), "vibes".into()],
                    CHECKS,
                ),
                "requiredChecks: unknown \"vibes\"",
            ),
            (
                "unknown dedupe field",
                one_of("dedupeFields", &["cpf".into()], DEDUPE_FIELDS),
                "dedupeFields: unknown \"cpf\"",
            ),
            (
                "empty required field",
                required_fields(&[" ".into()]),
                "requiredFields:",
            ),
        ];
        for (case, got, prefix) in cases {
            let err = got.expect_err(case).to_string();
            assert!(err.starts_with(prefix), "{case}: {err}");
        }
        assert_eq!(min_score(100).ok(), Some(100));
        assert_eq!(dedupe_window(0).ok(), Some(0));
        assert_eq!(
            one_of(
                "dedupeFields",
                &["phone".into(), "email".into(), "phone".into()],
                DEDUPE_FIELDS
            )
            .ok(),
            Some(json!(["email", "phone"]))
        );
    }
}
