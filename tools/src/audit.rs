//! The audit trail: every successful mutating operation writes one audit-log row and one domain
//! event inside the operation's own transaction, so history and change commit or vanish together.

use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::context::Ctx;
use crate::error::ToolError;
use crate::registry::Operation;

/// Writes the audit row and the domain event for `op`'s successful `output`.
pub async fn record(
    db: &mut PgConnection,
    ctx: &Ctx,
    op: &Operation,
    output: &Value,
) -> Result<(), ToolError> {
    let object_id = ["id", "userId"]
        .iter()
        .find_map(|k| output.get(*k).and_then(Value::as_str))
        .and_then(|s| Uuid::parse_str(s).ok());
    // An anonymous call (sign-up, login) is attributed to the user it concerns.
    let subject = output
        .get("userId")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok());
    let actor = ctx.user_id().or(subject).or(if op.data_name == "user" {
        object_id
    } else {
        None
    });
    let details = json!({ "operation": op.name, "requestId": ctx.request_id });
    sqlx::query(
        "INSERT INTO platformadmin.audit_logs (performed_by, object_id, details, ip_address, action_object, action_type)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(actor)
    .bind(object_id)
    .bind(&details)
    .bind(ctx.ip.as_deref())
    .bind(op.data_name)
    .bind(op.name)
    .execute(&mut *db)
    .await?;
    let event_id: i64 = sqlx::query_scalar(
        "INSERT INTO events.domain_events (kind, object_id, actor_id, payload) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(op.name)
    .bind(object_id)
    .bind(actor)
    .bind(json!({ "dataName": op.data_name, "action": op.action.as_str() }))
    .fetch_one(&mut *db)
    .await?;
    sqlx::query("SELECT pg_notify('haven_events', $1)")
        .bind(event_id.to_string())
        .execute(&mut *db)
        .await?;
    Ok(())
}
