//! Inbound options per list: rotating the URL, an API key, idempotent retries, CORS for
//! browser posts and a thank-you redirect for plain HTML forms.

use leadrelay_tests::{Receiver, TestApp};
use serde_json::{Value, json};
use std::time::Duration;

/// POSTs a JSON lead with extra headers; returns the status and the JSON answer.
async fn post_with(
    app: &TestApp,
    url: &str,
    headers: &[(&str, &str)],
    lead: &Value,
) -> (u16, Value) {
    let mut request = app.http.post(url).json(lead);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("inbound request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn rotate(app: &TestApp, token: &str, mutation: &str, list_id: &str) -> Value {
    app.gql_ok(
        token,
        &format!(
            "mutation($id: ID!) {{ {mutation}(listId: $id) {{ inboundUrl apiKey requireApiKey }} }}"
        ),
        json!({ "id": list_id }),
    )
    .await[mutation]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_inbound_url_retires_the_old_one() {
    let app = TestApp::production().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Rotating").await;
    let rotated = rotate(&app, &owner.token, "rotateInboundToken", &list.id).await;
    let new_url = rotated["inboundUrl"].as_str().unwrap();
    assert_ne!(new_url, list.inbound_url);
    let lead = json!({"email": "a@example.com"});
    assert_eq!(app.post_lead(&list.inbound_url, &lead).await.0, 404);
    assert_eq!(app.post_lead(new_url, &lead).await.0, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_requiring_an_api_key_answers_401_without_it() {
    let app = TestApp::production().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Keyed").await;
    let updated = app
        .update_list(&owner, &list.id, json!({"requireApiKey": true}))
        .await;
    let shown = &updated["data"]["updateList"];
    assert_eq!(shown["requireApiKey"], true, "{updated}");
    let key = shown["apiKey"]
        .as_str()
        .expect("the key, shown once")
        .to_owned();
    let again = app
        .update_list(&owner, &list.id, json!({"requireApiKey": true}))
        .await;
    assert_eq!(
        again["data"]["updateList"]["apiKey"],
        Value::Null,
        "never shown again"
    );

    let url = list.inbound_url.as_str();
    let lead = |i: u32| json!({"email": format!("k{i}@example.com")});
    assert_eq!(post_with(&app, url, &[], &lead(1)).await.0, 401);
    assert_eq!(
        post_with(&app, url, &[("x-api-key", "lrk_wrong")], &lead(2))
            .await
            .0,
        401
    );
    assert_eq!(
        post_with(&app, url, &[("x-api-key", &key)], &lead(3))
            .await
            .0,
        202
    );

    let rotated = rotate(&app, &owner.token, "rotateInboundApiKey", &list.id).await;
    let new_key = rotated["apiKey"].as_str().expect("the new key");
    assert_eq!(
        post_with(&app, url, &[("x-api-key", &key)], &lead(4))
            .await
            .0,
        401
    );
    assert_eq!(
        post_with(&app, url, &[("x-api-key", new_key)], &lead(5))
            .await
            .0,
        202
    );

    app.update_list(&owner, &list.id, json!({"requireApiKey": false}))
        .await;
    assert_eq!(post_with(&app, url, &[], &lead(6)).await.0, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_idempotency_key_gets_the_first_answer() {
    let app = TestApp::production().await;
    let receiver = Receiver::start().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Retried").await;
    app.create_integration(&owner, &list.id, &receiver.url("/crm"), &[])
        .await;
    let lead = json!({"email": "retry@example.com"});
    let key = [("idempotency-key", "order-42")];
    let (status, first) = post_with(&app, &list.inbound_url, &key, &lead).await;
    assert_eq!(
        (status, &first["status"]),
        (202, &json!("qualified")),
        "{first}"
    );
    let (status, retry) = post_with(&app, &list.inbound_url, &key, &lead).await;
    assert_eq!(status, 202);
    assert_eq!(retry, first, "the same answer, not a duplicate");
    let (_, other) = post_with(
        &app,
        &list.inbound_url,
        &[("idempotency-key", "order-43")],
        &lead,
    )
    .await;
    assert_eq!(other["status"], "duplicate", "{other}");
    let (status, _) = post_with(&app, &list.inbound_url, &[("idempotency-key", "")], &lead).await;
    assert_eq!(status, 400);

    receiver.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(app.count_rows("leads").await, 2);
    assert_eq!(app.count_rows("deliveries").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_may_post_and_html_forms_are_thanked() {
    let app = TestApp::embedded().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Site form").await;

    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, &list.inbound_url)
        .header("origin", "https://customer.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, x-api-key, idempotency-key",
        )
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let header = |name: &str| {
        preflight
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    assert_eq!(header("access-control-allow-origin"), "*");
    assert!(header("access-control-allow-methods").contains("post"));
    for allowed in ["content-type", "x-api-key", "idempotency-key"] {
        assert!(
            header("access-control-allow-headers").contains(allowed),
            "{allowed}"
        );
    }

    app.update_list(
        &owner,
        &list.id,
        json!({"thankYouUrl": "https://customer.example/thanks"}),
    )
    .await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let form = no_redirects
        .post(&list.inbound_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .header("origin", "https://customer.example")
        .body("email=form%40example.com&nome=Ana")
        .send()
        .await
        .expect("form post");
    assert_eq!(form.status(), 303);
    assert_eq!(
        form.headers()["location"],
        "https://customer.example/thanks"
    );
    assert_eq!(form.headers()["access-control-allow-origin"], "*");
    // A script posting JSON still gets the answer.
    let (status, answer) = app
        .post_lead(&list.inbound_url, &json!({"email": "script@example.com"}))
        .await;
    assert_eq!((status, &answer["status"]), (202, &json!("qualified")));
    assert_eq!(app.count_rows("leads").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_over_its_rate_limit_answers_429_with_retry_after() {
    let app = TestApp::production().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Limited").await;
    app.update_list(&owner, &list.id, json!({"rateLimitPerMinute": 2}))
        .await;
    let lead = |i: u32| json!({"email": format!("r{i}@example.com")});
    for i in 0..2 {
        assert_eq!(app.post_lead(&list.inbound_url, &lead(i)).await.0, 202);
    }
    let response = app
        .http
        .post(&list.inbound_url)
        .json(&lead(2))
        .send()
        .await
        .expect("inbound request");
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=30).contains(&retry_after), "{retry_after}");

    app.update_list(&owner, &list.id, json!({"rateLimitPerMinute": 0}))
        .await;
    assert_eq!(app.post_lead(&list.inbound_url, &lead(3)).await.0, 202);
    assert_eq!(app.count_rows("leads").await, 3);
}
