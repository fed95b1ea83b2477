//! A fake Stripe speaking Stripe's wire format for the endpoints Haven calls (customers, payment
//! methods, payment intents, refunds): form-encoded bodies, Bearer keys, Stripe-shaped JSON and
//! errors, Stripe's idempotency rules (replay per endpoint+key, `idempotency_error` on changed
//! parameters) and failure injection. Started per test on 127.0.0.1:0. Below it: provider-level
//! tests of `StripeProvider` against the fake and of `LocalProvider` against a real database.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use haven_tools::booking::payments::local::LocalProvider;
use haven_tools::booking::payments::provider::{
    Intent, IntentRequest, IntentStatus, PaymentProvider, ProviderError,
};
use haven_tools::booking::payments::signature;
use haven_tools::booking::payments::stripe::{StripeConfig, StripeProvider};
use haven_tools::money::Money;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::TestApp;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// `GET` / `POST`.
    pub method: String,
    /// URL path, e.g. `/v1/payment_intents`.
    pub path: String,
    /// The `Idempotency-Key` header, if sent.
    pub idempotency_key: Option<String>,
    /// The decoded form body, in order.
    pub form: Vec<(String, String)>,
}

/// A response saved under an idempotency key, with the parameters that produced it.
struct Saved {
    params: Vec<(String, String)>,
    status: StatusCode,
    body: Value,
}

#[derive(Default)]
struct Inner {
    secret_key: String,
    next_id: u64,
    customers: HashMap<String, Value>,
    intents: BTreeMap<String, Value>,
    refunded: HashMap<String, i64>,
    refunds: Vec<Value>,
    saved: HashMap<(String, String), Saved>,
    failures: VecDeque<StatusCode>,
    seen: Vec<SeenRequest>,
}

type Shared = Arc<Mutex<Inner>>;

/// A running fake Stripe; the server stops when this is dropped.
pub struct FakeStripe {
    /// `http://127.0.0.1:port`, for `StripeConfig::api_base` / `stripe_api_base`.
    pub base: String,
    /// The only secret key the fake accepts.
    pub secret_key: String,
    state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeStripe {
    /// Starts a fake accepting `Authorization: Bearer <secret_key>`.
    pub async fn start(secret_key: &str) -> FakeStripe {
        let state: Shared = Arc::new(Mutex::new(Inner {
            secret_key: secret_key.to_string(),
            ..Inner::default()
        }));
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        FakeStripe {
            base: format!("http://{addr}"),
            secret_key: secret_key.to_string(),
            state,
            server,
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().unwrap()
    }

    /// A `StripeProvider` pointed at this fake, verifying webhooks with `webhook_secret`.
    pub fn provider(&self, webhook_secret: &str) -> StripeProvider {
        StripeProvider::new(StripeConfig {
            api_base: self.base.clone(),
            secret_key: self.secret_key.clone(),
            webhook_secret: webhook_secret.to_string(),
        })
    }

    /// The next `n` authenticated requests answer `status` (500, 429, 409…) with a Stripe-shaped
    /// error, before idempotency and without saving anything.
    pub fn fail_next(&self, n: usize, status: u16) {
        let status = StatusCode::from_u16(status).unwrap();
        self.inner().failures.extend(std::iter::repeat_n(status, n));
    }

    /// How many requests reached `path` (any method, failures included).
    pub fn requests(&self, path: &str) -> usize {
        self.inner().seen.iter().filter(|r| r.path == path).count()
    }

    /// Every request received, in order.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.inner().seen.clone()
    }

    /// Every `Idempotency-Key` header received, in order.
    pub fn idempotency_keys(&self) -> Vec<String> {
        let inner = self.inner();
        inner
            .seen
            .iter()
            .filter_map(|r| r.idempotency_key.clone())
            .collect()
    }

    /// How many PaymentIntents exist.
    pub fn intent_count(&self) -> usize {
        self.inner().intents.len()
    }

    /// A PaymentIntent as Stripe would return it.
    pub fn intent(&self, id: &str) -> Option<Value> {
        self.inner().intents.get(id).cloned()
    }

    /// Every PaymentIntent, by id.
    pub fn intents(&self) -> Vec<Value> {
        self.inner().intents.values().cloned().collect()
    }

    /// Moves a PaymentIntent to `status` (as Stripe settles it asynchronously) and returns it;
    /// `succeeded` gives it a charge.
    pub fn set_intent_status(&self, id: &str, status: &str) -> Value {
        let mut inner = self.inner();
        let charge = format!("ch_fake_{}", inner.next());
        let intent = inner.intents.get_mut(id).expect("no such fake intent");
        intent["status"] = json!(status);
        if status == "succeeded" && intent["latest_charge"].is_null() {
            intent["latest_charge"] = json!(charge);
            intent["amount_received"] = intent["amount"].clone();
        }
        intent.clone()
    }

    /// How many customers exist.
    pub fn customer_count(&self) -> usize {
        self.inner().customers.len()
    }

    /// Every refund created, in order.
    pub fn refunds(&self) -> Vec<Value> {
        self.inner().refunds.clone()
    }
}

/// A `Stripe-Signature` header for `payload` signed with `secret` at unix time `t`.
pub fn sign(payload: &str, secret: &str, t: i64) -> String {
    signature::sign(payload.as_bytes(), secret, t)
}

/// A Stripe Event JSON carrying `intent`; its type follows the intent's status
/// (`payment_intent.succeeded`, `.processing`, `.payment_failed`, `.requires_action`, …).
pub fn payment_intent_event(event_id: &str, intent: &Value, created: i64) -> String {
    let kind = match intent["status"].as_str().unwrap_or("") {
        "succeeded" => "payment_intent.succeeded",
        "processing" => "payment_intent.processing",
        "requires_payment_method" => "payment_intent.payment_failed",
        "requires_action" => "payment_intent.requires_action",
        "canceled" => "payment_intent.canceled",
        _ => "payment_intent.created",
    };
    json!({
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "livemode": false,
        "pending_webhooks": 1,
        "type": kind,
        "data": {"object": intent},
    })
    .to_string()
}

impl Inner {
    fn next(&mut self) -> String {
        self.next_id += 1;
        format!("{:014}", self.next_id)
    }
}

fn stripe_error(status: StatusCode, kind: &str, code: Option<&str>, message: &str) -> Outcome {
    let mut error = json!({"type": kind, "message": message});
    if let Some(code) = code {
        error["code"] = json!(code);
    }
    (status, json!({ "error": error }))
}

fn invalid(code: &str, message: &str) -> Outcome {
    stripe_error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        Some(code),
        message,
    )
}

fn injected(status: StatusCode) -> Outcome {
    match status.as_u16() {
        429 => stripe_error(
            status,
            "invalid_request_error",
            Some("rate_limit"),
            "Too many requests hit the API too quickly.",
        ),
        409 => stripe_error(
            status,
            "idempotency_error",
            Some("idempotency_key_in_use"),
            "There is currently another in-progress request using this idempotency key.",
        ),
        _ => stripe_error(status, "api_error", None, "An unknown error occurred."),
    }
}

type Outcome = (StatusCode, Value);

async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let path = uri.path().to_string();
    let mut inner = state.lock().unwrap();
    inner.seen.push(SeenRequest {
        method: method.to_string(),
        path: path.clone(),
        idempotency_key: key.clone(),
        form: form.clone(),
    });
    let expected = format!("Bearer {}", inner.secret_key);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        let (status, body) = stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            None,
            "Invalid API Key provided.",
        );
        return (status, axum::Json(body)).into_response();
    }
    if let Some(status) = inner.failures.pop_front() {
        let (status, body) = injected(status);
        return (status, axum::Json(body)).into_response();
    }
    let scope = key
        .filter(|_| method == Method::POST)
        .map(|k| (path.clone(), k));
    let mut params = form.clone();
    params.sort();
    if let Some(saved) = scope.as_ref().and_then(|s| inner.saved.get(s)) {
        if saved.params != params {
            let (status, body) = stripe_error(
                StatusCode::BAD_REQUEST,
                "idempotency_error",
                None,
                "Keys for idempotent requests can only be used with the same parameters they \
                 were first used with.",
            );
            return (status, axum::Json(body)).into_response();
        }
        let replay = (saved.status, axum::Json(saved.body.clone()));
        return ([("idempotent-replayed", "true")], replay).into_response();
    }
    let (status, body) = inner.route(&method, &path, &form);
    if let Some(scope) = scope {
        let saved = Saved {
            params,
            status,
            body: body.clone(),
        };
        inner.saved.insert(scope, saved);
    }
    (status, axum::Json(body)).into_response()
}

fn param<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn metadata(form: &[(String, String)]) -> Value {
    let map: serde_json::Map<String, Value> = form
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("metadata[")?.strip_suffix(']')?;
            Some((name.to_string(), json!(v)))
        })
        .collect();
    Value::Object(map)
}

/// The card behind a Stripe test PaymentMethod id: (brand, last4), or None when unknown.
fn test_card(id: &str) -> Option<(&'static str, &'static str)> {
    match id {
        "pm_card_visa" => Some(("visa", "4242")),
        "pm_card_mastercard" => Some(("mastercard", "4444")),
        "pm_card_amex" => Some(("amex", "8431")),
        "pm_card_chargeDeclined" | "pm_card_visa_chargeDeclined" => Some(("visa", "0002")),
        "pm_card_authenticationRequired" => Some(("visa", "3184")),
        _ => None,
    }
}

impl Inner {
    fn route(&mut self, method: &Method, path: &str, form: &[(String, String)]) -> Outcome {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method.as_str(), segments.as_slice()) {
            ("POST", ["v1", "customers"]) => self.create_customer(form),
            ("GET", ["v1", "payment_methods", id]) => payment_method(id),
            ("POST", ["v1", "payment_intents"]) => self.create_intent(form),
            ("GET", ["v1", "payment_intents", id]) => match self.intents.get(*id) {
                Some(intent) => (StatusCode::OK, intent.clone()),
                None => no_such("payment_intent", id, StatusCode::NOT_FOUND),
            },
            ("POST", ["v1", "refunds"]) => self.create_refund(form),
            _ => stripe_error(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                None,
                &format!("Unrecognized request URL ({method}: {path})."),
            ),
        }
    }

    fn create_customer(&mut self, form: &[(String, String)]) -> Outcome {
        let id = format!("cus_fake_{}", self.next());
        let customer = json!({
            "id": id,
            "object": "customer",
            "email": param(form, "email"),
            "metadata": metadata(form),
            "livemode": false,
        });
        self.customers.insert(id, customer.clone());
        (StatusCode::OK, customer)
    }

    fn create_intent(&mut self, form: &[(String, String)]) -> Outcome {
        let Some(amount) = param(form, "amount").and_then(|a| a.parse::<i64>().ok()) else {
            return invalid("parameter_missing", "Missing required param: amount.");
        };
        if amount < 1 {
            return invalid("amount_too_small", "Amount must be at least 1 minor unit.");
        }
        let currency = param(form, "currency").unwrap_or("");
        if currency.len() != 3 || currency != currency.to_lowercase() {
            return invalid(
                "parameter_invalid",
                &format!("Invalid currency: {currency}."),
            );
        }
        let method = param(form, "payment_method");
        if let Some(pm) = method.filter(|pm| test_card(pm).is_none()) {
            return no_such("PaymentMethod", pm, StatusCode::BAD_REQUEST);
        }
        let id = format!("pi_fake_{}", self.next());
        let mut intent = json!({
            "id": id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "currency": currency,
            "customer": param(form, "customer"),
            "payment_method": method,
            "description": param(form, "description"),
            "client_secret": format!("{id}_secret_{}", Uuid::new_v4().simple()),
            "latest_charge": null,
            "last_payment_error": null,
            "next_action": null,
            "metadata": metadata(form),
            "status": if method.is_some() { "requires_confirmation" } else { "requires_payment_method" },
            "livemode": false,
        });
        let mut answer = StatusCode::OK;
        if param(form, "confirm") == Some("true") {
            match method {
                None => {
                    return invalid(
                        "payment_intent_unexpected_state",
                        "You cannot confirm this PaymentIntent because it's missing a payment \
                         method.",
                    )
                }
                Some("pm_card_chargeDeclined" | "pm_card_visa_chargeDeclined") => {
                    intent["status"] = json!("requires_payment_method");
                    intent["last_payment_error"] = json!({
                        "type": "card_error", "code": "card_declined",
                        "decline_code": "generic_decline", "message": "Your card was declined.",
                    });
                    answer = StatusCode::PAYMENT_REQUIRED;
                }
                Some("pm_card_authenticationRequired") => {
                    intent["status"] = json!("requires_action");
                    intent["next_action"] = json!({"type": "use_stripe_sdk"});
                }
                Some(_) => {
                    intent["status"] = json!("succeeded");
                    intent["amount_received"] = json!(amount);
                    intent["latest_charge"] = json!(format!("ch_fake_{}", self.next()));
                }
            }
        }
        self.intents.insert(id, intent.clone());
        if answer == StatusCode::PAYMENT_REQUIRED {
            let mut error = intent["last_payment_error"].clone();
            error["payment_intent"] = intent;
            return (answer, json!({ "error": error }));
        }
        (answer, intent)
    }

    fn create_refund(&mut self, form: &[(String, String)]) -> Outcome {
        let Some(intent_id) = param(form, "payment_intent") else {
            return invalid(
                "parameter_missing",
                "One of the following params should be provided for this request: payment_intent \
                 or charge.",
            );
        };
        let Some(intent) = self.intents.get(intent_id) else {
            return no_such("payment_intent", intent_id, StatusCode::BAD_REQUEST);
        };
        if intent["status"] != "succeeded" {
            return invalid(
                "charge_not_refundable",
                &format!(
                    "This PaymentIntent ({intent_id}) does not have a successful charge to refund."
                ),
            );
        }
        let paid = intent["amount"].as_i64().unwrap_or(0);
        let (charge, currency) = (intent["latest_charge"].clone(), intent["currency"].clone());
        let left = paid - self.refunded.get(intent_id).copied().unwrap_or(0);
        let amount = match param(form, "amount").map(str::parse::<i64>) {
            None => left,
            Some(Ok(amount)) if amount >= 1 => amount,
            Some(_) => return invalid("parameter_invalid_integer", "Invalid positive integer"),
        };
        if amount > left {
            return invalid(
                "amount_too_large",
                &format!(
                    "Refund amount ({amount}) is greater than unrefunded amount on charge ({left})."
                ),
            );
        }
        *self.refunded.entry(intent_id.to_string()).or_default() += amount;
        let refund = json!({
            "id": format!("re_fake_{}", self.next()),
            "object": "refund",
            "amount": amount,
            "currency": currency,
            "charge": charge,
            "payment_intent": intent_id,
            "status": "succeeded",
        });
        self.refunds.push(refund.clone());
        (StatusCode::OK, refund)
    }
}

fn no_such(kind: &str, id: &str, status: StatusCode) -> Outcome {
    stripe_error(
        status,
        "invalid_request_error",
        Some("resource_missing"),
        &format!("No such {kind}: '{id}'"),
    )
}

fn payment_method(id: &str) -> Outcome {
    match test_card(id) {
        Some((brand, last4)) => (
            StatusCode::OK,
            json!({
                "id": id,
                "object": "payment_method",
                "type": "card",
                "card": {"brand": brand, "last4": last4, "exp_month": 12, "exp_year": 2034},
                "billing_details": {"name": "Jenny Rosen", "address": {"postal_code": "94107"}},
            }),
        ),
        None => no_such("PaymentMethod", id, StatusCode::NOT_FOUND),
    }
}

// ---------------------------------------------------------------------------------------------
// Provider-level tests.

/// Asserts `result` failed with the `ProviderError` variant `kind` whose message contains `needle`.
#[track_caller]
fn assert_err<T: std::fmt::Debug>(result: Result<T, ProviderError>, kind: &str, needle: &str) {
    let error = format!("{:?}", result.expect_err("expected a provider error"));
    assert!(
        error.starts_with(&format!("{kind}(")) && error.contains(needle),
        "expected {kind} containing {needle:?}, got {error}"
    );
}

const KEY: &str = "sk_test_fake_123";
const WHSEC: &str = "whsec_fake_456";

fn request(method: &str, key: &str) -> IntentRequest {
    IntentRequest {
        amount: Money::from_cents(12_050),
        currency: "EUR".into(),
        customer_id: Some("cus_fake_1".into()),
        payment_method_id: method.into(),
        idempotency_key: key.into(),
        description: "Stay at Casa Azul".into(),
        metadata: BTreeMap::from([("reservationId".to_string(), "r-1".to_string())]),
    }
}

/// A fake and a `StripeProvider` pointed at it.
async fn started() -> (FakeStripe, StripeProvider) {
    let fake = FakeStripe::start(KEY).await;
    let stripe = fake.provider(WHSEC);
    (fake, stripe)
}

/// Creates a successful-path intent, panicking on any error.
async fn pay(provider: &dyn PaymentProvider, method: &str, key: &str) -> Intent {
    provider.create_intent(&request(method, key)).await.unwrap()
}

/// A decline, and the same decline replayed for the same key (`k-declined`).
async fn declines_twice(provider: &dyn PaymentProvider, method: &str) {
    for _ in 0..2 {
        let result = provider.create_intent(&request(method, "k-declined")).await;
        assert_err(result, "Declined", "Your card was declined.");
    }
}

/// The refund contract on a paid 120.50 intent: a partial refund, its replay under the same key,
/// an over-refund refused (message containing `too_much`), the rest, then nothing left.
async fn check_refund_limits(provider: &dyn PaymentProvider, intent_id: &str, too_much: &str) {
    let refund =
        |cents: i64, key: &'static str| provider.refund(intent_id, Money::from_cents(cents), key);
    let part = refund(2_050, "refund:1").await.unwrap();
    assert_eq!(
        (part.amount, part.status.as_str()),
        (Money::from_cents(2_050), "succeeded")
    );
    assert_eq!(
        refund(2_050, "refund:1").await.unwrap().id,
        part.id,
        "replayed"
    );
    assert_err(refund(10_001, "refund:2").await, "Invalid", too_much);
    refund(10_000, "refund:3").await.unwrap();
    assert_err(refund(1, "refund:4").await, "Invalid", "");
}

fn form_of(fake: &FakeStripe, path: &str) -> Vec<(String, String)> {
    let seen = fake.seen();
    seen.iter()
        .rev()
        .find(|r| r.path == path)
        .unwrap()
        .form
        .clone()
}

#[tokio::test]
async fn stripe_customer_and_payment_method() {
    let (fake, stripe) = started().await;
    let user = Uuid::new_v4();
    let first = stripe
        .create_customer(user, "ann@example.com")
        .await
        .unwrap();
    let again = stripe
        .create_customer(user, "ann@example.com")
        .await
        .unwrap();
    assert_eq!(
        first, again,
        "the per-user idempotency key replays the customer"
    );
    assert!(first.starts_with("cus_"));
    assert_eq!(fake.customer_count(), 1);
    assert_eq!(
        fake.idempotency_keys(),
        vec![format!("customer:{user}:v1"); 2]
    );
    let form = form_of(&fake, "/v1/customers");
    assert_eq!(
        param(&form, "metadata[userId]"),
        Some(user.to_string().as_str())
    );

    let method = stripe.payment_method("pm_card_visa").await.unwrap();
    let card = method.card.unwrap();
    assert_eq!(
        (card["brand"].as_str(), card["last4"].as_str()),
        (Some("visa"), Some("4242"))
    );
    assert_eq!(card["expMonth"], 12);
    assert_eq!(method.holder_zip.as_deref(), Some("94107"));
    assert_err(stripe.payment_method("pm_nope").await, "Invalid", "pm_nope");
    let escaping = stripe.payment_method("pm_1/../../v1/refunds").await;
    assert_err(escaping, "Invalid", "");
}

#[tokio::test]
async fn stripe_intent_lifecycle_and_wire_format() {
    let (fake, stripe) = started().await;
    let intent = pay(&stripe, "pm_card_visa", "resv:r-1:pay:v1").await;
    assert_eq!(intent.status, IntentStatus::Succeeded);
    assert_eq!(
        (intent.amount, intent.currency.as_str()),
        (Money::from_cents(12_050), "EUR")
    );
    assert!(intent.latest_charge.is_some() && intent.client_secret.is_some());
    assert_eq!(intent.metadata["reservationId"], "r-1");
    assert_eq!(fake.intent(&intent.id).unwrap()["customer"], "cus_fake_1");
    let form = form_of(&fake, "/v1/payment_intents");
    for (name, value) in [
        ("amount", "12050"),
        ("currency", "eur"),
        ("confirm", "true"),
        ("customer", "cus_fake_1"),
        ("metadata[reservationId]", "r-1"),
        ("automatic_payment_methods[enabled]", "true"),
        ("automatic_payment_methods[allow_redirects]", "never"),
    ] {
        assert_eq!(param(&form, name), Some(value), "{name}");
    }
    let read = stripe.retrieve_intent(&intent.id).await.unwrap();
    assert_eq!(
        (read.id, read.status),
        (intent.id.clone(), IntentStatus::Succeeded)
    );
    let last = fake.seen().pop().unwrap();
    assert_eq!(
        (last.method.as_str(), last.idempotency_key),
        ("GET", None),
        "GETs carry no key"
    );

    // Same key, same parameters: the same intent; changed parameters: Stripe's idempotency_error.
    let replay = pay(&stripe, "pm_card_visa", "resv:r-1:pay:v1").await;
    assert_eq!(replay.id, intent.id);
    let mut changed = request("pm_card_visa", "resv:r-1:pay:v1");
    changed.amount = Money::from_cents(1);
    assert_err(
        stripe.create_intent(&changed).await,
        "Invalid",
        "same parameters",
    );
    assert_eq!(fake.intent_count(), 1);

    let action = pay(&stripe, "pm_card_authenticationRequired", "k-3ds").await;
    assert_eq!(action.status, IntentStatus::RequiresAction);
    assert!(action.client_secret.unwrap().starts_with(&action.id));
    let missing = stripe.retrieve_intent("pi_missing").await;
    assert_err(missing, "Invalid", "pi_missing");
}

#[tokio::test]
async fn stripe_decline_is_declined_and_replayed() {
    let (fake, stripe) = started().await;
    declines_twice(&stripe, "pm_card_chargeDeclined").await;
    assert_eq!(
        fake.intent_count(),
        1,
        "the replayed decline created nothing"
    );
    let stored = fake.intents().pop().unwrap();
    assert_eq!(stored["status"], "requires_payment_method");
}

#[tokio::test]
async fn stripe_refunds() {
    let (fake, stripe) = started().await;
    let paid = pay(&stripe, "pm_card_visa", "k-pay").await;
    check_refund_limits(&stripe, &paid.id, "greater than").await;
    assert_eq!(fake.refunds().len(), 2);
    let form = form_of(&fake, "/v1/refunds");
    assert_eq!(param(&form, "payment_intent"), Some(paid.id.as_str()));
    assert_eq!(param(&form, "amount"), Some("1"));
}

#[tokio::test]
async fn stripe_retries_reuse_the_idempotency_key() {
    let (fake, stripe) = started().await;
    for (i, status) in [500u16, 429, 409].into_iter().enumerate() {
        let key = format!("resv:r-{i}:pay:v1");
        fake.fail_next(1, status);
        let before = fake.requests("/v1/payment_intents");
        let intent = stripe
            .create_intent(&request("pm_card_visa", &key))
            .await
            .unwrap();
        assert_eq!(intent.status, IntentStatus::Succeeded, "after a {status}");
        assert_eq!(
            fake.requests("/v1/payment_intents") - before,
            2,
            "after a {status}"
        );
        let keys = fake.idempotency_keys();
        assert_eq!(
            keys[keys.len() - 2..],
            [key.clone(), key],
            "after a {status}"
        );
        assert_eq!(fake.intent_count(), i + 1, "one intent per key");
    }

    // Three failures exhaust the attempts.
    fake.fail_next(3, 503);
    let before = fake.requests("/v1/refunds");
    let paid = fake.intents()[0]["id"].as_str().unwrap().to_string();
    assert_err(
        stripe
            .refund(&paid, Money::from_cents(100), "refund:x:v1")
            .await,
        "Unavailable",
        "3 attempts",
    );
    assert_eq!(fake.requests("/v1/refunds") - before, 3);
    assert!(fake.refunds().is_empty());
    // The caller's later retry with the same key refunds once.
    stripe
        .refund(&paid, Money::from_cents(100), "refund:x:v1")
        .await
        .unwrap();
    assert_eq!(fake.refunds().len(), 1);
}

#[tokio::test]
async fn stripe_wrong_key_or_no_server_is_unavailable() {
    let fake = FakeStripe::start(KEY).await;
    let wrong = StripeProvider::new(StripeConfig {
        api_base: fake.base.clone(),
        secret_key: "sk_test_wrong".into(),
        webhook_secret: WHSEC.into(),
    });
    let error = wrong.retrieve_intent("pi_1").await.unwrap_err();
    assert!(matches!(error, ProviderError::Unavailable(_)), "{error:?}");
    assert!(error.to_string().contains("API key") && !error.to_string().contains("sk_test_wrong"));
    assert_eq!(
        fake.requests("/v1/payment_intents/pi_1"),
        1,
        "a 401 is not retried"
    );
    let base = fake.base.clone();
    drop(fake);
    let gone = StripeProvider::new(StripeConfig {
        api_base: base,
        secret_key: KEY.into(),
        webhook_secret: WHSEC.into(),
    });
    assert_err(gone.retrieve_intent("pi_1").await, "Unavailable", "");
}

#[tokio::test]
async fn stripe_webhook_round_trip() {
    let (fake, stripe) = started().await;
    // 3-D Secure completes out of band; Stripe then settles the intent and sends the event.
    let paid = pay(&stripe, "pm_card_authenticationRequired", "k-hook").await;
    assert_eq!(paid.status, IntentStatus::RequiresAction);
    let settled = fake.set_intent_status(&paid.id, "succeeded");
    let read = stripe.retrieve_intent(&paid.id).await.unwrap();
    assert_eq!(read.status, IntentStatus::Succeeded);
    assert!(read.latest_charge.is_some());
    let now = 1_760_000_000;
    let payload = payment_intent_event("evt_1", &settled, now - 10);
    let event = stripe
        .verify_webhook(
            payload.as_bytes(),
            Some(&sign(&payload, WHSEC, now - 10)),
            now,
        )
        .unwrap();
    assert_eq!(
        (event.id.as_str(), event.kind.as_str()),
        ("evt_1", "payment_intent.succeeded")
    );
    let intent = event.intent.unwrap();
    assert_eq!(
        (intent.id, intent.status),
        (paid.id, IntentStatus::Succeeded)
    );
    assert_eq!(intent.metadata["reservationId"], "r-1");

    let rejected = |body: &str, header: Option<String>, needle: &str| {
        let result = stripe.verify_webhook(body.as_bytes(), header.as_deref(), now);
        assert_err(result, "BadWebhook", needle);
    };
    let tampered = payload.replacen("succeeded", "succeedee", 1);
    rejected(&tampered, Some(sign(&payload, WHSEC, now)), "no v1");
    rejected(&payload, Some(sign(&payload, "whsec_other", now)), "no v1");
    rejected(&payload, Some(sign(&payload, WHSEC, now - 301)), "301 s");
    rejected(&payload, None, "missing");
    rejected("not json", Some(sign("not json", WHSEC, now)), "not JSON");

    let local = LocalProvider::new(TestApp::spawn().await.db.clone());
    let reason = local.verify_webhook(payload.as_bytes(), Some(&sign(&payload, WHSEC, now)), now);
    assert_err(reason, "BadWebhook", "no webhooks");
}

// ---------------------------------------------------------------------------------------------
// LocalProvider against a real database.

async fn local_status(app: &TestApp, id: &str) -> (String, i64) {
    sqlx::query_as(
        "SELECT status, refunded_amount FROM booking.local_payment_intents WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

async fn local_refund_ids(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT id FROM booking.local_payment_refunds")
        .fetch_all(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn local_payments_succeed_idempotently() {
    let app = TestApp::spawn().await;
    let local = LocalProvider::new(app.db.clone());
    let user = Uuid::new_v4();
    let customer = local
        .create_customer(user, "ann@example.com")
        .await
        .unwrap();
    assert_eq!(customer, format!("cus_local_{}", user.simple()));
    assert_eq!(
        local.create_customer(user, "x@example.com").await.unwrap(),
        customer
    );

    let intent = pay(&local, "pm_card_visa", "resv:r-1:pay:v1").await;
    assert_eq!(intent.status, IntentStatus::Succeeded);
    assert!(intent.id.starts_with("pi_local_") && intent.id.len() == "pi_local_".len() + 32);
    assert!(intent
        .latest_charge
        .as_deref()
        .unwrap()
        .starts_with("ch_local_"));
    assert_eq!(
        (intent.amount, intent.currency.as_str()),
        (Money::from_cents(12_050), "EUR")
    );
    assert_eq!(intent.metadata["reservationId"], "r-1");
    let replay = pay(&local, "pm_card_visa", "resv:r-1:pay:v1").await;
    assert_eq!(
        (replay.id, replay.latest_charge),
        (intent.id.clone(), intent.latest_charge)
    );
    let mut changed = request("pm_card_mastercard", "resv:r-1:pay:v1");
    changed.amount = Money::from_cents(5);
    assert_err(local.create_intent(&changed).await, "Invalid", "");
    assert_eq!(app.count("booking.local_payment_intents").await, 1);
    assert_eq!(
        local.retrieve_intent(&intent.id).await.unwrap().status,
        IntentStatus::Succeeded
    );

    let card = local
        .payment_method("pm_card_amex")
        .await
        .unwrap()
        .card
        .unwrap();
    assert_eq!(
        (card["brand"].as_str(), card["last4"].as_str()),
        (Some("amex"), Some("8431"))
    );
    assert_err(
        local
            .create_intent(&request("card_4242", "k-unknown"))
            .await,
        "Invalid",
        "card_4242",
    );
    let action = pay(&local, "pm_card_authenticationRequired", "k-3ds").await;
    assert_eq!(action.status, IntentStatus::RequiresAction);
    assert!(action.client_secret.is_some());
    assert_eq!(app.count("booking.local_payment_intents").await, 2);
}

#[tokio::test]
async fn local_declines_and_processing_settles() {
    let app = TestApp::spawn().await;
    let local = LocalProvider::new(app.db.clone());
    declines_twice(&local, "pm_card_visa_chargeDeclined").await;
    let (status, _) = sqlx::query_as::<_, (String, String)>(
        "SELECT status, id FROM booking.local_payment_intents WHERE idempotency_key = 'k-declined'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(status, "requires_payment_method");

    let pending = pay(&local, "pm_card_processing", "k-processing").await;
    assert_eq!(pending.status, IntentStatus::Processing);
    assert_eq!(
        local.retrieve_intent(&pending.id).await.unwrap().status,
        IntentStatus::Processing
    );
    // Backdate instead of sleeping 2 s.
    sqlx::query(
        "UPDATE booking.local_payment_intents SET created_at = now() - interval '3 seconds' \
         WHERE id = $1",
    )
    .bind(&pending.id)
    .execute(&app.db)
    .await
    .unwrap();
    let settled = local.retrieve_intent(&pending.id).await.unwrap();
    assert_eq!(settled.status, IntentStatus::Succeeded);
    assert!(settled.latest_charge.unwrap().starts_with("ch_local_"));
    let missing = local.retrieve_intent("pi_local_missing").await;
    assert_err(missing, "Invalid", "pi_local_missing");
}

#[tokio::test]
async fn local_refund_limits() {
    let app = TestApp::spawn().await;
    let local = LocalProvider::new(app.db.clone());
    let paid = pay(&local, "pm_card_visa", "k-pay").await;
    check_refund_limits(&local, &paid.id, "100.00").await;
    let refund =
        |cents: i64, key: &'static str| local.refund(&paid.id, Money::from_cents(cents), key);
    assert!(local_refund_ids(&app)
        .await
        .iter()
        .all(|id| id.starts_with("re_local_")));
    assert_err(
        refund(9_999, "refund:1").await,
        "Invalid",
        "same parameters",
    );
    assert_err(refund(0, "refund:5").await, "Invalid", "");
    assert_eq!(
        local_status(&app, &paid.id).await,
        ("succeeded".into(), 12_050)
    );
    assert_eq!(app.count("booking.local_payment_refunds").await, 2);

    let action = pay(&local, "pm_card_authenticationRequired", "k-3ds").await;
    let unpaid = local
        .refund(&action.id, Money::from_cents(1), "refund:6")
        .await;
    assert_err(unpaid, "Invalid", "requires_action");
    let unknown = local
        .refund("pi_local_none", Money::from_cents(1), "refund:7")
        .await;
    assert_err(unknown, "Invalid", "pi_local_none");
    assert_eq!(app.count("booking.local_payment_refunds").await, 2);
}
