//! The request a delivery sends, built in one place for the engine and for the api's
//! `renderPreview`, so a preview is exactly what would go out: the URL and body of the
//! integration's kind ([`crate::preset`]: the mapping's body or the default
//! `lead.qualified` event for a webhook), its signature over those very bytes, our
//! headers, then the integration's.

use crate::{
    filter::Filter,
    mapping::FieldIssue,
    preset::{self, Settings, Step},
    secrets,
    signing::{self, SigningError},
    transform::Region,
};
use chrono::{DateTime, Utc};
use leadrelay_entity::{Endpoint, integration, lead, list};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Every request is a POST.
pub const METHOD: &str = "POST";

/// A request ready to send.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub url: String,
    /// Every header, ours first (`content-type`, and `webhook-*` unless the kind is a
    /// CRM), then the integration's.
    pub headers: Vec<(String, String)>,
    /// How many of `headers` are ours (shown whole in logs; the rest are secrets).
    ours: usize,
    pub body: Vec<u8>,
    /// Mapped fields left out of the body, and why.
    pub issues: Vec<FieldIssue>,
    /// Which request of the delivery this is: how its answer is read
    /// ([`preset::read`]).
    pub step: Step,
    /// The requests that follow this one when it succeeds, described for
    /// `renderPreview`.
    pub follow_ups: Vec<String>,
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
    #[error("the stored settings are unreadable: {0}")]
    Settings(serde_json::Error),
    #[error("cannot sign: {0}")]
    Signing(#[from] SigningError),
}

/// A stored filter or mapping (a JSON column), if there is one.
pub fn stored<T: DeserializeOwned>(column: Option<&Value>) -> Result<Option<T>, serde_json::Error> {
    column
        .filter(|v| !v.is_null())
        .map(T::deserialize)
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

/// Builds the next request delivering `lead` to the integration's `endpoint`, signed
/// (when its kind signs) as `webhook_id` at `now`. `progress` is the delivery's (what
/// its earlier requests produced; None for a fresh delivery and for previews).
#[allow(clippy::too_many_arguments)]
pub fn prepare(
    integration: &integration::Model,
    endpoint: Endpoint,
    lead: &lead::Model,
    list: &list::Model,
    headers: &[(String, String)],
    webhook_id: &str,
    now: DateTime<Utc>,
    progress: Option<&Value>,
) -> Result<Prepared, PrepareError> {
    let url = match (endpoint, &integration.fallback_url) {
        (Endpoint::Fallback, Some(fallback)) => fallback.as_str(),
        _ => integration.url.as_str(),
    };
    let mapping = stored(integration.mapping.as_ref()).map_err(PrepareError::Mapping)?;
    let settings = Settings::stored(integration).map_err(PrepareError::Settings)?;
    let built = preset::build(&preset::Input {
        integration,
        url,
        mapping: mapping.as_ref(),
        settings: &settings,
        progress,
        lead,
        list,
        region: phone_region(list),
    });
    let follow_ups = preset::follow_ups(&built, lead, list);
    let mut all = vec![("content-type".to_owned(), built.content_type.to_owned())];
    if built.signed {
        let timestamp = now.timestamp();
        let signature = signing::signature_header(
            &signing_secrets(integration, now),
            webhook_id,
            timestamp,
            &built.body,
        )?;
        all.extend([
            ("webhook-id".to_owned(), webhook_id.to_owned()),
            ("webhook-timestamp".to_owned(), timestamp.to_string()),
            ("webhook-signature".to_owned(), signature),
        ]);
    }
    let ours = all.len();
    all.extend(headers.iter().cloned());
    Ok(Prepared {
        url: built.url,
        headers: all,
        ours,
        body: built.body,
        issues: built.issues,
        step: built.step,
        follow_ups,
    })
}

/// The integration's filter's verdict on the lead of `context` (from
/// [`crate::payload::context`]; its `meta.integration_name` is set to the integration's here):
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
    match stored::<Filter>(integration.filter.as_ref()) {
        Ok(Some(filter)) => filter.evaluate(context),
        Ok(None) => (true, Vec::new()),
        Err(e) => {
            tracing::error!(integration_id = %integration.id, error = %e, "unreadable dispatch filter; the lead is dispatched");
            (true, Vec::new())
        }
    }
}
