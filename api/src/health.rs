//! `/healthz` (the process answers) and `/readyz` (its database and Redis answer; it
//! also reports how many workers sent a heartbeat lately).

use crate::state::AppState;
use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 when every dependency answers, else 503 naming the one that did not.
pub async fn readyz(State(app): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = app.db.ping().await.is_ok();
    let redis = match &app.redis {
        None => None,
        Some(conn) => Some(
            redis::cmd("PING")
                .query_async::<String>(&mut conn.clone())
                .await
                .is_ok(),
        ),
    };
    let workers = match leadrelay_worker::heartbeat::live(&app.db).await {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "counting live workers");
            None
        }
    };
    let ready = database && redis.unwrap_or(true);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({ "ready": ready, "database": database, "redis": redis, "workers": workers });
    (status, Json(body))
}
