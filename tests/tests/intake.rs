//! Intake: bad inbound requests get a clear 4xx with a message and write nothing; good
//! ones are normalised, verified and scored before delivery.

use leadrelay_tests::{Receiver, TestApp, database};
use serde_json::{Value, json};
use std::time::Duration;

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

/// How often this api process read a list for intake: without a copy of it, and with a
/// stale one.
async fn list_reads(app: &TestApp) -> (u64, u64) {
    let reads = |reason: &str| format!("leadrelay_intake_list_reads_total{{reason=\"{reason}\"}}");
    (
        app.counter(&reads("no_copy")).await,
        app.counter(&reads("stale")).await,
    )
}

/// The api keeps a copy of each list with its integrations, so a lead needs no read of
/// its list; a change made anywhere else (another api process, an operator's SQL) still
/// reaches the very next lead, and a lead taken with a stale copy is taken again, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_elsewhere_reaches_the_next_lead() {
    let app = TestApp::production().await;
    let receiver = Receiver::start().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Copied").await;
    let first = app
        .create_integration(&owner, &list.id, &receiver.url("/first"), &[])
        .await;
    let (app, url) = (&app, list.inbound_url.as_str());
    let post = |email: &str| {
        let lead = json!({ "email": email });
        async move { app.post_lead(url, &lead).await }
    };
    let sql = |statement: String| {
        let url = app.database_url.clone();
        async move { database::execute(&url, &statement).await }
    };

    for email in ["one@example.com", "two@example.com"] {
        let (status, answer) = post(email).await;
        assert_eq!(status, 202, "{answer}");
    }
    assert_eq!(list_reads(app).await, (1, 0), "two leads, one read");
    let got = receiver.wait_for(2, Duration::from_secs(20)).await;
    assert!(got.iter().all(|r| r.path == "/first"), "{got:?}");

    // The first integration switched off by hand, a second one added.
    sql(format!(
        "UPDATE integrations SET active = false WHERE id = '{first}'"
    ))
    .await;
    let second = app
        .create_integration(&owner, &list.id, &receiver.url("/second"), &[])
        .await;
    let (status, answer) = post("three@example.com").await;
    assert_eq!(status, 202, "{answer}");
    let lead_id = answer["lead_id"].as_str().expect("lead_id");
    let deliveries = app.lead_deliveries(&owner, lead_id).await;
    assert_eq!(
        deliveries.len(),
        1,
        "one integration takes it: {deliveries:?}"
    );
    let delivered = app
        .wait_for_delivery(&owner, &deliveries[0], "DELIVERED")
        .await;
    assert_eq!(delivered["integration"]["id"], second.as_str());
    assert_eq!(
        list_reads(app).await,
        (1, 1),
        "the stale copy was read again"
    );
    assert_eq!(
        app.count_rows("leads").await,
        3,
        "the stale pass stored nothing"
    );

    // The list switched off by hand, then on again; then its token changed by hand.
    for (change, email, expected) in [
        ("active = false", "four@example.com", 403),
        ("active = true", "five@example.com", 202),
        ("inbound_token = 'changed-by-hand'", "six@example.com", 404),
    ] {
        sql(format!(
            "UPDATE lists SET {change} WHERE id = '{}'",
            list.id
        ))
        .await;
        let (status, answer) = post(email).await;
        assert_eq!(status, expected, "{change}: {answer}");
    }
    assert_eq!(app.count_rows("leads").await, 4);
    let got = receiver.wait_for(4, Duration::from_secs(20)).await;
    assert_eq!(
        got.iter().filter(|r| r.path == "/second").count(),
        2,
        "{got:?}"
    );
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
    assert_eq!(lead["lead"]["score"], 45);
    assert_eq!(lead["lead"]["customFields"], json!({"city": "Recife"}));
    assert_eq!(lead["lead"]["verifications"]["email_valid"], true);
    assert_eq!(lead["lead"]["verifications"]["phone_valid"], Value::Null);
    assert_eq!(lead["lead"]["isTest"], false);
    assert_eq!(lead["lead"]["deliveries"], json!([]));
    assert_eq!(lead["lead"]["list"]["name"], "No integrations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliased_fields_are_normalised_verified_and_scored() {
    let app = TestApp::production().await;
    let receiver = Receiver::start().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Verified").await;
    app.create_integration(&owner, &list.id, &receiver.url("/crm"), &[])
        .await;

    // A form tool's nested JSON with Portuguese names, and a tracking parameter in the URL.
    let (status, good) = app
        .post_lead(
            &format!("{}?utm_source=google&UF=RJ", list.inbound_url),
            &json!({"data": {"E-mail": " Ana@Exemplo.COM.br ", "primeiro_nome": "Ana",
                    "Sobrenome": "Souza", "Celular": "(11) 98765-4321", "Empresa": "Sol Ltda",
                    "C.N.P.J.": "12.ABC.345/01DE-35", "UF": "SP"}}),
        )
        .await;
    assert_eq!(status, 202, "{good}");
    assert_eq!(good["status"], "qualified");

    // A plain HTML multipart form with a disposable email, an impossible phone and a
    // CNPJ with a wrong check digit: still qualified (rules come later), but scored low.
    let form = "--b0undary\r\nContent-Disposition: form-data; name=\"Email Address\"\r\n\r\nInfo@Mailinator.com\r\n\
                --b0undary\r\nContent-Disposition: form-data; name=\"telefone\"\r\n\r\n123\r\n\
                --b0undary\r\nContent-Disposition: form-data; name=\"cnpj\"\r\n\r\n11.222.333/0001-82\r\n--b0undary--\r\n";
    let (status, text) = app
        .post_raw(
            &list.inbound_url,
            Some("multipart/form-data; boundary=b0undary"),
            form.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(status, 202, "{text}");

    let got = receiver.wait_for(2, Duration::from_secs(15)).await;
    let bodies: Vec<Value> = got.iter().map(|r| r.json()).collect();
    let by_email = |email: &str| {
        bodies
            .iter()
            .find(|b| b["lead"]["email"] == email)
            .unwrap_or_else(|| panic!("a delivery for {email}: {bodies:?}"))["lead"]
            .clone()
    };

    let lead = by_email("ana@exemplo.com.br");
    assert_eq!(lead["name"], "Ana Souza");
    assert_eq!(lead["phone"], "+5511987654321");
    assert_eq!(lead["company"], "Sol Ltda");
    assert_eq!(
        lead["custom_fields"],
        json!({"cnpj": "12.ABC.345/01DE-35", "state": "SP", "utm_source": "google", "UF": "RJ"})
    );
    let v = &lead["verifications"];
    assert_eq!(
        (&v["email_valid"], &v["phone_valid"], &v["cnpj_valid"]),
        (&json!(true), &json!(true), &json!(true)),
        "{v}"
    );
    assert_eq!(v["phone_type"], "mobile");
    assert_eq!(v["cnpj_status"], Value::Null);
    assert_eq!(v["ip_risk_score"], Value::Null, "loopback is not assessed");
    assert_eq!(lead["score"], 100);

    let poor = by_email("info@mailinator.com");
    assert_eq!(poor["phone"], "123");
    let v = &poor["verifications"];
    assert_eq!(
        (&v["email_valid"], &v["phone_valid"], &v["cnpj_valid"]),
        (&json!(false), &json!(false), &json!(false)),
        "{v}"
    );
    assert_eq!(
        v["email_reasons"],
        json!(["email_disposable", "email_role_account"])
    );
    assert_eq!(poor["score"], 10);

    let shown = app
        .gql_ok(
            &owner.token,
            "query($id: ID!) { lead(id: $id) { score scoreReasons } }",
            json!({ "id": good["lead_id"] }),
        )
        .await;
    assert_eq!(
        shown["lead"],
        json!({"score": 100, "scoreReasons": [
            "email valid: +30", "phone valid: +30", "cnpj valid: +10",
            "ip not assessed: +10", "4/4 standard fields: +20"]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lists_phone_region_reads_numbers_without_a_country_code() {
    let app = TestApp::production().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "US leads").await;
    app.gql_ok(
        &owner.token,
        "mutation($id: ID!) { updateList(id: $id, input: { defaultPhoneRegion: \"US\" }) { id } }",
        json!({ "id": list.id }),
    )
    .await;
    let (status, answer) = app
        .post_lead(&list.inbound_url, &json!({"phone": "(650) 253-0000"}))
        .await;
    assert_eq!(status, 202, "{answer}");
    let lead = app
        .gql_ok(
            &owner.token,
            "query($id: ID!) { lead(id: $id) { phone verifications } }",
            json!({ "id": answer["lead_id"] }),
        )
        .await;
    assert_eq!(lead["lead"]["phone"], "+16502530000");
    assert_eq!(lead["lead"]["verifications"]["phone_valid"], true);
    assert_eq!(
        lead["lead"]["verifications"]["phone_type"],
        "fixed_line_or_mobile"
    );
}
