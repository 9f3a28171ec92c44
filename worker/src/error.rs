//! The worker crate's error type.

/// Everything that can go wrong inside the delivery engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("building a statement: {0}")]
    Statement(#[from] sea_orm::sea_query::error::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("queue: {0}")]
    Queue(String),
    #[error("outbound client: {0}")]
    Client(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{setting}: {problem}")]
    Config {
        setting: &'static str,
        problem: &'static str,
    },
    #[error("integration {integration_id}, header {name}: {source}")]
    Unsealable {
        integration_id: String,
        name: String,
        source: crate::secrets::Unsealable,
    },
}
