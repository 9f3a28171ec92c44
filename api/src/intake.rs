//! The inbound webhook `POST /inbound/{token}`: parse, normalise, and in ONE transaction
//! store the lead and one delivery per active integration, then enqueue the deliveries.

use crate::{
    error::{ApiError, ApiResult},
    state::AppState,
};
use axum::{
    Json,
    body::Bytes,
    extract::{ConnectInfo, Path, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header::CONTENT_TYPE},
};
use chrono::Utc;
use leadrelay_entity::{DeliveryStatus, Endpoint, LeadStatus, delivery, integration, lead, list};
use leadrelay_worker::ids::new_id;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, TransactionTrait,
};
use serde_json::{Map, Value, json};
use std::net::SocketAddr;

/// The largest inbound body accepted.
pub const BODY_LIMIT: usize = 256 * 1024;

/// The seven verification keys of the default body; null until verified.
const VERIFICATION_KEYS: [&str; 7] = [
    "email_valid",
    "phone_valid",
    "cnpj_valid",
    "cnpj_status",
    "ip_risk_score",
    "ip_proxy",
    "ip_vpn",
];

/// A lead's standard fields and the rest.
#[derive(Debug, Default, PartialEq)]
pub struct Normalised {
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub custom_fields: Map<String, Value>,
}

#[derive(Clone, Copy)]
enum Standard {
    Email,
    Name,
    Phone,
    Company,
}

/// Field names (lower case, letters and digits only) that mean a standard field.
const ALIASES: &[(&str, Standard)] = &[
    ("email", Standard::Email),
    ("emailaddress", Standard::Email),
    ("mail", Standard::Email),
    ("name", Standard::Name),
    ("fullname", Standard::Name),
    ("nome", Standard::Name),
    ("nomecompleto", Standard::Name),
    ("phone", Standard::Phone),
    ("phonenumber", Standard::Phone),
    ("telephone", Standard::Phone),
    ("mobile", Standard::Phone),
    ("telefone", Standard::Phone),
    ("celular", Standard::Phone),
    ("whatsapp", Standard::Phone),
    ("company", Standard::Company),
    ("companyname", Standard::Company),
    ("empresa", Standard::Company),
    ("organization", Standard::Company),
];

fn standard_field(key: &str) -> Option<Standard> {
    let folded: String = key
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == folded)
        .map(|(_, field)| *field)
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Maps field names to the standard fields; keeps everything else in `custom_fields`.
/// The first value of a standard field wins; a later one stays a custom field.
pub fn normalise(fields: Vec<(String, Value)>) -> Normalised {
    let mut lead = Normalised::default();
    for (key, value) in fields {
        let slot = match standard_field(&key) {
            Some(Standard::Email) => &mut lead.email,
            Some(Standard::Name) => &mut lead.name,
            Some(Standard::Phone) => &mut lead.phone,
            Some(Standard::Company) => &mut lead.company,
            None => {
                lead.custom_fields.insert(key, value);
                continue;
            }
        };
        match as_text(&value) {
            Some(text) if slot.is_none() => *slot = Some(text),
            _ => {
                lead.custom_fields.insert(key, value);
            }
        }
    }
    lead.email = lead.email.map(|e| e.to_lowercase());
    lead
}

/// Reads the body as a list of fields according to its content type.
pub fn parse_body(content_type: Option<&str>, body: &[u8]) -> ApiResult<Vec<(String, Value)>> {
    let mime = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let fields: Vec<(String, Value)> = if mime == "application/json" || mime.ends_with("+json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map.into_iter().collect(),
            Ok(_) => {
                return Err(ApiError::BadInput(
                    "the JSON body must be an object of lead fields".into(),
                ));
            }
            Err(e) => return Err(ApiError::BadInput(format!("malformed JSON: {e}"))),
        }
    } else if mime == "application/x-www-form-urlencoded" {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .map_err(|e| ApiError::BadInput(format!("malformed form body: {e}")))?
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect()
    } else if mime.is_empty() {
        return Err(ApiError::UnsupportedMediaType(
            "missing Content-Type: send application/json or application/x-www-form-urlencoded"
                .into(),
        ));
    } else {
        return Err(ApiError::UnsupportedMediaType(format!(
            "unsupported Content-Type {mime}: send application/json or application/x-www-form-urlencoded"
        )));
    };
    if fields.is_empty() {
        return Err(ApiError::Unprocessable("the lead has no fields".into()));
    }
    Ok(fields)
}

/// `POST /inbound/{token}`: 202 with the lead id and status.
#[tracing::instrument(skip_all, fields(list_id))]
pub async fn inbound(
    State(app): State<AppState>,
    Path(token): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let list = list::Entity::find()
        .filter(list::Column::InboundToken.eq(token.as_str()))
        .one(&app.db)
        .await?
        .ok_or(ApiError::NotFound("inbound token"))?;
    tracing::Span::current().record("list_id", list.id.as_str());
    if !list.active {
        return Err(ApiError::Forbidden(
            "this list is inactive and does not accept leads".into(),
        ));
    }
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge(format!("the body is larger than {} KiB", BODY_LIMIT / 1024))
        }
        _ => ApiError::BadInput(format!("could not read the body: {e}")),
    })?;
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let fields = normalise(parse_body(content_type, &body)?);

    let now = Utc::now();
    let lead_id = new_id("lead");
    let verifications: Map<String, Value> = VERIFICATION_KEYS
        .iter()
        .map(|k| ((*k).to_owned(), Value::Null))
        .collect();
    let txn = app.db.begin().await?;
    lead::Entity::insert(lead::ActiveModel {
        id: Set(lead_id.clone()),
        tenant_id: Set(list.tenant_id.clone()),
        list_id: Set(list.id.clone()),
        email: Set(fields.email),
        name: Set(fields.name),
        phone: Set(fields.phone),
        company: Set(fields.company),
        custom_fields: Set(Value::Object(fields.custom_fields)),
        verifications: Set(Value::Object(verifications)),
        score: Set(None),
        status: Set(LeadStatus::Qualified),
        is_test: Set(false),
        source_ip: Set(Some(peer.ip().to_string())),
        raw_body: Set(String::from_utf8_lossy(&body).into_owned()),
        created_at: Set(now),
        qualified_at: Set(Some(now)),
    })
    .exec_without_returning(&txn)
    .await?;
    let targets = integration::Entity::find()
        .filter(integration::Column::TenantId.eq(list.tenant_id.as_str()))
        .filter(integration::Column::ListId.eq(list.id.as_str()))
        // An auto-paused integration still gets its deliveries: they wait in the ledger
        // until it is active again. One switched off by hand gets none.
        .filter(
            Condition::any()
                .add(integration::Column::Active.eq(true))
                .add(integration::Column::PausedReason.is_not_null()),
        )
        .all(&txn)
        .await?;
    let delivery_ids: Vec<String> = targets.iter().map(|_| new_id("dlv")).collect();
    if !targets.is_empty() {
        let rows = targets
            .iter()
            .zip(&delivery_ids)
            .map(|(target, id)| delivery::ActiveModel {
                id: Set(id.clone()),
                tenant_id: Set(list.tenant_id.clone()),
                lead_id: Set(lead_id.clone()),
                list_id: Set(list.id.clone()),
                integration_id: Set(target.id.clone()),
                status: Set(DeliveryStatus::Pending),
                attempt_count: Set(0),
                next_attempt_at: Set(Some(now)),
                lease_until: Set(None),
                last_status_code: Set(None),
                is_test: Set(false),
                endpoint: Set(Endpoint::Primary),
                ladder_attempts: Set(0),
                delivered_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            });
        delivery::Entity::insert_many(rows)
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;

    if let Err(e) = app.queue.push(delivery_ids).await {
        // The rows are in the ledger; the lead is accepted and will be found again there.
        tracing::warn!(error = %e, lead_id, "enqueueing deliveries failed");
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "lead_id": lead_id, "status": "qualified", "reasons": [] })),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn aliases_map_to_standard_fields() {
        let lead = normalise(fields(&[
            ("E-mail", json!("  Ana@Example.com ")),
            ("full_name", json!("Ana Souza")),
            ("phone_number", json!(5511999999999_u64)),
            ("Company Name", json!("ACME")),
            ("utm_source", json!("google")),
        ]));
        assert_eq!(lead.email.as_deref(), Some("ana@example.com"));
        assert_eq!(lead.name.as_deref(), Some("Ana Souza"));
        assert_eq!(lead.phone.as_deref(), Some("5511999999999"));
        assert_eq!(lead.company.as_deref(), Some("ACME"));
        assert_eq!(lead.custom_fields["utm_source"], json!("google"));
    }

    #[test]
    fn non_text_and_repeated_standard_fields_stay_custom() {
        let lead = normalise(fields(&[
            ("email", json!({"a": 1})),
            ("mail", json!("x@y.z")),
            ("e_mail", json!("second@y.z")),
        ]));
        assert_eq!(lead.email.as_deref(), Some("x@y.z"));
        assert_eq!(lead.custom_fields["email"], json!({"a": 1}));
        assert_eq!(lead.custom_fields["e_mail"], json!("second@y.z"));
    }

    #[test]
    fn json_and_form_bodies_parse() {
        let json_fields = parse_body(
            Some("application/json; charset=utf-8"),
            br#"{"email":"a@b.co"}"#,
        )
        .unwrap();
        assert_eq!(json_fields, fields(&[("email", json!("a@b.co"))]));
        let form = parse_body(
            Some("application/x-www-form-urlencoded"),
            b"email=a%40b.co&name=Ana+S",
        )
        .unwrap();
        assert_eq!(
            form,
            fields(&[("email", json!("a@b.co")), ("name", json!("Ana S"))])
        );
    }

    #[test]
    fn bad_bodies_get_the_right_error() {
        let code = |ct: Option<&str>, body: &[u8]| parse_body(ct, body).unwrap_err();
        assert!(matches!(
            code(Some("application/json"), b"{not json"),
            ApiError::BadInput(_)
        ));
        assert!(matches!(
            code(Some("application/json"), b"[1,2]"),
            ApiError::BadInput(_)
        ));
        assert!(matches!(
            code(Some("application/json"), b"{}"),
            ApiError::Unprocessable(_)
        ));
        assert!(matches!(
            code(Some("application/x-www-form-urlencoded"), b""),
            ApiError::Unprocessable(_)
        ));
        assert!(matches!(
            code(Some("text/plain"), b"hi"),
            ApiError::UnsupportedMediaType(_)
        ));
        assert!(matches!(
            code(None, b"hi"),
            ApiError::UnsupportedMediaType(_)
        ));
    }
}
