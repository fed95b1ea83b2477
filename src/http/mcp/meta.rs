//! The discovery meta-tools that make the whole registry reachable from a short default list,
//! for clients that forward only the first few dozen tools and ignore `list_changed`:
//! `search_tools` (ranked free-text search over the tools the caller may call on this
//! connection), `describe_tool` (one tool's full definition, output schema included) and
//! `call_tool` (calls any of them by name through the same path as `tools/call`).

use std::sync::Arc;

use haven_tools::registry::{schema_for, Operation, Service};
use haven_tools::{Principal, Registry};
use rmcp::model::{Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::selection::{toolset_names, Selection};
use super::tool_of;

/// `search_tools`.
pub const SEARCH: &str = "search_tools";
/// `describe_tool`.
pub const DESCRIBE: &str = "describe_tool";
/// `call_tool`.
pub const CALL: &str = "call_tool";

/// Whether `name` is one of the meta-tools.
pub fn is_meta(name: &str) -> bool {
    [SEARCH, DESCRIBE, CALL].contains(&name)
}

/// The input of `search_tools`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchInput {
    /// What you want to do, in a few words (e.g. "block nights on my calendar", "refund").
    #[schemars(length(min = 1, max = 200))]
    pub query: String,
    /// Only tools of this toolset.
    #[schemars(schema_with = "toolset_schema")]
    pub toolset: Option<String>,
    /// Most tools to return, 1 to 20 (default 8).
    #[schemars(range(min = 1, max = 20))]
    pub limit: Option<u32>,
}

fn toolset_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": ["string", "null"],
        "enum": toolset_names().into_iter().map(Value::from).chain([Value::Null]).collect::<Vec<_>>(),
        "description": "Only tools of this toolset."
    })
}

/// One match of `search_tools`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Found {
    /// The tool's name: call it directly or through call_tool.
    pub name: String,
    /// Its display name.
    pub title: String,
    /// What it does and who may call it.
    pub description: String,
    /// Its toolset.
    pub toolset: String,
    /// Whether it only reads.
    pub read_only: bool,
    /// Whether it may overwrite, charge, refund or remove.
    pub destructive: bool,
    /// The JSON Schema of its arguments.
    pub input_schema: Map<String, Value>,
}

/// The answer of `search_tools`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchOutput {
    /// The best matches first.
    pub tools: Vec<Found>,
    /// How many tools matched in all (more than returned when over the limit).
    pub matched: usize,
}

/// The input of `describe_tool`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DescribeInput {
    /// The tool's name (from search_tools).
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
}

/// The input of `call_tool`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallInput {
    /// The tool to call (from search_tools).
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
    /// Its arguments, as its inputSchema describes them.
    pub arguments: Option<Map<String, Value>>,
}

/// The meta-tools as this connection shows them. On a read-only connection `call_tool` can call
/// only read-only tools, so it is annotated read-only there.
pub fn tools(selection: &Selection) -> Vec<Tool> {
    let toolsets = match &selection.toolsets {
        None => toolset_names().join(", "),
        Some(sets) => sets
            .iter()
            .map(|s| s.segment())
            .collect::<Vec<_>>()
            .join(", "),
    };
    let read = |title: &str| {
        ToolAnnotations::with_title(title)
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false)
    };
    let call = if selection.read_only {
        read("Call a tool (read-only connection)")
    } else {
        ToolAnnotations::with_title("Call a tool")
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(true)
    };
    vec![
        Tool::new(
            SEARCH,
            format!(
                "Finds Haven tools for a task when the tool you need is not in your list: give a few words \
                 (\"block nights\", \"refund a payment\", \"api key\") and optionally a toolset ({toolsets}). \
                 Returns the best-matching tools you may call on this connection, with their input schemas; \
                 then call one by name, directly or through call_tool."
            ),
            Arc::new(schema_for::<SearchInput>()),
        )
        .with_title("Search tools")
        .with_raw_output_schema(Arc::new(schema_for::<SearchOutput>()))
        .with_annotations(read("Search tools")),
        Tool::new(
            DESCRIBE,
            "Returns one tool's full definition (description, input schema, output schema, annotations, \
             toolset and REST route) by name, for a tool found with search_tools.",
            Arc::new(schema_for::<DescribeInput>()),
        )
        .with_title("Describe a tool")
        .with_annotations(read("Describe a tool")),
        Tool::new(
            CALL,
            "Calls any tool you may use on this connection by name with its arguments — use it for tools found \
             with search_tools that are not in your list. Same rules, same answers and same errors as calling \
             the tool directly.",
            Arc::new(schema_for::<CallInput>()),
        )
        .with_title("Call a tool")
        .with_annotations(call),
    ]
}

/// Splits a camelCase or snake_case name, or a sentence, into lower-case words.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase() && prev_lower && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
            cur.extend(c.to_lowercase());
        } else {
            prev_lower = false;
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out.into_iter().map(|w| stem(&w)).collect()
}

/// A crude stem so that "reservations", "reservation" and "reserve" meet.
fn stem(word: &str) -> String {
    let w = word.trim_end_matches('s');
    let w = w
        .strip_suffix("ation")
        .or_else(|| w.strip_suffix("ing"))
        .unwrap_or(w);
    let w = w.strip_suffix('e').unwrap_or(w);
    if w.len() < 3 {
        word.to_string()
    } else {
        w.to_string()
    }
}

const STOP: &[&str] = &[
    "a", "an", "the", "to", "of", "for", "my", "me", "i", "on", "in", "and", "or", "with", "how",
    "do", "can", "want", "is", "it", "by", "from", "thi", "that", "all",
];

/// Some words people use for what the registry calls otherwise.
const SYNONYMS: &[(&str, &str)] = &[
    ("book", "reservation"),
    ("booking", "reservation"),
    ("stay", "reservation"),
    ("trip", "reservation"),
    ("home", "listing"),
    ("property", "listing"),
    ("apartment", "listing"),
    ("house", "listing"),
    ("block", "calendar"),
    ("night", "calendar"),
    ("price", "quote"),
    ("cost", "quote"),
    ("pay", "payment"),
    ("charge", "payment"),
    ("refund", "cancel"),
    ("key", "apikey"),
    ("token", "apikey"),
    ("account", "user"),
    ("profile", "user"),
    ("translation", "locale"),
    ("language", "locale"),
    ("complaint", "dispute"),
    ("rating", "review"),
    ("agent", "agent"),
];

fn query_terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for w in words(query) {
        if STOP.contains(&w.as_str()) {
            continue;
        }
        for (from, to) in SYNONYMS {
            if stem(from) == w {
                terms.push(stem(to));
            }
        }
        terms.push(w);
    }
    terms.sort();
    terms.dedup();
    terms
}

/// How well `op` matches `terms`: name words weigh most, then the title, then the description.
fn score(op: &Operation, terms: &[String]) -> u32 {
    let name = words(op.name);
    let title = words(op.title);
    let description = words(&op.description);
    let service = words(op.service.segment());
    let mut score = 0;
    for t in terms {
        if name.iter().any(|w| w == t) {
            score += 6;
        } else if name
            .iter()
            .any(|w| w.starts_with(t.as_str()) || t.starts_with(w.as_str()))
        {
            score += 3;
        }
        if title.iter().any(|w| w == t) {
            score += 3;
        }
        if service.iter().any(|w| w == t) {
            score += 1;
        }
        score += description.iter().filter(|w| *w == t).count().min(3) as u32;
    }
    score
}

/// Runs `search_tools` over what `principal` may call through `selection`.
pub fn search(
    registry: &Registry,
    selection: &Selection,
    principal: Option<&Principal>,
    input: SearchInput,
) -> Result<SearchOutput, String> {
    let toolset = match input.toolset.as_deref() {
        None => None,
        Some(name) => Some(Service::from_segment(name).ok_or_else(|| {
            format!(
                "`toolset`: unknown toolset `{name}`; the toolsets are: {}",
                toolset_names().join(", ")
            )
        })?),
    };
    let terms = query_terms(&input.query);
    let exact = input.query.trim();
    let mut hits: Vec<(u32, bool, &Arc<Operation>)> = selection
        .callable(registry, principal)
        .filter(|op| toolset.is_none_or(|s| op.service == s))
        .filter_map(|op| {
            let s = if op.name.eq_ignore_ascii_case(exact) {
                1000
            } else {
                score(op, &terms)
            };
            (s > 0).then_some((s, op.core.is_some(), op))
        })
        .collect();
    hits.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(b.1.cmp(&a.1))
            .then(a.2.name.cmp(b.2.name))
    });
    let matched = hits.len();
    let limit = input.limit.unwrap_or(8).clamp(1, 20) as usize;
    let tools = hits
        .into_iter()
        .take(limit)
        .map(|(_, _, op)| Found {
            name: op.name.to_string(),
            title: op.title.to_string(),
            description: op.description.clone(),
            toolset: op.service.segment().to_string(),
            read_only: op.annotations.read_only,
            destructive: op.annotations.destructive,
            input_schema: (*op.input_schema).clone(),
        })
        .collect();
    Ok(SearchOutput { tools, matched })
}

/// `describe_tool`'s answer for `op`: the full tool definition plus where it lives.
pub fn describe(op: &Operation) -> Value {
    let mut tool = serde_json::to_value(tool_of(op)).unwrap_or_default();
    if let Value::Object(map) = &mut tool {
        map.insert("toolset".into(), op.service.segment().into());
        map.insert("access".into(), op.access.as_str().into());
        map.insert(
            "rest".into(),
            format!("{} {}", op.method.as_str(), op.path).into(),
        );
    }
    tool
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(query: &str) -> Vec<String> {
        let registry = Registry::haven();
        let principal = Principal {
            user_id: uuid::Uuid::nil(),
            role: haven_tools::Role::User,
            email: "guest@example.com".into(),
            fullname: "Guest".into(),
            credential: haven_tools::principal::Credential::ApiKey(uuid::Uuid::nil()),
        };
        search(
            &registry,
            &Selection::default(),
            Some(&principal),
            SearchInput {
                query: query.into(),
                toolset: None,
                limit: Some(5),
            },
        )
        .unwrap()
        .tools
        .into_iter()
        .map(|t| t.name)
        .collect()
    }

    #[test]
    fn words_split_names_and_sentences() {
        assert_eq!(
            words("createListingCalendar"),
            vec!["creat", "list", "calendar"]
        );
        assert_eq!(words("Block nights!"), vec!["block", "night"]);
    }

    #[test]
    fn search_ranks_the_obvious_tool_first() {
        assert_eq!(names("quoteReservation")[0], "quoteReservation");
        assert!(names("block nights on my calendar")[..3]
            .contains(&"createListingCalendar".to_string()));
        assert!(names("api key").contains(&"createApiKey".to_string()));
        assert!(names("cancel my booking").contains(&"cancelReservation".to_string()));
    }
}
