//! The inbound webhook `POST /inbound/{token}`: parse, normalise, verify and score, and in
//! ONE transaction store the lead and one delivery per active integration whose dispatch
//! filter it passes, then enqueue the deliveries.

use crate::{
    error::{ApiError, ApiResult},
    list_cache::ListConfig,
    lists,
    normalise::{Normalised, normalise},
    rules,
    score::{self, Weights},
    state::AppState,
    tenancy::scoped,
    verify::phone::DEFAULT_REGION,
};
use axum::{
    Json,
    body::Bytes,
    extract::{ConnectInfo, Path, RawQuery, State, rejection::BytesRejection},
    http::{
        HeaderMap, HeaderName, HeaderValue, Method, StatusCode,
        header::{ACCEPT, CONTENT_TYPE, LOCATION},
    },
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use leadrelay_entity::{
    DeliveryStatus, Endpoint, LeadStatus, delivery, idempotency_key, integration, lead, list,
};
use leadrelay_worker::{
    DeliverLead, db::set_values, engine, heartbeat, ids::new_id, metrics, payload, request,
};
use sea_orm::{
    ActiveEnum,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{
        Alias, Asterisk, CommonTableExpression, Expr, ExprTrait, Func, Query, SelectStatement,
        UnionType, WithClause,
    },
};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use subtle::ConstantTimeEq;
use tower_http::cors::{Any, CorsLayer};

/// A lead as its list reads it: the normalised fields (the phone in E.164 when valid),
/// the verifications, the score and the reasons the list's rules give against it.
pub struct Assessed {
    pub fields: Normalised,
    pub verifications: Value,
    pub score: i32,
    pub score_reasons: Vec<String>,
    pub reasons: Vec<String>,
}

/// Verifies (with the configured lookups), scores with the list's weights and applies
/// the list's rules to a lead sent from `source_ip`.
pub async fn assess(
    app: &AppState,
    list: &list::Model,
    mut fields: Normalised,
    source_ip: IpAddr,
) -> ApiResult<Assessed> {
    let region = list.default_phone_region.parse().unwrap_or(DEFAULT_REGION);
    let (verifications, e164) = app.lookups.verify(&fields, source_ip, region).await;
    let (score, score_reasons) = score::score(
        &fields,
        &verifications,
        &Weights::stored(&list.score_weights),
    );
    if e164.is_some() {
        fields.phone = e164;
    }
    let reasons = rules::reasons(list, &fields, &verifications, score);
    Ok(Assessed {
        verifications: serde_json::to_value(&verifications)
            .map_err(|e| ApiError::internal("serialising verifications", e))?,
        fields,
        score,
        score_reasons,
        reasons,
    })
}

/// The lead intake would make of `sample` (a JSON object of fields) on `list`, as if
/// posted from `source_ip` (a local address when None: not assessed): assessed, not
/// stored, no duplicate lookup.
pub async fn sample_lead(
    app: &AppState,
    list: &list::Model,
    sample: Value,
    source_ip: Option<IpAddr>,
) -> ApiResult<lead::Model> {
    let Value::Object(sample) = sample else {
        return Err(ApiError::BadInput(
            "sample: must be a JSON object of lead fields".into(),
        ));
    };
    let raw_body = Value::Object(sample.clone()).to_string();
    let fields = normalise(sample.into_iter().collect(), &lists::aliases(list));
    if fields.is_empty() {
        return Err(ApiError::BadInput("sample: the lead has no fields".into()));
    }
    let a = assess(
        app,
        list,
        fields,
        source_ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    )
    .await?;
    let status = if a.reasons.is_empty() {
        LeadStatus::Qualified
    } else {
        LeadStatus::Disqualified
    };
    let now = Utc::now();
    Ok(lead::Model {
        id: new_id("lead"),
        tenant_id: list.tenant_id.clone(),
        list_id: list.id.clone(),
        email: a.fields.email,
        name: a.fields.name,
        phone: a.fields.phone,
        company: a.fields.company,
        custom_fields: Value::Object(a.fields.custom_fields),
        verifications: a.verifications,
        score: Some(a.score),
        score_reasons: json!(a.score_reasons),
        status,
        reasons: json!(a.reasons),
        duplicate_of: None,
        is_test: false,
        source_ip: source_ip.map(|ip| ip.to_string()),
        raw_body,
        created_at: now,
        qualified_at: (status == LeadStatus::Qualified).then_some(now),
    })
}

/// The largest inbound body accepted.
pub const BODY_LIMIT: usize = 256 * 1024;

/// Reads the lead's fields: the body's, by its content type, then the query parameters
/// of the inbound URL (a body field wins over a query parameter of the same name).
pub async fn read_fields(
    content_type: Option<&str>,
    body: Bytes,
    query: Option<&str>,
) -> ApiResult<Vec<(String, Value)>> {
    let mut fields = if body.is_empty() && content_type.is_none() {
        Vec::new()
    } else {
        parse_body(content_type, body).await?
    };
    if let Some(query) = query {
        fields.extend(parse_form(query.as_bytes(), "query string")?);
    }
    Ok(fields)
}

const ACCEPTED: &str =
    "send application/json, application/x-www-form-urlencoded or multipart/form-data";

/// Reads the body as a list of fields according to its content type.
async fn parse_body(content_type: Option<&str>, body: Bytes) -> ApiResult<Vec<(String, Value)>> {
    let content_type = content_type.unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "application/json" || mime.ends_with("+json") {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => Ok(map.into_iter().collect()),
            Ok(_) => Err(ApiError::BadInput(
                "the JSON body must be an object of lead fields".into(),
            )),
            Err(e) => Err(ApiError::BadInput(format!("malformed JSON: {e}"))),
        }
    } else if mime == "application/x-www-form-urlencoded" {
        parse_form(&body, "form body")
    } else if mime == "multipart/form-data" {
        parse_multipart(content_type, body).await
    } else if mime.is_empty() {
        Err(ApiError::UnsupportedMediaType(format!(
            "missing Content-Type: {ACCEPTED}"
        )))
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "unsupported Content-Type {mime}: {ACCEPTED}"
        )))
    }
}

fn parse_form(bytes: &[u8], what: &str) -> ApiResult<Vec<(String, Value)>> {
    Ok(serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes)
        .map_err(|e| ApiError::BadInput(format!("malformed {what}: {e}")))?
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect())
}

/// The text fields of a multipart form; file parts are not lead fields and are skipped.
async fn parse_multipart(content_type: &str, body: Bytes) -> ApiResult<Vec<(String, Value)>> {
    let bad = |e: multer::Error| ApiError::BadInput(format!("malformed multipart body: {e}"));
    let boundary = multer::parse_boundary(content_type).map_err(bad)?;
    let stream = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut fields = Vec::new();
    while let Some(field) = form.next_field().await.map_err(bad)? {
        if field.file_name().is_some() {
            continue;
        }
        let Some(name) = field.name().map(str::to_owned) else {
            continue;
        };
        fields.push((name, Value::String(field.text().await.map_err(bad)?)));
    }
    Ok(fields)
}

/// CORS for `/inbound`: a form or script on any customer site may post leads.
pub fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::POST])
        .allow_headers([
            CONTENT_TYPE,
            HeaderName::from_static("x-api-key"),
            IDEMPOTENCY_KEY,
        ])
        .max_age(std::time::Duration::from_secs(86_400))
}

/// The header whose value makes a POST idempotent.
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// How long the first answer to an `Idempotency-Key` is replayed.
const IDEMPOTENCY_HOURS: i64 = 24;

/// `POST /inbound/{token}`: 202 with the lead id, its status and the reasons for it (or
/// a 303 to the list's thank-you page for a browser's form post). On PostgreSQL without
/// an `Idempotency-Key` the lead is taken with this process's copy of the list
/// ([`ListCache`](crate::list_cache::ListCache)) when it has one, checked by intake's statement itself; when the copy
/// is stale, or would turn the lead away, the list is read again and the lead taken anew.
#[tracing::instrument(skip_all, fields(list_id))]
pub async fn inbound(
    State(app): State<AppState>,
    Path(token): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let post = Post {
        peer,
        query,
        headers,
        body,
    };
    let checked = app.db.get_database_backend() == DbBackend::Postgres
        && !post.headers.contains_key(IDEMPOTENCY_KEY);
    let mut reason = "no_copy";
    if checked && let Some(copy) = app.lists.copy(&token).await {
        if let Some(response) = take_lead(&app, &copy, true, &post).await? {
            return Ok(response);
        }
        reason = "stale";
    }
    metrics::intake_list_read(reason);
    let config = app.lists.read(&app.db, &token).await?;
    take_lead(&app, &config, false, &post)
        .await?
        .ok_or_else(|| ApiError::internal("intake", "a list just read was found stale"))
}

/// What intake reads of an inbound POST besides its token.
struct Post {
    peer: SocketAddr,
    query: Option<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
}

/// Takes one lead for `config`'s list. With `copy` (a cached list, PostgreSQL, no
/// `Idempotency-Key`), None where the copy may be stale: it would turn the lead away, or
/// intake's statement found the list changed since (and stored nothing).
async fn take_lead(
    app: &AppState,
    config: &ListConfig,
    copy: bool,
    post: &Post,
) -> ApiResult<Option<Response>> {
    let (list, integrations) = &**config;
    tracing::Span::current().record("list_id", list.id.as_str());
    let headers = &post.headers;
    let admitted = admit(app, list, headers);
    if copy && admitted.is_err() {
        return Ok(None);
    }
    admitted?;
    let idempotency = idempotency_header(headers)?;
    let body = post.body.as_ref().map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge(format!("the body is larger than {} KiB", BODY_LIMIT / 1024))
        }
        _ => ApiError::BadInput(format!("could not read the body: {e}")),
    })?;
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let fields = normalise(
        read_fields(content_type, body.clone(), post.query.as_deref()).await?,
        &lists::aliases(list),
    );
    if fields.is_empty() {
        return Err(ApiError::Unprocessable("the lead has no fields".into()));
    }
    let source_ip = app.trusted_proxies.client_ip(post.peer.ip(), headers);
    let Assessed {
        fields,
        verifications,
        score,
        score_reasons,
        reasons,
    } = assess(app, list, fields, source_ip).await?;
    let now = Utc::now();
    let dedupe = Dedupe::new(list, &rules::dedupe_keys(list, &fields), idempotency, now);
    let qualified = reasons.is_empty();
    let mut lead = lead::Model {
        id: new_id("lead"),
        tenant_id: list.tenant_id.clone(),
        list_id: list.id.clone(),
        email: fields.email,
        name: fields.name,
        phone: fields.phone,
        company: fields.company,
        custom_fields: Value::Object(fields.custom_fields),
        verifications,
        score: Some(score),
        score_reasons: json!(score_reasons),
        status: if qualified {
            LeadStatus::Qualified
        } else {
            LeadStatus::Disqualified
        },
        reasons: json!(reasons),
        duplicate_of: None,
        is_test: false,
        source_ip: Some(source_ip.to_string()),
        // PostgreSQL text cannot hold U+0000: shown as U+FFFD, like invalid UTF-8.
        raw_body: String::from_utf8_lossy(body).replace('\0', "\u{fffd}"),
        created_at: now,
        qualified_at: qualified.then_some(now),
    };
    // Only a qualified lead is dispatched (a duplicate is not), and its filters read the
    // lead as stored.
    let targets = if qualified {
        dispatch_targets(list, integrations, &lead)
    } else {
        Vec::new()
    };
    let jobs = if app.db.get_database_backend() == DbBackend::Postgres && idempotency.is_none() {
        let version = copy.then_some(list.config_version);
        let Some((original, jobs)) =
            insert_unless_duplicate(&app.db, &lead, &targets, &dedupe, version).await?
        else {
            return Ok(None);
        };
        if let Some(original) = original {
            mark_duplicate(&mut lead, original);
        }
        jobs
    } else {
        let txn = app.db.begin().await?;
        let original = lock_and_find_original(&txn, &dedupe).await?;
        if let Some(key) = idempotency
            && let Some(first) = replay(&txn, &list.id, key, now).await?
        {
            return Ok(Some(respond(list, headers, first)));
        }
        let targets = match original {
            Some(original) => {
                mark_duplicate(&mut lead, original);
                &[][..]
            }
            None => &targets[..],
        };
        let jobs = insert_lead(&txn, &lead, targets).await?;
        if let Some(key) = idempotency {
            remember(&txn, &list.id, key, &answer(&lead), now).await?;
        }
        txn.commit().await?;
        jobs
    };

    metrics::intake_jobs("pushed", jobs.len());
    if !jobs.is_empty()
        && let Err(e) = app.queue.push(jobs).await
    {
        // The rows are in the ledger; the lead is accepted and will be found again there.
        tracing::warn!(error = %e, lead_id = lead.id, "enqueueing deliveries failed");
    }
    Ok(Some(respond(list, headers, answer(&lead))))
}

/// Whether the list takes a POST at all: active, its key given when it needs one, and its
/// rate limit not reached.
fn admit(app: &AppState, list: &list::Model, headers: &HeaderMap) -> ApiResult<()> {
    if !list.active {
        return Err(ApiError::Forbidden(
            "this list is inactive and does not accept leads".into(),
        ));
    }
    check_api_key(list, headers)?;
    app.rate_limits
        .check(&list.id, list.rate_limit_per_minute)
        .map_err(ApiError::RateLimited)
}

/// The lead as a duplicate of `original`: not qualified, and never dispatched.
fn mark_duplicate(lead: &mut lead::Model, original: String) {
    lead.status = LeadStatus::Duplicate;
    lead.reasons = json!([format!("{DUPLICATE_OF}{original}")]);
    lead.duplicate_of = Some(original);
    lead.qualified_at = None;
}

/// The reason a duplicate gives, before its original's id.
const DUPLICATE_OF: &str = "duplicate of ";

/// What the inbound webhook answers about a stored lead.
fn answer(lead: &lead::Model) -> Value {
    let mut answer = json!({
        "lead_id": lead.id,
        "status": match lead.status {
            LeadStatus::Qualified => "qualified",
            LeadStatus::Disqualified => "disqualified",
            LeadStatus::Duplicate => "duplicate",
        },
        "reasons": lead.reasons,
    });
    if let Some(original) = &lead.duplicate_of {
        answer["duplicate_of"] = json!(original);
    }
    answer
}

/// 401 unless the list needs no key or `X-API-Key` holds it (compared in constant time).
fn check_api_key(list: &list::Model, headers: &HeaderMap) -> ApiResult<()> {
    let Some(expected) = &list.api_key_hash else {
        return Ok(());
    };
    let given = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(lists::hash_api_key)
        .unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::Unauthenticated(
            "this list needs its key in X-API-Key".into(),
        ))
    }
}

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
fn idempotency_header(headers: &HeaderMap) -> ApiResult<Option<&str>> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(key))
        }
        _ => Err(ApiError::BadInput(
            "Idempotency-Key: must be 1 to 255 visible ASCII characters".into(),
        )),
    }
}

/// The first answer given to `key` on the list within the last 24 hours.
async fn replay(
    txn: &DatabaseTransaction,
    list_id: &str,
    key: &str,
    now: DateTime<Utc>,
) -> ApiResult<Option<Value>> {
    Ok(idempotency_key::Entity::find()
        .filter(idempotency_key::Column::ListId.eq(list_id))
        .filter(idempotency_key::Column::Key.eq(key))
        .filter(
            idempotency_key::Column::CreatedAt.gt(now - chrono::Duration::hours(IDEMPOTENCY_HOURS)),
        )
        .one(txn)
        .await?
        .map(|row| row.answer))
}

/// Keeps `answer` for retries of `key`, in place of an expired one.
async fn remember(
    txn: &DatabaseTransaction,
    list_id: &str,
    key: &str,
    answer: &Value,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::ListId.eq(list_id))
        .filter(idempotency_key::Column::Key.eq(key))
        .exec(txn)
        .await?;
    idempotency_key::Entity::insert(idempotency_key::ActiveModel {
        list_id: Set(list_id.to_owned()),
        key: Set(key.to_owned()),
        answer: Set(answer.clone()),
        created_at: Set(now),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// 202 with the answer, or a 303 to the list's thank-you page when a browser posted a
/// plain HTML form (a form content type and an `Accept` naming text/html before JSON).
fn respond(list: &list::Model, headers: &HeaderMap, answer: Value) -> Response {
    let location = list
        .thank_you_url
        .as_deref()
        .filter(|_| is_html_form(headers))
        .and_then(|url| HeaderValue::from_str(url).ok());
    match location {
        Some(location) => (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response(),
        None => (StatusCode::ACCEPTED, Json(answer)).into_response(),
    }
}

fn is_html_form(headers: &HeaderMap) -> bool {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let content_type = header(CONTENT_TYPE);
    let form = content_type.starts_with("application/x-www-form-urlencoded")
        || content_type.starts_with("multipart/form-data");
    let accept = header(ACCEPT);
    let html = accept.find("text/html");
    let json = accept.find("application/json");
    form && html.is_some_and(|h| json.is_none_or(|j| h < j))
}

/// The column [`Dedupe::select`] names the original's id.
const ORIGINAL: &str = "original";

/// Intake's duplicate check of one lead on PostgreSQL: transaction-scoped advisory locks
/// on the list's normalised keys (and the `Idempotency-Key`), taken in sorted order so two
/// leads sharing two keys cannot deadlock, then the oldest lead of the list within its
/// dedupe window sharing the email or the phone. `leadrelay_dedupe` (m0013) does both in
/// one call. SQLite runs one writing transaction at a time: no locks, one lookup per key.
struct Dedupe<'a> {
    list: &'a list::Model,
    locks: Vec<String>,
    email: Option<String>,
    phone: Option<String>,
    since: DateTime<Utc>,
}

impl<'a> Dedupe<'a> {
    fn new(
        list: &'a list::Model,
        keys: &[(String, String)],
        idempotency: Option<&str>,
        now: DateTime<Utc>,
    ) -> Self {
        let key = |field: &str| {
            keys.iter()
                .find(|(f, _)| f == field)
                .map(|(_, value)| value.clone())
        };
        let mut locks: Vec<String> = keys
            .iter()
            .map(|(f, v)| (f.as_str(), v.as_str()))
            .chain(idempotency.map(|k| ("idempotency", k)))
            .map(|(f, v)| format!("{}:{f}:{v}", list.id))
            .collect();
        locks.sort_unstable();
        Dedupe {
            list,
            locks,
            email: key("email"),
            phone: key("phone"),
            since: now - chrono::Duration::days(i64::from(list.dedupe_window_days)),
        }
    }

    /// `SELECT leadrelay_dedupe(…) AS original`: the original's id, or NULL.
    fn select(&self) -> ApiResult<SelectStatement> {
        let locks =
            serde_json::to_string(&self.locks).map_err(|e| ApiError::internal("dedupe keys", e))?;
        let call = Func::cust("leadrelay_dedupe").args([
            Expr::val(locks).cast_as(Alias::new("jsonb")),
            Expr::val(self.list.tenant_id.as_str()),
            Expr::val(self.list.id.as_str()),
            Expr::val(self.email.clone()),
            Expr::val(self.phone.clone()),
            Expr::val(self.since),
        ]);
        Ok(Query::select()
            .expr_as(call, Alias::new(ORIGINAL))
            .to_owned())
    }
}

/// The id of the oldest lead of the list within its dedupe window sharing a key, after
/// taking the locks ([`Dedupe`]); inside the transaction that stores the lead.
async fn lock_and_find_original(
    txn: &DatabaseTransaction,
    dedupe: &Dedupe<'_>,
) -> ApiResult<Option<String>> {
    if txn.get_database_backend() == DbBackend::Postgres {
        if dedupe.locks.is_empty() {
            return Ok(None);
        }
        let row = txn
            .query_one_raw(DbBackend::Postgres.build(&dedupe.select()?))
            .await?;
        return Ok(match row {
            Some(row) => row.try_get("", ORIGINAL)?,
            None => None,
        });
    }
    let mut oldest: Option<(String, DateTime<Utc>)> = None;
    for (column, value) in [
        (lead::Column::Email, &dedupe.email),
        (lead::Column::Phone, &dedupe.phone),
    ] {
        let Some(value) = value else { continue };
        let found: Option<(String, DateTime<Utc>)> = scoped::<lead::Entity>(&dedupe.list.tenant_id)
            .select_only()
            .column(lead::Column::Id)
            .column(lead::Column::CreatedAt)
            .filter(lead::Column::ListId.eq(dedupe.list.id.as_str()))
            .filter(column.eq(value.as_str()))
            .filter(lead::Column::CreatedAt.gte(dedupe.since))
            .filter(lead::Column::IsTest.eq(false))
            .filter(lead::Column::Status.ne(LeadStatus::Duplicate))
            .order_by_asc(lead::Column::CreatedAt)
            .into_tuple()
            .one(txn)
            .await?;
        if let Some(found) = found
            && oldest.as_ref().is_none_or(|(_, at)| found.1 < *at)
        {
            oldest = Some(found);
        }
    }
    Ok(oldest.map(|(id, _)| id))
}

/// Intake on PostgreSQL without an `Idempotency-Key`, in ONE statement (and its implicit
/// transaction): the duplicate check, then the lead, as a duplicate of the original it
/// found or as given, then unless it is a duplicate its deliveries to `targets`:
/// `WITH found AS (SELECT leadrelay_dedupe(…)), lead AS (INSERT INTO leads SELECT … FROM
/// found RETURNING …), queued AS (INSERT INTO deliveries SELECT … FROM lead WHERE
/// duplicate_of IS NULL …) SELECT duplicate_of FROM lead`. The function's lookups see a
/// snapshot taken after its locks, as inside a transaction. Returns the original (the
/// lead is then stored as [`mark_duplicate`] has it) or the jobs of the deliveries.
/// With `version` (the lead was assessed with the api's copy of its list) `found`
/// reads `FROM lists WHERE id = … AND config_version = …`: None when the list has changed
/// since, and nothing was stored or locked.
async fn insert_unless_duplicate(
    db: &impl ConnectionTrait,
    lead: &lead::Model,
    targets: &[&integration::Model],
    dedupe: &Dedupe<'_>,
    version: Option<i64>,
) -> ApiResult<Option<(Option<String>, Vec<DeliverLead>)>> {
    let (found, stored) = (Alias::new("found"), Alias::new("lead"));
    let original = Expr::col((found.clone(), Alias::new(ORIGINAL)));
    let fresh = || original.clone().is_null();
    let (columns, values) = set_values(&lead.clone().into_active_model());
    let values: Vec<Expr> = columns
        .iter()
        .zip(values)
        .map(|(column, value)| match column {
            lead::Column::Status => Expr::case(fresh(), value)
                .finally(Expr::val(LeadStatus::Duplicate.to_value()))
                .into(),
            lead::Column::Reasons => {
                Expr::case(fresh(), value)
                    .finally(Func::cust("jsonb_build_array").arg(
                        Func::cust("concat").args([Expr::val(DUPLICATE_OF), original.clone()]),
                    ))
                    .into()
            }
            lead::Column::DuplicateOf => original.clone(),
            lead::Column::QualifiedAt => Expr::case(fresh(), value).finally(Expr::null()).into(),
            _ => value,
        })
        .collect();
    let mut insert_lead = Query::insert();
    insert_lead
        .into_table(lead::Entity)
        .columns(columns)
        .select_from(Query::select().exprs(values).from(found.clone()).to_owned())
        .map_err(|e| ApiError::internal("the lead's insert", e))?
        .returning(Query::returning().column(lead::Column::DuplicateOf));
    let mut check = dedupe.select()?;
    if let Some(version) = version {
        check
            .from(list::Entity)
            .and_where(list::Column::Id.eq(lead.list_id.as_str()))
            .and_where(list::Column::ConfigVersion.eq(version));
    }
    let mut statement = WithClause::new();
    statement
        .cte(
            CommonTableExpression::new()
                .query(check)
                .table_name(found)
                .to_owned(),
        )
        .cte(
            CommonTableExpression::new()
                .query(insert_lead)
                .table_name(stored.clone())
                .to_owned(),
        );
    let jobs = new_jobs(targets);
    let mut rows = targets.iter().zip(&jobs).map(|(target, job)| {
        let (columns, values) = set_values(&delivery_row(lead, target, &job.delivery_id));
        let select = Query::select()
            .exprs(values)
            .from(stored.clone())
            .and_where(Expr::col((stored.clone(), lead::Column::DuplicateOf)).is_null())
            .to_owned();
        (columns, select)
    });
    if let Some((columns, mut select)) = rows.next() {
        for (_, other) in rows {
            select.union(UnionType::All, other);
        }
        let mut queued = Query::insert();
        queued
            .into_table(delivery::Entity)
            .columns(columns)
            .select_from(select)
            .map_err(|e| ApiError::internal("the deliveries' insert", e))?;
        statement.cte(
            CommonTableExpression::new()
                .query(queued)
                .table_name(Alias::new("queued"))
                .to_owned(),
        );
    }
    let statement = statement.query(
        Query::select()
            .column((stored.clone(), lead::Column::DuplicateOf))
            .expr_as(
                waiting_anyway(targets, lead.created_at),
                Alias::new(WAITING_ANYWAY),
            )
            .from(stored)
            .to_owned(),
    );
    let Some(row) = db
        .query_one_raw(DbBackend::Postgres.build(&statement))
        .await?
    else {
        return match version {
            Some(_) => Ok(None),
            None => Err(ApiError::internal("the lead's insert", "returned no row")),
        };
    };
    let original: Option<String> = row.try_get("", "duplicate_of")?;
    if original.is_some() {
        return Ok(Some((original, Vec::new())));
    }
    let waiting: Option<String> = row.try_get("", WAITING_ANYWAY)?;
    let waiting: Vec<&str> = waiting.iter().flat_map(|ids| ids.split(',')).collect();
    let (held, queued): (Vec<_>, Vec<_>) = jobs.into_iter().partition(|job| {
        job.integration_id
            .as_deref()
            .is_some_and(|id| waiting.contains(&id))
    });
    metrics::intake_jobs("waiting", held.len());
    Ok(Some((None, queued)))
}

/// The column of intake's statement that lists (comma-separated) the targets whose new
/// delivery gets no job ([`waiting_anyway`]).
const WAITING_ANYWAY: &str = "waiting_anyway";

/// `(SELECT string_agg(id, ',') FROM integrations WHERE id IN (targets) AND (NOT active
/// OR rows holding a slot >= its cap))`: the targets whose new delivery would only wait
/// in the ledger, paused, or with every slot of its cap ([`heartbeat::slot_cap`]:
/// `maxInFlight`, or fewer when the live workers give one integration fewer) held
/// ([`engine::holding_slot`]). Its job would be fetched and dropped (`Busy`), so none is
/// pushed: a settling delivery of the integration hands its slot to the oldest waiting
/// row (`leadrelay_swap`), reactivation enqueues a paused integration's rows, and the
/// sweeper covers anything else. The count is the statement's snapshot: a slot freed
/// before the lead commits, with nothing of the integration settling after, leaves the
/// row to the sweeper.
fn waiting_anyway(targets: &[&integration::Model], now: DateTime<Utc>) -> Expr {
    let in_flight = Query::select()
        .expr(Func::count(Expr::col(Asterisk)))
        .from(delivery::Entity)
        .and_where(
            Expr::col((delivery::Entity, delivery::Column::IntegrationId))
                .equals((integration::Entity, integration::Column::Id)),
        )
        .cond_where(engine::holding_slot(now))
        .to_owned();
    let waiting = Query::select()
        .expr(Func::cust("string_agg").args([
            Expr::col((integration::Entity, integration::Column::Id)),
            Expr::val(","),
        ]))
        .from(integration::Entity)
        .and_where(integration::Column::Id.is_in(targets.iter().map(|t| t.id.as_str())))
        .cond_where(
            Condition::any()
                .add(integration::Column::Active.eq(false))
                .add(
                    Expr::SubQuery(None, Box::new(in_flight.into())).gte(heartbeat::slot_cap(now)),
                ),
        )
        .to_owned();
    Expr::SubQuery(None, Box::new(waiting.into()))
}

/// The integrations of the list (read with it) that take `lead`: active, or waiting out
/// an automatic pause, and passing their dispatch filter. A lead none takes is stored and
/// visible, and goes nowhere.
fn dispatch_targets<'a>(
    list: &list::Model,
    integrations: &'a [integration::Model],
    lead: &lead::Model,
) -> Vec<&'a integration::Model> {
    let mut context = None;
    integrations
        .iter()
        // An auto-paused integration still gets its deliveries: they wait in the ledger
        // until it is active again. One switched off by hand gets none.
        .filter(|target| target.tenant_id == list.tenant_id)
        .filter(|target| target.active || target.paused_reason.is_some())
        .filter(|target| {
            target.filter.is_none()
                || request::dispatch(
                    target,
                    context.get_or_insert_with(|| payload::context(lead, list, &target.name)),
                )
                .0
        })
        .collect()
}

/// Inserts `lead` and one PENDING delivery of it to each of `targets` (a test delivery
/// for a test lead) in `txn`; returns their jobs. For test leads, leads with an
/// `Idempotency-Key` and SQLite: intake's own path on PostgreSQL is
/// [`insert_unless_duplicate`], one statement.
pub async fn insert_lead(
    txn: &DatabaseTransaction,
    lead: &lead::Model,
    targets: &[&integration::Model],
) -> ApiResult<Vec<DeliverLead>> {
    lead::Entity::insert(lead.clone().into_active_model())
        .exec_without_returning(txn)
        .await?;
    let jobs = new_jobs(targets);
    if !targets.is_empty() {
        let rows = targets
            .iter()
            .zip(&jobs)
            .map(|(target, job)| delivery_row(lead, target, &job.delivery_id));
        delivery::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(jobs)
}

/// The job of a new delivery to each of `targets`, in order: the delivery's id is made
/// here, for its row.
fn new_jobs(targets: &[&integration::Model]) -> Vec<DeliverLead> {
    targets
        .iter()
        .map(|target| DeliverLead::due(new_id("dlv"), &target.id))
        .collect()
}

/// A PENDING delivery of `lead` to `target`, due at once (a test delivery for a test
/// lead).
fn delivery_row(
    lead: &lead::Model,
    target: &integration::Model,
    id: &str,
) -> delivery::ActiveModel {
    let now = lead.created_at;
    delivery::ActiveModel {
        id: Set(id.to_owned()),
        tenant_id: Set(lead.tenant_id.clone()),
        lead_id: Set(lead.id.clone()),
        list_id: Set(lead.list_id.clone()),
        integration_id: Set(target.id.clone()),
        status: Set(DeliveryStatus::Pending),
        attempt_count: Set(0),
        next_attempt_at: Set(Some(now)),
        lease_until: Set(None),
        last_status_code: Set(None),
        is_test: Set(lead.is_test),
        endpoint: Set(Endpoint::Primary),
        ladder_attempts: Set(0),
        delivered_at: Set(None),
        progress: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, Value)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect()
    }

    /// (case, content type, body, query, expected)
    type Case<T> = (
        &'static str,
        Option<&'static str>,
        &'static [u8],
        Option<&'static str>,
        T,
    );

    async fn read(
        ct: Option<&str>,
        body: &[u8],
        query: Option<&str>,
    ) -> ApiResult<Vec<(String, Value)>> {
        read_fields(ct, Bytes::copy_from_slice(body), query).await
    }

    #[test]
    fn html_form_posts_are_recognised() {
        let cases = [
            (
                "browser form",
                "application/x-www-form-urlencoded",
                "text/html,application/xhtml+xml,*/*;q=0.8",
                true,
            ),
            (
                "browser multipart",
                "multipart/form-data; boundary=x",
                "text/html",
                true,
            ),
            (
                "script asking for json",
                "application/x-www-form-urlencoded",
                "application/json, text/html",
                false,
            ),
            ("json body", "application/json", "text/html", false),
            ("no accept", "application/x-www-form-urlencoded", "", false),
        ];
        for (case, content_type, accept, expected) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(ACCEPT, HeaderValue::from_static(accept));
            assert_eq!(is_html_form(&headers), expected, "{case}");
        }
    }

    #[test]
    fn idempotency_keys_are_bounded() {
        let cases = [
            ("uuid", "3f2b-11ee-9c1a", true),
            ("empty", "", false),
            ("space", "a b", false),
        ];
        for (case, value, ok) in cases {
            let mut headers = HeaderMap::new();
            headers.insert("idempotency-key", HeaderValue::from_static(value));
            assert_eq!(idempotency_header(&headers).is_ok(), ok, "{case}");
        }
        let long = "k".repeat(256);
        let mut headers = HeaderMap::new();
        headers.insert(
            "idempotency-key",
            HeaderValue::from_str(&long).expect("ascii"),
        );
        assert!(idempotency_header(&headers).is_err(), "too long");
        assert!(
            matches!(idempotency_header(&HeaderMap::new()), Ok(None)),
            "absent"
        );
    }

    #[tokio::test]
    async fn json_form_multipart_and_query_parse() {
        let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\na@b.co\r\n\
            --XyZ\r\nContent-Disposition: form-data; name=\"cv\"; filename=\"cv.txt\"\r\n\
            Content-Type: text/plain\r\n\r\nfile body\r\n\
            --XyZ\r\nContent-Disposition: form-data; name=\"nome\"\r\n\r\nAna S\r\n--XyZ--\r\n";
        let cases: &[Case<Vec<(String, Value)>>] = &[
            (
                "json",
                Some("application/json; charset=utf-8"),
                br#"{"email":"a@b.co"}"#,
                None,
                fields(&[("email", "a@b.co")]),
            ),
            (
                "form",
                Some("application/x-www-form-urlencoded"),
                b"email=a%40b.co&name=Ana+S",
                None,
                fields(&[("email", "a@b.co"), ("name", "Ana S")]),
            ),
            (
                "multipart, file skipped",
                Some("multipart/form-data; boundary=XyZ"),
                multipart.as_bytes(),
                None,
                fields(&[("email", "a@b.co"), ("nome", "Ana S")]),
            ),
            (
                "query only, no body",
                None,
                b"",
                Some("email=a%40b.co&utm_source=x"),
                fields(&[("email", "a@b.co"), ("utm_source", "x")]),
            ),
            (
                "body then query",
                Some("application/json"),
                br#"{"email":"a@b.co"}"#,
                Some("email=q%40b.co"),
                fields(&[("email", "a@b.co"), ("email", "q@b.co")]),
            ),
            ("nothing", None, b"", None, Vec::new()),
        ];
        for (case, ct, body, query, expected) in cases {
            let got = read(*ct, body, *query).await;
            assert!(matches!(&got, Ok(f) if f == expected), "{case}: {got:?}");
        }
    }

    #[tokio::test]
    async fn bad_bodies_get_the_right_error() {
        let cases: &[Case<&str>] = &[
            (
                "malformed json",
                Some("application/json"),
                b"{not json",
                None,
                "400",
            ),
            (
                "json array",
                Some("application/json"),
                b"[1,2]",
                None,
                "400",
            ),
            (
                "multipart without boundary",
                Some("multipart/form-data"),
                b"x",
                None,
                "400",
            ),
            (
                "truncated multipart",
                Some("multipart/form-data; boundary=XyZ"),
                b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb",
                None,
                "400",
            ),
            (
                "malformed query",
                Some("application/json"),
                b"{}",
                Some("a=%ZZ&b"),
                "ok",
            ),
            ("plain text", Some("text/plain"), b"hi", None, "415"),
            ("no content type", None, b"hi", None, "415"),
        ];
        for (case, ct, body, query, expected) in cases {
            let got = match read(*ct, body, *query).await {
                Ok(_) => "ok",
                Err(ApiError::BadInput(_)) => "400",
                Err(ApiError::UnsupportedMediaType(_)) => "415",
                Err(_) => "other",
            };
            assert_eq!(got, *expected, "{case}");
        }
    }

    /// PostgreSQL's jsonb keeps numbers as `numeric` and gives them back in full decimal
    /// form (the cases below are what it answers for them); a lead must read back as it was stored, or every later read of it (its
    /// GraphQL view, its delivery, the duplicate check of the next lead) fails.
    #[test]
    fn numbers_read_back_from_jsonb() {
        let zeros = |n: usize| "0".repeat(n);
        let cases = [
            (
                "f64::MAX",
                format!("17976931348623157{}", zeros(292)),
                f64::MAX,
            ),
            (
                "f64::MIN",
                format!("-17976931348623157{}", zeros(292)),
                f64::MIN,
            ),
            ("smallest subnormal", format!("0.{}5", zeros(323)), 5e-324),
            (
                "past u64",
                "18446744073709552000".to_owned(),
                1.8446744073709552e19,
            ),
        ];
        for (case, numeric, n) in cases {
            let back: Result<Value, _> = serde_json::from_str(&numeric);
            assert!(
                matches!(&back, Ok(v) if v.as_f64() == Some(n)),
                "{case}: read back as {back:?}"
            );
        }
    }

    fn content_types() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(prop_oneof![
            Just("application/json".to_owned()),
            Just("application/x-www-form-urlencoded".to_owned()),
            Just("multipart/form-data; boundary=XyZ".to_owned()),
            ".*",
        ])
    }

    fn bodies() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..256),
            "\\{(\"[a-z]{1,6}\":(\"[^\"]{0,8}\"|\\{\\}|[0-9]{1,4}),?){0,6}\\}".prop_map(String::into_bytes),
            "(--XyZ\r\nContent-Disposition: form-data; name=\"[a-z]{0,4}\"\r\n\r\n.{0,8}\r\n){0,3}(--XyZ--)?"
                .prop_map(String::into_bytes),
        ]
    }

    proptest! {
        /// Whatever arrives, the parser and the normaliser answer without panicking.
        #[test]
        fn the_inbound_parser_never_panics(
            content_type in content_types(),
            body in bodies(),
            query in proptest::option::of(".{0,40}"),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let read = read_fields(content_type.as_deref(), Bytes::from(body), query.as_deref());
            if let Ok(fields) = runtime.block_on(read) {
                let _ = normalise(fields, &crate::normalise::Aliases::default());
            }
        }
    }
}
