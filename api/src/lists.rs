//! Lead lists: each has an inbound webhook URL and its own settings.

use crate::{
    auth::{auth, state},
    error::{ApiError, ApiResult, GqlResult},
    input,
    pagination::{Page, paginate},
    tenancy::{find_for_tenant, get_for_tenant, scoped},
};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use leadrelay_entity::list;
use leadrelay_worker::ids::{new_id, random_token};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, IntoActiveModel};

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
    pub created_at: DateTime<Utc>,
}

impl List {
    /// The API view of a row; `public_url` is the base of the inbound URL.
    pub fn new(m: list::Model, public_url: &str) -> Self {
        Self {
            inbound_url: format!("{public_url}/inbound/{}", m.inbound_token),
            id: m.id.into(),
            name: m.name,
            active: m.active,
            inbound_token: m.inbound_token,
            default_phone_region: m.default_phone_region,
            created_at: m.created_at,
        }
    }
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
            created_at: Set(Utc::now()),
        }
        .insert(&app.db)
        .await?;
        Ok(List::new(model, &app.public_url))
    }

    /// Changes a list's name, active flag or default phone region.
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
        let model = model.update(&app.db).await?;
        Ok(List::new(model, &app.public_url))
    }
}

/// Loads a list the caller's tenant owns (used by other modules' resolvers).
pub async fn load(ctx: &Context<'_>, tenant_id: &str, id: &str) -> ApiResult<List> {
    let app = state(ctx);
    let m = get_for_tenant::<list::Entity>(&app.db, tenant_id, id).await?;
    Ok(List::new(m, &app.public_url))
}
