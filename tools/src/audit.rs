//! The audit trail: every successful mutating operation writes one audit-log row and one domain
//! event inside the operation's own transaction, so history and change commit or vanish together.
//! The event is announced to live viewers after the commit ([`crate::announce`]).

use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::context::Ctx;
use crate::error::ToolError;
use crate::principal::Credential;
use crate::registry::Operation;

/// The domain-event kinds that are not operation names: a notification for its recipient, and the
/// changes the system makes by itself ([`record_system`]). `/events?kinds=` accepts them too.
pub const SYSTEM_KINDS: &[&str] = &["notification", "expireReservation", "paymentWebhook"];

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
    // createAuditLog writes its own row: the event is the row.
    let audited = (op.data_name != "auditLog").then_some((ctx, op));
    let audience = audience(actor, output);
    let payload = event_payload(op.data_name, op.action.as_str(), output);
    let (changed, event) =
        write_event(db, op.name, object_id, actor, payload, &audience, audited).await?;
    ctx.announce_event(event);
    // The users whose principals the call changed (noted by the triggers of migration 0016 in
    // the transaction-local `haven.principals_changed`): the dispatcher's principal cache forgets
    // them after the commit, before the answer.
    *ctx.principals_changed
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = changed
        .unwrap_or_default()
        .split(',')
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect();
    // Automatic notifications for the people the change concerns, in the same transaction.
    crate::notification::automatic::on_event(db, ctx, op.name, actor, &audience, output).await
}

/// Records a change the system made by itself, outside any operation (an unpaid hold expiring, a
/// payment provider's webhook): the domain event (`kind`, e.g. `expireReservation`, with the
/// audience the object names) and its automatic notifications, on the change's own connection.
pub async fn record_system(
    db: &mut PgConnection,
    ctx: &Ctx,
    kind: &str,
    data_name: &str,
    output: &Value,
) -> Result<(), ToolError> {
    let object_id = output
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok());
    let audience = audience(None, output);
    let payload = event_payload(data_name, "update", output);
    let (_, event) = write_event(db, kind, object_id, None, payload, &audience, None).await?;
    ctx.announce_event(event);
    crate::notification::automatic::on_event(db, ctx, kind, None, &audience, output).await
}

/// The statement's domain event (`$1` kind, `$2` object, `$3` actor, `$4` payload, `$5`
/// audience).
const EVENT_CTE: &str = "event AS (
            INSERT INTO events.domain_events (kind, object_id, actor_id, payload, audience)
            VALUES ($1, $2, $3, $4, $5) RETURNING id)";

/// The audit row of one call, beside its event (`$1` the operation, `$2` the object, `$3` the
/// actor as in [`EVENT_CTE`]; `$6` details, `$7` IP, `$8` data name, `$9` face, `$10` request,
/// `$11` session, `$12` API key, `$13` agent run): who (user, credential, OAuth client, agent
/// run), through which face and request, what operation on which object, and the before/after
/// summary of the rows it changed (captured by the `platformadmin.capture_change` trigger in the
/// same transaction).
const AUDIT_CTE: &str = "grant_of AS (SELECT client_id FROM oauth.grants WHERE session_id = $11),
         audit AS (
            INSERT INTO platformadmin.audit_logs (performed_by, object_id, details, ip_address,
                action_object, action_type, operation, face, request_id, credential_kind, session_id,
                api_key_id, oauth_client_id, agent_execution_id, changes)
            VALUES ($3, $2, $6, $7, $8, $1, $1, $9, $10,
                CASE WHEN $12::uuid IS NOT NULL THEN 'apiKey'
                     WHEN EXISTS (SELECT 1 FROM grant_of) THEN 'oauth'
                     WHEN $11::uuid IS NOT NULL THEN 'session' END,
                $11, $12, (SELECT client_id FROM grant_of), $13, platformadmin.change_summary($2)))";

/// Inserts one domain event and, for a call (`audited`), writes the call's audit row; one round
/// trip, which answers the principals the transaction changed and the event's id (for the
/// caller to announce after the commit).
async fn write_event(
    db: &mut PgConnection,
    kind: &str,
    object_id: Option<Uuid>,
    actor: Option<Uuid>,
    payload: Value,
    audience: &[Uuid],
    audited: Option<(&Ctx, &Operation)>,
) -> Result<(Option<String>, i64), ToolError> {
    let ctes = match audited {
        Some(_) => format!("{AUDIT_CTE}, {EVENT_CTE}"),
        None => EVENT_CTE.to_string(),
    };
    let sql = format!(
        "WITH {ctes}
         SELECT current_setting('haven.principals_changed', true), event.id FROM event"
    );
    let mut query = sqlx::query_as(&sql)
        .bind(kind)
        .bind(object_id)
        .bind(actor)
        .bind(payload)
        .bind(audience);
    if let Some((ctx, op)) = audited {
        let details = json!({ "operation": op.name, "requestId": ctx.request_id });
        let (session, api_key) = match ctx.principal.as_ref().map(|p| &p.credential) {
            Some(Credential::Session(id) | Credential::SecondFactorPending(id)) => {
                (Some(*id), None)
            }
            Some(Credential::ApiKey(id)) => (None, Some(*id)),
            None => (None, None),
        };
        query = query
            .bind(details)
            .bind(ctx.ip.clone())
            .bind(op.data_name)
            .bind(ctx.transport.as_str())
            .bind(ctx.request_id.clone())
            .bind(session)
            .bind(api_key)
            .bind(ctx.agent_execution);
    }
    let written: (Option<String>, i64) = query.fetch_one(&mut *db).await?;
    Ok(written)
}

/// The fields of an operation's output that name a party of the object (who watches its events).
const PARTY_FIELDS: &[&str] = &[
    "userId",
    "ownerId",
    "_owner",
    "guestId",
    "hostId",
    "reviewerId",
    "revieweeId",
    "raisedBy",
    "createdBy",
    "senderId",
    "recipientId",
    "reportedBy",
];

/// The users who may watch the event: the actor and every party the output names.
pub fn audience(actor: Option<Uuid>, output: &Value) -> Vec<Uuid> {
    let mut who: Vec<Uuid> = actor.into_iter().collect();
    for field in PARTY_FIELDS {
        if let Some(id) = output
            .get(*field)
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
        {
            who.push(id);
        }
    }
    who.sort();
    who.dedup();
    who
}

/// What a live viewer reads of an event: the object's kind and the action, plus the state fields
/// people follow (a reservation's status and payment, a review's publication, a dispute's status,
/// a message's thread). Never free text such as a message's content: an event outlives a later
/// moderation or deletion, and replays must not show what the object no longer shows.
fn event_payload(data_name: &str, action: &str, output: &Value) -> Value {
    let mut payload = json!({ "dataName": data_name, "action": action });
    for field in [
        "bookingStatus",
        "paymentConfirmation",
        "isPublished",
        "moderationStatus",
        "disputeStatus",
        "resolutionStatus",
        "listingId",
        "reservationId",
        "threadId",
        "messageId",
        "isOpen",
        "title",
    ] {
        if let Some(v) = output.get(field).filter(|v| !v.is_null()) {
            payload[field] = v.clone();
        }
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audience_is_the_actor_and_the_named_parties() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let output = json!({ "guestId": b, "hostId": c, "ownerId": c, "id": Uuid::new_v4() });
        let mut expected = vec![a, b, c];
        expected.sort();
        assert_eq!(audience(Some(a), &output), expected);
        assert_eq!(audience(None, &json!({ "title": "x" })), Vec::<Uuid>::new());
    }
}
