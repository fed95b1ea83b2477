//! Every kind of bad credential answers 401: expired, tampered, wrong algorithm, `alg: none`,
//! wrong audience or issuer, unknown key id, revoked session.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

struct Forge {
    kid: String,
    private_pem: String,
    public_pem: String,
    claims: Value,
}

impl Forge {
    async fn new(app: &TestApp, user: &TestUser) -> Forge {
        let (kid, private_pem, public_pem): (String, String, String) =
            sqlx::query_as("SELECT kid, private_pem, public_pem FROM auth.signing_keys")
                .fetch_one(&app.db)
                .await
                .unwrap();
        let sid: Uuid = sqlx::query_scalar("SELECT id FROM auth.sessions WHERE user_id = $1")
            .bind(user.id)
            .fetch_one(&app.db)
            .await
            .unwrap();
        let now = chrono::Utc::now().timestamp();
        let claims = json!({
            "iss": "haven", "aud": "haven-api", "sub": user.id, "sid": sid, "role": "user",
            "iat": now, "nbf": now, "exp": now + 600
        });
        Forge {
            kid,
            private_pem,
            public_pem,
            claims,
        }
    }

    fn sign(&self, claims: &Value, kid: &str) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_rsa_pem(self.private_pem.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    fn with(&self, key: &str, value: Value) -> Value {
        let mut c = self.claims.clone();
        c[key] = value;
        c
    }
}

#[tokio::test]
async fn bad_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.user("tok@haven.test").await;
    let forge = Forge::new(&app, &user).await;

    let good = forge.sign(&forge.claims, &forge.kid);
    let (s, _) = app
        .rest(Method::GET, "/currentuser", Some(&good), None)
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "a correctly forged token with our key works (control)"
    );

    let now = chrono::Utc::now().timestamp();
    let hs256 = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(forge.kid.clone());
        jsonwebtoken::encode(
            &header,
            &forge.claims,
            &EncodingKey::from_secret(forge.public_pem.as_bytes()),
        )
        .unwrap()
    };
    let none = format!(
        "{}.{}.",
        B64.encode(json!({ "alg": "none", "typ": "JWT", "kid": forge.kid }).to_string()),
        B64.encode(forge.claims.to_string())
    );
    let tampered = {
        let mut parts: Vec<String> = good.split('.').map(String::from).collect();
        let mut claims = forge.claims.clone();
        claims["role"] = json!("superAdmin");
        claims["sub"] = json!(Uuid::new_v4());
        parts[1] = B64.encode(claims.to_string());
        parts.join(".")
    };
    let other_key = {
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let pem = key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(forge.kid.clone());
        jsonwebtoken::encode(
            &header,
            &forge.claims,
            &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        )
        .unwrap()
    };
    let cases = [
        (
            "expired",
            forge.sign(&forge.with("exp", json!(now - 3600)), &forge.kid),
        ),
        (
            "not yet valid",
            forge.sign(&forge.with("nbf", json!(now + 3600)), &forge.kid),
        ),
        (
            "wrong audience",
            forge.sign(&forge.with("aud", json!("someone-else")), &forge.kid),
        ),
        (
            "wrong issuer",
            forge.sign(&forge.with("iss", json!("evil")), &forge.kid),
        ),
        (
            "unknown session",
            forge.sign(&forge.with("sid", json!(Uuid::new_v4())), &forge.kid),
        ),
        ("unknown kid", forge.sign(&forge.claims, "not-our-key")),
        ("HS256 with the public key", hs256),
        ("alg none", none),
        ("tampered payload", tampered),
        ("signed by another key", other_key),
        ("garbage", "not.a.jwt".to_string()),
        (
            "unknown API key",
            "sk_haven_0000000000000000000000000000000000000000".to_string(),
        ),
    ];
    for (what, token) in cases {
        let (s, body) = app
            .rest(Method::GET, "/currentuser", Some(&token), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}: {body}");
        let resp = app
            .http
            .post(format!("{}/mcp", app.base))
            .bearer_auth(&token)
            .header("accept", "application/json, text/event-stream")
            .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{what} over MCP");
    }
}
