//! Database migrations of LeadRelay. Each change is a new migration; a landed one is never
//! edited. Every migration runs on both SQLite (embedded mode) and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m0001_initial;
mod m0002_delivery_engine;
mod m0003_waiting_index;
mod m0004_lead_score_reasons;
mod m0005_intake_rules;
mod m0006_list_rate_limit;
mod m0007_list_score_weights;
mod m0008_integration_filter_mapping;
mod m0009_presets;
mod m0010_take_slot;
mod m0011_stable_plans;
mod m0012_swap_slot;
mod m0013_dedupe;
mod m0014_one_row_functions;
mod m0015_claim;
mod m0016_swap_turn_first;
mod m0017_list_config_version;
mod m0018_static_lookups;
mod m0019_worker_share;

/// Runs `sql` on PostgreSQL only: for what SQLite has no counterpart of (server-side
/// functions), where the engine runs the same steps itself.
async fn on_postgres(m: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};
    let db = m.get_connection();
    if db.get_database_backend() == DatabaseBackend::Postgres {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}

/// The ordered set of LeadRelay migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_initial::Migration),
            Box::new(m0002_delivery_engine::Migration),
            Box::new(m0003_waiting_index::Migration),
            Box::new(m0004_lead_score_reasons::Migration),
            Box::new(m0005_intake_rules::Migration),
            Box::new(m0006_list_rate_limit::Migration),
            Box::new(m0007_list_score_weights::Migration),
            Box::new(m0008_integration_filter_mapping::Migration),
            Box::new(m0009_presets::Migration),
            Box::new(m0010_take_slot::Migration),
            Box::new(m0011_stable_plans::Migration),
            Box::new(m0012_swap_slot::Migration),
            Box::new(m0013_dedupe::Migration),
            Box::new(m0014_one_row_functions::Migration),
            Box::new(m0015_claim::Migration),
            Box::new(m0016_swap_turn_first::Migration),
            Box::new(m0017_list_config_version::Migration),
            Box::new(m0018_static_lookups::Migration),
            Box::new(m0019_worker_share::Migration),
        ]
    }
}
