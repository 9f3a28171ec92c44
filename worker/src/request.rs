//! The request a delivery sends, built in one place for the engine and for the api's
//! `renderPreview`, so a preview is exactly what would go out: the body (the mapping's,
//! or the default `lead.qualified` event), its signature over those very bytes, our
//! headers, then the integration's.

use crate::{
    filter::Filter,
    mapping::{FieldIssue, Mapping},
    payload, secrets,
    signing::{self, SigningError},
    transform::Region,
};
use chrono::{DateTime, Utc};
use leadrelay_entity::{Endpoint, integration, lead, list};
use serde_json::Value;

/// Every request is a POST.
pub const METHOD: &str = "POST";

/// A request ready to send.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub url: String,
    /// Every header, ours first (`content-type`, `webhook-*`), then the integration's.
    pub headers: Vec<(String, String)>,
    /// How many of `headers` are ours (shown whole in logs; the rest are secrets).
    ours: usize,
    pub body: Vec<u8>,
    /// Mapped fields left out of the body, and why.
    pub issues: Vec<FieldIssue>,
}

impl Prepared {
    /// The headers as the attempt log shows them: ours whole, the integration's values
    /// as previews.
    pub fn shown_headers(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .enumerate()
            .map(|(i, (name, value))| {
                let shown = if i < self.ours {
                    value.clone()
                } else {
                    secrets::preview(value)
                };
                (name.clone(), shown)
            })
            .collect()
    }
}

/// Why a request cannot be built: the integration's stored configuration is unreadable
/// (only a hand-edited row can be: the API validates what it stores).
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("the stored mapping is unreadable: {0}")]
    Mapping(serde_json::Error),
    #[error("cannot sign: {0}")]
    Signing(#[from] SigningError),
}

/// The integration's filter, if it has one.
pub fn stored_filter(
    integration: &integration::Model,
) -> Result<Option<Filter>, serde_json::Error> {
    integration
        .filter
        .as_ref()
        .filter(|v| !v.is_null())
        .map(|v| serde_json::from_value(v.clone()))
        .transpose()
}

/// The integration's field mapping, if it has one.
pub fn stored_mapping(
    integration: &integration::Model,
) -> Result<Option<Mapping>, serde_json::Error> {
    integration
        .mapping
        .as_ref()
        .filter(|v| !v.is_null())
        .map(|v| serde_json::from_value(v.clone()))
        .transpose()
}

/// The region phone numbers without a country code are read in: the list's.
pub fn phone_region(list: &list::Model) -> Region {
    list.default_phone_region.parse().unwrap_or(Region::BR)
}

/// The secrets that sign an integration's requests at `now`: the current one, and the
/// previous one during the 24 hours after a rotation.
fn signing_secrets(integration: &integration::Model, now: DateTime<Utc>) -> Vec<&str> {
    let mut secrets = vec![integration.signing_secret.as_str()];
    if let (Some(previous), Some(until)) = (
        &integration.previous_signing_secret,
        integration.previous_secret_expires_at,
    ) && until > now
    {
        secrets.push(previous);
    }
    secrets
}

/// The body for `lead`: the integration's mapping, or the default event.
pub fn body(
    integration: &integration::Model,
    lead: &lead::Model,
    list: &list::Model,
) -> Result<(&'static str, Vec<u8>, Vec<FieldIssue>), PrepareError> {
    Ok(
        match stored_mapping(integration).map_err(PrepareError::Mapping)? {
            Some(mapping) => {
                let context = payload::context(lead, list, &integration.name);
                let rendered = mapping.render(&context, phone_region(list));
                (rendered.content_type, rendered.body, rendered.issues)
            }
            None => (
                "application/json",
                serde_json::to_vec(&payload::lead_qualified(lead, list)).unwrap_or_default(),
                Vec::new(),
            ),
        },
    )
}

/// Builds the request delivering `lead` to the integration's `endpoint`, signed as
/// `webhook_id` at `now`.
pub fn prepare(
    integration: &integration::Model,
    endpoint: Endpoint,
    lead: &lead::Model,
    list: &list::Model,
    headers: &[(String, String)],
    webhook_id: &str,
    now: DateTime<Utc>,
) -> Result<Prepared, PrepareError> {
    let url = match (endpoint, &integration.fallback_url) {
        (Endpoint::Fallback, Some(fallback)) => fallback.clone(),
        _ => integration.url.clone(),
    };
    let (content_type, body, issues) = body(integration, lead, list)?;
    let timestamp = now.timestamp();
    let signature = signing::signature_header(
        &signing_secrets(integration, now),
        webhook_id,
        timestamp,
        &body,
    )?;
    let mut all: Vec<(String, String)> = [
        ("content-type", content_type.to_owned()),
        ("webhook-id", webhook_id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v))
    .collect();
    let ours = all.len();
    all.extend(headers.iter().cloned());
    Ok(Prepared {
        url,
        headers: all,
        ours,
        body,
        issues,
    })
}

/// The integration's filter's verdict on the lead of `context` (from
/// [`payload::context`]; its `meta.integration_name` is set to the integration's here):
/// whether it passes and, per condition, how it went. No filter passes every lead; an
/// unreadable stored filter (only a hand-edited row) passes too, and says so in the log,
/// so a lead is never held back by a broken row.
pub fn dispatch(
    integration: &integration::Model,
    context: &mut Value,
) -> (bool, Vec<crate::filter::ConditionResult>) {
    if let Some(meta) = context.get_mut("meta").and_then(Value::as_object_mut) {
        meta.insert("integration_name".into(), integration.name.clone().into());
    }
    match stored_filter(integration) {
        Ok(Some(filter)) => filter.evaluate(context),
        Ok(None) => (true, Vec::new()),
        Err(e) => {
            tracing::error!(integration_id = %integration.id, error = %e, "unreadable dispatch filter; the lead is dispatched");
            (true, Vec::new())
        }
    }
}
