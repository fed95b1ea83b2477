//! MCP resource templates for the objects a person attaches as context — a listing, a reservation
//! with its timeline — read through the operations that own them (`getListing`,
//! `getReservation` + `listReservationActivities`), so exactly the same access rule applies: what
//! the caller may not read is "not found", as over REST.

use haven_tools::{Ctx, ErrorKind, Registry, ToolError};
use rmcp::model::{ResourceContents, ResourceTemplate};
use rmcp::ErrorData as McpError;
use serde_json::{json, Value};

/// One template: its URI prefix, the argument its variable fills, and what it reads.
struct Template {
    prefix: &'static str,
    variable: &'static str,
    name: &'static str,
    title: &'static str,
    description: &'static str,
}

const TEMPLATES: &[Template] = &[
    Template {
        prefix: "haven://listings/",
        variable: "listingId",
        name: "listing",
        title: "A listing",
        description: "A listing with its amenities, translations, rating and latest reviews (as getListing returns it).",
    },
    Template {
        prefix: "haven://reservations/",
        variable: "reservationId",
        name: "reservation",
        title: "A reservation with its timeline",
        description: "A reservation with its listing, parties and payments (getReservation) and its activity \
                      timeline (listReservationActivities, oldest first). Only its guest, its host and admins.",
    },
];

/// `resources/templates/list`.
pub fn templates() -> Vec<ResourceTemplate> {
    TEMPLATES
        .iter()
        .map(|t| {
            ResourceTemplate::new(format!("{}{{{}}}", t.prefix, t.variable), t.name)
                .with_title(t.title)
                .with_description(t.description)
                .with_mime_type("application/json")
        })
        .collect()
}

/// Runs operation `name` with `args` in a fresh context from `ctx`, mapping refusals to the
/// resource errors (anything the caller may not read is not found).
async fn read_op(
    registry: &Registry,
    ctx: &(dyn Fn() -> Ctx + Sync),
    uri: &str,
    name: &str,
    args: Value,
) -> Result<Value, McpError> {
    let op = registry
        .get(name)
        .ok_or_else(|| McpError::internal_error(format!("{name} is not installed"), None))?;
    op.invoke(ctx(), args).await.map_err(|e| refusal(uri, e))
}

fn refusal(uri: &str, err: ToolError) -> McpError {
    match err.kind {
        ErrorKind::NotFound | ErrorKind::Forbidden | ErrorKind::Unauthenticated => {
            McpError::resource_not_found(
                format!("resource not found: {uri}"),
                Some(json!({ "uri": uri })),
            )
        }
        ErrorKind::BadInput => McpError::invalid_params(format!("{uri}: {}", err.message), None),
        _ => McpError::internal_error(err.message, None),
    }
}

/// `resources/read` of `uri`.
pub async fn read(
    registry: &Registry,
    ctx: &(dyn Fn() -> Ctx + Sync),
    uri: &str,
) -> Result<Vec<ResourceContents>, McpError> {
    let (template, id) = TEMPLATES
        .iter()
        .find_map(|t| uri.strip_prefix(t.prefix).map(|id| (t, id)))
        .filter(|(_, id)| !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| {
            McpError::resource_not_found(
                format!(
                    "resource not found: {uri}; Haven serves {}",
                    TEMPLATES
                        .iter()
                        .map(|t| format!("{}{{{}}}", t.prefix, t.variable))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
                Some(json!({ "uri": uri })),
            )
        })?;
    let args = json!({ template.variable: id });
    let body = match template.name {
        "listing" => read_op(registry, ctx, uri, "getListing", args).await?,
        _ => {
            let reservation = read_op(registry, ctx, uri, "getReservation", args).await?;
            let timeline = read_op(
                registry,
                ctx,
                uri,
                "listReservationActivities",
                json!({ "reservationId": id, "pageRowCount": 100 }),
            )
            .await?;
            let mut view = reservation;
            if let Value::Object(map) = &mut view {
                map.insert(
                    "timeline".into(),
                    timeline
                        .get("reservationActivities")
                        .cloned()
                        .unwrap_or(timeline),
                );
            }
            view
        }
    };
    let text = serde_json::to_string_pretty(&body).unwrap_or_default();
    Ok(vec![
        ResourceContents::text(text, uri).with_mime_type("application/json")
    ])
}
