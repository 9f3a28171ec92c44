//! Tenant B never sees tenant A's rows: queries answer null, mutations NOT_FOUND, exactly
//! as for a missing id.

use leadrelay_tests::{Receiver, TestApp, error_code};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_ids_read_as_missing() {
    let app = TestApp::production().await;
    let receiver = Receiver::start().await;
    let (a, b) = (app.signup().await, app.signup().await);
    let list = app.create_list(&a, "A's list").await;
    let integration = app
        .create_integration(
            &a,
            &list.id,
            &receiver.url("/a"),
            &[("Authorization", "Bearer a-secret-value")],
        )
        .await;
    let (_, answer) = app
        .post_lead(&list.inbound_url, &json!({"email": "a@example.com"}))
        .await;
    let lead = answer["lead_id"].as_str().unwrap().to_owned();
    let delivery = app.lead_deliveries(&a, &lead).await.remove(0);
    receiver.wait_for(1, Duration::from_secs(15)).await;

    // Queries: null for B, exactly like an id that does not exist.
    for (field, id, missing) in [
        ("list", &list.id, "lst_0000000000000000000000000000dead"),
        (
            "integration",
            &integration,
            "int_0000000000000000000000000000dead",
        ),
        ("lead", &lead, "lead_0000000000000000000000000000dead"),
        (
            "delivery",
            &delivery,
            "dlv_0000000000000000000000000000dead",
        ),
    ] {
        let query = format!("query($id: ID!) {{ {field}(id: $id) {{ id }} }}");
        let theirs = app.gql(Some(&b.token), &query, json!({ "id": id })).await;
        let absent = app
            .gql(Some(&b.token), &query, json!({ "id": missing }))
            .await;
        assert_eq!(theirs, json!({ "data": { field: null } }), "{field}");
        assert_eq!(
            theirs, absent,
            "{field}: another tenant's id must read as a missing one"
        );
        let own = app.gql_ok(&a.token, &query, json!({ "id": id })).await;
        assert_eq!(own[field]["id"], json!(id), "{field}: the owner sees it");
    }

    // Lists and deliveries of B are empty.
    let data = app
        .gql_ok(
            &b.token,
            "{ lists { totalCount } deliveries { totalCount edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["lists"]["totalCount"], 0);
    assert_eq!(data["deliveries"]["totalCount"], 0);

    // Mutations: NOT_FOUND.
    let update_list = app
        .gql(
            Some(&b.token),
            "mutation($id: ID!) { updateList(id: $id, input: { name: \"mine\" }) { id } }",
            json!({ "id": list.id }),
        )
        .await;
    assert_eq!(error_code(&update_list), "NOT_FOUND");
    let update_integration = app
        .gql(
            Some(&b.token),
            "mutation($id: ID!) { updateIntegration(id: $id, input: { url: \"http://127.0.0.1:9/x\" }) { id } }",
            json!({ "id": integration }),
        )
        .await;
    assert_eq!(error_code(&update_integration), "NOT_FOUND");
    let create_on_theirs = app
        .gql(
            Some(&b.token),
            "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { id } }",
            json!({ "input": { "listId": list.id, "name": "steal", "url": "http://127.0.0.1:9/x" } }),
        )
        .await;
    assert_eq!(error_code(&create_on_theirs), "NOT_FOUND");
    // Filtering by another tenant's list finds nothing.
    let filtered = app
        .gql_ok(
            &b.token,
            "query($l: ID!) { deliveries(filter: { listId: $l }) { totalCount } }",
            json!({ "l": list.id }),
        )
        .await;
    assert_eq!(filtered["deliveries"]["totalCount"], 0);
    // A's integration is unchanged.
    let still = app
        .gql_ok(
            &a.token,
            "query($id: ID!) { integration(id: $id) { url } }",
            json!({ "id": integration }),
        )
        .await;
    assert_eq!(still["integration"]["url"], receiver.url("/a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_id_is_bad_user_input() {
    let app = TestApp::production().await;
    let a = app.signup().await;
    let response = app
        .gql(
            Some(&a.token),
            "{ lead(id: \"dlv_123\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&response), "BAD_USER_INPUT");
}
