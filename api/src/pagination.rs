//! Relay-style connections over id-ordered rows (ids are time-ordered, newest first).

use crate::{
    error::{ApiError, ApiResult},
    tenancy::TenantOwned,
};
use async_graphql::{
    OutputType, SimpleObject,
    connection::{Connection, Edge, EmptyFields},
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};

/// The extra field every connection carries.
#[derive(SimpleObject)]
pub struct TotalCount {
    /// How many rows match, across all pages.
    pub total_count: u64,
}

/// A page of nodes with its cursors and total.
pub type Page<N> = Connection<String, N, TotalCount, EmptyFields>;

const DEFAULT_PAGE: u64 = 50;
const MAX_PAGE: u64 = 200;

/// One page of `select`, newest first: `first` rows (default 50, at most 200) after the
/// cursor `after`.
pub async fn paginate<E, N>(
    db: &impl ConnectionTrait,
    select: Select<E>,
    first: Option<i32>,
    after: Option<String>,
    node: impl Fn(E::Model) -> N,
) -> ApiResult<Page<N>>
where
    E: TenantOwned,
    E::Model: Sync,
    N: OutputType,
{
    let limit = match first {
        None => DEFAULT_PAGE,
        Some(n) if n >= 0 => u64::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE),
        Some(_) => return Err(ApiError::BadInput("first: must not be negative".into())),
    };
    let total_count = select.clone().count(db).await?;
    let mut page = select.order_by_desc(E::id_column());
    if let Some(cursor) = &after {
        page = page.filter(E::id_column().lt(cursor.as_str()));
    }
    let mut rows = page.limit(limit + 1).all(db).await?;
    let has_next = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let mut connection =
        Connection::with_additional_fields(after.is_some(), has_next, TotalCount { total_count });
    connection.edges = rows
        .into_iter()
        .map(|row| {
            let cursor = id_of::<E>(&row);
            Edge::new(cursor, node(row))
        })
        .collect();
    Ok(connection)
}

fn id_of<E: TenantOwned>(row: &E::Model) -> String {
    use sea_orm::ModelTrait;
    match row.get(E::id_column()) {
        sea_orm::Value::String(Some(s)) => s.to_string(),
        other => format!("{other:?}"),
    }
}
