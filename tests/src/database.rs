//! A fresh PostgreSQL database per test, cloned in milliseconds from a migrated template
//! (`CREATE DATABASE … TEMPLATE`), built once per machine under an advisory lock.

use leadrelay_migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, Database,
    sqlx::{AssertSqlSafe, Connection, Executor, PgConnection},
};
use std::time::Duration;

/// The server of the test machine (`LEADRELAY_TEST_PG_URL`), without a database name.
pub fn server_url() -> String {
    std::env::var("LEADRELAY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

fn url_for(db: &str) -> String {
    format!("{}/{db}", server_url().trim_end_matches('/'))
}

/// Name of the template for the current set of migrations.
fn template_name() -> String {
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let hash = names
        .join(",")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    format!("leadrelay_template_{:012x}", hash & 0xffff_ffff_ffff)
}

async fn admin() -> PgConnection {
    PgConnection::connect(&url_for("postgres"))
        .await
        .expect("connecting to PostgreSQL (is it running?)")
}

async fn exists(conn: &mut PgConnection, name: &str) -> bool {
    let row = conn
        .fetch_optional(
            sea_orm::sqlx::query("SELECT 1 FROM pg_database WHERE datname = $1").bind(name),
        )
        .await
        .expect("pg_database");
    row.is_some()
}

async fn ensure_template(conn: &mut PgConnection, template: &str) {
    if exists(conn, template).await {
        return;
    }
    conn.execute("SELECT pg_advisory_lock(727001)")
        .await
        .expect("advisory lock");
    if !exists(conn, template).await {
        let building = format!("{template}_building");
        conn.execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {building}")))
            .await
            .expect("drop stale template");
        conn.execute(AssertSqlSafe(format!("CREATE DATABASE {building}")))
            .await
            .expect("create template");
        let db = Database::connect(url_for(&building))
            .await
            .expect("connect template");
        Migrator::up(&db, None)
            .await
            .expect("migrating the template");
        db.close().await.expect("close template");
        conn.execute(AssertSqlSafe(format!(
            "ALTER DATABASE {building} RENAME TO {template}"
        )))
        .await
        .expect("publish template");
    }
    conn.execute("SELECT pg_advisory_unlock(727001)")
        .await
        .expect("advisory unlock");
}

/// A new, migrated, empty database; returns its URL.
pub async fn fresh() -> String {
    let template = template_name();
    let mut conn = admin().await;
    ensure_template(&mut conn, &template).await;
    let name = format!("lrt_{}", uuid::Uuid::new_v4().simple());
    let mut tries = 0;
    loop {
        match conn
            .execute(AssertSqlSafe(format!(
                "CREATE DATABASE {name} TEMPLATE {template}"
            )))
            .await
        {
            Ok(_) => break,
            // Another session may be cloning the template at this instant.
            Err(e) if tries < 50 && e.to_string().contains("being accessed by other users") => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20 + 10 * tries)).await;
            }
            Err(e) => panic!("creating the test database: {e}"),
        }
    }
    url_for(&name)
}

/// The database name at the end of `url`.
fn name_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// Terminates every backend of the database at `url` (what its clients see when the
/// server restarts), from an admin connection, so other tests' databases are untouched.
/// Returns how many backends were terminated.
pub async fn terminate_backends(url: &str) -> i64 {
    let mut conn = admin().await;
    let row = conn
        .fetch_one(
            sea_orm::sqlx::query(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind(name_of(url)),
        )
        .await
        .expect("pg_terminate_backend");
    sea_orm::sqlx::Row::get(&row, 0)
}

/// Runs `sql` in the database at `url`, as another api process or an operator would.
pub async fn execute(url: &str, sql: &str) {
    let db = Database::connect(url).await.expect("connect");
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    db.close().await.ok();
}

/// `SELECT count(*) FROM table` in the database at `url`.
pub async fn count_rows(url: &str, table: &str) -> i64 {
    count_where(url, table, "true").await
}

/// `SELECT count(*) FROM table WHERE condition` in the database at `url`.
pub async fn count_where(url: &str, table: &str, condition: &str) -> i64 {
    let db = Database::connect(url).await.expect("connect");
    let sql = format!("SELECT count(*) AS n FROM {table} WHERE {condition}");
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .await
        .expect("count")
        .expect("a row");
    let n: i64 = row
        .try_get("", "n")
        .unwrap_or_else(|_| i64::from(row.try_get::<i32>("", "n").unwrap_or(-1)));
    db.close().await.ok();
    n
}
