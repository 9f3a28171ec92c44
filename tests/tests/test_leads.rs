//! `sendTestLead` (issue 7): a test lead goes through the real queue and worker to the
//! integration, bypassing its filter and active flag and the list's rules; it shows in
//! `deliveries` and the subscription marked `isTest`, stays out of `leads` unless asked
//! for, and sets the integration's `lastTestStatus`.

use leadrelay_tests::{Receiver, TestApp, error_code};
use serde_json::{Value, json};
use std::time::Duration;

const SEND: &str = "mutation($id: ID!, $sample: JSON) {
    sendTestLead(integrationId: $id, sample: $sample) { id isTest status lead { id isTest status email } } }";

const LAST_TEST: &str = "query($id: ID!) { integration(id: $id) { active lastTestStatus } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_lead_reaches_an_inactive_filtered_integration_and_is_marked() {
    let app = TestApp::production().await;
    let receiver = Receiver::start().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Test leads").await;
    // Rules no lead passes, and a filter the sample does not match.
    app.update_list(
        &owner,
        &list.id,
        json!({ "minScore": 100, "requiredChecks": ["cnpj_valid"] }),
    )
    .await;
    let integration = app
        .create_integration_with(
            &owner,
            json!({ "listId": list.id, "name": "Off and picky", "url": receiver.url("/test"),
                    "active": false,
                    "filter": { "match": "ALL", "conditions": [
                        { "field": "lead.custom_fields.state", "op": "EQ", "value": "nowhere" } ] } }),
        )
        .await;
    let before = app
        .gql_ok(&owner.token, LAST_TEST, json!({ "id": integration }))
        .await;
    assert_eq!(before["integration"]["lastTestStatus"], Value::Null);
    let mut events = app.subscribe_deliveries(&owner).await;

    let sent = app
        .gql_ok(&owner.token, SEND, json!({ "id": integration }))
        .await["sendTestLead"]
        .clone();
    assert_eq!(sent["isTest"], true);
    assert_eq!(sent["lead"]["isTest"], true);
    assert_eq!(
        sent["lead"]["status"], "QUALIFIED",
        "qualification is bypassed"
    );
    let delivery = sent["id"].as_str().unwrap().to_owned();

    let got = receiver.wait_for(1, Duration::from_secs(15)).await;
    let body = got[0].json();
    assert_eq!(body["event"], "lead.qualified");
    assert_eq!(body["lead"]["id"], sent["lead"]["id"]);
    assert!(
        body["lead"]["email"]
            .as_str()
            .is_some_and(|e| e.contains('@')),
        "the built-in sample is a realistic lead: {body}"
    );
    assert_eq!(
        body["lead"]["phone"], "+5511987654321",
        "normalised like a real lead"
    );
    assert_eq!(body["lead"]["verifications"]["phone_valid"], true);
    let statuses = events.delivery_statuses_until(&delivery, "DELIVERED").await;
    assert_eq!(statuses.last().map(String::as_str), Some("DELIVERED"));

    let after = app
        .gql_ok(&owner.token, LAST_TEST, json!({ "id": integration }))
        .await;
    assert_eq!(
        after["integration"],
        json!({ "active": false, "lastTestStatus": "DELIVERED" }),
        "the test changes nothing but lastTestStatus"
    );
    let marked = app
        .gql_ok(
            &owner.token,
            "{ deliveries { totalCount edges { node { id isTest } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        marked["deliveries"]["edges"],
        json!([{ "node": { "id": delivery, "isTest": true } }])
    );
    let leads = |filter: Value| {
        let (app, token) = (&app, owner.token.clone());
        async move {
            app.gql_ok(
                &token,
                "query($f: LeadFilter) { leads(filter: $f) { totalCount edges { node { id isTest } } } }",
                json!({ "f": filter }),
            )
            .await["leads"]
                .clone()
        }
    };
    assert_eq!(
        leads(Value::Null).await["totalCount"],
        0,
        "leads leaves tests out"
    );
    let tests = leads(json!({ "isTest": true })).await;
    assert_eq!(tests["totalCount"], 1);
    assert_eq!(tests["edges"][0]["node"]["id"], sent["lead"]["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_is_used_as_sent_and_a_refusal_shows_in_last_test_status() {
    let app = TestApp::production().await;
    let receiver = Receiver::start().await;
    receiver.respond_with(401, r#"{"error":"bad token"}"#);
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Samples").await;
    let integration = app
        .create_integration(&owner, &list.id, &receiver.url("/s"), &[])
        .await;
    // The same sample twice: no DUPLICATE for test leads.
    let sample =
        json!({ "e-mail": "Ana@Example.com", "telefone": "(21) 99876-5432", "plan": "gold" });
    for _ in 0..2 {
        let sent = app
            .gql_ok(
                &owner.token,
                SEND,
                json!({ "id": integration, "sample": sample }),
            )
            .await["sendTestLead"]
            .clone();
        assert_eq!(sent["lead"]["email"], "ana@example.com");
        assert_eq!(sent["lead"]["status"], "QUALIFIED");
        app.wait_for_delivery(&owner, sent["id"].as_str().unwrap(), "FAILED")
            .await;
    }
    let got = receiver.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(got[0].json()["lead"]["custom_fields"]["plan"], "gold");
    assert_eq!(got[0].json()["lead"]["phone"], "+5521998765432");
    let after = app
        .gql_ok(&owner.token, LAST_TEST, json!({ "id": integration }))
        .await;
    assert_eq!(after["integration"]["lastTestStatus"], "FAILED");

    let bad = app
        .gql(
            Some(&owner.token),
            SEND,
            json!({ "id": integration, "sample": [1, 2] }),
        )
        .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT", "{bad}");
    assert!(
        bad["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("sample")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_integration_is_not_found() {
    let app = TestApp::production().await;
    let (owner, other) = (app.signup().await, app.signup().await);
    let list = app.create_list(&owner, "Mine").await;
    let integration = app
        .create_integration(&owner, &list.id, "http://127.0.0.1:9/x", &[])
        .await;
    let answer = app
        .gql(Some(&other.token), SEND, json!({ "id": integration }))
        .await;
    assert_eq!(error_code(&answer), "NOT_FOUND", "{answer}");
    let mine = app
        .gql_ok(
            &other.token,
            "{ leads(filter: { isTest: true }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(mine["leads"]["totalCount"], 0);
}
