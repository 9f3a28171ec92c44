//! Integrations: where a list's qualified leads go. Header values are secrets: written
//! through the API, never read back (only a preview). A preset kind (HUBSPOT, PIPEDRIVE,
//! ZAPIER, MAKE, N8N) is checked at save time by the worker's rules
//! (`leadrelay_worker::preset`): its URL, the credential header it needs, its mapping.

use crate::{
    auth::{RequireRole, auth, state, subscriber},
    dispatch::{self, Filter, FilterInput, Mapping, MappingInput},
    error::{ApiError, ApiResult, GqlResult},
    input,
    lists::{self, List},
    state::AppState,
    tenancy::{find_for_tenant, get_for_tenant, scoped},
};
use async_graphql::{
    ComplexObject, Context, ID, InputObject, MaybeUndefined, Object, SimpleObject, Subscription,
};
use axum::http::{HeaderName, HeaderValue};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use leadrelay_entity::{
    DeliveryStatus, IntegrationKind, Role, delivery, integration, integration_header, list,
};
use leadrelay_worker::{
    Event,
    ids::new_id,
    preset,
    queue::DeliverLead,
    request,
    secrets::{self, SecretKey},
    signing,
    targets::TargetPolicy,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait, sea_query::Expr,
};
use std::ops::RangeInclusive;

/// A header as the API shows it: its name and a preview of its value.
#[derive(SimpleObject, Clone)]
pub struct Header {
    pub name: String,
    pub value_preview: String,
}

/// An integration as the API shows it.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Integration {
    pub id: ID,
    pub name: String,
    pub kind: IntegrationKind,
    pub url: String,
    pub fallback_url: Option<String>,
    pub active: bool,
    pub timeout_ms: i32,
    pub max_in_flight: i32,
    /// Pause after this many consecutive failed deliveries; null: never.
    pub auto_pause_after: Option<i32>,
    /// Why the integration was paused automatically, if it was.
    pub paused_reason: Option<String>,
    pub health: Health,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub tenant_id: String,
    #[graphql(skip)]
    pub list_id: String,
    #[graphql(skip)]
    signing_secret: String,
    #[graphql(skip)]
    stored_filter: Option<serde_json::Value>,
    #[graphql(skip)]
    stored_mapping: Option<serde_json::Value>,
    #[graphql(skip)]
    stored_settings: Option<serde_json::Value>,
}

/// How an integration's deliveries are going.
#[derive(SimpleObject, Clone)]
pub struct Health {
    /// Failed deliveries in a row since the last success.
    pub consecutive_failures: i32,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
}

impl From<integration::Model> for Integration {
    fn from(m: integration::Model) -> Self {
        Self {
            id: m.id.into(),
            name: m.name,
            kind: m.kind,
            url: m.url,
            fallback_url: m.fallback_url,
            active: m.active,
            timeout_ms: m.timeout_ms,
            max_in_flight: m.max_in_flight,
            auto_pause_after: m.auto_pause_after,
            paused_reason: m.paused_reason,
            health: Health {
                consecutive_failures: m.consecutive_failures,
                last_success_at: m.last_success_at,
                last_failure_at: m.last_failure_at,
            },
            created_at: m.created_at,
            updated_at: m.updated_at,
            tenant_id: m.tenant_id,
            list_id: m.list_id,
            signing_secret: m.signing_secret,
            stored_filter: m.filter,
            stored_mapping: m.mapping,
            stored_settings: m.settings,
        }
    }
}

#[ComplexObject]
impl Integration {
    /// Custom headers sent with every request; values are write-only.
    async fn headers(&self, ctx: &Context<'_>) -> GqlResult<Vec<Header>> {
        Ok(opened_headers(state(ctx), &self.tenant_id, &self.id)
            .await?
            .into_iter()
            .map(|(name, value)| Header {
                value_preview: secrets::preview(&value),
                name,
            })
            .collect())
    }

    /// The status of the latest test delivery (`sendTestLead`); null before the first.
    /// An integration can be activated without a successful test.
    async fn last_test_status(&self, ctx: &Context<'_>) -> GqlResult<Option<DeliveryStatus>> {
        Ok(scoped::<delivery::Entity>(&self.tenant_id)
            .filter(delivery::Column::IntegrationId.eq(self.id.as_str()))
            .filter(delivery::Column::IsTest.eq(true))
            .order_by_desc(delivery::Column::CreatedAt)
            .order_by_desc(delivery::Column::Id)
            .one(&state(ctx).db)
            .await?
            .map(|d| d.status))
    }

    /// The `whsec_` secret receivers verify signatures with (OWNER and ADMIN only).
    #[graphql(guard = "RequireRole(Role::Admin)")]
    async fn signing_secret(&self) -> &str {
        &self.signing_secret
    }

    /// The list whose leads this integration receives.
    async fn list(&self, ctx: &Context<'_>) -> GqlResult<List> {
        Ok(lists::load(ctx, &self.tenant_id, &self.list_id).await?)
    }

    /// Which of the list's qualified leads this integration takes; null: all of them.
    async fn filter(&self) -> Option<Filter> {
        dispatch::filter_from_store(self.stored_filter.as_ref())
    }

    /// The body this integration sends; null: the default `lead.qualified` event (for a
    /// preset: its own body, which the mapping's fields are merged into for HUBSPOT and
    /// PIPEDRIVE, or replace for ZAPIER, MAKE and N8N).
    async fn mapping(&self) -> Option<Mapping> {
        dispatch::mapping_from_store(self.stored_mapping.as_ref())
    }

    /// A PIPEDRIVE integration's settings; null for other kinds.
    async fn pipedrive(&self) -> Option<PipedriveSettings> {
        (self.kind == IntegrationKind::Pipedrive).then(|| {
            let settings = self
                .stored_settings
                .clone()
                .and_then(|v| serde_json::from_value::<preset::Settings>(v).ok())
                .unwrap_or_default();
            PipedriveSettings {
                create_lead: settings.create_lead,
            }
        })
    }
}

/// A PIPEDRIVE integration's settings.
#[derive(SimpleObject)]
pub struct PipedriveSettings {
    /// Whether a lead (Leads Inbox) linked to the person is created too.
    pub create_lead: bool,
}

/// A PIPEDRIVE integration's settings.
#[derive(InputObject)]
pub struct PipedriveInput {
    /// Also create a lead in the Leads Inbox, linked to the person (a second request).
    #[graphql(default)]
    pub create_lead: bool,
}

/// A header to send; `value` is stored and never shown again.
#[derive(InputObject)]
pub struct HeaderInput {
    pub name: String,
    pub value: String,
}

#[derive(InputObject)]
pub struct CreateIntegrationInput {
    pub list_id: ID,
    pub name: String,
    #[graphql(default_with = "IntegrationKind::Webhook")]
    pub kind: IntegrationKind,
    /// The target (for HUBSPOT and PIPEDRIVE: the API's base URL, e.g.
    /// `https://acme.pipedrive.com`). Required, except for HUBSPOT
    /// (`https://api.hubapi.com`).
    pub url: Option<String>,
    /// Where deliveries go when the URL's last attempt failed (not for HUBSPOT and
    /// PIPEDRIVE).
    pub fallback_url: Option<String>,
    #[graphql(default = true)]
    pub active: bool,
    /// Per-request timeout, 100 to 30,000 ms.
    #[graphql(default = 10000)]
    pub timeout_ms: i32,
    /// Deliveries of this integration in flight at once across all workers.
    #[graphql(default = 8)]
    pub max_in_flight: i32,
    #[graphql(default)]
    pub headers: Vec<HeaderInput>,
    /// Pause after this many consecutive failed deliveries (1 to 1000); unset: never.
    pub auto_pause_after: Option<i32>,
    /// Which qualified leads to take; unset: all of them.
    pub filter: Option<FilterInput>,
    /// The body to send; unset: the default `lead.qualified` event.
    pub mapping: Option<MappingInput>,
    /// PIPEDRIVE only.
    pub pipedrive: Option<PipedriveInput>,
}

/// Fields given are changed; `headers` given replaces them all; `fallbackUrl`, `filter`
/// and `mapping` set to null are removed.
#[derive(InputObject)]
pub struct UpdateIntegrationInput {
    pub name: Option<String>,
    pub url: Option<String>,
    pub fallback_url: MaybeUndefined<String>,
    pub active: Option<bool>,
    pub timeout_ms: Option<i32>,
    pub max_in_flight: Option<i32>,
    pub headers: Option<Vec<HeaderInput>>,
    /// `null` turns auto-pause off.
    pub auto_pause_after: MaybeUndefined<i32>,
    /// `null` removes the filter: every qualified lead.
    pub filter: MaybeUndefined<FilterInput>,
    /// `null` removes the mapping: the default body.
    pub mapping: MaybeUndefined<MappingInput>,
    /// PIPEDRIVE only.
    pub pipedrive: Option<PipedriveInput>,
}

const MAX_HEADERS: usize = 50;
/// Headers the HTTP layer owns; a customer value would break or smuggle requests.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Checks an integration's URL: the target rules, then those of its `kind` (see
/// `leadrelay_worker::preset::check_url`; the development switch skips their host-name
/// checks).
fn valid_url(
    field: &str,
    raw: &str,
    kind: IntegrationKind,
    policy: &TargetPolicy,
) -> ApiResult<String> {
    let bad = |e: String| ApiError::BadInput(format!("{field}: {e}"));
    let url = policy.check_url(raw).map_err(|e| bad(e.to_string()))?;
    preset::check_url(kind, &url, policy.allow_insecure).map_err(bad)?;
    Ok(url.to_string())
}

/// Checks a fallback URL: the target rules (a hook's fallback may be another tool, as
/// the flat body suits any); the CRMs have none.
fn valid_fallback(raw: &str, kind: IntegrationKind, policy: &TargetPolicy) -> ApiResult<String> {
    if !preset::takes_fallback(kind) {
        return Err(ApiError::BadInput(format!(
            "fallbackUrl: a {} integration has no fallback URL (its body fits that API only)",
            kind_name(kind)
        )));
    }
    valid_url("fallbackUrl", raw, IntegrationKind::Webhook, policy)
}

/// The kind as the API names it.
fn kind_name(kind: IntegrationKind) -> &'static str {
    match kind {
        IntegrationKind::Webhook => "WEBHOOK",
        IntegrationKind::Hubspot => "HUBSPOT",
        IntegrationKind::Pipedrive => "PIPEDRIVE",
        IntegrationKind::Zapier => "ZAPIER",
        IntegrationKind::Make => "MAKE",
        IntegrationKind::N8n => "N8N",
    }
}

/// Checks that `headers` carry the credential `kind` needs.
fn valid_credentials(kind: IntegrationKind, headers: &[(String, String)]) -> ApiResult<()> {
    preset::check_headers(kind, headers).map_err(|e| ApiError::BadInput(format!("headers: {e}")))
}

/// The stored settings of an integration of `kind` given `pipedrive`.
fn valid_settings(
    kind: IntegrationKind,
    pipedrive: Option<PipedriveInput>,
) -> ApiResult<Option<serde_json::Value>> {
    match (kind, pipedrive) {
        (_, None) => Ok(None),
        (IntegrationKind::Pipedrive, Some(p)) => Ok(serde_json::to_value(preset::Settings {
            create_lead: p.create_lead,
        })
        .ok()),
        (kind, Some(_)) => Err(ApiError::BadInput(format!(
            "pipedrive: only a PIPEDRIVE integration takes these settings, not a {}",
            kind_name(kind)
        ))),
    }
}

/// Per-request timeout bounds, in ms.
const TIMEOUT_MS: RangeInclusive<i32> = 100..=30_000;
/// Bounds of `maxInFlight` and `autoPauseAfter`.
const PER_INTEGRATION: RangeInclusive<i32> = 1..=1000;

fn valid_headers(headers: &[HeaderInput]) -> ApiResult<Vec<(String, String)>> {
    if headers.len() > MAX_HEADERS {
        return Err(ApiError::BadInput(format!(
            "headers: at most {MAX_HEADERS}"
        )));
    }
    let mut seen = std::collections::HashSet::new();
    headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let name = HeaderName::from_bytes(h.name.trim().as_bytes()).map_err(|_| {
                ApiError::BadInput(format!(
                    "headers[{i}].name: {:?} is not a valid header name",
                    h.name
                ))
            })?;
            if RESERVED_HEADERS.contains(&name.as_str()) {
                return Err(ApiError::BadInput(format!(
                    "headers[{i}].name: {name} is set by LeadRelay and cannot be overridden"
                )));
            }
            if !seen.insert(name.clone()) {
                return Err(ApiError::BadInput(format!(
                    "headers[{i}].name: {name} is given twice"
                )));
            }
            HeaderValue::from_str(&h.value).map_err(|_| {
                ApiError::BadInput(format!("headers[{i}].value: must be visible ASCII text"))
            })?;
            Ok((name.to_string(), h.value.clone()))
        })
        .collect()
}

/// The tenant's integration and its list; another tenant's id is NOT_FOUND.
pub async fn with_list(
    db: &impl ConnectionTrait,
    tenant_id: &str,
    id: &str,
) -> ApiResult<(integration::Model, list::Model)> {
    let integration = get_for_tenant::<integration::Entity>(db, tenant_id, id).await?;
    let list = get_for_tenant::<list::Entity>(db, tenant_id, &integration.list_id).await?;
    Ok((integration, list))
}

/// An integration's headers in order, names and opened values, for previews: a value
/// that does not open (sealed under another key) is empty, so it shows nothing.
pub async fn opened_headers(
    app: &AppState,
    tenant_id: &str,
    integration_id: &str,
) -> ApiResult<Vec<(String, String)>> {
    let rows = scoped::<integration_header::Entity>(tenant_id)
        .filter(integration_header::Column::IntegrationId.eq(integration_id))
        .order_by_asc(integration_header::Column::Position)
        .all(&app.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|h| {
            let value = secrets::open_header(&app.secret_key, &h).unwrap_or_default();
            (h.name, value)
        })
        .collect())
}

/// Replaces an integration's headers, their values sealed with `key`.
async fn replace_headers(
    db: &impl ConnectionTrait,
    key: &SecretKey,
    tenant_id: &str,
    integration_id: &str,
    headers: Vec<(String, String)>,
) -> ApiResult<()> {
    integration_header::Entity::delete_many()
        .filter(integration_header::Column::TenantId.eq(tenant_id))
        .filter(integration_header::Column::IntegrationId.eq(integration_id))
        .exec(db)
        .await?;
    if headers.is_empty() {
        return Ok(());
    }
    let rows =
        headers
            .into_iter()
            .enumerate()
            .map(|(i, (name, value))| integration_header::ActiveModel {
                id: Set(new_id("hdr")),
                tenant_id: Set(tenant_id.to_owned()),
                integration_id: Set(integration_id.to_owned()),
                position: Set(i32::try_from(i).unwrap_or(i32::MAX)),
                value: Set(key.seal(&value, &secrets::header_context(integration_id, &name))),
                name: Set(name),
            });
    integration_header::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Seals the header values stored in plain text before sealing existed; returns how
/// many. Run at startup, so every value at rest is sealed.
pub async fn seal_plain_headers(db: &impl ConnectionTrait, key: &SecretKey) -> ApiResult<usize> {
    let plain: Vec<integration_header::Model> = integration_header::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .filter(|h| !secrets::is_sealed(&h.value))
        .collect();
    for h in &plain {
        integration_header::Entity::update_many()
            .col_expr(
                integration_header::Column::Value,
                Expr::value(key.seal(
                    &h.value,
                    &secrets::header_context(&h.integration_id, &h.name),
                )),
            )
            .filter(integration_header::Column::Id.eq(h.id.as_str()))
            .exec(db)
            .await?;
    }
    Ok(plain.len())
}

/// `integration`.
#[derive(Default)]
pub struct IntegrationQuery;

#[Object]
impl IntegrationQuery {
    /// One integration, or null when it does not exist for this tenant.
    async fn integration(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<Integration>> {
        let (auth, app) = (auth(ctx)?, state(ctx));
        Ok(
            find_for_tenant::<integration::Entity>(&app.db, &auth.tenant_id, &id)
                .await?
                .map(Integration::from),
        )
    }
}

/// `createIntegration` and `updateIntegration`.
#[derive(Default)]
pub struct IntegrationMutation;

#[Object]
impl IntegrationMutation {
    /// Adds an integration to a list.
    async fn create_integration(
        &self,
        ctx: &Context<'_>,
        input: CreateIntegrationInput,
    ) -> GqlResult<Integration> {
        let (auth, app) = (auth(ctx)?, state(ctx));
        let list = get_for_tenant::<list::Entity>(&app.db, &auth.tenant_id, &input.list_id).await?;
        let kind = input.kind;
        let headers = valid_headers(&input.headers)?;
        let url = match input.url.as_deref().or(preset::default_url(kind)) {
            Some(url) => valid_url("url", url, kind, &app.targets)?,
            None => {
                return Err(ApiError::BadInput(format!(
                    "url: required for a {} integration",
                    kind_name(kind)
                ))
                .into());
            }
        };
        let fallback_url = input
            .fallback_url
            .as_deref()
            .map(|u| valid_fallback(u, kind, &app.targets))
            .transpose()?;
        valid_credentials(kind, &headers)?;
        let filter = input.filter.map(dispatch::filter_to_store).transpose()?;
        let mapping = input
            .mapping
            .map(|m| dispatch::mapping_to_store(m, kind, request::phone_region(&list)))
            .transpose()?;
        let settings = valid_settings(kind, input.pipedrive)?;
        let now = Utc::now();
        let model = integration::ActiveModel {
            id: Set(new_id("int")),
            tenant_id: Set(auth.tenant_id.clone()),
            list_id: Set(list.id),
            name: Set(input::name("name", &input.name)?),
            kind: Set(kind),
            url: Set(url),
            fallback_url: Set(fallback_url),
            active: Set(input.active),
            timeout_ms: Set(input::in_range("timeoutMs", input.timeout_ms, TIMEOUT_MS)?),
            max_in_flight: Set(input::in_range(
                "maxInFlight",
                input.max_in_flight,
                PER_INTEGRATION,
            )?),
            signing_secret: Set(signing::generate_secret()),
            previous_signing_secret: Set(None),
            previous_secret_expires_at: Set(None),
            auto_pause_after: Set(input
                .auto_pause_after
                .map(|n| input::in_range("autoPauseAfter", n, PER_INTEGRATION))
                .transpose()?),
            consecutive_failures: Set(0),
            last_success_at: Set(None),
            last_failure_at: Set(None),
            paused_reason: Set(None),
            filter: Set(filter),
            mapping: Set(mapping),
            settings: Set(settings),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let txn = app.db.begin().await?;
        let model = model.insert(&txn).await?;
        replace_headers(&txn, &app.secret_key, &auth.tenant_id, &model.id, headers).await?;
        txn.commit().await?;
        Ok(model.into())
    }

    /// Changes an integration; the next delivery uses the new settings.
    async fn update_integration(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateIntegrationInput,
    ) -> GqlResult<Integration> {
        let (auth, app) = (auth(ctx)?, state(ctx));
        let current = get_for_tenant::<integration::Entity>(&app.db, &auth.tenant_id, &id).await?;
        let reactivated = !current.active && input.active == Some(true);
        let list_id = current.list_id.clone();
        let kind = current.kind;
        let mut model = current.into_active_model();
        match input.filter {
            MaybeUndefined::Value(filter) => {
                model.filter = Set(Some(dispatch::filter_to_store(filter)?))
            }
            MaybeUndefined::Null => model.filter = Set(None),
            MaybeUndefined::Undefined => {}
        }
        match input.mapping {
            MaybeUndefined::Value(mapping) => {
                let list =
                    get_for_tenant::<list::Entity>(&app.db, &auth.tenant_id, &list_id).await?;
                model.mapping = Set(Some(dispatch::mapping_to_store(
                    mapping,
                    kind,
                    request::phone_region(&list),
                )?))
            }
            MaybeUndefined::Null => model.mapping = Set(None),
            MaybeUndefined::Undefined => {}
        }
        if let Some(name) = &input.name {
            model.name = Set(input::name("name", name)?);
        }
        if let Some(url) = &input.url {
            model.url = Set(valid_url("url", url, kind, &app.targets)?);
        }
        match &input.fallback_url {
            MaybeUndefined::Value(url) => {
                model.fallback_url = Set(Some(valid_fallback(url, kind, &app.targets)?))
            }
            MaybeUndefined::Null => model.fallback_url = Set(None),
            MaybeUndefined::Undefined => {}
        }
        if let Some(active) = input.active {
            model.active = Set(active);
        }
        if reactivated {
            model.paused_reason = Set(None);
            model.consecutive_failures = Set(0);
        }
        match input.auto_pause_after {
            MaybeUndefined::Value(n) => {
                model.auto_pause_after =
                    Set(Some(input::in_range("autoPauseAfter", n, PER_INTEGRATION)?))
            }
            MaybeUndefined::Null => model.auto_pause_after = Set(None),
            MaybeUndefined::Undefined => {}
        }
        if let Some(ms) = input.timeout_ms {
            model.timeout_ms = Set(input::in_range("timeoutMs", ms, TIMEOUT_MS)?);
        }
        if let Some(n) = input.max_in_flight {
            model.max_in_flight = Set(input::in_range("maxInFlight", n, PER_INTEGRATION)?);
        }
        let headers = input.headers.as_deref().map(valid_headers).transpose()?;
        if let Some(headers) = &headers {
            valid_credentials(kind, headers)?;
        }
        if let Some(settings) = valid_settings(kind, input.pipedrive)? {
            model.settings = Set(Some(settings));
        }
        model.updated_at = Set(Utc::now());
        let txn = app.db.begin().await?;
        let model = model.update(&txn).await?;
        if let Some(headers) = headers {
            replace_headers(&txn, &app.secret_key, &auth.tenant_id, &model.id, headers).await?;
        }
        txn.commit().await?;
        if reactivated {
            enqueue_waiting(app, &auth.tenant_id, &model.id).await?;
        }
        Ok(model.into())
    }

    /// Starts signing with a new secret; the old one keeps signing alongside it for 24
    /// hours, so receivers can switch without losing a lead.
    #[graphql(guard = "RequireRole(Role::Admin)")]
    async fn rotate_signing_secret(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
    ) -> GqlResult<Integration> {
        let (auth, app) = (auth(ctx)?, state(ctx));
        let current =
            get_for_tenant::<integration::Entity>(&app.db, &auth.tenant_id, &integration_id)
                .await?;
        let now = Utc::now();
        let mut model = current.clone().into_active_model();
        model.previous_signing_secret = Set(Some(current.signing_secret));
        model.previous_secret_expires_at = Set(Some(now + SECRET_OVERLAP));
        model.signing_secret = Set(signing::generate_secret());
        model.updated_at = Set(now);
        Ok(model.update(&app.db).await?.into())
    }
}

/// An integration that changed state by itself, as subscribers see it.
#[derive(SimpleObject)]
pub struct IntegrationEvent {
    pub integration: Integration,
    pub active: bool,
    /// Why it changed (e.g. paused after consecutive failed deliveries).
    pub reason: Option<String>,
}

/// `integrationUpdates`.
#[derive(Default)]
pub struct IntegrationSubscription;

#[Subscription]
impl IntegrationSubscription {
    /// Integrations of the tenant (optionally of one list) that paused themselves.
    async fn integration_updates(
        &self,
        ctx: &Context<'_>,
        list_id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = IntegrationEvent> + use<>> {
        let (tenant_id, app) = subscriber(ctx, list_id.as_ref()).await?;
        let events = app.events.stream().filter_map(move |event| {
            let mine = match event {
                Event::Integration(e)
                    if e.tenant_id == tenant_id
                        && list_id.as_ref().is_none_or(|id| id.as_str() == e.list_id) =>
                {
                    Some(e)
                }
                _ => None,
            };
            std::future::ready(mine)
        });
        Ok(events.filter_map(move |e| {
            let db = app.db.clone();
            async move {
                let row =
                    get_for_tenant::<integration::Entity>(&db, &e.tenant_id, &e.integration_id)
                        .await
                        .ok()?;
                Some(IntegrationEvent {
                    integration: row.into(),
                    active: e.active,
                    reason: e.reason,
                })
            }
        }))
    }
}

/// How long the previous signing secret keeps signing after a rotation.
const SECRET_OVERLAP: chrono::Duration = chrono::Duration::hours(24);

/// Re-enqueues an integration's due deliveries when it is active again (they waited in
/// the ledger while it was paused).
async fn enqueue_waiting(app: &AppState, tenant_id: &str, integration_id: &str) -> ApiResult<()> {
    let ids: Vec<String> = scoped::<delivery::Entity>(tenant_id)
        .select_only()
        .column(delivery::Column::Id)
        .filter(delivery::Column::IntegrationId.eq(integration_id))
        .filter(
            delivery::Column::Status
                .is_in([DeliveryStatus::Pending, DeliveryStatus::RetryScheduled]),
        )
        .into_tuple()
        .all(&app.db)
        .await?;
    let jobs = ids
        .into_iter()
        .map(|id| DeliverLead::due(id, integration_id));
    if let Err(e) = app.queue.push(jobs).await {
        // The sweeper finds them in the ledger.
        tracing::warn!(error = %e, integration_id, "enqueueing deliveries of a reactivated integration");
    }
    Ok(())
}

/// Loads an integration of the caller's tenant (for other modules' resolvers).
pub async fn load(ctx: &Context<'_>, tenant_id: &str, id: &str) -> ApiResult<Integration> {
    Ok(
        get_for_tenant::<integration::Entity>(&state(ctx).db, tenant_id, id)
            .await?
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, value: &str) -> HeaderInput {
        HeaderInput {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn custom_headers_are_accepted() {
        let ok = valid_headers(&[
            header("Authorization", "Bearer x"),
            header("X-API-Key", "k"),
        ])
        .unwrap();
        assert_eq!(ok[0].0, "authorization");
    }

    #[test]
    fn reserved_headers_are_refused_by_name() {
        for name in ["Host", "Content-Length", "Transfer-Encoding", "Connection"] {
            let err = valid_headers(&[header(name, "x")]).unwrap_err().to_string();
            assert!(err.contains("headers[0].name"), "{err}");
        }
    }

    #[test]
    fn bad_header_names_and_values_are_refused() {
        assert!(valid_headers(&[header("Bad Name", "x")]).is_err());
        assert!(valid_headers(&[header("X-A", "line\nbreak")]).is_err());
        assert!(valid_headers(&[header("X-A", "1"), header("x-a", "2")]).is_err());
    }
}
