//! Lead lists: each has an inbound webhook URL and its own settings.

use crate::{
    auth::{auth, state},
    error::{ApiError, ApiResult, GqlResult},
    input,
    normalise::Aliases,
    pagination::{Page, paginate},
    rules,
    score::Weights,
    tenancy::{find_for_tenant, get_for_tenant, scoped},
};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use leadrelay_entity::list;
use leadrelay_worker::ids::{new_id, random_token};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, IntoActiveModel};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A list's own field alias: inbound field `from` (compared case- and
/// punctuation-insensitively) means the canonical field `to` (`phone`, `state`, …).
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug)]
#[graphql(input_name = "FieldAliasInput")]
pub struct FieldAlias {
    pub from: String,
    pub to: String,
}

/// The points a list gives one score check (`scoreWeights`).
#[derive(SimpleObject, Clone, Debug)]
pub struct ScoreWeight {
    /// The check's name (`email_valid`, `completeness`, …).
    pub check: String,
    /// The points the list gives it: its own, or the default.
    pub points: i32,
    /// The points it has when the list does not set them.
    pub default_points: i32,
    /// What earns (or, for a penalty, costs) the points.
    pub description: String,
}

/// One check's points in `updateList(input: {scoreWeights: …})`.
#[derive(InputObject, Clone, Debug)]
pub struct ScoreWeightInput {
    /// A check named in `List.scoreWeights`.
    pub check: String,
    /// 0 to 100; penalties (`email_role`, `cnpj_invalid`) are taken off.
    pub points: i32,
}

/// A lead list as the API shows it.
#[derive(SimpleObject, Clone)]
pub struct List {
    pub id: ID,
    pub name: String,
    pub active: bool,
    /// Where lead sources POST leads.
    pub inbound_url: String,
    pub inbound_token: String,
    /// Region used to read phone numbers written without a country code (ISO 3166, "BR").
    pub default_phone_region: String,
    /// Leads scoring below this are DISQUALIFIED (0: none are).
    pub min_score: i32,
    /// Checks that must pass (`email_valid`, `phone_valid`, …).
    pub required_checks: Vec<String>,
    /// Fields that must be present (`email`, `company`, or a custom field's name).
    pub required_fields: Vec<String>,
    /// A lead repeating one of `dedupeFields` of a lead this many days old or newer is a
    /// DUPLICATE (0: duplicates are not looked for).
    pub dedupe_window_days: i32,
    pub dedupe_fields: Vec<String>,
    pub aliases: Vec<FieldAlias>,
    /// Whether inbound posts must carry the list's key in `X-API-Key`.
    pub require_api_key: bool,
    /// The new inbound API key, only in the answer of the mutation that made it: it is
    /// stored hashed and never shown again.
    pub api_key: Option<String>,
    /// Where plain HTML form posts are redirected (303) after intake.
    pub thank_you_url: Option<String>,
    /// Inbound posts allowed per minute (429 beyond it); null: no limit.
    pub rate_limit_per_minute: Option<i32>,
    /// The points of every score check on this list, defaults included.
    pub score_weights: Vec<ScoreWeight>,
    pub created_at: DateTime<Utc>,
}

impl List {
    /// The API view of a row; `public_url` is the base of the inbound URL.
    pub fn new(m: list::Model, public_url: &str) -> Self {
        let aliases = stored_aliases(&m);
        Self {
            inbound_url: format!("{public_url}/inbound/{}", m.inbound_token),
            id: m.id.into(),
            name: m.name,
            active: m.active,
            inbound_token: m.inbound_token,
            default_phone_region: m.default_phone_region,
            min_score: m.min_score,
            required_checks: rules::strings(&m.required_checks),
            required_fields: rules::strings(&m.required_fields),
            dedupe_window_days: m.dedupe_window_days,
            dedupe_fields: rules::strings(&m.dedupe_fields),
            aliases,
            require_api_key: m.api_key_hash.is_some(),
            api_key: None,
            thank_you_url: m.thank_you_url,
            rate_limit_per_minute: m.rate_limit_per_minute,
            score_weights: Weights::stored(&m.score_weights)
                .iter()
                .map(|(check, points)| ScoreWeight {
                    check: check.name.to_owned(),
                    points,
                    default_points: check.default,
                    description: check.about.to_owned(),
                })
                .collect(),
            created_at: m.created_at,
        }
    }

    fn with_api_key(mut self, key: Option<String>) -> Self {
        self.api_key = key;
        self
    }
}

fn stored_aliases(m: &list::Model) -> Vec<FieldAlias> {
    serde_json::from_value(m.aliases.clone()).unwrap_or_default()
}

/// The list's extra aliases for the normaliser (validated when they were set).
pub fn aliases(m: &list::Model) -> Aliases {
    let stored = stored_aliases(m);
    Aliases::new(stored.iter().map(|a| (a.from.as_str(), a.to.as_str()))).unwrap_or_default()
}

/// The stored form of an inbound API key.
pub fn hash_api_key(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh inbound API key (32 random bytes) and its hash.
fn new_api_key() -> (String, String) {
    let key = format!("lrk_{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()));
    let hash = hash_api_key(&key);
    (key, hash)
}

fn valid_aliases(aliases: &[FieldAlias]) -> ApiResult<serde_json::Value> {
    if aliases.len() > 200 {
        return Err(ApiError::BadInput("aliases: at most 200".into()));
    }
    Aliases::new(aliases.iter().map(|a| (a.from.as_str(), a.to.as_str())))
        .map_err(|e| ApiError::BadInput(format!("aliases: {e}")))?;
    serde_json::to_value(aliases).map_err(|e| ApiError::internal("serialising aliases", e))
}

/// An https URL with a host, or `None` for an empty string (clears it).
fn valid_thank_you_url(raw: &str) -> ApiResult<Option<String>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let bad = || {
        ApiError::BadInput("thankYouUrl: must be an https URL of at most 2048 characters".into())
    };
    let url = url::Url::parse(raw).map_err(|_| bad())?;
    if url.scheme() != "https" || url.host_str().is_none() || raw.len() > 2048 {
        return Err(bad());
    }
    Ok(Some(url.into()))
}

#[derive(InputObject)]
pub struct CreateListInput {
    pub name: String,
    #[graphql(default = true)]
    pub active: bool,
    #[graphql(default_with = "\"BR\".to_string()")]
    pub default_phone_region: String,
}

#[derive(InputObject)]
pub struct UpdateListInput {
    pub name: Option<String>,
    pub active: Option<bool>,
    pub default_phone_region: Option<String>,
    pub min_score: Option<i32>,
    pub required_checks: Option<Vec<String>>,
    pub required_fields: Option<Vec<String>>,
    pub dedupe_window_days: Option<i32>,
    pub dedupe_fields: Option<Vec<String>>,
    /// Replaces the list's aliases.
    pub aliases: Option<Vec<FieldAlias>>,
    /// Turning it on generates a key, shown once in `apiKey`; off forgets the key.
    pub require_api_key: Option<bool>,
    /// An empty string removes it.
    pub thank_you_url: Option<String>,
    /// 0 removes the limit.
    pub rate_limit_per_minute: Option<i32>,
    /// Replaces the list's score weights: checks left out get their default points (an
    /// empty list restores every default).
    pub score_weights: Option<Vec<ScoreWeightInput>>,
}

fn valid_region(raw: &str) -> ApiResult<String> {
    let region = raw.trim().to_ascii_uppercase();
    if region.len() == 2 && region.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(region)
    } else {
        Err(ApiError::BadInput(
            "defaultPhoneRegion: must be a two-letter country code such as BR or US".into(),
        ))
    }
}

/// `lists` and `list`.
#[derive(Default)]
pub struct ListQuery;

#[Object]
impl ListQuery {
    /// The tenant's lists, newest first.
    async fn lists(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<Page<List>> {
        let (auth, app) = (auth(ctx)?, state(ctx));
        let public_url = app.public_url.clone();
        Ok(paginate(
            &app.db,
            scoped::<list::Entity>(&auth.tenant_id),
            first,
            after,
            |m| List::new(m, &public_url),
        )
        .await?)
    }

    /// One list, or null when it does not exist for this tenant.
    async fn list(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<List>> {
        let (auth, app) = (auth(ctx)?, state(ctx));
        let found = find_for_tenant::<list::Entity>(&app.db, &auth.tenant_id, &id).await?;
        Ok(found.map(|m| List::new(m, &app.public_url)))
    }
}

/// `createList` and `updateList`.
#[derive(Default)]
pub struct ListMutation;

#[Object]
impl ListMutation {
    /// Creates a list with a fresh inbound URL.
    async fn create_list(&self, ctx: &Context<'_>, input: CreateListInput) -> GqlResult<List> {
        let (auth, app) = (auth(ctx)?, state(ctx));
        let model = list::ActiveModel {
            id: Set(new_id("lst")),
            tenant_id: Set(auth.tenant_id.clone()),
            name: Set(input::name("name", &input.name)?),
            active: Set(input.active),
            inbound_token: Set(random_token()),
            default_phone_region: Set(valid_region(&input.default_phone_region)?),
            min_score: Set(0),
            required_checks: Set(serde_json::json!([])),
            required_fields: Set(serde_json::json!([])),
            dedupe_window_days: Set(30),
            dedupe_fields: Set(serde_json::json!(rules::DEDUPE_FIELDS)),
            aliases: Set(serde_json::json!([])),
            api_key_hash: Set(None),
            thank_you_url: Set(None),
            rate_limit_per_minute: Set(None),
            score_weights: Set(serde_json::json!({})),
            created_at: Set(Utc::now()),
            config_version: Set(0),
        }
        .insert(&app.db)
        .await?;
        Ok(List::new(model, &app.public_url))
    }

    /// Changes a list's settings and rules; fields left out stay as they are.
    async fn update_list(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateListInput,
    ) -> GqlResult<List> {
        let (auth, app) = (auth(ctx)?, state(ctx));
        let mut model = get_for_tenant::<list::Entity>(&app.db, &auth.tenant_id, &id)
            .await?
            .into_active_model();
        if let Some(name) = &input.name {
            model.name = Set(input::name("name", name)?);
        }
        if let Some(active) = input.active {
            model.active = Set(active);
        }
        if let Some(region) = &input.default_phone_region {
            model.default_phone_region = Set(valid_region(region)?);
        }
        if let Some(n) = input.min_score {
            model.min_score = Set(rules::min_score(n)?);
        }
        if let Some(checks) = &input.required_checks {
            model.required_checks = Set(rules::one_of("requiredChecks", checks, rules::CHECKS)?);
        }
        if let Some(fields) = &input.required_fields {
            model.required_fields = Set(rules::required_fields(fields)?);
        }
        if let Some(days) = input.dedupe_window_days {
            model.dedupe_window_days = Set(rules::dedupe_window(days)?);
        }
        if let Some(fields) = &input.dedupe_fields {
            model.dedupe_fields = Set(rules::one_of("dedupeFields", fields, rules::DEDUPE_FIELDS)?);
        }
        if let Some(aliases) = &input.aliases {
            model.aliases = Set(valid_aliases(aliases)?);
        }
        if let Some(url) = &input.thank_you_url {
            model.thank_you_url = Set(valid_thank_you_url(url)?);
        }
        if let Some(n) = input.rate_limit_per_minute {
            let n = input::in_range("rateLimitPerMinute", n, 0..=1_000_000)?;
            model.rate_limit_per_minute = Set((n > 0).then_some(n));
        }
        if let Some(weights) = &input.score_weights {
            let given = weights.iter().map(|w| (w.check.as_str(), w.points));
            model.score_weights = Set(Weights::overrides(given)?);
        }
        let mut new_key = None;
        match (input.require_api_key, model.api_key_hash.as_ref().is_some()) {
            (Some(true), false) => {
                let (key, hash) = new_api_key();
                model.api_key_hash = Set(Some(hash));
                new_key = Some(key);
            }
            (Some(false), true) => model.api_key_hash = Set(None),
            _ => {}
        }
        let model = model.update(&app.db).await?;
        Ok(List::new(model, &app.public_url).with_api_key(new_key))
    }

    /// Gives the list a new inbound URL; the old one answers 404 from now on.
    async fn rotate_inbound_token(&self, ctx: &Context<'_>, list_id: ID) -> GqlResult<List> {
        let (auth, app) = (auth(ctx)?, state(ctx));
        let mut model = get_for_tenant::<list::Entity>(&app.db, &auth.tenant_id, &list_id)
            .await?
            .into_active_model();
        model.inbound_token = Set(random_token());
        let model = model.update(&app.db).await?;
        Ok(List::new(model, &app.public_url))
    }

    /// Replaces the inbound API key (and requires one from now on); the new key is in
    /// `apiKey` of this answer only.
    async fn rotate_inbound_api_key(&self, ctx: &Context<'_>, list_id: ID) -> GqlResult<List> {
        let (auth, app) = (auth(ctx)?, state(ctx));
        let mut model = get_for_tenant::<list::Entity>(&app.db, &auth.tenant_id, &list_id)
            .await?
            .into_active_model();
        let (key, hash) = new_api_key();
        model.api_key_hash = Set(Some(hash));
        let model = model.update(&app.db).await?;
        Ok(List::new(model, &app.public_url).with_api_key(Some(key)))
    }
}

/// Loads a list the caller's tenant owns (used by other modules' resolvers).
pub async fn load(ctx: &Context<'_>, tenant_id: &str, id: &str) -> ApiResult<List> {
    let app = state(ctx);
    let m = get_for_tenant::<list::Entity>(&app.db, tenant_id, id).await?;
    Ok(List::new(m, &app.public_url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thank_you_urls_must_be_https() {
        let cases = [
            (
                "https",
                "https://example.com/thanks",
                Ok(Some("https://example.com/thanks")),
            ),
            ("empty clears", "  ", Ok(None)),
            ("http", "http://example.com/thanks", Err(())),
            ("javascript", "javascript:alert(1)", Err(())),
            ("relative", "/thanks", Err(())),
        ];
        for (case, raw, expected) in cases {
            let got = valid_thank_you_url(raw);
            match expected {
                Ok(url) => assert_eq!(got.ok(), Some(url.map(str::to_owned)), "{case}"),
                Err(()) => assert!(
                    got.is_err_and(|e| e.to_string().starts_with("thankYouUrl:")),
                    "{case}"
                ),
            }
        }
    }

    #[test]
    fn api_keys_are_random_and_hashed() {
        let (a, hash) = new_api_key();
        let (b, _) = new_api_key();
        assert_ne!(a, b);
        assert!(a.starts_with("lrk_") && a.len() == 4 + 43, "{a}");
        assert_eq!(hash, hash_api_key(&a));
        assert_eq!(hash.len(), 64);
    }
}
