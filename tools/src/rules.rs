//! The rules every operation's LLM-facing surface follows, as one checker the tests run over the
//! whole registry (this crate's, and the server's installed one with the agent hub's operations).
//!
//! An LLM only has the tool's name, description, schemas and annotations to go on, so they must
//! be plain words it can act on: no Rust or serde vocabulary ([`crate::words::JARGON`]), no
//! references to "the spec" it has never seen, an access line that states who really may call
//! (not a role that contradicts the first sentence), an `enum` wherever a field takes a closed set
//! of values, one range per concept across operations, and annotations that warn before anything
//! charges, refunds, cancels or deletes.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::registry::{Operation, Registry};
use crate::words::has_jargon;

/// The paragraph every description ends with.
pub const ACCESS_LINE: &str = "\n\nWho may call: ";

/// Phrases in a description that reveal an object-level rule (ownership, party to a reservation,
/// visibility) narrower than the role: an operation using one must declare `.who(...)`.
const OBJECT_RULE_PHRASES: &[&str] = &[
    "only its",
    "only the",
    "only their",
    "your own",
    "caller's own",
    "(or an admin)",
    "guest or host",
    "guest, host",
    "guest and host",
    "visible to",
    "users may",
    "owners ",
    "its uploader",
    "only superadmins",
    "admins any",
    "can see",
    "can read",
    "must be the caller",
    "you are the",
    "users see their own",
];

/// First camelCase words of operations that cancel, delete, charge or send: never read-only, and
/// destructive or open-world.
const WARNING_VERBS: &[&str] = &[
    "cancel", "delete", "archive", "refund", "send", "pay", "charge", "revoke", "remove",
];

/// Operations whose name mentions a payment but that only keep records (no money moves, nothing
/// is sent), with the reason; every other writing operation named for a payment is open-world.
const RECORD_KEEPING: &[(&str, &str)] = &[
    (
        "createPaymentRecord",
        "appends a manual ledger entry; no provider is called",
    ),
    (
        "createReservationPayment",
        "repairs a payment ticket's data; no provider is called",
    ),
    (
        "updateReservationPayment",
        "repairs a payment ticket's data; no provider is called",
    ),
    (
        "deleteReservationPayment",
        "hides a payment ticket; no provider is called",
    ),
];

/// Every rule `op` breaks, as sentences naming the operation (empty when it is clean).
pub fn violations(op: &Operation) -> Vec<String> {
    let mut out = Vec::new();
    let name = op.name;

    // Words: the description, the title and every description inside both schemas.
    let mut texts = vec![("description".to_string(), op.description.clone())];
    texts.push(("title".into(), op.title.to_string()));
    collect_descriptions(
        &Value::Object((*op.input_schema).clone()),
        "input",
        &mut texts,
    );
    collect_descriptions(
        &Value::Object((*op.output_schema).clone()),
        "output",
        &mut texts,
    );
    for (place, text) in &texts {
        if has_jargon(text) {
            out.push(format!("{name}: {place} uses Rust/serde words: {text:?}"));
        }
        if mentions_spec(text) {
            out.push(format!(
                "{name}: {place} refers to a spec the reader has never seen: {text:?}"
            ));
        }
    }

    // The access line.
    let lines: Vec<&str> = op.description.matches(ACCESS_LINE).collect();
    match op.description.rsplit_once(ACCESS_LINE) {
        Some((body, line)) if lines.len() == 1 && !line.contains('\n') => {
            let lower = body.to_lowercase();
            if op.who.is_none() {
                if let Some(p) = OBJECT_RULE_PHRASES.iter().find(|p| lower.contains(*p)) {
                    out.push(format!(
                        "{name}: the description states an object-level rule ({p:?}) but the access line only says \"{}\"; declare .who(...)",
                        op.access.describe()
                    ));
                }
            }
        }
        _ => out.push(format!(
            "{name}: the description must end with one \"Who may call: …\" line"
        )),
    }

    // Closed sets of values are enums.
    for (path, desc) in enum_like_without_enum(&op.input_schema, "input")
        .into_iter()
        .chain(enum_like_without_enum(&op.output_schema, "output"))
    {
        out.push(format!(
            "{name}: {path} lists its values in words ({desc:?}) but its schema has no enum"
        ));
    }

    // Annotations.
    let a = op.annotations;
    if a.read_only && a.destructive {
        out.push(format!("{name}: read-only and destructive at once"));
    }
    let verb: String = name
        .chars()
        .take_while(|c| c.is_ascii_lowercase())
        .collect();
    if WARNING_VERBS.contains(&verb.as_str()) && (a.read_only || !(a.destructive || a.open_world)) {
        out.push(format!(
            "{name}: a `{verb}` operation must be neither read-only nor unmarked: set destructive and/or open-world"
        ));
    }
    let names_payment = name.contains("Payment") || name.contains("Refund");
    let record_keeping = RECORD_KEEPING.iter().any(|(n, _)| *n == name);
    if names_payment && !a.read_only && !record_keeping && !a.open_world {
        out.push(format!(
            "{name}: it acts on a payment, so it reaches the payment provider: set open-world (or list it in RECORD_KEEPING with the reason)"
        ));
    }
    let warns_before_charging = a.destructive && !a.idempotent;
    if verb == "start" && name.ends_with("Payment") && !warns_before_charging {
        out.push(format!(
            "{name}: it charges a card: destructive and not idempotent, so clients ask first"
        ));
    }
    if verb == "run" && (a.read_only || !a.open_world) {
        out.push(format!(
            "{name}: running an agent calls an LLM and tools: open-world and not read-only"
        ));
    }
    out
}

/// [`violations`] of every operation, plus the cross-operation rule: a numeric input field has
/// the same range wherever it appears (`guestCount` is 1–100 everywhere).
pub fn registry_violations(registry: &Registry) -> Vec<String> {
    let mut out: Vec<String> = registry.all().flat_map(|op| violations(op)).collect();
    let mut ranges: BTreeMap<String, BTreeMap<String, Vec<&str>>> = BTreeMap::new();
    for op in registry.all() {
        if let Some(Value::Object(props)) = op.input_schema.get("properties") {
            for (field, schema) in props {
                if let Some(bounds) = numeric_bounds(schema) {
                    ranges
                        .entry(field.clone())
                        .or_default()
                        .entry(bounds)
                        .or_default()
                        .push(op.name);
                }
            }
        }
    }
    for (field, by_range) in ranges {
        if by_range.len() > 1 {
            out.push(format!(
                "`{field}` has different ranges across operations: {by_range:?}"
            ));
        }
    }
    out
}

/// True when `text` mentions "the spec" (the reference documents the model has never seen).
fn mentions_spec(text: &str) -> bool {
    let lower = text.to_lowercase();
    lower.match_indices("spec").any(|(i, _)| {
        let before = lower[..i].chars().next_back();
        let after = lower[i + 4..].chars().next();
        !before.is_some_and(char::is_alphanumeric)
            && (!after.is_some_and(char::is_alphanumeric)
                || lower[i..].starts_with("specification"))
    })
}

fn collect_descriptions(schema: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match schema {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "description" {
                    if let Value::String(d) = v {
                        out.push((format!("{path} description"), d.clone()));
                    }
                } else if k == "properties" {
                    if let Value::Object(props) = v {
                        for (p, s) in props {
                            collect_descriptions(s, &format!("{path}.{p}"), out);
                        }
                    }
                } else {
                    collect_descriptions(v, path, out);
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| collect_descriptions(v, path, out)),
        _ => {}
    }
}

/// Properties taking strings whose description lists several backticked values ("`pending`,
/// `paid` or `failed`") yet whose schema carries no `enum`/`const`. Examples ("e.g.", "such as",
/// "…") are open sets and pass.
fn enum_like_without_enum(
    schema: &serde_json::Map<String, Value>,
    io: &str,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk_props(&Value::Object(schema.clone()), io, &mut out);
    out
}

fn walk_props(schema: &Value, path: &str, out: &mut Vec<(String, String)>) {
    let Value::Object(map) = schema else { return };
    if let Some(Value::Object(props)) = map.get("properties") {
        for (name, prop) in props {
            let here = format!("{path}.{name}");
            let desc = prop
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("");
            if takes_strings(prop) && !has_enum(prop) && lists_values(desc) {
                out.push((here.clone(), desc.to_string()));
            }
            walk_props(prop, &here, out);
        }
    }
    for key in ["items", "anyOf", "oneOf", "allOf"] {
        match map.get(key) {
            Some(Value::Array(alts)) => alts.iter().for_each(|a| walk_props(a, path, out)),
            Some(v @ Value::Object(_)) => walk_props(v, &format!("{path}[]"), out),
            _ => {}
        }
    }
}

fn takes_strings(schema: &Value) -> bool {
    let direct = match schema.get("type") {
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "string"),
        _ => false,
    };
    direct
        || ["anyOf", "oneOf"].iter().any(|k| {
            schema
                .get(*k)
                .and_then(Value::as_array)
                .is_some_and(|alts| alts.iter().any(takes_strings))
        })
}

fn has_enum(schema: &Value) -> bool {
    schema.get("enum").is_some()
        || schema.get("const").is_some()
        || ["anyOf", "oneOf", "allOf"].iter().any(|k| {
            schema
                .get(*k)
                .and_then(Value::as_array)
                .is_some_and(|alts| alts.iter().any(has_enum))
        })
        || schema.get("items").is_some_and(has_enum)
}

/// "`a`, `b` or `c`", "`a` / `b`", "`a` and/or `b`": at least two backticked lower-case words
/// joined as alternatives, and no sign that they are only examples.
fn lists_values(desc: &str) -> bool {
    let lower = desc.to_lowercase();
    if ["e.g.", "such as", "for example", "…", "..."]
        .iter()
        .any(|m| lower.contains(m))
    {
        return false;
    }
    let parts: Vec<&str> = desc.split('`').collect();
    let mut values = 0;
    let mut joined = false;
    for (i, part) in parts.iter().enumerate() {
        if i % 2 == 1 {
            if !part.is_empty()
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && part.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            {
                values += 1;
            }
        } else if i > 0 && i + 1 < parts.len() {
            // A separator between two values: "`a`, `b`", "`a` or `b`", "`a` (when …) or `b`".
            let sep = part.trim();
            if [",", "or", "and/or", "/", "and"].contains(&sep)
                || [",", " or", " and/or", "/"]
                    .iter()
                    .any(|end| sep.ends_with(end))
            {
                joined = true;
            }
        }
    }
    values >= 2 && joined
}

/// "min..max" of a numeric property (looking through a nullable union), when it declares any.
fn numeric_bounds(schema: &Value) -> Option<String> {
    let is_num = |s: &Value| match s.get("type") {
        Some(Value::String(t)) => t == "integer" || t == "number",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "integer" || t == "number"),
        _ => false,
    };
    let s = if is_num(schema) {
        schema
    } else {
        schema
            .get("anyOf")
            .and_then(Value::as_array)
            .and_then(|alts| alts.iter().find(|a| is_num(a)))?
    };
    let show = |k: &str| {
        s.get(k)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "_".into())
    };
    Some(format!("{}..{}", show("minimum"), show("maximum")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_lists_are_recognised() {
        assert!(lists_values("`pending`, `paid` or `failed`."));
        assert!(lists_values("`instant` / `manual`."));
        assert!(lists_values(
            "`instant` (confirmed once paid) or `manual` (the host approves first)."
        ));
        assert!(lists_values(
            "`session` for access tokens, `apiKey` for API keys."
        ));
        assert!(lists_values(
            "`host`, `guest` and/or `listing` (case-insensitive)."
        ));
        assert!(!lists_values(
            "Free-text category, e.g. `damage`, `cleanliness`."
        ));
        assert!(!lists_values(
            "Send `recordVersion` to detect lost updates."
        ));
    }

    #[test]
    fn spec_is_caught_as_a_word() {
        assert!(mentions_spec("the spec's filters"));
        assert!(mentions_spec("(spec object `Listing`)"));
        assert!(!mentions_spec("special requests"));
        assert!(!mentions_spec("respects the listing's rules"));
    }

    #[test]
    fn every_operation_follows_the_rules() {
        let problems = registry_violations(&Registry::haven());
        assert!(
            problems.is_empty(),
            "{} problems:\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
}
