//! Bad inbound requests get a clear 4xx with a message, and nothing is written.

use leadrelay_tests::{Receiver, TestApp};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_answer_4xx_and_write_nothing() {
    let app = TestApp::production().await;
    let receiver = Receiver::start().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Strict").await;
    app.create_integration(&owner, &list.id, &receiver.url("/x"), &[])
        .await;
    let url = list.inbound_url.as_str();

    let cases: Vec<(&str, Option<&str>, Vec<u8>, u16)> = vec![
        (
            "malformed JSON",
            Some("application/json"),
            b"{\"email\": ".to_vec(),
            400,
        ),
        (
            "a JSON array",
            Some("application/json"),
            b"[1, 2]".to_vec(),
            400,
        ),
        (
            "an empty object",
            Some("application/json"),
            b"{}".to_vec(),
            422,
        ),
        (
            "an empty form",
            Some("application/x-www-form-urlencoded"),
            Vec::new(),
            422,
        ),
        (
            "plain text",
            Some("text/plain"),
            b"email=a@b.co".to_vec(),
            415,
        ),
        (
            "no content type",
            None,
            b"{\"email\":\"a@b.co\"}".to_vec(),
            415,
        ),
        (
            "invalid UTF-8",
            Some("application/json"),
            vec![0xff, 0xfe, b'{', b'}'],
            400,
        ),
        (
            "over 256 KiB",
            Some("application/json"),
            format!("{{\"x\":\"{}\"}}", "a".repeat(300 * 1024)).into_bytes(),
            413,
        ),
    ];
    for (what, content_type, body, expected) in cases {
        let (status, text) = app.post_raw(url, content_type, body).await;
        assert_eq!(status, expected, "{what}: {text}");
        let answer: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{what}: the answer is JSON: {text}"));
        assert!(
            answer["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: a message: {text}"
        );
    }
    let (status, text) = app
        .post_raw(
            &format!("{}/inbound/{}", app.base, "0".repeat(32)),
            Some("application/json"),
            b"{\"a\":1}".to_vec(),
        )
        .await;
    assert_eq!(status, 404, "{text}");

    assert_eq!(app.count_rows("leads").await, 0);
    assert_eq!(app.count_rows("deliveries").await, 0);
    assert!(receiver.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inactive_list_answers_403() {
    let app = TestApp::production().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Paused").await;
    app.gql_ok(
        &owner.token,
        "mutation($id: ID!) { updateList(id: $id, input: { active: false }) { active } }",
        json!({ "id": list.id }),
    )
    .await;
    let (status, answer) = app
        .post_lead(&list.inbound_url, &json!({"email": "a@example.com"}))
        .await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(app.count_rows("leads").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_without_integrations_is_stored_and_visible() {
    let app = TestApp::production().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "No integrations").await;
    let (status, answer) = app
        .post_lead(
            &list.inbound_url,
            &json!({"email": "solo@example.com", "city": "Recife"}),
        )
        .await;
    assert_eq!(status, 202);
    let lead = app
        .gql_ok(
            &owner.token,
            "query($id: ID!) { lead(id: $id) { status email score customFields verifications isTest deliveries { id } list { name } } }",
            json!({ "id": answer["lead_id"] }),
        )
        .await;
    assert_eq!(lead["lead"]["status"], "QUALIFIED");
    assert_eq!(lead["lead"]["email"], "solo@example.com");
    assert_eq!(lead["lead"]["score"], Value::Null);
    assert_eq!(lead["lead"]["customFields"], json!({"city": "Recife"}));
    assert_eq!(lead["lead"]["verifications"]["email_valid"], Value::Null);
    assert_eq!(lead["lead"]["isTest"], false);
    assert_eq!(lead["lead"]["deliveries"], json!([]));
    assert_eq!(lead["lead"]["list"]["name"], "No integrations");
}
