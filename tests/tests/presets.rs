//! Presets (issue 7): HubSpot, Pipedrive, Zapier, Make and n8n, end to end against local
//! servers speaking their contracts. A returning lead updates its HubSpot contact; a
//! Pipedrive person gets its linked lead, and a failed lead is retried without a second
//! person; a refused token fails at once; hooks get a flat body; and bad configuration is
//! refused at save time naming the field.

use leadrelay_tests::{HubSpotMock, Mode, PipedriveMock, Receiver, Session, TestApp, error_code};
use serde_json::{Value, json};
use std::time::Duration;

const TOKEN: &str = "pat-na1-11111111-2222-3333-4444-555555555555";

const CREATE: &str = "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { id kind url pipedrive { createLead } } }";

/// A list that delivers a returning lead again (no dedupe window).
async fn list_without_dedupe(app: &TestApp, owner: &Session) -> leadrelay_tests::ListInfo {
    let list = app.create_list(owner, "Solar").await;
    let updated = app
        .update_list(owner, &list.id, json!({ "dedupeWindowDays": 0 }))
        .await;
    assert!(updated.get("errors").is_none(), "{updated}");
    list
}

/// Posts a lead and returns its only delivery's id.
async fn deliver(app: &TestApp, owner: &Session, inbound_url: &str, lead: Value) -> String {
    let (status, answer) = app.post_lead(inbound_url, &lead).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (202, Some("qualified")),
        "{answer}"
    );
    let deliveries = app
        .lead_deliveries(owner, answer["lead_id"].as_str().unwrap())
        .await;
    assert_eq!(deliveries.len(), 1);
    deliveries[0].clone()
}

fn names(headers: &Value) -> Vec<String> {
    headers
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_upserts_the_contact_by_email_so_a_returning_lead_updates_it() {
    let app = TestApp::production().await;
    let hubspot = HubSpotMock::start(TOKEN).await;
    let owner = app.signup().await;
    let list = list_without_dedupe(&app, &owner).await;
    let created = app
        .gql_ok(
            &owner.token,
            CREATE,
            json!({ "input": { "listId": list.id, "name": "HubSpot", "kind": "HUBSPOT",
                "url": hubspot.base,
                "headers": [{ "name": "Authorization", "value": format!("Bearer {TOKEN}") }],
                "mapping": { "format": "JSON", "fields": [
                    { "target": "jobtitle", "source": "lead.custom_fields.job_title" } ] } } }),
        )
        .await;
    let integration = created["createIntegration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(created["createIntegration"]["kind"], "HUBSPOT");
    assert_eq!(created["createIntegration"]["pipedrive"], Value::Null);

    let sample = json!({ "email": "ana@example.com", "name": "Ana Silva",
        "phone": "+55 11 98765-4321", "company": "Acme", "cargo": "CTO" });
    let preview = app
        .gql_ok(
            &owner.token,
            "query($id: ID!, $sample: JSON!) { renderPreview(integrationId: $id, sample: $sample) {
                method url body followUps headers { name valuePreview } } }",
            json!({ "id": integration, "sample": sample }),
        )
        .await;
    let preview = &preview["renderPreview"];
    assert_eq!(preview["method"], "POST");
    assert_eq!(
        preview["url"],
        format!("{}/crm/v3/objects/contacts/batch/upsert", hubspot.base)
    );
    assert_eq!(preview["followUps"], json!([]));
    assert_eq!(
        names(&preview["headers"]),
        ["content-type", "authorization"],
        "a CRM request is not signed"
    );
    let previewed: Value = serde_json::from_str(preview["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        previewed,
        json!({ "inputs": [{ "idProperty": "email", "id": "ana@example.com", "properties": {
            "email": "ana@example.com", "firstname": "Ana", "lastname": "Silva",
            "phone": "+5511987654321", "company": "Acme", "jobtitle": "CTO" } }] })
    );

    let first = deliver(&app, &owner, &list.inbound_url, sample.clone()).await;
    let first = app.wait_for_delivery(&owner, &first, "DELIVERED").await;
    // The same person comes back with a new phone: the contact is updated, not refused.
    let second = deliver(
        &app,
        &owner,
        &list.inbound_url,
        json!({ "email": "ana@example.com", "name": "Ana Silva", "phone": "+55 11 91234-5678" }),
    )
    .await;
    let second = app.wait_for_delivery(&owner, &second, "DELIVERED").await;

    let contacts = hubspot.contacts();
    assert_eq!(contacts.len(), 1, "one contact for one email");
    assert_eq!(contacts[0].properties["phone"], "+5511912345678");
    assert_eq!(
        contacts[0].properties["jobtitle"], "CTO",
        "kept from the first lead"
    );
    let calls = hubspot.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].body, previewed,
        "the first lead went out as previewed"
    );
    assert!(
        calls
            .iter()
            .all(|c| c.path == "/crm/v3/objects/contacts/batch/upsert")
    );
    assert!(
        calls
            .iter()
            .all(|c| c.header("webhook-signature").is_none())
    );
    for (delivery, new) in [(&first, true), (&second, false)] {
        let attempts = delivery["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "{delivery}");
        assert_eq!(attempts[0]["statusCode"], 200);
        let answer: Value =
            serde_json::from_str(attempts[0]["responseBody"].as_str().unwrap()).unwrap();
        assert_eq!(answer["results"][0]["id"], contacts[0].id.as_str());
        assert_eq!(answer["results"][0]["new"], new);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_hubspot_token_fails_the_delivery_at_once() {
    let app = TestApp::production().await;
    let hubspot = HubSpotMock::start(TOKEN).await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Solar").await;
    app.create_integration_with(
        &owner,
        json!({ "listId": list.id, "kind": "HUBSPOT", "url": hubspot.base,
            "headers": [{ "name": "Authorization", "value": "Bearer pat-na1-revoked" }] }),
    )
    .await;
    let delivery = deliver(
        &app,
        &owner,
        &list.inbound_url,
        json!({ "email": "bo@example.com" }),
    )
    .await;
    let failed = app.wait_for_delivery(&owner, &delivery, "FAILED").await;
    assert_eq!(failed["attemptCount"], 1);
    assert_eq!(failed["nextAttemptAt"], Value::Null, "never retried");
    let attempt = &failed["attempts"][0];
    assert_eq!(attempt["statusCode"], 401);
    assert_eq!(attempt["errorKind"], "HTTP");
    let error = attempt["error"].as_str().unwrap();
    assert!(error.contains("HubSpot refused the token (401)"), "{error}");
    assert_eq!(hubspot.calls().len(), 1);
    assert!(hubspot.contacts().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipedrive_creates_the_person_and_a_lead_linked_to_it() {
    let app = TestApp::production().await;
    let pipedrive = PipedriveMock::start("pd-token-1").await;
    let owner = app.signup().await;
    let list = list_without_dedupe(&app, &owner).await;
    let created = app
        .gql_ok(
            &owner.token,
            CREATE,
            json!({ "input": { "listId": list.id, "name": "Pipedrive", "kind": "PIPEDRIVE",
                "url": pipedrive.base, "pipedrive": { "createLead": true },
                "headers": [{ "name": "x-api-token", "value": "pd-token-1" }] } }),
        )
        .await;
    let integration = created["createIntegration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        created["createIntegration"]["pipedrive"],
        json!({ "createLead": true })
    );

    let preview = app
        .gql_ok(
            &owner.token,
            "query($id: ID!, $sample: JSON!) { renderPreview(integrationId: $id, sample: $sample) {
                url body followUps headers { name valuePreview } } }",
            json!({ "id": integration, "sample": { "email": "ana@example.com", "name": "Ana Silva" } }),
        )
        .await;
    let preview = &preview["renderPreview"];
    assert_eq!(preview["url"], format!("{}/api/v2/persons", pipedrive.base));
    assert_eq!(names(&preview["headers"]), ["content-type", "x-api-token"]);
    let follow_up = preview["followUps"][0].as_str().unwrap();
    assert!(
        follow_up.starts_with(&format!("POST {}/api/v1/leads ", pipedrive.base)),
        "{follow_up}"
    );
    assert!(follow_up.contains("Ana Silva (Solar)"), "{follow_up}");

    let first = deliver(
        &app,
        &owner,
        &list.inbound_url,
        json!({ "email": "ana@example.com", "name": "Ana Silva", "phone": "+55 11 98765-4321" }),
    )
    .await;
    let first = app.wait_for_delivery(&owner, &first, "DELIVERED").await;
    let persons = pipedrive.persons();
    assert_eq!(
        persons[0],
        json!({ "id": 1, "name": "Ana Silva",
            "emails": [{ "value": "ana@example.com", "primary": true, "label": "work" }],
            "phones": [{ "value": "+5511987654321", "primary": true, "label": "mobile" }] })
    );
    let leads = pipedrive.leads();
    assert_eq!(leads[0]["person_id"], 1);
    assert_eq!(leads[0]["title"], "Ana Silva (Solar)");
    // One attempt per request: the person, then its lead.
    assert_eq!(first["attemptCount"], 2);
    let attempts = first["attempts"].as_array().unwrap();
    let urls: Vec<&str> = attempts
        .iter()
        .map(|a| a["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        [
            format!("{}/api/v2/persons", pipedrive.base),
            format!("{}/api/v1/leads", pipedrive.base)
        ]
    );
    assert_eq!(attempts[0]["statusCode"], 200);
    assert_eq!(attempts[1]["statusCode"], 201);
    assert!(attempts.iter().all(|a| a["error"].is_null()));
    assert!(
        pipedrive
            .calls()
            .iter()
            .all(|c| c.header("x-api-token") == Some("pd-token-1"))
    );

    // A returning lead is delivered too: Pipedrive keeps duplicate persons.
    let second = deliver(
        &app,
        &owner,
        &list.inbound_url,
        json!({ "email": "ana@example.com", "name": "Ana Silva" }),
    )
    .await;
    app.wait_for_delivery(&owner, &second, "DELIVERED").await;
    assert_eq!(pipedrive.persons().len(), 2);
    assert_eq!(pipedrive.leads()[1]["person_id"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leads_waiting_behind_a_two_step_pipedrive_delivery_are_all_delivered() {
    // With maxInFlight 1 the others wait while the first sends its person, then its lead:
    // a step that succeeds keeps the slot, and hands nothing on until the lead is sent.
    const LEADS: usize = 6;
    let app = TestApp::production().await;
    let pipedrive = PipedriveMock::start("pd-token-3").await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Queued").await;
    app.gql_ok(
        &owner.token,
        CREATE,
        json!({ "input": { "listId": list.id, "name": "Pipedrive", "kind": "PIPEDRIVE",
            "url": pipedrive.base, "pipedrive": { "createLead": true }, "maxInFlight": 1,
            "headers": [{ "name": "x-api-token", "value": "pd-token-3" }] } }),
    )
    .await;
    app.post_leads(&list.inbound_url, LEADS).await;
    leadrelay_tests::eventually(
        "every lead in Pipedrive",
        Duration::from_secs(30),
        || async { (pipedrive.leads().len() >= LEADS).then_some(()) },
    )
    .await;
    assert_eq!(pipedrive.persons().len(), LEADS);
    assert_eq!(pipedrive.leads().len(), LEADS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_pipedrive_lead_is_retried_without_creating_the_person_again() {
    let app = TestApp::start(
        Mode::Production,
        &[
            "--allow-insecure-targets",
            "true",
            "--retry-ladder",
            "0s,1s,1s",
        ],
    )
    .await;
    let pipedrive = PipedriveMock::start("pd-token-2").await;
    pipedrive.fail_leads(1);
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Solar").await;
    app.create_integration_with(
        &owner,
        json!({ "listId": list.id, "kind": "PIPEDRIVE", "url": pipedrive.base,
            "pipedrive": { "createLead": true },
            "headers": [{ "name": "X-Api-Token", "value": "pd-token-2" }] }),
    )
    .await;
    let delivery = deliver(
        &app,
        &owner,
        &list.inbound_url,
        json!({ "email": "cy@example.com" }),
    )
    .await;
    let delivered = app.wait_for_delivery(&owner, &delivery, "DELIVERED").await;
    let codes: Vec<i64> = delivered["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["statusCode"].as_i64().unwrap())
        .collect();
    assert_eq!(
        codes,
        [200, 503, 201],
        "person, lead refused for a moment, lead"
    );
    let refused = &delivered["attempts"][1];
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("Service unavailable"),
        "{refused}"
    );
    assert_eq!(pipedrive.persons().len(), 1, "the person was created once");
    assert_eq!(pipedrive.persons()[0]["name"], "cy@example.com");
    assert_eq!(pipedrive.leads().len(), 1);
    assert_eq!(pipedrive.leads()[0]["person_id"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_get_the_lead_as_a_flat_signed_json_body() {
    let app = TestApp::production().await;
    let receiver = Receiver::start().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Solar").await;
    for (kind, path) in [
        ("ZAPIER", "/hooks/catch/123456/abcdef/"),
        ("MAKE", "/a1b2c3d4e5f6g7h8i9j0"),
        ("N8N", "/webhook/3f1c2a9e-1b2c-4d5e-8f90-1234567890ab"),
    ] {
        app.create_integration_with(
            &owner,
            json!({ "listId": list.id, "name": kind, "kind": kind, "url": receiver.url(path) }),
        )
        .await;
    }
    let (status, _) = app
        .post_lead(
            &list.inbound_url,
            &json!({ "email": "ana@example.com", "nome": "Ana Maria Silva", "cargo": "CTO" }),
        )
        .await;
    assert_eq!(status, 202);
    let got = receiver.wait_for(3, Duration::from_secs(15)).await;
    let mut paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "/a1b2c3d4e5f6g7h8i9j0",
            "/hooks/catch/123456/abcdef/",
            "/webhook/3f1c2a9e-1b2c-4d5e-8f90-1234567890ab"
        ]
    );
    for request in &got {
        let body = request.json();
        assert_eq!(body["event"], "lead.qualified");
        assert_eq!(body["email"], "ana@example.com");
        assert_eq!(body["first_name"], "Ana");
        assert_eq!(body["last_name"], "Maria Silva");
        assert_eq!(body["job_title"], "CTO", "a custom field, at the top");
        assert_eq!(body["list_name"], "Solar");
        assert!(body["lead_id"].is_string());
        assert!(
            body.as_object().unwrap().values().all(|v| !v.is_object()),
            "flat: {body}"
        );
        assert!(
            request.header("webhook-signature").is_some(),
            "hooks are signed"
        );
    }
}

/// Runs `createIntegration` with `input` (name "t" unless given).
async fn create(app: &TestApp, owner: &Session, input: Value) -> Value {
    let mut full = json!({ "name": "t" });
    full.as_object_mut()
        .unwrap()
        .extend(input.as_object().unwrap().clone());
    app.gql(Some(&owner.token), CREATE, json!({ "input": full }))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_preset_configuration_is_refused_at_save_time_naming_the_field() {
    // The development switch is off: hosts are checked.
    let app = TestApp::start(Mode::Production, &[]).await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Safe").await;
    let bearer = json!([{ "name": "Authorization", "value": "Bearer pat-na1-x" }]);
    let pd_token = json!([{ "name": "x-api-token", "value": "abc" }]);
    let cases = [
        (
            "zapier on another host",
            json!({ "kind": "ZAPIER", "url": "https://hooks.zapier.com.evil.io/hooks/catch/1/a/" }),
            "url",
        ),
        (
            "zapier over http",
            json!({ "kind": "ZAPIER", "url": "http://hooks.zapier.com/hooks/catch/1/a/" }),
            "url",
        ),
        (
            "zapier, not a catch hook",
            json!({ "kind": "ZAPIER", "url": "https://hooks.zapier.com/hooks/standard/1/a/" }),
            "url",
        ),
        (
            "make on another host",
            json!({ "kind": "MAKE", "url": "https://hook.eu1.make.com.evil.io/abc" }),
            "url",
        ),
        (
            "n8n without a webhook path",
            json!({ "kind": "N8N", "url": "https://n8n.example.com/api/x" }),
            "url",
        ),
        (
            "hubspot elsewhere",
            json!({ "kind": "HUBSPOT", "url": "https://crm.example.com", "headers": bearer }),
            "url",
        ),
        (
            "hubspot with a path",
            json!({ "kind": "HUBSPOT", "url": "https://api.hubapi.com/crm/v3", "headers": bearer }),
            "url",
        ),
        (
            "hubspot without a token",
            json!({ "kind": "HUBSPOT" }),
            "headers",
        ),
        (
            "hubspot with a bare token",
            json!({ "kind": "HUBSPOT", "headers": [{ "name": "Authorization", "value": "pat-na1-x" }] }),
            "headers",
        ),
        (
            "hubspot with a fallback",
            json!({ "kind": "HUBSPOT", "headers": bearer, "fallbackUrl": "https://backup.example.com/x" }),
            "fallbackUrl",
        ),
        (
            "hubspot with a form mapping",
            json!({ "kind": "HUBSPOT", "headers": bearer,
            "mapping": { "format": "FORM", "fields": [{ "target": "email", "source": "lead.email" }] } }),
            "mapping.format",
        ),
        (
            "hubspot with a dotted property",
            json!({ "kind": "HUBSPOT", "headers": bearer,
            "mapping": { "format": "JSON", "fields": [{ "target": "contact.email", "source": "lead.email" }] } }),
            "mapping.fields[0].target",
        ),
        (
            "pipedrive without a url",
            json!({ "kind": "PIPEDRIVE", "headers": pd_token }),
            "url",
        ),
        (
            "pipedrive off its domain",
            json!({ "kind": "PIPEDRIVE", "url": "https://acme.example.com", "headers": pd_token }),
            "url",
        ),
        (
            "pipedrive without a token",
            json!({ "kind": "PIPEDRIVE", "url": "https://acme.pipedrive.com" }),
            "headers",
        ),
        (
            "pipedrive settings elsewhere",
            json!({ "kind": "ZAPIER", "url": "https://hooks.zapier.com/hooks/catch/1/a/",
            "pipedrive": { "createLead": true } }),
            "pipedrive",
        ),
    ];
    for (case, input, field) in cases {
        let mut input = input;
        input["listId"] = json!(list.id);
        let r = create(&app, &owner, input).await;
        assert_eq!(error_code(&r), "BAD_USER_INPUT", "{case}: {r}");
        let message = r["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}:")),
            "{case}: {message}"
        );
    }
    assert_eq!(
        app.count_rows("integrations").await,
        0,
        "nothing bad was stored"
    );

    for (input, url) in [
        (
            json!({ "kind": "ZAPIER", "url": "https://hooks.zapier.com/hooks/catch/123456/abcdef/" }),
            "https://hooks.zapier.com/hooks/catch/123456/abcdef/",
        ),
        (
            json!({ "kind": "MAKE", "url": "https://hook.eu1.make.com/a1b2c3d4e5" }),
            "https://hook.eu1.make.com/a1b2c3d4e5",
        ),
        (
            json!({ "kind": "N8N", "url": "https://n8n.example.com/webhook/leads" }),
            "https://n8n.example.com/webhook/leads",
        ),
        (
            json!({ "kind": "HUBSPOT", "headers": bearer }),
            "https://api.hubapi.com/",
        ),
        (
            json!({ "kind": "PIPEDRIVE", "url": "https://acme.pipedrive.com", "headers": pd_token }),
            "https://acme.pipedrive.com/",
        ),
    ] {
        let mut input = input;
        input["listId"] = json!(list.id);
        let r = create(&app, &owner, input).await;
        assert!(r.get("errors").is_none(), "{r}");
        assert_eq!(r["data"]["createIntegration"]["url"], url);
    }
    // An update is held to the same rules.
    let zap = create(
        &app,
        &owner,
        json!({ "listId": list.id, "kind": "ZAPIER", "url": "https://hooks.zapier.com/hooks/catch/1/a/" }),
    )
    .await;
    let id = zap["data"]["createIntegration"]["id"].as_str().unwrap();
    let moved = app
        .gql(
            Some(&owner.token),
            "mutation($id: ID!, $input: UpdateIntegrationInput!) { updateIntegration(id: $id, input: $input) { id } }",
            json!({ "id": id, "input": { "url": "https://example.com/hooks/catch/1/a/" } }),
        )
        .await;
    assert_eq!(error_code(&moved), "BAD_USER_INPUT", "{moved}");
    assert!(
        moved["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("url:")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_development_switch_skips_host_checks_but_not_paths() {
    let app = TestApp::production().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Dev").await;
    let ok = create(
        &app,
        &owner,
        json!({ "listId": list.id, "kind": "ZAPIER", "url": "http://127.0.0.1:9/hooks/catch/1/a/" }),
    )
    .await;
    assert!(ok.get("errors").is_none(), "{ok}");
    let bad = create(
        &app,
        &owner,
        json!({ "listId": list.id, "kind": "ZAPIER", "url": "http://127.0.0.1:9/somewhere" }),
    )
    .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT");
    assert!(
        bad["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("url:")
    );
    // The target rules still apply: a private address stays blocked.
    let private = create(
        &app,
        &owner,
        json!({ "listId": list.id, "kind": "PIPEDRIVE", "url": "http://10.0.0.5",
            "headers": [{ "name": "x-api-token", "value": "abc" }] }),
    )
    .await;
    assert_eq!(error_code(&private), "BAD_USER_INPUT");
    assert!(
        private["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("url:")
    );
}
