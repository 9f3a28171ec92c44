//! Local servers speaking the contracts of the CRMs LeadRelay has presets for, as far as
//! the presets use them: HubSpot's contact batch upsert (and plain create, which answers
//! 409 for a known email, as HubSpot does), and Pipedrive's persons (API v2) and leads
//! (API v1). Each checks the credential and the body's shape as the real API would,
//! keeps what was created, and records every request.

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};
use tokio::{net::TcpListener, task::JoinHandle};

/// One request a mock got.
#[derive(Debug, Clone)]
pub struct Call {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Call {
    /// Records a request in `calls`; returns its body as JSON (null when it is not).
    fn record(calls: &mut Vec<Call>, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Value {
        let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        calls.push(Call {
            path: uri.path().to_owned(),
            headers: headers.clone(),
            body: parsed.clone(),
        });
        parsed
    }

    /// A header value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A contact as the HubSpot mock keeps it.
#[derive(Debug, Clone)]
pub struct Contact {
    pub id: String,
    pub properties: Map<String, Value>,
}

#[derive(Default)]
struct HubSpotState {
    token: String,
    contacts: Vec<Contact>,
    calls: Vec<Call>,
}

/// HubSpot's CRM API on a random loopback port; stops when dropped.
pub struct HubSpotMock {
    pub base: String,
    state: Arc<Mutex<HubSpotState>>,
    server: JoinHandle<()>,
}

impl Drop for HubSpotMock {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn hubspot_error(status: StatusCode, category: &str, message: &str) -> Response {
    (
        status,
        Json(
            json!({ "status": "error", "message": message, "correlationId": "c0ffee",
                     "category": category }),
        ),
    )
        .into_response()
}

/// Checks the token and records the call; the error answer when the token is wrong.
fn hubspot_call(
    state: &Mutex<HubSpotState>,
    uri: &Uri,
    headers: HeaderMap,
    body: &Bytes,
) -> Result<Value, Box<Response>> {
    let mut s = state.lock().expect("mock state");
    let parsed = Call::record(&mut s.calls, uri, &headers, body);
    let expected = format!("Bearer {}", s.token);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return Err(Box::new(hubspot_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found.",
        )));
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
        return Err(Box::new(hubspot_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "VALIDATION_ERROR",
            "Content-Type must be application/json",
        )));
    }
    Ok(parsed)
}

/// Properties as HubSpot takes them: an object of scalars.
fn properties_of(value: &Value) -> Option<Map<String, Value>> {
    let props = value.as_object()?;
    props
        .values()
        .all(|v| v.is_string() || v.is_number() || v.is_boolean())
        .then(|| props.clone())
}

async fn hubspot_upsert(
    State(state): State<Arc<Mutex<HubSpotState>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = match hubspot_call(&state, &uri, headers, &body) {
        Ok(parsed) => parsed,
        Err(answer) => return *answer,
    };
    let Some(inputs) = parsed["inputs"]
        .as_array()
        .filter(|i| (1..=100).contains(&i.len()))
    else {
        return hubspot_error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "inputs: 1 to 100 items",
        );
    };
    let mut s = state.lock().expect("mock state");
    let mut results = Vec::new();
    for input in inputs {
        let (Some("email"), Some(id), Some(props)) = (
            input["idProperty"].as_str(),
            input["id"].as_str(),
            properties_of(&input["properties"]),
        ) else {
            return hubspot_error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                "each input needs idProperty \"email\", an id and properties",
            );
        };
        let email = id.to_lowercase();
        let existing = s.contacts.iter().position(|c| {
            c.properties.get("email").and_then(Value::as_str) == Some(email.as_str())
        });
        let (contact, new) = match existing {
            Some(i) => {
                s.contacts[i].properties.extend(props);
                (s.contacts[i].clone(), false)
            }
            None => {
                let mut properties = props;
                properties.insert("email".into(), Value::String(email));
                let contact = Contact {
                    id: (101 + s.contacts.len()).to_string(),
                    properties,
                };
                s.contacts.push(contact.clone());
                (contact, true)
            }
        };
        results.push(json!({ "id": contact.id, "properties": contact.properties, "new": new,
            "archived": false, "createdAt": "2026-02-23T14:30:00Z", "updatedAt": "2026-02-23T14:30:00Z" }));
    }
    (
        StatusCode::OK,
        Json(json!({ "status": "COMPLETE", "results": results,
            "startedAt": "2026-02-23T14:30:00Z", "completedAt": "2026-02-23T14:30:00Z" })),
    )
        .into_response()
}

async fn hubspot_create(
    State(state): State<Arc<Mutex<HubSpotState>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = match hubspot_call(&state, &uri, headers, &body) {
        Ok(parsed) => parsed,
        Err(answer) => return *answer,
    };
    let Some(properties) = properties_of(&parsed["properties"]) else {
        return hubspot_error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "properties: an object",
        );
    };
    let mut s = state.lock().expect("mock state");
    let email = properties
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_lowercase);
    if let Some(known) = email.as_deref().and_then(|e| {
        s.contacts
            .iter()
            .find(|c| c.properties.get("email").and_then(Value::as_str) == Some(e))
    }) {
        return hubspot_error(
            StatusCode::CONFLICT,
            "CONFLICT",
            &format!("Contact already exists. Existing ID: {}", known.id),
        );
    }
    let contact = Contact {
        id: (101 + s.contacts.len()).to_string(),
        properties,
    };
    s.contacts.push(contact.clone());
    (
        StatusCode::CREATED,
        Json(json!({ "id": contact.id, "properties": contact.properties, "archived": false })),
    )
        .into_response()
}

impl HubSpotMock {
    /// Starts the mock; requests must carry `Authorization: Bearer {token}`.
    pub async fn start(token: &str) -> Self {
        let state = Arc::new(Mutex::new(HubSpotState {
            token: token.to_owned(),
            ..HubSpotState::default()
        }));
        let router = Router::new()
            .route(
                "/crm/v3/objects/contacts/batch/upsert",
                post(hubspot_upsert),
            )
            .route("/crm/v3/objects/contacts", post(hubspot_create))
            .with_state(state.clone());
        let (base, server) = serve(router).await;
        Self {
            base,
            state,
            server,
        }
    }

    /// The contacts, in the order they were created.
    pub fn contacts(&self) -> Vec<Contact> {
        self.state.lock().expect("mock state").contacts.clone()
    }

    /// Every request so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().expect("mock state").calls.clone()
    }
}

#[derive(Default)]
struct PipedriveState {
    token: String,
    persons: Vec<Value>,
    leads: Vec<Value>,
    calls: Vec<Call>,
    /// Lead creations still to fail with 503 (Pipedrive having a bad moment).
    failing_leads: usize,
}

/// Pipedrive's API (persons v2, leads v1) on a random loopback port; stops when dropped.
pub struct PipedriveMock {
    pub base: String,
    state: Arc<Mutex<PipedriveState>>,
    server: JoinHandle<()>,
}

impl Drop for PipedriveMock {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn pipedrive_error(status: StatusCode, error: &str) -> Response {
    (
        status,
        Json(json!({ "success": false, "error": error, "errorCode": status.as_u16(),
                     "error_info": "Please check developers.pipedrive.com for more information about Pipedrive API." })),
    )
        .into_response()
}

/// Checks the token and records the call; the error answer when the token is wrong.
fn pipedrive_call(
    state: &Mutex<PipedriveState>,
    uri: &Uri,
    headers: HeaderMap,
    body: &Bytes,
) -> Result<Value, Box<Response>> {
    let mut s = state.lock().expect("mock state");
    let parsed = Call::record(&mut s.calls, uri, &headers, body);
    if headers.get("x-api-token").and_then(|v| v.to_str().ok()) != Some(s.token.as_str()) {
        return Err(Box::new(pipedrive_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized access",
        )));
    }
    Ok(parsed)
}

/// Pipedrive v2's `emails` / `phones`: an array of `{value, primary, label}`.
fn contact_points(value: &Value) -> bool {
    value.is_null()
        || value.as_array().is_some_and(|items| {
            items.iter().all(|i| {
                i["value"].is_string()
                    && (i["primary"].is_null() || i["primary"].is_boolean())
                    && (i["label"].is_null() || i["label"].is_string())
            })
        })
}

async fn pipedrive_person(
    State(state): State<Arc<Mutex<PipedriveState>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = match pipedrive_call(&state, &uri, headers, &body) {
        Ok(parsed) => parsed,
        Err(answer) => return *answer,
    };
    if parsed["name"].as_str().is_none_or(str::is_empty)
        || !contact_points(&parsed["emails"])
        || !contact_points(&parsed["phones"])
    {
        return pipedrive_error(
            StatusCode::BAD_REQUEST,
            "Validation failed: name is required; emails and phones are arrays of {value, primary, label}",
        );
    }
    let mut s = state.lock().expect("mock state");
    let mut person = parsed;
    person["id"] = json!(s.persons.len() + 1);
    s.persons.push(person.clone());
    (
        StatusCode::OK,
        Json(json!({ "success": true, "data": person })),
    )
        .into_response()
}

async fn pipedrive_lead(
    State(state): State<Arc<Mutex<PipedriveState>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = match pipedrive_call(&state, &uri, headers, &body) {
        Ok(parsed) => parsed,
        Err(answer) => return *answer,
    };
    let mut s = state.lock().expect("mock state");
    if s.failing_leads > 0 {
        s.failing_leads -= 1;
        return pipedrive_error(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable");
    }
    let person_id = parsed["person_id"].as_u64();
    let known = person_id.is_some_and(|id| s.persons.iter().any(|p| p["id"] == json!(id)));
    if parsed["title"].as_str().is_none_or(str::is_empty) || !known {
        return pipedrive_error(
            StatusCode::BAD_REQUEST,
            "A lead needs a title and an existing person_id",
        );
    }
    let mut lead = parsed;
    lead["id"] = json!(format!("adf21080-0e10-11eb-879b-{:012}", s.leads.len() + 1));
    s.leads.push(lead.clone());
    (
        StatusCode::CREATED,
        Json(json!({ "success": true, "data": lead })),
    )
        .into_response()
}

impl PipedriveMock {
    /// Starts the mock; requests must carry `x-api-token: {token}`.
    pub async fn start(token: &str) -> Self {
        let state = Arc::new(Mutex::new(PipedriveState {
            token: token.to_owned(),
            ..PipedriveState::default()
        }));
        let router = Router::new()
            .route("/api/v2/persons", post(pipedrive_person))
            .route("/api/v1/leads", post(pipedrive_lead))
            .with_state(state.clone());
        let (base, server) = serve(router).await;
        Self {
            base,
            state,
            server,
        }
    }

    /// The next `n` lead creations answer 503.
    pub fn fail_leads(&self, n: usize) {
        self.state.lock().expect("mock state").failing_leads = n;
    }

    /// The persons created.
    pub fn persons(&self) -> Vec<Value> {
        self.state.lock().expect("mock state").persons.clone()
    }

    /// The leads created.
    pub fn leads(&self) -> Vec<Value> {
        self.state.lock().expect("mock state").leads.clone()
    }

    /// Every request so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().expect("mock state").calls.clone()
    }
}

async fn serve(router: Router) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind mock");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (base, server)
}
