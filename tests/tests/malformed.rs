//! A thousand malformed inbound requests (random bytes, invalid UTF-8, 10k-deep JSON,
//! 1 MB strings, wrong content types, bad multipart boundaries, NUL bytes, odd charsets…)
//! posted concurrently to a real inbound URL: none gets a 5xx, each gets a 202 or a clear
//! 4xx with a JSON error, every accepted lead is stored, and the server still takes and
//! delivers a normal lead afterwards.
//!
//! The generator is seeded: the seed is printed, and `LEADRELAY_FUZZ_SEED=<seed>` replays
//! a run.

use futures::{StreamExt, stream};
use leadrelay_tests::{Receiver, TestApp};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use std::time::Duration;

const REQUESTS: usize = 1_000;
const CONCURRENCY: usize = 16;
/// The api's inbound body limit (`intake::BODY_LIMIT`).
const LIMIT: usize = 256 * 1024;

/// One generated request: what it is (for failure messages), its headers, query and body.
struct Attempt {
    kind: &'static str,
    headers: HeaderMap,
    query: Option<String>,
    body: Vec<u8>,
}

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

/// Content types a sender might (wrongly) use, odd charsets and garbage included.
const CONTENT_TYPES: &[&str] = &[
    JSON,
    FORM,
    "multipart/form-data; boundary=XyZ",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "multipart/form-data; boundary=\"unterminated",
    "text/plain",
    "application/xml",
    "text/xml; charset=utf-8",
    "application/octet-stream",
    "application/json; charset=utf-16",
    "application/json; charset=iso-8859-1",
    "application/x-www-form-urlencoded; charset=shift_jis",
    "application/vnd.api+json",
    "APPLICATION/JSON",
    ";;;",
    "*/*",
    "",
];

fn header(value: &[u8]) -> HeaderValue {
    HeaderValue::from_bytes(value).unwrap_or_else(|_| HeaderValue::from_static("x"))
}

fn random_bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; rng.random_range(0..=max)];
    rng.fill(&mut bytes[..]);
    bytes
}

/// Random text drawn from ASCII, controls, NUL, non-Latin scripts and emoji.
fn random_text(rng: &mut StdRng, max: usize) -> String {
    const PIECES: &[&str] = &[
        "a",
        "Z",
        "@",
        ".",
        " ",
        "\0",
        "\u{7f}",
        "\n",
        "\t",
        "\"",
        "\\",
        "é",
        "ç",
        "中",
        "🙂",
        "\u{202e}",
        "\u{feff}",
        "%",
        "&",
        "=",
        "+",
        "{",
        "[",
        "\u{10ffff}",
    ];
    (0..rng.random_range(0..=max))
        .map(|_| *PIECES.choose(rng).expect("pieces"))
        .collect()
}

/// A field name a lead source might use, or junk.
fn random_key(rng: &mut StdRng) -> String {
    const KEYS: &[&str] = &[
        "email",
        "phone",
        "name",
        "company",
        "cnpj",
        "nome",
        "telefone",
        "lead",
        "data",
        "",
        "\0",
        "e-mail",
        "first_name",
        "last_name",
        "__proto__",
    ];
    if rng.random_bool(0.7) {
        (*KEYS.choose(rng).expect("keys")).to_owned()
    } else {
        random_text(rng, 12)
    }
}

/// A valid JSON lead with random values (the base of several mutations).
fn json_lead(rng: &mut StdRng) -> Value {
    let mut lead = serde_json::Map::new();
    for _ in 0..rng.random_range(1..8) {
        let value = match rng.random_range(0..6) {
            0 => json!(random_text(rng, 30)),
            1 => json!(rng.random::<i64>()),
            2 => json!(rng.random::<f64>()),
            3 => json!([random_text(rng, 5), null, true]),
            4 => json!({ random_key(rng): random_text(rng, 10) }),
            _ => Value::Null,
        };
        lead.insert(random_key(rng), value);
    }
    Value::Object(lead)
}

fn deep(open: &str, inner: &str, close: &str, depth: usize) -> Vec<u8> {
    let mut out = open.repeat(depth);
    out.push_str(inner);
    out.push_str(&close.repeat(depth));
    out.into_bytes()
}

/// Bytes that are never valid UTF-8.
const INVALID_UTF8: &[&[u8]] = &[
    b"\xff",
    b"\xfe\xff",
    b"\xc3\x28",
    b"\xe2\x82",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xc0\xaf",
];

fn multipart_part(name: &[u8], value: &[u8], boundary: &str) -> Vec<u8> {
    let mut part = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"").into_bytes();
    part.extend_from_slice(name);
    part.extend_from_slice(b"\"\r\n\r\n");
    part.extend_from_slice(value);
    part.extend_from_slice(b"\r\n");
    part
}

fn content_type(headers: &mut HeaderMap, ct: &str) {
    if !ct.is_empty() {
        headers.insert("content-type", header(ct.as_bytes()));
    }
}

/// The status some kinds must get, whatever the generator drew.
fn expected_status(kind: &str) -> Option<u16> {
    match kind {
        "a body over the limit" => Some(413),
        "10k-deep JSON" | "truncated JSON" => Some(400),
        "an odd valid lead" | "duplicate keys" => Some(202),
        _ => None,
    }
}

/// One malformed (or merely odd) request, by a randomly chosen generator.
fn generate(rng: &mut StdRng) -> Attempt {
    let mut headers = HeaderMap::new();
    let mut query = None;
    let (kind, body): (&'static str, Vec<u8>) = match rng.random_range(0..20) {
        0 | 1 => {
            let ct = *CONTENT_TYPES.choose(rng).expect("content types");
            content_type(&mut headers, ct);
            ("random bytes", random_bytes(rng, 4096))
        }
        2 => {
            content_type(&mut headers, JSON);
            let bad = *INVALID_UTF8.choose(rng).expect("bytes");
            let mut body = br#"{"email":"ana"#.to_vec();
            body.extend_from_slice(bad);
            body.extend_from_slice(br#"@example.com","name":"x"}"#);
            ("invalid UTF-8 in a JSON string", body)
        }
        3 => {
            content_type(&mut headers, FORM);
            let bad = *INVALID_UTF8.choose(rng).expect("bytes");
            let mut body = b"email=ana%40example.com&name=".to_vec();
            if rng.random_bool(0.5) {
                body.extend_from_slice(bad);
            } else {
                body.extend(bad.iter().flat_map(|b| format!("%{b:02X}").into_bytes()));
            }
            ("invalid UTF-8 in a form value", body)
        }
        4 => {
            content_type(&mut headers, JSON);
            let depth = 10_000;
            let body = match rng.random_range(0..4) {
                0 => deep("[", "1", "]", depth),
                1 => deep("{\"a\":", "1", "}", depth),
                2 => {
                    let mut b = br#"{"email":"a@b.co","x":"#.to_vec();
                    b.extend(deep("[", "", "]", depth));
                    b.push(b'}');
                    b
                }
                _ => deep("[", "", "", depth),
            };
            ("10k-deep JSON", body)
        }
        5 => {
            content_type(&mut headers, JSON);
            let size = if rng.random_bool(0.5) {
                1024 * 1024
            } else {
                rng.random_range(LIMIT + 1..LIMIT * 2)
            };
            let body = format!(r#"{{"email":"a@b.co","note":"{}"}}"#, "a".repeat(size));
            ("a body over the limit", body.into_bytes())
        }
        6 => {
            // Long values just under the limit, in the standard (indexed) fields too.
            let field = *["email", "phone", "name", "company", "cnpj", "note"]
                .choose(rng)
                .expect("fields");
            let size = rng.random_range(1_000..LIMIT - 1_000);
            // Repeated digits compress well in an index; random letters do not.
            let value: String = if rng.random_bool(0.5) {
                "9".repeat(size)
            } else {
                let mut letters = vec![0u8; size];
                rng.fill(&mut letters[..]);
                letters.iter().map(|b| char::from(b'a' + b % 26)).collect()
            };
            if rng.random_bool(0.5) {
                content_type(&mut headers, JSON);
                let body = json!({ field: value, "email2": "x" }).to_string();
                ("a long JSON value", body.into_bytes())
            } else {
                content_type(&mut headers, FORM);
                ("a long form value", format!("{field}={value}").into_bytes())
            }
        }
        7 => {
            content_type(&mut headers, JSON);
            let full = json_lead(rng).to_string().into_bytes();
            let cut = rng.random_range(0..full.len().max(1));
            ("truncated JSON", full[..cut].to_vec())
        }
        8 => {
            content_type(&mut headers, JSON);
            let body = *[
                "0",
                "-1",
                "1e999",
                "[]",
                "[{\"email\":\"a@b.co\"}]",
                "null",
                "true",
                "\"email\"",
                "",
                " ",
                "{}",
                "{} {}",
                "{\"a\":1}garbage",
            ]
            .choose(rng)
            .expect("scalars");
            ("JSON that is not an object", body.as_bytes().to_vec())
        }
        9 => {
            let boundary = "XyZ";
            let (ct, mut body): (String, Vec<u8>) = match rng.random_range(0..6) {
                0 => (format!("multipart/form-data; boundary={boundary}"), {
                    multipart_part(b"email", b"a@b.co", "WRONG")
                }),
                1 => (format!("multipart/form-data; boundary={boundary}"), {
                    multipart_part(b"email", b"a@b.co", boundary)
                }),
                2 => (
                    format!("multipart/form-data; boundary={}", "b".repeat(200)),
                    { multipart_part(b"email", b"a@b.co", &"b".repeat(200)) },
                ),
                3 => (format!("multipart/form-data; boundary={boundary}"), {
                    let bad = *INVALID_UTF8.choose(rng).expect("bytes");
                    let mut b = multipart_part(bad, bad, boundary);
                    b.extend(multipart_part(b"name", b"a\0b", boundary));
                    b
                }),
                4 => (
                    format!("multipart/form-data; boundary={boundary}"),
                    random_bytes(rng, 2048),
                ),
                _ => (
                    "multipart/form-data; boundary=\u{e9}\u{e9}".to_owned(),
                    multipart_part(b"email", b"a@b.co", "\u{e9}\u{e9}"),
                ),
            };
            if rng.random_bool(0.5) {
                body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
            }
            content_type(&mut headers, &ct);
            ("multipart with a bad boundary", body)
        }
        10 => {
            content_type(&mut headers, JSON);
            let n = *[
                "1e999999",
                "-1e999999",
                "123456789012345678901234567890123456789012345678901234567890",
                "18446744073709551616",
                "-9223372036854775809",
                "1.7976931348623157e308",
                "5e-324",
                "0.000000000000000000000000000000000000000000000000000001",
            ]
            .choose(rng)
            .expect("numbers");
            let body = format!(r#"{{"email":"a@b.co","phone":{n},"cnpj":{n},"x":{n}}}"#);
            ("huge numbers", body.into_bytes())
        }
        11 => {
            let body = match rng.random_range(0..4) {
                0 => {
                    content_type(&mut headers, JSON);
                    br#"{"email":"a\u0000@b.co","name":"\u0000","\u0000":"\u0000x","phone":"1\u00001"}"#.to_vec()
                }
                1 => {
                    content_type(&mut headers, FORM);
                    b"email=a%00%40b.co&name=%00&%00=x&company=\0raw".to_vec()
                }
                2 => {
                    content_type(&mut headers, JSON);
                    b"{\"email\":\"a@b.co\"\0}".to_vec()
                }
                _ => {
                    content_type(&mut headers, JSON);
                    br#"{"lead":{"email":"a@b.co\u0000","custom":{"k\u0000":["\u0000"]}}}"#.to_vec()
                }
            };
            ("NUL bytes", body)
        }
        12 => {
            content_type(&mut headers, JSON);
            let body = *[
                r#"{"email":"a@b.co","email":"c@d.co","email":null}"#,
                r#"{"phone":"1","phone":{"x":1},"phone":[]}"#,
                r#"{"lead":{"email":"a@b.co"},"lead":{"email":"x"},"data":{"lead":{}}}"#,
            ]
            .choose(rng)
            .expect("bodies");
            ("duplicate keys", body.as_bytes().to_vec())
        }
        13 => {
            let raw: &[u8] = [
                b"application/json; charset=\xff\xfe" as &[u8],
                b"application/json; charset=utf-8; charset=latin1",
                b"application/json; charset=\"",
                b"appl\xc3\xa9cation/json",
                b"application/x-www-form-urlencoded; charset=\x80",
                b"multipart/form-data; boundary=\xff",
            ]
            .choose(rng)
            .expect("headers");
            headers.insert("content-type", header(raw));
            let extra: [(&str, &[u8]); 3] = [
                ("idempotency-key", b"k\xff\xfe"),
                ("x-api-key", b"\xe9t\xe9"),
                ("accept", b"text/html;q=\xff"),
            ];
            for (name, value) in extra {
                if rng.random_bool(0.3) {
                    headers.insert(HeaderName::from_static(name), header(value));
                }
            }
            let body = json!({"email": "a@b.co"}).to_string().into_bytes();
            ("headers with odd charsets", body)
        }
        14 => {
            content_type(&mut headers, FORM);
            let body = *[
                "=&=&&==",
                "a=b=c&%",
                "%zz=%",
                "email",
                "&&&&",
                "email=a@b.co&email=c@d.co",
                "+=+",
                "%E0%A4%A=x",
            ]
            .choose(rng)
            .expect("forms");
            ("an odd form", body.as_bytes().to_vec())
        }
        15 => {
            content_type(&mut headers, JSON);
            let body = *[
                r#"{"email":"\ud800"}"#,
                r#"{"email":"\udc00\ud800"}"#,
                r#"{"email":"\u00"}"#,
                r#"{"email":"\x41"}"#,
                r#"{"email":'a@b.co'}"#,
                r#"{email:"a@b.co"}"#,
                r#"{"email":"a@b.co",}"#,
                "\u{feff}{\"email\":\"a@b.co\"}",
            ]
            .choose(rng)
            .expect("escapes");
            ("bad JSON escapes and syntax", body.as_bytes().to_vec())
        }
        16 => {
            content_type(&mut headers, JSON);
            let n = rng.random_range(1_000..8_000);
            let mut lead = serde_json::Map::new();
            for i in 0..n {
                lead.insert(format!("k{i}"), json!(i));
            }
            (
                "thousands of fields",
                Value::Object(lead).to_string().into_bytes(),
            )
        }
        17 => {
            content_type(&mut headers, JSON);
            let q: String = random_bytes(rng, 64)
                .iter()
                .map(|b| format!("%{b:02X}"))
                .collect();
            query = Some(format!("{q}=%00&email=%FF&&=="));
            (
                "junk query parameters",
                json_lead(rng).to_string().into_bytes(),
            )
        }
        18 => {
            // An empty body in every content type (the query carries nothing either).
            let ct = *CONTENT_TYPES.choose(rng).expect("content types");
            content_type(&mut headers, ct);
            ("an empty body", Vec::new())
        }
        _ => {
            // Odd but valid leads: these are accepted and must be stored.
            content_type(&mut headers, JSON);
            ("an odd valid lead", json_lead(rng).to_string().into_bytes())
        }
    };
    Attempt {
        kind,
        headers,
        query,
        body,
    }
}

/// What the api answered one attempt: its status and body.
struct Answer {
    kind: &'static str,
    status: u16,
    body: String,
}

async fn post(http: &reqwest::Client, url: &str, attempt: Attempt) -> Answer {
    let url = match &attempt.query {
        Some(q) => format!("{url}?{q}"),
        None => url.to_owned(),
    };
    let response = http
        .post(url)
        .headers(attempt.headers)
        .body(attempt.body)
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    match response {
        Ok(r) => Answer {
            kind: attempt.kind,
            status: r.status().as_u16(),
            body: r.text().await.unwrap_or_default(),
        },
        // A dropped connection is as bad as a 5xx.
        Err(e) => Answer {
            kind: attempt.kind,
            status: 599,
            body: format!("request failed: {e:?}"),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_malformed_bodies_never_produce_a_5xx_on_postgres() {
    malformed_bodies_never_produce_a_5xx(TestApp::production().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_malformed_bodies_never_produce_a_5xx_on_sqlite() {
    malformed_bodies_never_produce_a_5xx(TestApp::embedded().await).await;
}

async fn malformed_bodies_never_produce_a_5xx(app: TestApp) {
    let seed = std::env::var("LEADRELAY_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    println!("malformed bodies: seed {seed} (replay with LEADRELAY_FUZZ_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);

    let receiver = Receiver::start().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Fuzzed").await;
    let url = list.inbound_url.clone();

    let started = std::time::Instant::now();
    let attempts: Vec<Attempt> = (0..REQUESTS).map(|_| generate(&mut rng)).collect();
    println!("generated in {:?}", started.elapsed());
    let answers: Vec<Answer> = stream::iter(attempts)
        .map(|attempt| post(&app.http, &url, attempt))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;

    let mut accepted = Vec::new();
    let mut failures = Vec::new();
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for answer in &answers {
        *by_status.entry(answer.status).or_default() += 1;
        let json: Option<Value> = serde_json::from_str(&answer.body).ok();
        let ok = match (answer.status, &json) {
            (202, Some(a)) => match a["lead_id"].as_str() {
                Some(id) => {
                    accepted.push(id.to_owned());
                    true
                }
                None => false,
            },
            (400..=499, Some(e)) => e["error"].as_str().is_some_and(|m| !m.is_empty()),
            _ => false,
        };
        let ok = ok && expected_status(answer.kind).is_none_or(|s| s == answer.status);
        if !ok {
            let excerpt: String = answer.body.chars().take(300).collect();
            failures.push(format!("{} → {}: {excerpt}", answer.kind, answer.status));
        }
    }
    println!(
        "answers by status: {by_status:?} after {:?}",
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "seed {seed}: {} bad answers of {REQUESTS}:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Every accepted lead is in the database.
    assert!(
        accepted
            .iter()
            .all(|id| id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')),
        "{accepted:?}"
    );
    if !accepted.is_empty() {
        let ids: Vec<String> = accepted.iter().map(|id| format!("'{id}'")).collect();
        let stored = app
            .count_where("leads", &format!("id IN ({})", ids.join(",")))
            .await;
        assert_eq!(
            stored,
            i64::try_from(accepted.len()).expect("count"),
            "seed {seed}: accepted leads missing from the database"
        );
    }

    // And each reads back through GraphQL as it was stored (a value the database gives
    // back in another form must not make the lead unreadable).
    let (app_ref, token) = (&app, owner.token.as_str());
    let unreadable: Vec<String> = stream::iter(&accepted)
        .map(|id| async move {
            let response = app_ref
                .gql(
                    Some(token),
                    "query($id: ID!) { lead(id: $id) { id score scoreReasons customFields verifications } }",
                    json!({ "id": id }),
                )
                .await;
            (response["data"]["lead"]["id"] != json!(id)).then(|| format!("{id}: {response}"))
        })
        .buffer_unordered(CONCURRENCY)
        .filter_map(|bad| async move { bad.map(|b| b.chars().take(300).collect()) })
        .collect()
        .await;
    assert!(
        unreadable.is_empty(),
        "seed {seed}: accepted leads that do not read back:\n{}",
        unreadable.join("\n")
    );
    println!("read back in {:?}", started.elapsed());

    // The server is still up and takes, stores and delivers a normal lead.
    let health = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("healthz");
    assert!(health.status().is_success());
    app.create_integration(&owner, &list.id, &receiver.url("/crm"), &[])
        .await;
    let (status, answer) = app
        .post_lead(
            &url,
            &json!({"email": "after.fuzz@example.com", "phone": "11987654321"}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "qualified", "{answer}");
    let lead_id = answer["lead_id"].as_str().expect("lead id");
    let deliveries = app.lead_deliveries(&owner, lead_id).await;
    assert_eq!(deliveries.len(), 1);
    app.wait_for_delivery(&owner, &deliveries[0], "DELIVERED")
        .await;
    let lead = app.lead(&owner, lead_id).await;
    assert_eq!(lead["email"], "after.fuzz@example.com");
    assert_eq!(receiver.requests().len(), 1);
}

/// PostgreSQL text and jsonb cannot hold U+0000: a NUL anywhere in a GraphQL request (a
/// variable, an object key, or an escape in the query) is a clear BAD_USER_INPUT, not an
/// INTERNAL error, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_in_graphql_input_are_bad_user_input() {
    let app = TestApp::production().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Clean").await;
    let cases = [
        (
            "mutation($input: CreateListInput!) { createList(input: $input) { id } }",
            json!({ "input": { "name": "bad\u{0}name" } }),
        ),
        (
            "mutation($id: ID!, $input: UpdateListInput!) { updateList(id: $id, input: $input) { id } }",
            json!({ "id": list.id, "input": { "requiredFields": ["company\u{0}"] } }),
        ),
        (
            "mutation { createList(input: { name: \"escaped\\u0000name\" }) { id } }",
            json!({}),
        ),
    ];
    for (query, variables) in cases {
        let answer = app.gql(Some(&owner.token), query, variables).await;
        assert_eq!(
            leadrelay_tests::error_code(&answer),
            "BAD_USER_INPUT",
            "{answer}"
        );
        assert!(
            answer["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("NUL")
        );
    }
    let lists = app
        .gql_ok(&owner.token, "{ lists { totalCount } }", json!({}))
        .await;
    assert_eq!(lists["lists"]["totalCount"], 1, "nothing was stored");
}
