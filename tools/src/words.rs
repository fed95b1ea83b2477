//! Input errors in words an LLM (or a person) can act on.
//!
//! serde reports a bad argument in Rust's terms (`invalid type: string "x", expected u32`,
//! `trailing input`, `data did not match any variant of untagged enum Filter`). [`explain`] turns
//! such a failure into a sentence that names the field and says what it must be, read from the
//! operation's own input JSON Schema: "`guestCount` must be a whole number from 1 to 100 (got 0)",
//! "`checkIn` must be a date like 2027-03-10". Messages our own domain types wrote (already in
//! words) are kept. [`JARGON`] lists what must never reach a caller; the registry tests check every
//! description and error against it.

use serde_json::{Map, Value};
use serde_path_to_error::Segment;

use crate::error::ToolError;

/// Fragments of Rust and serde vocabulary that must never appear in anything a caller reads.
pub const JARGON: &[&str] = &[
    "expected u",
    "expected i",
    "expected f",
    "expected a ",
    "expected an ",
    "expected one of",
    "expected struct",
    "expected enum",
    "expected map",
    "expected sequence",
    "invalid type:",
    "invalid value:",
    "invalid length",
    "trailing input",
    "trailing characters",
    "premature end",
    "input contains invalid characters",
    "untagged enum",
    "did not match any variant",
    "u8",
    "u16",
    "u32",
    "u64",
    "i16",
    "i32",
    "i64",
    "f64",
    "usize",
    "Uuid",
    "NaiveDate",
    "DateTime<",
    "Option<",
    "Vec<",
    "String",
    "serde",
    "struct ",
];

/// True when `text` carries Rust or serde vocabulary (see [`JARGON`]); word-ish fragments such as
/// `u32` count only as whole words, so "`u32`" is caught but "menu32" is not.
pub fn has_jargon(text: &str) -> bool {
    JARGON.iter().any(|j| {
        if j.chars().all(|c| c.is_ascii_alphanumeric()) {
            contains_word(text, j)
        } else {
            text.contains(j)
        }
    })
}

fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// Turns serde's failure to parse `args` into a `BadInput` naming the field, with the expected
/// value described from `schema` (the operation's input JSON Schema).
pub fn explain(
    err: serde_path_to_error::Error<serde_json::Error>,
    args: &Value,
    schema: &Map<String, Value>,
) -> ToolError {
    let root = Value::Object(schema.clone());
    let segments: Vec<String> = err
        .path()
        .iter()
        .filter_map(|s| match s {
            Segment::Map { key } => Some(key.clone()),
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect();
    let inner = err.into_inner().to_string();
    if let Some(field) = backticked(&inner).filter(|_| inner.starts_with("missing field")) {
        let mut segs = segments.clone();
        if segs.last() == Some(&field) {
            segs.pop();
        }
        segs.push(field);
        let what = subschema(&root, &segs).map(describe);
        let full = name(&segs);
        return ToolError::field_said(
            full.clone(),
            match what {
                Some(what) => format!("`{full}` is required: send {what}"),
                None => format!("`{full}` is required"),
            },
        );
    }
    if let Some(field) = backticked(&inner).filter(|_| inner.starts_with("unknown field")) {
        // serde_path_to_error's path already ends in the unknown key itself.
        let mut segs = segments.clone();
        if segs.last() == Some(&field) {
            segs.pop();
        }
        let parent = subschema(&root, &segs);
        let accepted = parent.map(property_names).unwrap_or_default();
        let owner = if segs.is_empty() {
            "this operation".to_string()
        } else {
            format!("`{}`", name(&segs))
        };
        segs.push(field);
        let full = name(&segs);
        let list = if accepted.is_empty() {
            "no fields".to_string()
        } else {
            accepted.join(", ")
        };
        return ToolError::field_said(
            full.clone(),
            format!("unknown field `{full}`; {owner} accepts: {list}"),
        );
    }
    if segments.is_empty() {
        // No path: serde could not say where (e.g. the whole body is of the wrong kind).
        return match backticked(&inner).filter(|_| !has_jargon(&inner)) {
            Some(field) => ToolError::field_said(field, inner),
            None if !has_jargon(&inner) => ToolError::bad_input(inner),
            None => ToolError::bad_input(format!(
                "the arguments do not fit this operation: it takes {}",
                describe(&root)
            )),
        };
    }
    let full = name(&segments);
    let got = value_at(args, &segments).map(show_value);
    let got = got.map(|g| format!(" (got {g})")).unwrap_or_default();
    if !has_jargon(&inner) && !is_library_wording(&inner) {
        // Our own domain types already speak in words ("must not be empty", "at most 2 decimals").
        let sentence = if starts_with_verb(&inner) {
            format!("`{full}` {inner}")
        } else {
            format!("invalid `{full}`: {inner}")
        };
        return ToolError::field_said(full, sentence);
    }
    let what = subschema(&root, &segments)
        .map(describe_required)
        .unwrap_or_else(|| "a valid value".to_string());
    ToolError::field_said(full.clone(), format!("`{full}` must be {what}{got}"))
}

/// A field path in the callers' notation: `agent.guardrails.maxToolCalls`, `photos[2]`.
fn name(segments: &[String]) -> String {
    let mut out = String::new();
    for s in segments {
        if s.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{s}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(s);
        }
    }
    out
}

/// Refuses a number outside the `minimum`/`maximum` its schema declares, anywhere in `args`, so
/// a `#[schemars(range(...))]` on an input field is enforced as well as documented.
pub fn check_bounds(args: &Value, schema: &Map<String, Value>) -> Result<(), ToolError> {
    bounds_at(args, &Value::Object(schema.clone()), &mut Vec::new())
}

fn bounds_at(v: &Value, schema: &Value, path: &mut Vec<String>) -> Result<(), ToolError> {
    match v {
        Value::Number(n) => {
            let Some(x) = n.as_f64() else { return Ok(()) };
            let numeric = numeric_schema(schema);
            if let Some(s) = numeric {
                let below = s
                    .get("minimum")
                    .and_then(Value::as_f64)
                    .is_some_and(|m| x < m);
                let above = s
                    .get("maximum")
                    .and_then(Value::as_f64)
                    .is_some_and(|m| x > m);
                if below || above {
                    let full = name(path);
                    return Err(ToolError::field_said(
                        full.clone(),
                        format!("`{full}` must be {} (got {n})", describe_required(s)),
                    ));
                }
            }
            Ok(())
        }
        Value::Object(map) => {
            for (k, val) in map {
                if let Some(sub) = child(schema, k) {
                    path.push(k.clone());
                    bounds_at(val, sub, path)?;
                    path.pop();
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, val) in items.iter().enumerate() {
                if let Some(sub) = child(schema, &i.to_string()) {
                    path.push(i.to_string());
                    bounds_at(val, sub, path)?;
                    path.pop();
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The schema itself or its `anyOf`/`oneOf` alternative that admits numbers.
fn numeric_schema(schema: &Value) -> Option<&Value> {
    let is_num = |s: &Value| match s.get("type") {
        Some(Value::String(t)) => t == "integer" || t == "number",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "integer" || t == "number"),
        _ => false,
    };
    if is_num(schema) {
        return Some(schema);
    }
    ["anyOf", "oneOf"].iter().find_map(|k| {
        schema
            .get(*k)
            .and_then(Value::as_array)
            .and_then(|alts| alts.iter().find(|a| is_num(a)))
    })
}

/// Library messages without Rust type names that still say nothing useful (chrono's and uuid's).
fn is_library_wording(msg: &str) -> bool {
    const PHRASES: &[&str] = &[
        "input is out of range",
        "input is not enough",
        "no possible date",
        "bad or unsupported format",
        "invalid character",
        "invalid group",
        "invalid digit",
        "number too large",
        "number too small",
        "unknown variant",
        "duplicate field",
        "EOF while parsing",
    ];
    PHRASES.iter().any(|p| msg.contains(p))
}

fn starts_with_verb(msg: &str) -> bool {
    ["must ", "may ", "is ", "needs ", "cannot ", "should "]
        .iter()
        .any(|v| msg.starts_with(v))
}

/// The first backticked name in a serde message (`unknown field `foo`, …` → `foo`).
fn backticked(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

fn value_at<'a>(args: &'a Value, segments: &[String]) -> Option<&'a Value> {
    segments.iter().try_fold(args, |v, s| match v {
        Value::Object(m) => m.get(s),
        Value::Array(a) => a.get(s.parse::<usize>().ok()?),
        _ => None,
    })
}

fn show_value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() > 40 => {
            format!("\"{}…\"", s.chars().take(40).collect::<String>())
        }
        Value::String(s) => format!("\"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// The subschema at `segments` (object keys and array indexes) below `schema`, looking through
/// `anyOf`/`oneOf`/`allOf` (nullable and flattened parts).
pub fn subschema<'a>(schema: &'a Value, segments: &[String]) -> Option<&'a Value> {
    let Some((first, rest)) = segments.split_first() else {
        return Some(schema);
    };
    let next = child(schema, first)?;
    subschema(next, rest)
}

fn child<'a>(schema: &'a Value, segment: &str) -> Option<&'a Value> {
    if let Some(p) = schema.get("properties").and_then(|p| p.get(segment)) {
        return Some(p);
    }
    if segment.chars().all(|c| c.is_ascii_digit()) {
        if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
            return Some(items);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(alts)) = schema.get(key) {
            if let Some(found) = alts.iter().find_map(|alt| child(alt, segment)) {
                return Some(found);
            }
        }
    }
    None
}

/// The property names an object schema accepts, in schema order, through unions and `allOf`.
pub fn property_names(schema: &Value) -> Vec<String> {
    let mut names = Vec::new();
    collect_names(schema, &mut names);
    names
}

fn collect_names(schema: &Value, names: &mut Vec<String>) {
    if let Some(Value::Object(props)) = schema.get("properties") {
        for k in props.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(alts)) = schema.get(key) {
            alts.iter().for_each(|a| collect_names(a, names));
        }
    }
}

/// [`describe`] without the trailing ", or null": in an error about a value that was sent, null
/// (the same as leaving an optional field out) is not the fix.
fn describe_required(schema: &Value) -> String {
    let words = describe(schema);
    words
        .strip_suffix(", or null")
        .map(str::to_string)
        .unwrap_or(words)
}

/// What a value of `schema` is, in words: "a whole number from 1 to 100", "a date like
/// 2027-03-10", "one of: pending, confirmed", "a list of ids", "a string or null".
pub fn describe(schema: &Value) -> String {
    if let Some(values) = choice_values(schema) {
        return values;
    }
    let mut alts: Vec<String> = Vec::new();
    let mut nullable = false;
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(list)) = schema.get(key) {
            for alt in list {
                if alt.get("type").and_then(Value::as_str) == Some("null") {
                    nullable = true;
                } else {
                    let words = describe(alt);
                    if !alts.contains(&words) {
                        alts.push(words);
                    }
                }
            }
        }
    }
    if alts.is_empty() {
        let (words, null) = describe_one(schema);
        nullable |= null;
        alts.push(words);
    }
    let mut text = alts.join(", or ");
    if nullable {
        text.push_str(", or null");
    }
    text
}

/// "one of: a, b, c" for a `oneOf`/`anyOf` whose alternatives are all constants or enums (how
/// schemars renders a documented Rust enum), with ", or null" when one alternative is null.
fn choice_values(schema: &Value) -> Option<String> {
    let alts = ["oneOf", "anyOf"]
        .iter()
        .find_map(|k| schema.get(*k).and_then(Value::as_array))?;
    let mut values = Vec::new();
    let mut nullable = false;
    for alt in alts {
        if alt.get("type").and_then(Value::as_str) == Some("null") {
            nullable = true;
        } else if let Some(c) = alt.get("const").and_then(Value::as_str) {
            values.push(c.to_string());
        } else if let Some(Value::Array(vs)) = alt.get("enum") {
            values.extend(vs.iter().filter_map(Value::as_str).map(str::to_string));
        } else if alt.get("oneOf").is_some() || alt.get("anyOf").is_some() {
            let inner = choice_values(alt)?;
            nullable |= inner.ends_with(", or null");
            values.push(
                inner
                    .trim_start_matches("one of: ")
                    .trim_end_matches(", or null")
                    .to_string(),
            );
        } else {
            return None;
        }
    }
    if values.is_empty() {
        return None;
    }
    let mut text = format!("one of: {}", values.join(", "));
    if nullable {
        text.push_str(", or null");
    }
    Some(text)
}

fn describe_one(schema: &Value) -> (String, bool) {
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let nullable = types.contains(&"null");
    if let Some(Value::Array(values)) = schema.get("enum") {
        let shown: Vec<String> = values
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        let null = nullable || values.iter().any(Value::is_null);
        return (format!("one of: {}", shown.join(", ")), null);
    }
    if let Some(c) = schema.get("const") {
        return (format!("exactly {c}"), nullable);
    }
    let main = types.iter().copied().find(|t| *t != "null");
    let words = match main {
        Some("integer") => format!("a whole number{}", range(schema, "minimum", "maximum")),
        Some("number") => format!("a number{}", range(schema, "minimum", "maximum")),
        Some("boolean") => "true or false".to_string(),
        Some("string") => describe_string(schema),
        Some("array") => {
            let items = schema
                .get("items")
                .map(describe)
                .unwrap_or_else(|| "any value".into());
            let count = bounds(schema, "minItems", "maxItems")
                .map(|b| format!(" with {b} items"))
                .unwrap_or_default();
            format!("a list{count}, each {items}")
        }
        Some("object") => {
            let names = property_names(schema);
            if names.is_empty() {
                "a JSON object".to_string()
            } else {
                format!("an object with the fields {}", names.join(", "))
            }
        }
        _ => "a value".to_string(),
    };
    (words, nullable)
}

fn describe_string(schema: &Value) -> String {
    match schema.get("format").and_then(Value::as_str) {
        Some("date") => return "a date like 2027-03-10".into(),
        Some("date-time") => return "a date and time like 2027-03-10T14:00:00Z".into(),
        Some("uuid") => {
            return "an id (a UUID such as 3f2b8c4e-9d1a-4c55-8e0f-2a6b7c8d9e01)".into()
        }
        Some("email") => return "an email address such as ada@example.com".into(),
        Some("uri") => return "a URL such as https://example.com/photo.jpg".into(),
        _ => {}
    }
    if schema.get("pattern").is_some() {
        if let Some(d) = schema.get("description").and_then(Value::as_str) {
            return format!("a text ({})", d.trim_end_matches('.'));
        }
    }
    match bounds(schema, "minLength", "maxLength") {
        Some(b) => format!("a text of {b} characters"),
        None => "a text".into(),
    }
}

/// " from 1 to 100", " of at least 0", " of at most 5", or "" from two bound keywords.
fn range(schema: &Value, min_key: &str, max_key: &str) -> String {
    match bounds(schema, min_key, max_key) {
        Some(b) if b.starts_with("at ") => format!(" of {b}"),
        Some(b) => format!(" from {b}"),
        None => String::new(),
    }
}

/// "1 to 100", "at least 0", "at most 5", or none, from two bound keywords.
fn bounds(schema: &Value, min_key: &str, max_key: &str) -> Option<String> {
    let show = |v: &Value| match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => f.to_string(),
        None => v.to_string(),
    };
    match (schema.get(min_key), schema.get(max_key)) {
        (Some(min), Some(max)) => Some(format!("{} to {}", show(min), show(max))),
        (Some(min), None) => Some(format!("at least {}", show(min))),
        (None, Some(max)) => Some(format!("at most {}", show(max))),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schemas_are_described_in_words() {
        let cases = [
            (
                json!({"type": "integer", "minimum": 1, "maximum": 100}),
                "a whole number from 1 to 100",
            ),
            (
                json!({"type": ["integer", "null"], "minimum": 0}),
                "a whole number of at least 0, or null",
            ),
            (
                json!({"type": "string", "format": "date"}),
                "a date like 2027-03-10",
            ),
            (
                json!({"type": "string", "enum": ["a", "b"]}),
                "one of: a, b",
            ),
            (
                json!({"type": "string", "minLength": 1, "maxLength": 200}),
                "a text of 1 to 200 characters",
            ),
            (
                json!({"type": "string", "maxLength": 200}),
                "a text of at most 200 characters",
            ),
            (json!({"type": "boolean"}), "true or false"),
            (
                json!({"anyOf": [{"type": "string", "enum": ["x"]}, {"type": "array", "items": {"type": "string", "enum": ["x"]}}]}),
                "one of: x, or a list, each one of: x",
            ),
            (
                json!({"type": "array", "items": {"type": "string", "format": "uuid"}, "maxItems": 5}),
                "a list with at most 5 items, each an id",
            ),
        ];
        for (schema, words) in cases {
            let got = describe(&schema);
            assert!(got.starts_with(words), "{schema}: {got}");
            assert!(!has_jargon(&got), "{got}");
        }
    }

    crate::choices!(
        /// Test statuses.
        Colours = ["red", "green"]
    );

    #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Probe {
        #[schemars(range(min = 1, max = 100))]
        guest_count: Option<i32>,
        page_row_count: Option<u32>,
        check_in: Option<chrono::NaiveDate>,
        listing_id: Option<uuid::Uuid>,
        colour: Option<crate::types::EnumFilter<Colours>>,
        email: Option<crate::types::Email>,
        name: Option<crate::types::Name>,
        inner: Option<Inner>,
        ids: Option<Vec<uuid::Uuid>>,
        flag: Option<bool>,
        price: Option<crate::money::Money>,
        at: Option<chrono::DateTime<chrono::Utc>>,
    }

    #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        max_tool_calls: u32,
    }

    fn refuse(args: Value) -> ToolError {
        let schema = crate::registry::schema_for::<Probe>();
        crate::registry::parse_with_schema::<Probe>(args, &schema).unwrap_err()
    }

    #[test]
    fn parse_failures_name_the_field_in_words() {
        let cases = [
            (
                json!({"guestCount": "two"}),
                "guestCount",
                "`guestCount` must be a whole number from 1 to 100",
            ),
            (
                json!({"guestCount": 0}),
                "guestCount",
                "`guestCount` must be a whole number from 1 to 100 (got 0)",
            ),
            (
                json!({"guestCount": 1.5}),
                "guestCount",
                "`guestCount` must be a whole number",
            ),
            (
                json!({"pageRowCount": -1}),
                "pageRowCount",
                "`pageRowCount` must be a whole number",
            ),
            (
                json!({"checkIn": "2027-13-01"}),
                "checkIn",
                "`checkIn` must be a date like 2027-03-10",
            ),
            (
                json!({"checkIn": "10/03/2027"}),
                "checkIn",
                "`checkIn` must be a date like 2027-03-10",
            ),
            (
                json!({"checkIn": "2027-03-10T00:00:00Z"}),
                "checkIn",
                "a date like 2027-03-10",
            ),
            (
                json!({"at": "tomorrow"}),
                "at",
                "`at` must be a date and time like",
            ),
            (
                json!({"listingId": "abc"}),
                "listingId",
                "`listingId` must be an id",
            ),
            (
                json!({"colour": "blue"}),
                "colour",
                "`colour` must be one of: red, green (got \"blue\")",
            ),
            (
                json!({"colour": ["red", "blue"]}),
                "colour",
                "one of: red, green",
            ),
            (
                json!({"colour": 3}),
                "colour",
                "`colour` must be one of: red, green",
            ),
            (
                json!({"email": 42}),
                "email",
                "`email` must be an email address",
            ),
            (
                json!({"email": "nope"}),
                "email",
                "`email` must be an email address such as ada@example.com (got \"nope\")",
            ),
            (json!({"name": ""}), "name", "`name` must not be empty"),
            (
                json!({"name": 7}),
                "name",
                "`name` must be a text of 1 to 200 characters",
            ),
            (
                json!({"foo": 1}),
                "foo",
                "unknown field `foo`; this operation accepts: at, checkIn, colour",
            ),
            (
                json!({"inner": {}}),
                "inner.maxToolCalls",
                "`inner.maxToolCalls` is required: send a whole number",
            ),
            (
                json!({"inner": {"maxToolCalls": 1, "x": 2}}),
                "inner.x",
                "unknown field `inner.x`; `inner` accepts: maxToolCalls",
            ),
            (json!({"ids": ["a"]}), "ids[0]", "`ids[0]` must be an id"),
            (
                json!({"flag": "yes"}),
                "flag",
                "`flag` must be true or false",
            ),
            (
                json!({"price": "cheap"}),
                "price",
                "`price` must be a number from 0 to",
            ),
            (
                json!({"price": -5}),
                "price",
                "`price` must be a number from 0 to 1000000000 (got -5)",
            ),
        ];
        for (args, field, words) in cases {
            let err = refuse(args.clone());
            assert_eq!(err.kind, crate::error::ErrorKind::BadInput, "{args}");
            assert_eq!(err.field.as_deref(), Some(field), "{args}: {}", err.message);
            assert!(err.message.contains(words), "{args}: {}", err.message);
            assert!(!has_jargon(&err.message), "{args}: {}", err.message);
        }
    }

    #[test]
    fn jargon_is_caught_as_words_only() {
        assert!(has_jargon("invalid type: string \"x\", expected u32"));
        assert!(has_jargon("a u32"));
        assert!(has_jargon("trailing input"));
        assert!(!has_jargon("menu32 of a listing"));
        assert!(!has_jargon(
            "`guestCount` must be a whole number from 1 to 100"
        ));
    }
}
