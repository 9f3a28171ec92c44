//! Header values are write-only: no API response ever contains one.

use leadrelay_tests::{Receiver, TestApp};
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
