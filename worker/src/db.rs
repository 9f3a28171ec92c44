//! Opening the ledger database: SQLite (embedded) or PostgreSQL, and the parts of the
//! statements sea-orm does not build from a model.

use sea_orm::{
    ActiveModelTrait, ConnectOptions, Database, DatabaseBackend, DatabaseConnection, DbErr,
    EntityTrait, Iterable, RuntimeErr, sea_query::Expr,
};
use std::{sync::Arc, time::Duration};

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
/// writers never contend; PostgreSQL gets a pool of `pool_size` connections, all opened
/// at once and kept open. A connection is pinged before use only after 30 s idle (a
/// server restart or a proxy may have dropped it): a ping on every use was one more
/// round trip per statement.
pub async fn connect(url: &str, pool_size: u32) -> Result<DatabaseConnection, DbErr> {
    open(options(url, pool_size), pool_size).await
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
    open(options, pool_size).await
}

/// Connects, then opens every connection of a PostgreSQL pool before returning, so the
/// first leads after a start do not wait for connections to open.
async fn open(options: ConnectOptions, pool_size: u32) -> Result<DatabaseConnection, DbErr> {
    let db = Database::connect(options).await?;
    if db.get_database_backend() == DatabaseBackend::Postgres {
        let pool = db.get_postgres_connection_pool();
        let opened = futures::future::try_join_all((0..pool_size).map(|_| pool.acquire()))
            .await
            .map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))))?;
        drop(opened);
    }
    Ok(db)
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
        options
            .max_connections(pool_size)
            .min_connections(pool_size)
            .test_before_acquire_if_idle_for(Duration::from_secs(30));
    }
    options
}
