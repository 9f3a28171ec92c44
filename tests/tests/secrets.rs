//! Header values are write-only: no API response ever contains one, and at rest they
//! are sealed with `LEADRELAY_SECRET_KEY`.

use leadrelay_tests::{Mode, Receiver, TestApp};
use serde_json::json;
use std::time::Duration;

const SECRET: &str = "sk_live_TOP_SECRET_0123456789";
const SECOND: &str = "rotated-SECRET-abcdefghijkl";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_values_never_appear_in_api_responses() {
    let app = TestApp::production().await;
    let receiver = Receiver::start().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Secrets").await;
    let mut responses = Vec::new();

    let created = app
        .gql(
            Some(&owner.token),
            "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { id url headers { name valuePreview } } }",
            json!({ "input": { "listId": list.id, "name": "secret hook", "url": receiver.url("/s"),
                               "headers": [{ "name": "Authorization", "value": SECRET }] } }),
        )
        .await;
    let id = created["data"]["createIntegration"]["id"]
        .as_str()
        .expect("created")
        .to_owned();
    assert_eq!(
        created["data"]["createIntegration"]["headers"],
        json!([{ "name": "authorization", "valuePreview": "sk_l••••" }])
    );
    responses.push(created);

    let (_, answer) = app
        .post_lead(&list.inbound_url, &json!({"email": "s@example.com"}))
        .await;
    let got = receiver.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(
        got[0].header("authorization"),
        Some(SECRET),
        "the receiver gets the real value"
    );
    let delivery = app
        .lead_deliveries(&owner, answer["lead_id"].as_str().unwrap())
        .await
        .remove(0);
    responses.push(json!(
        app.wait_for_delivery(&owner, &delivery, "DELIVERED").await
    ));

    responses.push(
        app.gql(
            Some(&owner.token),
            "mutation($id: ID!) { updateIntegration(id: $id, input: { headers: [{ name: \"X-Key\", value: \"rotated-SECRET-abcdefghijkl\" }] }) { headers { name valuePreview } } }",
            json!({ "id": id }),
        )
        .await,
    );
    responses.push(
        app.gql(
            Some(&owner.token),
            "query($id: ID!) { integration(id: $id) { id url headers { name valuePreview } } deliveries { edges { node { attempts { requestHeaders { name valuePreview } } integration { headers { valuePreview } } } } } }",
            json!({ "id": id }),
        )
        .await,
    );
    for response in &responses {
        let text = response.to_string();
        assert!(!text.contains(SECRET), "secret leaked: {text}");
        assert!(!text.contains(SECOND), "secret leaked: {text}");
    }
    assert_eq!(
        responses[2]["data"]["updateIntegration"]["headers"],
        json!([{ "name": "x-key", "valuePreview": "rota••••" }])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_values_are_sealed_at_rest_and_opened_by_a_worker_process() {
    let app = TestApp::start(
        Mode::ProductionNoWorker,
        &["--allow-insecure-targets", "true"],
    )
    .await;
    let _worker = app.spawn_worker().await;
    let receiver = Receiver::start().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Sealed").await;
    app.create_integration_with(
        &owner,
        json!({ "listId": list.id, "name": "sealed hook", "url": receiver.url("/sealed"),
                "headers": [{ "name": "X-API-Key", "value": SECRET }] }),
    )
    .await;
    assert_eq!(
        app.count_where("integration_headers", &format!("value LIKE '%{SECRET}%'"))
            .await,
        0,
        "the value is not stored in plain text"
    );
    assert_eq!(
        app.count_where("integration_headers", "value LIKE 'v1.%'")
            .await,
        1
    );

    app.post_lead(&list.inbound_url, &json!({"email": "sealed@example.com"}))
        .await;
    let got = receiver.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(
        got[0].header("x-api-key"),
        Some(SECRET),
        "the worker process opens the sealed value"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_the_secret_key_refuses_to_start() {
    let app = TestApp::start(Mode::ProductionNoWorker, &[]).await;
    let mut worker = tokio::process::Command::new(leadrelay_tests::binary("leadrelay-worker"))
        .env("LEADRELAY_DATABASE_URL", &app.database_url)
        .env("LEADRELAY_REDIS_URL", &app.redis_url)
        .env("LEADRELAY_BIND", "127.0.0.1:0")
        .env_remove("LEADRELAY_SECRET_KEY")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawning leadrelay-worker");
    let status = tokio::time::timeout(Duration::from_secs(20), worker.wait())
        .await
        .expect("the worker exits")
        .expect("exit status");
    assert!(!status.success());
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(worker.stderr.as_mut().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert!(stderr.contains("LEADRELAY_SECRET_KEY"), "{stderr}");
}
