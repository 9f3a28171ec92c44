//! Migrations on PostgreSQL: each one's `down` undoes it, so the whole chain goes down
//! and comes up again, and the server-side functions are the ones the last migration left.

use leadrelay_migration::{Migrator, MigratorTrait};
use leadrelay_tests::database;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

/// `(source, settings)` of the server-side function `name`, or `None` when there is none.
async fn function(db: &DatabaseConnection, name: &str) -> Option<(String, Option<String>)> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT prosrc, array_to_string(proconfig, ',') AS settings FROM pg_proc \
             WHERE proname = $1",
            [name.into()],
        ))
        .await
        .expect("reading pg_proc")?;
    Some((
        row.try_get("", "prosrc").expect("prosrc"),
        row.try_get("", "settings").expect("proconfig"),
    ))
}

/// Whether `name`'s lookup is static and planned without a sort (m0018).
async fn static_lookup(db: &DatabaseConnection, name: &str) -> bool {
    let (source, settings) = function(db, name).await.expect("the function exists");
    let settings = settings.unwrap_or_default();
    match (
        source.contains("EXECUTE"),
        settings.contains("enable_sort=off"),
    ) {
        (false, true) => true,
        (true, false) => false,
        other => panic!("{name}: half-migrated (EXECUTE, enable_sort=off) = {other:?}"),
    }
}

#[tokio::test]
async fn every_migration_goes_down_and_up_again() {
    let db = Database::connect(database::fresh().await)
        .await
        .expect("connect");
    let lookups = ["leadrelay_dedupe", "leadrelay_swap"];
    for name in lookups {
        assert!(
            static_lookup(&db, name).await,
            "{name} after every migration"
        );
    }

    let from_m0018 = Migrator::migrations()
        .iter()
        .rev()
        .position(|m| m.name() == "m0018_static_lookups")
        .expect("m0018 is a migration")
        + 1;
    let from_m0018 = u32::try_from(from_m0018).expect("a few migrations");
    Migrator::down(&db, Some(from_m0018))
        .await
        .expect("down to m0017");
    for name in lookups {
        assert!(!static_lookup(&db, name).await, "{name} after m0018's down");
    }

    Migrator::down(&db, None).await.expect("every one down");
    for name in lookups {
        assert_eq!(function(&db, name).await, None, "{name} with no migration");
    }
    let tables = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public' \
             AND tablename <> 'seaql_migrations'",
        ))
        .await
        .expect("counting tables")
        .expect("a row");
    assert_eq!(tables.try_get::<i64>("", "n").expect("n"), 0, "tables left");

    Migrator::up(&db, None).await.expect("every one up again");
    for name in lookups {
        assert!(static_lookup(&db, name).await, "{name} up again");
    }
    db.close().await.ok();
}
