//! The api crate's error type, mapped once to HTTP (intake) and once to GraphQL
//! (`extensions.code`). Internal errors are logged and answered opaquely.

use async_graphql::ErrorExtensions;
use axum::{
    Json,
    http::{
        HeaderValue, StatusCode,
        header::{CONNECTION, RETRY_AFTER},
    },
    response::{IntoResponse, Response},
};
use serde_json::json;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Conflict(String),
    /// Over a rate limit; retry after this many seconds.
    #[error("too many requests: retry in {0} s")]
    RateLimited(u64),
    /// The database cannot be reached right now (restarting, a dropped connection, an
    /// exhausted pool): nothing was accepted, and a retry in a moment may succeed.
    #[error("temporarily unavailable: retry in a moment")]
    Unavailable,
    #[error("internal error")]
    Internal(String),
}

/// Shorthand for api results.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// The GraphQL `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => "UNAUTHENTICATED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::BadInput(_)
            | ApiError::Unprocessable(_)
            | ApiError::UnsupportedMediaType(_)
            | ApiError::PayloadTooLarge(_) => "BAD_USER_INPUT",
            ApiError::Conflict(_) => "CONFLICT",
            ApiError::RateLimited(_) => "RATE_LIMITED",
            ApiError::Unavailable => "UNAVAILABLE",
            ApiError::Internal(_) => "INTERNAL",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadInput(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// An internal failure: logged with its context here, shown to nobody.
    pub fn internal(context: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "{context}");
        ApiError::Internal(context.to_owned())
    }
}

/// Whether the database could not be reached or dropped the connection mid-request (a
/// restart, a terminated backend, a full pool), rather than refusing the statement.
fn database_unavailable(e: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr, sqlx::Error};
    match e {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => match &**e {
            Error::Io(_) | Error::PoolTimedOut | Error::PoolClosed | Error::WorkerCrashed => true,
            // Class 08: connection exception; 57P: operator intervention (shutdown,
            // terminated backend, starting up).
            Error::Database(e) => e
                .code()
                .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
            _ => false,
        },
        _ => false,
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        if database_unavailable(&e) {
            tracing::warn!(error = %e, "database unavailable; answering 503");
            return ApiError::Unavailable;
        }
        ApiError::internal("database error", e)
    }
}

impl<E: std::error::Error> From<sea_orm::TransactionError<E>> for ApiError {
    fn from(e: sea_orm::TransactionError<E>) -> Self {
        match e {
            sea_orm::TransactionError::Connection(e) => e.into(),
            e => ApiError::internal("database transaction error", e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status(),
            Json(json!({ "error": self.to_string(), "code": self.code() })),
        )
            .into_response();
        let retry_after = match self {
            ApiError::RateLimited(seconds) => Some(seconds),
            ApiError::Unavailable => Some(1),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        if matches!(self, ApiError::PayloadTooLarge(_)) {
            // The rest of the body is never read, so the connection closes after this
            // answer: said here, before the answer is written, so a client never sends its
            // next request on it.
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// The error type of GraphQL resolvers: an [`ApiError`] carrying its `extensions.code`.
/// It is deliberately not `Display`, so async-graphql's catch-all conversion (which would
/// drop the code) never applies and `?` always goes through [`ApiError`].
#[derive(Debug, Clone)]
pub struct GqlError(async_graphql::Error);

/// Shorthand for resolver results.
pub type GqlResult<T> = Result<T, GqlError>;

impl From<ApiError> for GqlError {
    fn from(e: ApiError) -> Self {
        let code = e.code();
        GqlError(
            async_graphql::Error::new(e.to_string()).extend_with(|_, ext| ext.set("code", code)),
        )
    }
}

impl From<sea_orm::DbErr> for GqlError {
    fn from(e: sea_orm::DbErr) -> Self {
        ApiError::from(e).into()
    }
}

impl From<GqlError> for async_graphql::Error {
    fn from(e: GqlError) -> Self {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{DbErr, RuntimeErr, sqlx};
    use std::sync::Arc;

    fn sqlx_error(e: sqlx::Error) -> DbErr {
        DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)))
    }

    #[test]
    fn a_body_over_the_limit_closes_the_connection() {
        let response = ApiError::PayloadTooLarge("too big".into()).into_response();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(response.headers()[CONNECTION], "close");
        let response = ApiError::BadInput("bad".into()).into_response();
        assert!(response.headers().get(CONNECTION).is_none());
    }

    #[test]
    fn a_lost_database_is_503_and_a_refused_statement_500() {
        let unavailable = [
            sqlx_error(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset,
            ))),
            sqlx_error(sqlx::Error::PoolTimedOut),
            sqlx_error(sqlx::Error::PoolClosed),
            DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout),
        ];
        for e in unavailable {
            let shown = e.to_string();
            let error = ApiError::from(e);
            assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE, "{shown}");
            assert_eq!(error.code(), "UNAVAILABLE");
            let response = error.into_response();
            assert_eq!(response.headers()[RETRY_AFTER], "1");
        }
        for e in [
            sqlx_error(sqlx::Error::RowNotFound),
            DbErr::Custom("a check failed".into()),
        ] {
            assert_eq!(
                ApiError::from(e).status(),
                StatusCode::INTERNAL_SERVER_ERROR
            );
        }
    }
}
