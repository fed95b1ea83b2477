//! Words an LLM can act on: wrong types, out-of-range numbers, bad dates and unknown enum values
//! are refused over MCP and REST with a message that names the field and says in words what it
//! must be (never a Rust type), an unknown enum value in a list filter is refused instead of
//! answering an empty list, and every operation of the installed registry (agent hub included)
//! follows the registry's surface rules.

use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::helpers::*;

/// Who makes a call in the table.
#[derive(Clone, Copy)]
enum Caller {
    Anonymous,
    User,
    Admin,
}

/// One refused call: caller, operation, arguments, the field the error must name, and words the
/// message must contain.
struct Case {
    caller: Caller,
    op: &'static str,
    args: Value,
    field: &'static str,
    words: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    let id = "3f2b8c4e-9d1a-4c55-8e0f-2a6b7c8d9e01";
    let case = |caller, op, args, field, words| Case {
        caller,
        op,
        args,
        field,
        words,
    };
    use Caller::*;
    vec![
        case(
            Anonymous,
            "listListings",
            json!({ "guestCount": 0 }),
            "guestCount",
            &["a whole number from 1 to 100", "got 0"],
        ),
        case(
            Anonymous,
            "listListings",
            json!({ "guestCount": "two" }),
            "guestCount",
            &["a whole number from 1 to 100"],
        ),
        case(
            Anonymous,
            "listListings",
            json!({ "guestCount": 70000 }),
            "guestCount",
            &["a whole number from 1 to 100"],
        ),
        case(
            Anonymous,
            "listListings",
            json!({ "checkIn": "2027-02-30" }),
            "checkIn",
            &["a date like 2027-03-10"],
        ),
        case(
            Anonymous,
            "listListings",
            json!({ "sortBy": "cheapest" }),
            "sortBy",
            &["one of:", "priceAsc"],
        ),
        case(
            Anonymous,
            "listListings",
            json!({ "propertyType": "castle" }),
            "propertyType",
            &["one of:", "apartment", "castle"],
        ),
        case(
            Anonymous,
            "listListings",
            json!({ "zzNope": 1 }),
            "zzNope",
            &["unknown field `zzNope`", "accepts:", "guestCount"],
        ),
        case(
            Anonymous,
            "quoteReservation",
            json!({ "listingId": id, "checkIn": "10/03/2027", "checkOut": "2027-03-12" }),
            "checkIn",
            &["a date like 2027-03-10"],
        ),
        case(
            Anonymous,
            "quoteReservation",
            json!({ "listingId": "abc", "checkIn": "2027-03-10", "checkOut": "2027-03-12" }),
            "listingId",
            &["an id"],
        ),
        case(
            Anonymous,
            "checkListingAvailability",
            json!({ "listingId": id, "checkIn": "2027-03-10", "checkOut": "2027-03-12", "guestCount": 101 }),
            "guestCount",
            &["from 1 to 100", "got 101"],
        ),
        case(
            Anonymous,
            "registerUser",
            json!({ "email": 42, "password": "password123", "fullname": "A" }),
            "email",
            &["an email address"],
        ),
        case(
            Anonymous,
            "listReviews",
            json!({ "pageRowCount": 500 }),
            "pageRowCount",
            &["from 1 to 100", "got 500"],
        ),
        case(
            Anonymous,
            "listReviews",
            json!({ "revieweeType": "hotel" }),
            "revieweeType",
            &["one of: host, guest, listing"],
        ),
        case(
            User,
            "createReservation",
            json!({ "listingId": id, "checkIn": "2027-03-10", "checkOut": "2027-03-12", "guestCount": 500 }),
            "guestCount",
            &["from 1 to 100", "got 500"],
        ),
        case(
            User,
            "createReservation",
            json!({ "listingId": id, "checkIn": "2027-03-10T12:00:00Z", "checkOut": "2027-03-12" }),
            "checkIn",
            &["a date like 2027-03-10"],
        ),
        case(
            User,
            "createReservation",
            json!({ "listingId": id, "checkIn": "2027-03-10", "checkOut": "2027-03-12", "guestCount": true }),
            "guestCount",
            &["a whole number"],
        ),
        case(
            User,
            "listReservations",
            json!({ "bookingStatus": "completed" }),
            "bookingStatus",
            &[
                "one of: pending, confirmed, complete, cancelled, declined",
                "completed",
            ],
        ),
        case(
            User,
            "listReservations",
            json!({ "paymentConfirmation": ["paid", "refunded"] }),
            "paymentConfirmation",
            &["one of: pending, processing, paid, canceled"],
        ),
        case(
            User,
            "listReservations",
            json!({ "approvalType": 3 }),
            "approvalType",
            &["instant", "manual"],
        ),
        case(
            User,
            "listDisputes",
            json!({ "resolutionStatus": "open" }),
            "resolutionStatus",
            &["one of: pending, reviewing, resolved, rejected"],
        ),
        case(
            User,
            "listPaymentRecords",
            json!({ "paymentStatus": "settled" }),
            "paymentStatus",
            &["one of: pending, paid, refunded, failed"],
        ),
        case(
            User,
            "listAgentExecutions",
            json!({ "status": "done" }),
            "status",
            &["one of: success, error, timeout, running, cancelled"],
        ),
        case(
            User,
            "startReservationPayment",
            json!({ "reservationId": id, "paymentMethodId": "pm_card_visa" }),
            "paymentMethodId",
            &["unknown field `paymentMethodId`", "paymentUserParams"],
        ),
        case(
            User,
            "startReservationPayment",
            json!({ "reservationId": id, "paymentUserParams": { "paymentMethodId": 7 } }),
            "paymentUserParams.paymentMethodId",
            &["`paymentUserParams.paymentMethodId` must be"],
        ),
        case(
            User,
            "createReview",
            json!({ "reservationId": id, "revieweeType": "host", "revieweeId": id, "rating": 6, "reviewText": "Lovely" }),
            "rating",
            &["1 to 5"],
        ),
        case(
            Admin,
            "listUsers",
            json!({ "roleId": "root" }),
            "roleId",
            &["one of: user, admin, superAdmin"],
        ),
        case(
            Admin,
            "runDynamicAgent",
            json!({ "input": "hi", "agent": { "name": "probe", "provider": "openai", "model": "m", "systemPrompt": "p", "guardrails": { "maxToolCalls": "many" } } }),
            "agent.guardrails.maxToolCalls",
            &["`agent.guardrails.maxToolCalls` must be a whole number"],
        ),
    ]
}

/// The REST request for `op` with `args`: path parameters filled from the arguments, the rest
/// as the query string (GET, DELETE) or the JSON body.
fn rest_request(op: &haven_tools::Operation, args: &Value) -> (Method, String, Option<Value>) {
    let mut rest: Map<String, Value> = args.as_object().cloned().unwrap_or_default();
    let mut path = op.path.to_string();
    for param in op.path_params() {
        let value = rest.remove(param).unwrap_or(Value::Null);
        let text = value
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string());
        path = path.replace(&format!("{{{param}}}"), &text);
    }
    let method = Method::from_bytes(op.method.as_str().as_bytes()).unwrap();
    if matches!(
        op.method,
        haven_tools::registry::Method::Get | haven_tools::registry::Method::Delete
    ) {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &rest {
            let values = match v {
                Value::Array(items) => items.clone(),
                other => vec![other.clone()],
            };
            for v in values {
                let text = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                query.append_pair(k, &text);
            }
        }
        let query = query.finish();
        if !query.is_empty() {
            path = format!("{path}?{query}");
        }
        (method, path, None)
    } else {
        (method, path, Some(Value::Object(rest)))
    }
}

#[tokio::test]
async fn bad_values_are_refused_in_words_naming_the_field_over_mcp_and_rest() {
    let app = TestApp::spawn().await;
    let user = app.user("words-user@haven.test").await;
    let admin = app.user_with_role("words-admin@haven.test", "admin").await;
    let audit_before = app.count("platformadmin.audit_logs").await;
    let registry = haven::registry();
    for case in cases() {
        let token = match case.caller {
            Caller::Anonymous => None,
            Caller::User => Some(user.token.as_str()),
            Caller::Admin => Some(admin.token.as_str()),
        };
        let label = format!("{} {}", case.op, case.args);

        let (is_error, text) = app.tool(token, case.op, case.args.clone()).await;
        let text = text.as_str().unwrap_or_default().to_string();
        assert!(is_error, "{label} was accepted over MCP");
        assert!(text.starts_with("BadInput"), "{label}: {text}");
        check_words(&label, &text, case.field, case.words);

        let op = registry.get(case.op).expect("operation in the registry");
        let (method, path, body) = rest_request(op, &case.args);
        let (status, resp) = app.rest(method, &path, token, body).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{label} over REST {path}: {resp}"
        );
        assert_eq!(resp["field"], case.field, "{label} over REST: {resp}");
        let message = resp["message"].as_str().unwrap_or_default();
        check_words(&label, message, case.field, case.words);
    }
    assert_eq!(
        app.count("platformadmin.audit_logs").await,
        audit_before,
        "a refused call wrote nothing"
    );
}

fn check_words(label: &str, message: &str, field: &str, words: &[&str]) {
    assert!(
        message.contains(&format!("`{field}`")),
        "{label}: {message:?} should name `{field}`"
    );
    for w in words {
        assert!(message.contains(w), "{label}: {message:?} should say {w:?}");
    }
    assert!(
        !haven_tools::words::has_jargon(message),
        "{label}: {message:?} speaks Rust"
    );
}

/// A filter with a valid enum value still works (case-insensitively), and answers a list.
#[tokio::test]
async fn enum_filters_accept_their_values_in_any_case() {
    let app = TestApp::spawn().await;
    let user = app.user("words-filter@haven.test").await;
    for value in [
        json!("pending"),
        json!("CONFIRMED"),
        json!(["cancelled", "declined"]),
    ] {
        let (is_error, out) = app
            .tool(
                Some(&user.token),
                "listReservations",
                json!({ "bookingStatus": value }),
            )
            .await;
        assert!(!is_error, "{value}: {out}");
        assert!(out["reservations"].is_array(), "{out}");
    }
    let (status, body) = app
        .rest(
            Method::GET,
            "/bookingmanagement-api/v1/reservations?bookingStatus=pending&bookingStatus=complete",
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The registry's surface rules hold for every installed operation, the agent hub's included:
/// no Rust or serde words and no "spec" in any description, an access line that states the real
/// rule, enums for closed sets, one range per concept, and warning annotations on anything that
/// charges, refunds, cancels, deletes or runs an agent.
#[test]
fn every_installed_operation_follows_the_surface_rules() {
    let problems = haven_tools::rules::registry_violations(haven::registry());
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    let registry = haven::registry();
    for name in [
        "approveReservation",
        "declineReservation",
        "completeReservation",
    ] {
        let op = registry.get(name).unwrap();
        assert!(
            op.description
                .ends_with("Who may call: the listing's host, or an admin."),
            "{name}: {}",
            op.description
        );
    }
    let pay = registry.get("startReservationPayment").unwrap().annotations;
    assert!(
        pay.destructive && pay.open_world && !pay.read_only,
        "{pay:?}"
    );
    for name in ["runAgent", "runDynamicAgent"] {
        let a = registry.get(name).unwrap().annotations;
        assert!(
            !a.read_only && a.open_world && a.destructive,
            "{name}: {a:?}"
        );
    }
    for name in ["cancelReservation", "deleteReservation"] {
        let a = registry.get(name).unwrap().annotations;
        assert!(a.destructive && a.open_world, "{name} refunds: {a:?}");
    }
}

/// The schemas carry the enums: a client (and its model) sees the allowed values up front.
#[test]
fn enum_fields_are_schema_enums_in_inputs_and_outputs() {
    let registry = haven::registry();
    let list = registry.get("listReservations").unwrap();
    let filter = list.input_schema["properties"]["bookingStatus"].to_string();
    assert!(
        filter.contains("\"enum\"") && filter.contains("declined"),
        "{filter}"
    );
    let out = registry.get("getReservation").unwrap();
    let status = out.output_schema["properties"]["bookingStatus"].to_string();
    assert!(status.contains("\"enum\""), "{status}");
    let listings = registry.get("listListings").unwrap();
    let guests = &listings.input_schema["properties"]["guestCount"];
    let text = guests.to_string();
    assert!(
        text.contains("\"minimum\":1") && text.contains("\"maximum\":100"),
        "{text}"
    );
}

/// The tool examples in README.md ("`tool` with `{…}`") and the JSON bodies of its curl examples
/// work when pasted: each fits its operation's input schema, and the ones that need no LLM are
/// called for real (`"<reservationId>"` stands for the id of a reservation the guest just made).
#[tokio::test]
async fn readme_examples_work_when_pasted() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let registry = haven::registry();
    let app = TestApp::spawn().await;
    let host = app.user("readme-host@haven.test").await;
    let guest = app.user("readme-guest@haven.test").await;
    let root = app
        .user_with_role("readme-root@haven.test", "superAdmin")
        .await;
    let listing = crate::fixtures::listing(&app, &host, json!({})).await;
    let reservation = crate::fixtures::booked(&app, &guest, listing, 20, 3).await;

    let examples = tool_examples(&readme);
    let names: Vec<&str> = examples.iter().map(|(t, _)| t.as_str()).collect();
    for needed in ["startReservationPayment", "createAgentOverride", "runAgent"] {
        assert!(
            names.contains(&needed),
            "README shows {needed} with arguments: {names:?}"
        );
    }
    for (tool, text) in &examples {
        let text = text.replace("<reservationId>", &reservation.to_string());
        let args: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("README's {tool} example is not JSON ({e}): {text}"));
        let op = registry
            .get(tool)
            .unwrap_or_else(|| panic!("README names an unknown tool {tool}"));
        if let Err(why) = fits(
            &Value::Object((*op.input_schema).clone()),
            &args,
            tool,
            true,
        ) {
            panic!("README's {tool} example does not fit its input: {why}");
        }
        if tool.starts_with("run") {
            continue; // needs an LLM; fitting the schema is what the reader needs
        }
        let token = match tool.as_str() {
            "startReservationPayment" => &guest.token,
            _ => &root.token,
        };
        let (is_error, out) = app.tool(Some(token), tool, args).await;
        assert!(!is_error, "README's {tool} example failed: {out}");
        if tool == "startReservationPayment" {
            assert_eq!(out["paymentResult"]["success"], true, "{out}");
            assert_eq!(out["reservation"]["bookingStatus"], "confirmed", "{out}");
        }
    }

    // The curl examples' bodies: the account ones run for real, the agent-run ones fit their input.
    let mut ran = 0;
    for (path, body) in curl_examples(&readme) {
        let args: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("README's body for {path} is not JSON ({e}): {body}"));
        if path.contains("/agents/") || path.contains("/dynamic-agents/") {
            let op = if path.contains("dynamic") {
                "runDynamicAgent"
            } else {
                "runAgent"
            };
            let schema = Value::Object((*registry.get(op).unwrap().input_schema).clone());
            let mut args = args;
            if op == "runAgent" {
                args["agentName"] = json!("guest-booking-assistant");
            }
            fits(&schema, &args, &path, true)
                .unwrap_or_else(|why| panic!("README's {path} body: {why}"));
            continue;
        }
        let (status, resp) = app.rest(Method::POST, &path, None, Some(args)).await;
        assert!(
            status.is_success(),
            "README's {path} example answered {status}: {resp}"
        );
        ran += 1;
    }
    assert!(ran >= 2, "the register and login examples ran");
}

/// "`tool` with `{…}`" pairs in `text`.
fn tool_examples(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let parts: Vec<&str> = text.split('`').collect();
    for i in (1..parts.len().saturating_sub(2)).step_by(1) {
        let name = parts[i];
        let between = parts[i + 1];
        let code = parts[i + 2];
        if i % 2 == 1
            && name.chars().all(|c| c.is_ascii_alphanumeric())
            && between.trim() == "with"
            && code.starts_with('{')
        {
            out.push((name.to_string(), code.to_string()));
        }
    }
    out
}

/// (path, body) of every `curl … -d '…'` in the README's shell blocks (continuation lines joined).
fn curl_examples(text: &str) -> Vec<(String, String)> {
    let joined = text.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined
        .lines()
        .filter(|l| l.trim_start().starts_with("curl"))
    {
        let Some(host) = line.find(":8080") else {
            continue;
        };
        let path: String = line[host + 5..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        let Some(start) = line.find("-d '") else {
            continue;
        };
        let rest = &line[start + 4..];
        let Some(end) = rest.find('\'') else { continue };
        if path.ends_with("/stream") {
            continue;
        }
        out.push((path, rest[..end].to_string()));
    }
    out
}

/// A value of the wrong kind for `schema`: a number where text is wanted, text where a number,
/// a boolean or a list is, and a number where an object is; None when the field takes anything.
fn wrong_value_for(schema: &Value) -> Option<Value> {
    let mut types: Vec<String> = Vec::new();
    collect_types(schema, &mut types);
    if types.is_empty() {
        return None;
    }
    let takes = |t: &str| types.iter().any(|x| x == t);
    Some(
        if takes("object") && !takes("integer") && !takes("number") {
            json!(7)
        } else if takes("string") || takes("array") {
            json!({ "nested": true })
        } else {
            json!("not-this")
        },
    )
}

/// The string values an enum-valued field (or list filter) allows.
fn enum_values(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(Value::Array(vs)) = schema.get("enum") {
        out.extend(vs.iter().filter_map(Value::as_str).map(str::to_string));
    }
    if let Some(c) = schema.get("const").and_then(Value::as_str) {
        out.push(c.to_string());
    }
    for key in ["anyOf", "oneOf", "items"] {
        match schema.get(key) {
            Some(Value::Array(alts)) => alts.iter().for_each(|a| out.extend(enum_values(a))),
            Some(v @ Value::Object(_)) => out.extend(enum_values(v)),
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Whether some alternative of `schema` is a string without an `enum` or `const` (a UUID, a date,
/// a pattern, free text).
fn takes_open_strings(schema: &Value) -> bool {
    let open_here = schema.get("type").is_some_and(|t| {
        t == "string"
            || t.as_array()
                .is_some_and(|ts| ts.iter().any(|x| x == "string"))
    }) && schema.get("enum").is_none()
        && schema.get("const").is_none();
    open_here
        || ["anyOf", "oneOf", "items"]
            .iter()
            .any(|key| match schema.get(*key) {
                Some(Value::Array(alts)) => alts.iter().any(takes_open_strings),
                Some(v @ Value::Object(_)) => takes_open_strings(v),
                _ => false,
            })
}

/// Numbers just outside the `minimum`/`maximum` a numeric field declares.
fn out_of_range_for(schema: &Value) -> Vec<Value> {
    let numeric = |s: &Value| {
        let mut t = Vec::new();
        collect_types(s, &mut t);
        t.iter().any(|t| t == "integer" || t == "number")
    };
    let alts: Vec<&Value> = std::iter::once(schema)
        .chain(
            schema
                .get("anyOf")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .filter(|s| numeric(s) && (s.get("minimum").is_some() || s.get("maximum").is_some()))
        .collect();
    let Some(s) = alts.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
        out.push(json!(min as i64 - 1));
    }
    if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
        out.push(json!(max as i64 + 1));
    }
    out
}

fn collect_types(schema: &Value, out: &mut Vec<String>) {
    match schema.get("type") {
        Some(Value::String(t)) => out.push(t.clone()),
        Some(Value::Array(ts)) => {
            out.extend(ts.iter().filter_map(Value::as_str).map(str::to_string))
        }
        _ => {}
    }
    for key in ["anyOf", "oneOf"] {
        for alt in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            collect_types(alt, out);
        }
    }
    out.retain(|t| t != "null");
}

/// Every field of every operation, sent a value of the wrong kind, just outside its declared
/// range, or (for enum fields) not among its values over MCP, is refused with a message that
/// names it and says in words what it must be (listing the allowed values for enums).
#[tokio::test]
async fn every_field_of_every_operation_refuses_wrong_kinds_and_ranges_in_words() {
    let app = TestApp::spawn().await;
    let root = app
        .user_with_role("words-root@haven.test", "superAdmin")
        .await;
    let mut checked = 0;
    let mut failures = Vec::new();
    for op in haven::registry().all() {
        let Some(Value::Object(props)) = op.input_schema.get("properties") else {
            continue;
        };
        for (field, schema) in props {
            let mut probes: Vec<Value> = wrong_value_for(schema).into_iter().collect();
            probes.extend(out_of_range_for(schema));
            // A closed set only: a field that also takes free strings (an id or a date filter with
            // a few special words such as `$today` or "null") is probed as what it mostly is.
            let allowed = if takes_open_strings(schema) {
                Vec::new()
            } else {
                enum_values(schema)
            };
            if !allowed.is_empty() {
                probes.push(json!("zzNotAValue"));
            }
            for wrong in probes {
                let args = json!({ field.clone(): wrong });
                let (is_error, text) = app.tool(Some(&root.token), op.name, args.clone()).await;
                let text = text.as_str().unwrap_or_default().to_string();
                checked += 1;
                let mut named = text.contains(&format!("`{field}"));
                if args[field.as_str()] == "zzNotAValue" {
                    // An unknown enum value is refused with the allowed values listed.
                    named &= text.contains("one of:")
                        && allowed.iter().all(|v| text.contains(v.as_str()));
                }
                if !is_error
                    || !text.starts_with("BadInput")
                    || !named
                    || haven_tools::words::has_jargon(&text)
                {
                    failures.push(format!("{} {args}: {text}", op.name));
                }
            }
        }
    }
    assert!(checked > 200, "only {checked} fields probed");
    assert!(
        failures.is_empty(),
        "{} refusals not in words:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
