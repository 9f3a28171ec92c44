//! Tenant scoping by construction: every lookup of a tenant-owned row goes through
//! [`scoped`] or [`find_for_tenant`], so a forgotten filter cannot compile into a query.
//! Another tenant's id reads exactly as a missing one.

use crate::error::{ApiError, ApiResult};
use leadrelay_entity::{delivery, delivery_attempt, integration, integration_header, lead, list};
use leadrelay_worker::ids::has_prefix;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Select, UpdateMany};

/// An entity whose rows belong to a tenant.
pub trait TenantOwned: EntityTrait {
    /// Prefix of the entity's ids (`lst`, `int`, …).
    const ID_PREFIX: &'static str;
    /// What a missing row is called in errors.
    const NOUN: &'static str;
    fn tenant_column() -> Self::Column;
    fn id_column() -> Self::Column;
}

macro_rules! tenant_owned {
    ($($module:ident => $prefix:literal, $noun:literal;)*) => {$(
        impl TenantOwned for $module::Entity {
            const ID_PREFIX: &'static str = $prefix;
            const NOUN: &'static str = $noun;
            fn tenant_column() -> Self::Column { $module::Column::TenantId }
            fn id_column() -> Self::Column { $module::Column::Id }
        }
    )*};
}

tenant_owned! {
    list => "lst", "list";
    integration => "int", "integration";
    integration_header => "hdr", "header";
    lead => "lead", "lead";
    delivery => "dlv", "delivery";
    delivery_attempt => "att", "attempt";
}

/// All rows of `E` that belong to `tenant`.
pub fn scoped<E: TenantOwned>(tenant: &str) -> Select<E> {
    E::find().filter(E::tenant_column().eq(tenant))
}

/// An UPDATE of `E` limited to the rows of `tenant`.
pub fn scoped_update<E: TenantOwned>(tenant: &str) -> UpdateMany<E> {
    E::update_many().filter(E::tenant_column().eq(tenant))
}

/// Checks that `id` is shaped like an id of `E` (a bad one is the caller's input error).
pub fn parse_id<E: TenantOwned>(id: &str) -> ApiResult<&str> {
    if has_prefix(id, E::ID_PREFIX) {
        Ok(id)
    } else {
        Err(ApiError::BadInput(format!(
            "{id:?} is not a {} id (expected {}_…)",
            E::NOUN,
            E::ID_PREFIX
        )))
    }
}

/// The row of `E` with `id` if it belongs to `tenant` (queries answer `null` otherwise).
pub async fn find_for_tenant<E: TenantOwned>(
    db: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> ApiResult<Option<E::Model>> {
    let id = parse_id::<E>(id)?;
    Ok(scoped::<E>(tenant)
        .filter(E::id_column().eq(id))
        .one(db)
        .await?)
}

/// The row of `E` with `id` if it belongs to `tenant`, else `NOT_FOUND` (for mutations).
pub async fn get_for_tenant<E: TenantOwned>(
    db: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> ApiResult<E::Model> {
    find_for_tenant::<E>(db, tenant, id)
        .await?
        .ok_or(ApiError::NotFound(E::NOUN))
}
