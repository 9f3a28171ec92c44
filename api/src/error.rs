//! The api crate's error type, mapped once to HTTP (intake) and once to GraphQL
//! (`extensions.code`). Internal errors are logged and answered opaquely.

use async_graphql::ErrorExtensions;
use axum::{
    Json,
    http::{HeaderValue, StatusCode, header::RETRY_AFTER},
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
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// An internal failure: logged with its context here, shown to nobody.
    pub fn internal(context: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "{context}");
        ApiError::Internal(context.to_owned())
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        ApiError::internal("database error", e)
    }
}

impl<E: std::error::Error> From<sea_orm::TransactionError<E>> for ApiError {
    fn from(e: sea_orm::TransactionError<E>) -> Self {
        ApiError::internal("database transaction error", e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status(),
            Json(json!({ "error": self.to_string(), "code": self.code() })),
        )
            .into_response();
        if let ApiError::RateLimited(seconds) = self {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
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
