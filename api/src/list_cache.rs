//! Intake's copies of lists with their integrations, by inbound token, so that on
//! PostgreSQL a lead needs no read of its list. A copy is checked where it matters, in
//! intake's own statement: the lead is stored only while the list's `config_version`
//! (bumped by triggers on every change to the list or its integrations, m0017) is still
//! the copy's, so a change made through any api process, or by hand, reaches the next
//! lead. Intake reads the list again when its statement finds the copy stale, and before
//! it turns a lead away on a copy's word (an inactive list, a wrong key, a rate limit).

use crate::error::{ApiError, ApiResult};
use leadrelay_entity::{integration, list};
use moka::future::Cache;
use sea_orm::{ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter};
use std::{sync::Arc, time::Duration};

/// A list with its integrations, as intake reads them.
pub type ListConfig = Arc<(list::Model, Vec<integration::Model>)>;

/// Lists kept at most: a copy costs a few kilobytes.
const CAPACITY: u64 = 10_000;

/// A copy not used for this long is dropped; the next lead reads the list again.
const IDLE: Duration = Duration::from_secs(600);

/// The copies of one api process.
#[derive(Clone)]
pub struct ListCache(Cache<String, ListConfig>);

impl Default for ListCache {
    fn default() -> Self {
        ListCache(
            Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_idle(IDLE)
                .build(),
        )
    }
}

impl ListCache {
    /// The copy of the list behind `token`, if this process has one.
    pub async fn copy(&self, token: &str) -> Option<ListConfig> {
        self.0.get(token).await
    }

    /// Reads the list behind `token` with its integrations, in one query, and keeps a copy
    /// on PostgreSQL (where intake's statement can check it); 404 for an unknown token.
    pub async fn read(&self, db: &DatabaseConnection, token: &str) -> ApiResult<ListConfig> {
        let Some(config) = list::Entity::find()
            .filter(list::Column::InboundToken.eq(token))
            .find_with_related(integration::Entity)
            .all(db)
            .await?
            .into_iter()
            .next()
        else {
            self.0.invalidate(token).await;
            return Err(ApiError::NotFound("inbound token"));
        };
        let config = Arc::new(config);
        if db.get_database_backend() == DbBackend::Postgres {
            self.0.insert(token.to_owned(), config.clone()).await;
        }
        Ok(config)
    }
}
