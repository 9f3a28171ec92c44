//! Opening the ledger database: SQLite (embedded) or PostgreSQL, and the parts of the
//! statements sea-orm does not build from a model.

use sea_orm::{
    ActiveModelTrait, ConnectOptions, Database, DatabaseConnection, DbErr, EntityTrait, Iterable,
    sea_query::Expr,
};
use std::time::Duration;

/// The columns an active model sets and their values: the parts of an `INSERT … SELECT`,
/// which sea-orm builds from a model only as `INSERT … VALUES`.
pub fn set_values<A: ActiveModelTrait>(
    model: &A,
) -> (Vec<<A::Entity as EntityTrait>::Column>, Vec<Expr>) {
    <A::Entity as EntityTrait>::Column::iter()
        .filter_map(|column| Some((column, Expr::val(model.get(column).into_value()?))))
        .unzip()
}

/// Connects to `url`. SQLite runs in WAL mode with a busy timeout, on one connection so
/// writers never contend; PostgreSQL gets a pool of `pool_size` connections.
pub async fn connect(url: &str, pool_size: u32) -> Result<DatabaseConnection, DbErr> {
    Database::connect(options(url, pool_size)).await
}

/// Connects the delivery engine to PostgreSQL at `url`: like [`connect`], but its
/// commits do not wait for the WAL flush. The engine's transactions (claims, attempts)
/// hold an integration's turn while they commit, and waiting for the disk there
/// serialised every delivery of an integration behind one fsync. What a database crash
/// can take back is the last fraction of a second of claims and attempts, never a lead
/// (intake commits durably on its own pool): those rows are in flight again and are sent
/// once more, at least once as always.
pub async fn connect_engine(url: &str, pool_size: u32) -> Result<DatabaseConnection, DbErr> {
    let mut options = options(url, pool_size);
    options.map_sqlx_postgres_opts(|o| o.options([("synchronous_commit", "off")]));
    Database::connect(options).await
}

fn options(url: &str, pool_size: u32) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .acquire_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(10));
    if url.starts_with("sqlite:") {
        options.max_connections(1).map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    } else {
        options.max_connections(pool_size).min_connections(1);
    }
    options
}
