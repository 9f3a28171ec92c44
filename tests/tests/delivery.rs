//! A lead posted to the inbound webhook reaches a real receiver with the seed body shape
//! and the integration's custom headers, and the customer sees the delivery and its
//! attempt over GraphQL (PostgreSQL + Redis, worker in the api process).

use leadrelay_tests::{Mode, Receiver, TestApp, eventually};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lead_is_delivered_with_the_seed_body_and_custom_headers() {
    let app = TestApp::production().await;
    let receiver = Receiver::start().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Solar leads").await;
    app.create_integration(
        &owner,
        &list.id,
        &receiver.url("/crm/leads"),
        &[
            ("Authorization", "Bearer crm-token-123456"),
            ("X-API-Key", "k-42"),
        ],
    )
    .await;

    let (status, answer) = app
        .post_lead(
            &list.inbound_url,
            &json!({"E-mail": " Ana@Example.COM ", "full_name": "Ana Souza", "phone_number": "+5511999999999",
                    "company_name": "Sol Ltda", "utm_source": "google", "budget": 1200}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "qualified");
    let lead_id = answer["lead_id"].as_str().expect("lead_id");

    let got = receiver.wait_for(1, Duration::from_secs(15)).await;
    let request = &got[0];
    assert_eq!(request.path, "/crm/leads");
    assert_eq!(
        request.header("authorization"),
        Some("Bearer crm-token-123456")
    );
    assert_eq!(request.header("x-api-key"), Some("k-42"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = request.json();
    assert_eq!(body["event"], "lead.qualified");
    assert_eq!(body["lead"]["id"], lead_id);
    assert_eq!(body["lead"]["email"], "ana@example.com");
    assert_eq!(body["lead"]["name"], "Ana Souza");
    assert_eq!(body["lead"]["phone"], "+5511999999999");
    assert_eq!(body["lead"]["company"], "Sol Ltda");
    assert_eq!(body["lead"]["status"], "qualified");
    assert_eq!(body["lead"]["score"], 90);
    assert_eq!(
        body["lead"]["custom_fields"],
        json!({"utm_source": "google", "budget": 1200})
    );
    // The seven keys of the default body; a loopback source is not assessed.
    let verifications = &body["lead"]["verifications"];
    let seven: serde_json::Map<String, serde_json::Value> = [
        "email_valid",
        "phone_valid",
        "cnpj_valid",
        "cnpj_status",
        "ip_risk_score",
        "ip_proxy",
        "ip_vpn",
    ]
    .into_iter()
    .map(|key| {
        let value = verifications.get(key).cloned();
        (key.to_owned(), value.unwrap_or_else(|| json!("missing")))
    })
    .collect();
    assert_eq!(
        serde_json::Value::Object(seven),
        json!({"email_valid": true, "phone_valid": true, "cnpj_valid": null, "cnpj_status": null,
               "ip_risk_score": null, "ip_proxy": null, "ip_vpn": null})
    );
    assert!(body["lead"]["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(
        body["lead"]["qualified_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(body["list"], json!({"id": list.id, "name": "Solar leads"}));

    let deliveries = app.lead_deliveries(&owner, lead_id).await;
    assert_eq!(deliveries.len(), 1);
    let delivery = app
        .wait_for_delivery(&owner, &deliveries[0], "DELIVERED")
        .await;
    assert_eq!(delivery["attemptCount"], 1);
    assert_eq!(delivery["nextAttemptAt"], serde_json::Value::Null);
    assert_eq!(delivery["lead"]["email"], "ana@example.com");
    let attempt = &delivery["attempts"][0];
    assert_eq!(attempt["number"], 1);
    assert_eq!(attempt["endpoint"], "PRIMARY");
    assert_eq!(attempt["url"], receiver.url("/crm/leads"));
    assert_eq!(attempt["statusCode"], 200);
    assert_eq!(attempt["responseBody"], r#"{"ok":true}"#);
    assert!(attempt["durationMs"].as_i64().unwrap() >= 0);
    assert_eq!(attempt["errorKind"], serde_json::Value::Null);
    let headers = attempt["requestHeaders"].as_array().unwrap();
    let auth = headers
        .iter()
        .find(|h| h["name"] == "authorization")
        .expect("authorization logged");
    assert_eq!(auth["valuePreview"], "Bear••••");
    let key = headers
        .iter()
        .find(|h| h["name"] == "x-api-key")
        .expect("x-api-key logged");
    assert_eq!(key["valuePreview"], "••••");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_lead_is_delivered_and_listed() {
    let app = TestApp::production().await;
    let receiver = Receiver::start().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Form list").await;
    let integration_id = app
        .create_integration(&owner, &list.id, &receiver.url("/hook"), &[])
        .await;

    let (status, text) = app
        .post_raw(
            &list.inbound_url,
            Some("application/x-www-form-urlencoded"),
            b"email=bia%40example.com&nome=Bia+Lima&telefone=11988887777&interesse=plano+anual"
                .to_vec(),
        )
        .await;
    assert_eq!(status, 202, "{text}");

    let body = receiver.wait_for(1, Duration::from_secs(15)).await[0].json();
    assert_eq!(body["lead"]["email"], "bia@example.com");
    assert_eq!(body["lead"]["name"], "Bia Lima");
    assert_eq!(body["lead"]["phone"], "+5511988887777");
    assert_eq!(
        body["lead"]["custom_fields"],
        json!({"interesse": "plano anual"})
    );

    let page = eventually("the delivery to be DELIVERED in the list", Duration::from_secs(15), || async {
        let data = app
            .gql_ok(
                &owner.token,
                "query($f: DeliveryFilter) { deliveries(filter: $f, first: 10) { totalCount
                    pageInfo { hasNextPage } edges { cursor node { id status integration { id name } } } } }",
                json!({ "f": { "integrationId": integration_id } }),
            )
            .await;
        (data["deliveries"]["edges"][0]["node"]["status"] == "DELIVERED").then_some(data)
    })
    .await;
    assert_eq!(page["deliveries"]["totalCount"], 1);
    assert_eq!(page["deliveries"]["pageInfo"]["hasNextPage"], false);
    assert_eq!(
        page["deliveries"]["edges"][0]["node"]["integration"]["name"],
        "CRM webhook"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_active_integration_gets_one_delivery_and_inactive_ones_none() {
    let app = TestApp::production().await;
    let (a, b, off) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Fan-out").await;
    app.create_integration(&owner, &list.id, &a.url("/a"), &[])
        .await;
    app.create_integration(&owner, &list.id, &b.url("/b"), &[])
        .await;
    let inactive = app
        .create_integration(&owner, &list.id, &off.url("/off"), &[])
        .await;
    app.gql_ok(
        &owner.token,
        "mutation($id: ID!) { updateIntegration(id: $id, input: { active: false }) { active } }",
        json!({ "id": inactive }),
    )
    .await;

    let (status, answer) = app
        .post_lead(&list.inbound_url, &json!({"email": "c@example.com"}))
        .await;
    assert_eq!(status, 202);
    a.wait_for(1, Duration::from_secs(15)).await;
    b.wait_for(1, Duration::from_secs(15)).await;
    let deliveries = app
        .lead_deliveries(&owner, answer["lead_id"].as_str().unwrap())
        .await;
    assert_eq!(deliveries.len(), 2);
    for id in &deliveries {
        app.wait_for_delivery(&owner, id, "DELIVERED").await;
    }
    assert!(
        off.requests().is_empty(),
        "an inactive integration received a lead"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_error_is_recorded_on_the_attempt() {
    // A one-attempt ladder: the first 5xx is the last.
    let app = TestApp::start(
        Mode::Production,
        &["--allow-insecure-targets", "true", "--retry-ladder", "0s"],
    )
    .await;
    let receiver = Receiver::start().await;
    receiver.respond_with(500, "database on fire");
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Errors").await;
    app.create_integration(&owner, &list.id, &receiver.url("/x"), &[])
        .await;
    let (_, answer) = app
        .post_lead(&list.inbound_url, &json!({"email": "d@example.com"}))
        .await;
    let deliveries = app
        .lead_deliveries(&owner, answer["lead_id"].as_str().unwrap())
        .await;
    let delivery = app.wait_for_delivery(&owner, &deliveries[0], "ERROR").await;
    let attempt = &delivery["attempts"][0];
    assert_eq!(attempt["statusCode"], 500);
    assert_eq!(attempt["responseBody"], "database on fire");
    assert_eq!(attempt["errorKind"], "HTTP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_a_connect_error() {
    let app = TestApp::start(
        Mode::Production,
        &["--allow-insecure-targets", "true", "--retry-ladder", "0s"],
    )
    .await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Closed").await;
    app.create_integration(&owner, &list.id, &format!("http://{closed}/x"), &[])
        .await;
    let (_, answer) = app
        .post_lead(&list.inbound_url, &json!({"email": "e@example.com"}))
        .await;
    let deliveries = app
        .lead_deliveries(&owner, answer["lead_id"].as_str().unwrap())
        .await;
    let delivery = app.wait_for_delivery(&owner, &deliveries[0], "ERROR").await;
    assert_eq!(delivery["attempts"][0]["errorKind"], "CONNECT");
    assert_eq!(
        delivery["attempts"][0]["statusCode"],
        serde_json::Value::Null
    );
}
