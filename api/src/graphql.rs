//! The GraphQL schema, merged from the domain modules, and its HTTP and WebSocket
//! (graphql-transport-ws) endpoints.

use crate::error::{ApiError, GqlError};
use crate::test_leads::TestLeadMutation;
use crate::{
    auth::{Auth, AuthMutation, AuthQuery},
    deliveries::{DeliveryMutation, DeliveryQuery, DeliverySubscription},
    integrations::{IntegrationMutation, IntegrationQuery, IntegrationSubscription},
    leads::LeadQuery,
    lists::{ListMutation, ListQuery},
    preview::PreviewQuery,
    state::AppState,
};
use async_graphql::{
    Data, MergedObject, MergedSubscription, Schema, SchemaBuilder,
    http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource},
};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::{
    Extension,
    extract::{State, WebSocketUpgrade},
    http::{HeaderMap, header::AUTHORIZATION},
    response::{Html, IntoResponse, Response},
};

/// Every query.
#[derive(MergedObject, Default)]
pub struct Query(
    AuthQuery,
    ListQuery,
    IntegrationQuery,
    LeadQuery,
    DeliveryQuery,
    PreviewQuery,
);

/// Every mutation.
#[derive(MergedObject, Default)]
pub struct Mutation(
    AuthMutation,
    ListMutation,
    IntegrationMutation,
    DeliveryMutation,
    TestLeadMutation,
);

/// Every subscription.
#[derive(MergedSubscription, Default)]
pub struct Subscription(DeliverySubscription, IntegrationSubscription);

/// The LeadRelay schema.
pub type AppSchema = Schema<Query, Mutation, Subscription>;

fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .limit_depth(12)
    .limit_complexity(2_000)
}

/// The schema serving `state`.
pub fn schema(state: AppState) -> AppSchema {
    builder().data(state).finish()
}

/// The schema in SDL, as exported to `api/schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// `POST /graphql`: the caller comes from `Authorization: Bearer <token>`.
pub async fn graphql(
    State(app): State<AppState>,
    Extension(schema): Extension<AppSchema>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let auth: Option<Auth> = bearer(&headers).and_then(|token| app.jwt.verify(token).ok());
    let request = request.into_inner();
    if carries_nul(&request) {
        // PostgreSQL text and jsonb cannot hold U+0000: refused here, for every field.
        let error = async_graphql::Error::from(GqlError::from(ApiError::BadInput(
            "text must not contain the NUL character (U+0000)".into(),
        )));
        return async_graphql::Response::from_errors(vec![
            error.into_server_error(async_graphql::Pos::default()),
        ])
        .into();
    }
    schema.execute(request.data(auth)).await.into()
}

/// Whether the query or any variable holds a NUL character (written or escaped).
fn carries_nul(request: &async_graphql::Request) -> bool {
    fn in_value(v: &async_graphql::Value) -> bool {
        match v {
            async_graphql::Value::String(s) => s.contains('\0'),
            async_graphql::Value::List(items) => items.iter().any(in_value),
            async_graphql::Value::Object(fields) => fields
                .iter()
                .any(|(name, v)| name.contains('\0') || in_value(v)),
            _ => false,
        }
    }
    request.query.contains('\0')
        || request.query.contains("\\u0000")
        || request.variables.iter().any(|(_, v)| in_value(v))
}

/// `GET /graphql`: GraphiQL.
pub async fn graphiql() -> impl IntoResponse {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .finish(),
    )
}

/// `GET /graphql/ws`: subscriptions; the token comes in `connection_init` as `{"token": …}`.
pub async fn graphql_ws(
    State(app): State<AppState>,
    Extension(schema): Extension<AppSchema>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |stream| {
            GraphQLWebSocket::new(stream, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let token = payload
                        .get("token")
                        .and_then(|t| t.as_str())
                        .unwrap_or_default();
                    let auth = app
                        .jwt
                        .verify(token)
                        .map_err(|e| async_graphql::Error::new(e.to_string()))?;
                    let mut data = Data::default();
                    data.insert(Some(auth));
                    Ok(data)
                })
                .serve()
        })
}

#[cfg(test)]
mod tests {
    /// `api/schema.graphql` must match the code; regenerate it with
    /// `cargo run -p leadrelay-api -- schema > api/schema.graphql`.
    #[test]
    fn exported_schema_is_current() {
        let exported = include_str!("../schema.graphql");
        assert!(
            exported == super::sdl(),
            "api/schema.graphql is stale: run `cargo run -p leadrelay-api -- schema > api/schema.graphql`"
        );
    }
}
