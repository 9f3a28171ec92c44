//! The default outbound body (the `lead.qualified` event of ARCHITECTURE §9) and the path
//! space filters and mappings read from: that body plus a `meta` object.

use chrono::{DateTime, SecondsFormat, Utc};
use leadrelay_entity::{lead, list};
use serde_json::{Value, json};

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Renders the `lead.qualified` event for a lead of a list.
pub fn lead_qualified(lead: &lead::Model, list: &list::Model) -> Value {
    json!({
        "event": "lead.qualified",
        "lead": {
            "id": lead.id,
            "email": lead.email,
            "name": lead.name,
            "phone": lead.phone,
            "company": lead.company,
            "score": lead.score,
            "status": lead.status,
            "custom_fields": lead.custom_fields,
            "verifications": lead.verifications,
            "created_at": rfc3339(lead.created_at),
            "qualified_at": lead.qualified_at.map(rfc3339),
        },
        "list": { "id": list.id, "name": list.name },
    })
}

/// The one value filters are evaluated on and mappings read from, built the same way at
/// intake (filters), in the worker (mappings) and by `renderPreview`: the default body
/// plus `meta`.
pub fn context(lead: &lead::Model, list: &list::Model, integration_name: &str) -> Value {
    let mut context = lead_qualified(lead, list);
    context["meta"] = json!({
        "lead_id": lead.id,
        "list_id": list.id,
        "received_at": rfc3339(lead.created_at),
        "source_ip": lead.source_ip,
        "integration_name": integration_name,
    });
    context
}

/// A filter or mapping refused at save time: the field at fault (`filter.conditions[2].field`)
/// and why, so the API can answer `BAD_USER_INPUT` naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    /// `field` is wrong because of `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The fixed paths of the path space.
const LEAVES: &[&str] = &[
    "event",
    "lead.id",
    "lead.email",
    "lead.name",
    "lead.phone",
    "lead.company",
    "lead.score",
    "lead.status",
    "lead.created_at",
    "lead.qualified_at",
    "lead.custom_fields",
    "lead.verifications",
    "list.id",
    "list.name",
    "meta.lead_id",
    "meta.list_id",
    "meta.received_at",
    "meta.source_ip",
    "meta.integration_name",
];

/// Objects whose keys are the lead's own: any key below them is a valid path.
const OPEN: &[&str] = &["lead.custom_fields.", "lead.verifications."];

/// The longest path accepted, in bytes.
const MAX_PATH: usize = 256;

/// Checks that `path` names a field of the path space (`lead.email`,
/// `lead.custom_fields.state`, `meta.lead_id`, …). A custom field whose name holds a dot
/// cannot be named. The error says what is wrong, without the field's name.
pub fn check_path(path: &str) -> Result<(), String> {
    if path.len() > MAX_PATH {
        return Err(format!("a path is at most {MAX_PATH} bytes"));
    }
    if LEAVES.contains(&path) {
        return Ok(());
    }
    if let Some(rest) = OPEN.iter().find_map(|prefix| path.strip_prefix(prefix)) {
        if rest.split('.').all(|segment| !segment.trim().is_empty()) {
            return Ok(());
        }
        return Err(format!("{path:?} has an empty segment"));
    }
    Err(format!(
        "unknown field path {path:?}: use one of {}, or lead.custom_fields.<name>, lead.verifications.<name>",
        LEAVES.join(", ")
    ))
}

/// The value at a dotted `path` of `context` (an array is indexed by a number segment);
/// None when absent. Null is a value here: callers decide what null means.
pub fn lookup<'a>(context: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(context, |value, segment| match value {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_are_accepted() {
        for path in [
            "lead.email",
            "lead.score",
            "lead.custom_fields.state",
            "lead.custom_fields.address.city",
            "lead.verifications.email_valid",
            "list.name",
            "meta.lead_id",
            "meta.integration_name",
        ] {
            assert_eq!(check_path(path), Ok(()), "{path}");
        }
    }

    #[test]
    fn unknown_paths_are_refused() {
        for path in [
            "",
            "lead",
            "lead.mail",
            "lead.custom_fields.",
            "lead.custom_fields..x",
            "list.token",
            "meta.secret",
            "meta",
            "email",
        ] {
            assert!(check_path(path).is_err(), "{path}");
        }
        assert!(check_path(&format!("lead.custom_fields.{}", "x".repeat(300))).is_err());
    }

    #[test]
    fn lookup_walks_objects_and_arrays() {
        let ctx = json!({"lead": {"custom_fields": {"tags": ["a", "b"], "n": null}}});
        assert_eq!(lookup(&ctx, "lead.custom_fields.tags.1"), Some(&json!("b")));
        assert_eq!(lookup(&ctx, "lead.custom_fields.n"), Some(&Value::Null));
        assert_eq!(lookup(&ctx, "lead.custom_fields.missing"), None);
        assert_eq!(lookup(&ctx, "lead.custom_fields.tags.x"), None);
    }
}
