//! The default outbound body: the `lead.qualified` event of ARCHITECTURE §9.

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
