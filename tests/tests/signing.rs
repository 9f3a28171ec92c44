//! Every request is signed per Standard Webhooks; the signature is checked here with an
//! independent HMAC computation, first against the spec's published test vector.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use leadrelay_tests::{Receiver, TestApp};
use serde_json::json;
use sha2::Sha256;
use std::time::Duration;

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` under a `whsec_` secret.
fn independent_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 key");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[test]
fn the_independent_computation_matches_the_published_test_vector() {
    assert_eq!(
        independent_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            br#"{"test": 2432232314}"#
        ),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_and_both_secrets_sign_after_a_rotation() {
    let app = TestApp::production().await;
    let receiver = Receiver::start().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Signed").await;
    let integration = app
        .create_integration(&owner, &list.id, &receiver.url("/signed"), &[])
        .await;
    let secret_query = "query($id: ID!) { integration(id: $id) { signingSecret } }";
    let first_secret = app
        .gql_ok(&owner.token, secret_query, json!({ "id": integration }))
        .await["integration"]["signingSecret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(first_secret.starts_with("whsec_"));

    app.post_lead(&list.inbound_url, &json!({ "email": "sig@example.com" }))
        .await;
    let request = receiver
        .wait_for(1, Duration::from_secs(15))
        .await
        .remove(0);
    let id = request.header("webhook-id").expect("webhook-id").to_owned();
    let timestamp = request
        .header("webhook-timestamp")
        .expect("webhook-timestamp")
        .to_owned();
    let age = chrono_like_now() - timestamp.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "timestamp is current: {timestamp}");
    assert_eq!(
        request.header("webhook-signature"),
        Some(independent_signature(&first_secret, &id, &timestamp, &request.body).as_str())
    );

    let rotated = app
        .gql_ok(
            &owner.token,
            "mutation($id: ID!) { rotateSigningSecret(integrationId: $id) { signingSecret } }",
            json!({ "id": integration }),
        )
        .await["rotateSigningSecret"]["signingSecret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rotated, first_secret);
    app.post_lead(&list.inbound_url, &json!({ "email": "sig2@example.com" }))
        .await;
    let request = receiver
        .wait_for(2, Duration::from_secs(15))
        .await
        .remove(1);
    let (id, timestamp) = (
        request.header("webhook-id").unwrap(),
        request.header("webhook-timestamp").unwrap(),
    );
    let signatures: Vec<&str> = request
        .header("webhook-signature")
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(
        signatures,
        [
            independent_signature(&rotated, id, timestamp, &request.body).as_str(),
            independent_signature(&first_secret, id, timestamp, &request.body).as_str()
        ],
        "the new secret signs first, the old one alongside it for 24 hours"
    );
}

fn chrono_like_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}
