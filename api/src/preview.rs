//! `renderPreview`: the request an integration would send for a sample lead, built by the
//! worker's own code (`leadrelay_worker::request`) from a lead read as intake reads one.
//! Nothing is stored and nothing is sent.

use crate::{
    auth::{auth, state},
    dispatch::ConditionResult,
    error::{ApiError, GqlResult},
    intake,
    integrations::{self, Header},
};
use async_graphql::{Context, ID, Json, Object, SimpleObject};
use chrono::Utc;
use leadrelay_entity::{Endpoint, LeadStatus};
use leadrelay_worker::{ids::new_id, payload, request};
use serde_json::Value;
use std::net::IpAddr;

/// What an integration would send for a lead, and whether its filter would take it.
#[derive(SimpleObject)]
pub struct RenderedRequest {
    pub method: String,
    pub url: String,
    /// As the attempt log shows them: ours whole, the integration's values redacted.
    pub headers: Vec<Header>,
    pub body: String,
    /// Whether the integration's filter takes the lead (true without a filter).
    pub filter_passed: bool,
    /// Each condition of the filter and how it went.
    pub conditions: Vec<ConditionResult>,
    /// Mapped fields left out of the body, and why (e.g. an unparsable date).
    pub warnings: Vec<String>,
    /// The requests sent after this one when it succeeds, as `METHOD url body` (e.g. a
    /// PIPEDRIVE lead linked to the person this one creates; what only the answer tells,
    /// like the person's id, is shown in angle brackets).
    pub follow_ups: Vec<String>,
    /// How the list's rules would classify the lead (only QUALIFIED leads are delivered;
    /// duplicates are not looked for).
    pub lead_status: LeadStatus,
}

/// `renderPreview`.
#[derive(Default)]
pub struct PreviewQuery;

#[Object]
impl PreviewQuery {
    /// The exact method, URL, headers (redacted) and body the integration would send for
    /// `sample` (lead fields, as posted to the inbound URL), and how its filter judges it.
    /// The lead is read as intake reads one (aliases, normalising, verification, score);
    /// its id and times are those of a lead received now, and `webhook-id` is a fresh id,
    /// so those differ from a real delivery's. `sourceIp` stands for the sender's address.
    /// Sends nothing. Another tenant's integration is NOT_FOUND.
    async fn render_preview(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        sample: Json<Value>,
        source_ip: Option<String>,
    ) -> GqlResult<RenderedRequest> {
        let (auth, app) = (auth(ctx)?, state(ctx));
        let (integration, list) =
            integrations::with_list(&app.db, &auth.tenant_id, &integration_id).await?;
        let headers = integrations::opened_headers(app, &auth.tenant_id, &integration.id).await?;
        let source_ip = source_ip
            .map(|ip| {
                ip.trim().parse::<IpAddr>().map_err(|_| {
                    ApiError::BadInput(format!("sourceIp: {ip:?} is not an IP address"))
                })
            })
            .transpose()?;
        let lead = intake::sample_lead(app, &list, sample.0, source_ip).await?;
        let mut context = payload::context(&lead, &list, &integration.name);
        let (filter_passed, conditions) = request::dispatch(&integration, &mut context);
        let prepared = request::prepare(
            &integration,
            Endpoint::Primary,
            &lead,
            &list,
            &headers,
            &new_id("dlv"),
            Utc::now(),
            None,
        )
        .map_err(|e| ApiError::internal("rendering a preview", e))?;
        Ok(RenderedRequest {
            method: request::METHOD.to_owned(),
            headers: prepared
                .shown_headers()
                .into_iter()
                .map(|(name, value_preview)| Header {
                    name,
                    value_preview,
                })
                .collect(),
            body: String::from_utf8_lossy(&prepared.body).into_owned(),
            url: prepared.url,
            filter_passed,
            conditions: conditions.into_iter().map(ConditionResult::from).collect(),
            warnings: prepared.issues.iter().map(ToString::to_string).collect(),
            follow_ups: prepared.follow_ups,
            lead_status: lead.status,
        })
    }
}
