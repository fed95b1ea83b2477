//! Automatic notifications: what a change means for the people involved. [`crate::audit::record`]
//! calls [`on_event`] for every mutating operation (and for the system's own changes: expired
//! holds, payment webhooks) inside the change's transaction, keyed by the operation's name and
//! reading the objects it names, so a notification is written if and only if its cause commits.
//!
//! | event (operation)                                  | who is told |
//! |----------------------------------------------------|-------------|
//! | `createReservation`                                | host: bookingRequested |
//! | `approveReservation` / `declineReservation`        | guest |
//! | `cancelReservation`                                | the other party (both when an admin cancels); guest: paymentRefunded when money went back |
//! | `expireReservation` (system)                       | guest and host: bookingExpired |
//! | payment operations, `paymentWebhook` (system)      | guest and host: bookingPaid once paid; guest: paymentFailed on a decline, paymentRefunded |
//! | `createMessage`                                    | the thread's other participant(s): newMessage |
//! | `createReview` / `updateReview` (published)        | each published review's reviewee (a listing's host) |
//! | `createDispute`                                    | the reservation's other party: disputeOpened |
//! | `updateDispute` (resolved / rejected)              | guest and host: disputeResolved |
//!
//! Keys (`dedupe_key`) make each notification happen once however often its cause is replayed
//! (a refresh after a webhook, a retried call).

use serde_json::{json, Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use super::enqueue::{notify, Draft};
use crate::context::Ctx;
use crate::error::ToolError;

/// A reservation and the names its texts use.
#[derive(Debug, sqlx::FromRow)]
struct StayContext {
    id: Uuid,
    listing_id: Uuid,
    guest_id: Uuid,
    host_id: Uuid,
    listing: String,
    check_in: chrono::NaiveDate,
    check_out: chrono::NaiveDate,
    guest_name: String,
    host_name: String,
    currency: String,
}

impl StayContext {
    /// The texts' parameters, `other` being the party who is not `recipient`.
    fn params(&self, recipient: Uuid) -> Map<String, Value> {
        let other = if recipient == self.host_id {
            &self.guest_name
        } else {
            &self.host_name
        };
        let mut m = Map::new();
        m.insert("listing".into(), json!(self.listing));
        m.insert("checkIn".into(), json!(self.check_in.to_string()));
        m.insert("checkOut".into(), json!(self.check_out.to_string()));
        m.insert("other".into(), json!(other));
        m.insert("currency".into(), json!(self.currency));
        m
    }

    fn data(&self) -> Value {
        json!({ "reservationId": self.id, "listingId": self.listing_id })
    }

    /// A draft of `event` to `recipient` about this stay, once per `key`.
    fn draft(&self, recipient: Uuid, event: &'static str, key: String) -> Draft {
        let mut d = Draft::new(recipient, event);
        d.params = self.params(recipient);
        d.data = self.data();
        d.dedupe_key = Some(key);
        d
    }
}

async fn stay(db: &mut PgConnection, reservation: Uuid) -> Result<Option<StayContext>, ToolError> {
    Ok(sqlx::query_as(
        "SELECT r.id, r.listing_id, r.guest_id, r.host_id, l.title AS listing, r.check_in, r.check_out,
                g.fullname AS guest_name, h.fullname AS host_name, r.currency
           FROM booking.reservations r
           JOIN catalog.listings l ON l.id = r.listing_id
           JOIN auth.users g ON g.id = r.guest_id
           JOIN auth.users h ON h.id = r.host_id
          WHERE r.id = $1",
    )
    .bind(reservation)
    .fetch_optional(&mut *db)
    .await?)
}

fn uuid_at(v: &Value, path: &[&str]) -> Option<Uuid> {
    let mut cur = v;
    for key in path {
        cur = cur.get(*key)?;
    }
    cur.as_str().and_then(|s| Uuid::parse_str(s).ok())
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A positive amount (the output's `refundAmount`), as shown.
fn positive_amount(v: Option<&Value>) -> Option<String> {
    let v = v?;
    let n = v
        .as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))?;
    (n > 0.0).then(|| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// Writes the notifications `kind`'s `output` calls for (see the module table). `actor` is who
/// made the change; `audience` is who the change concerns (the domain event's audience).
pub async fn on_event(
    db: &mut PgConnection,
    ctx: &Ctx,
    kind: &str,
    actor: Option<Uuid>,
    audience: &[Uuid],
    output: &Value,
) -> Result<(), ToolError> {
    let mut drafts: Vec<Draft> = Vec::new();
    match kind {
        "createReservation" | "approveReservation" | "declineReservation" | "cancelReservation"
        | "expireReservation" => {
            let Some(s) = (match uuid_at(output, &["id"]) {
                Some(id) => stay(db, id).await?,
                None => None,
            }) else {
                return Ok(());
            };
            let reason = str_at(output, "cancellationReason")
                .unwrap_or_default()
                .to_string();
            match kind {
                "createReservation" => drafts.push(s.draft(
                    s.host_id,
                    "bookingRequested",
                    format!("bookingRequested:{}", s.id),
                )),
                "approveReservation" => drafts.push(s.draft(
                    s.guest_id,
                    "bookingApproved",
                    format!("bookingApproved:{}", s.id),
                )),
                "declineReservation" => {
                    let mut d = s.draft(
                        s.guest_id,
                        "bookingDeclined",
                        format!("bookingDeclined:{}", s.id),
                    );
                    d.params.insert("reason".into(), json!(reason));
                    drafts.push(d);
                }
                "cancelReservation" => {
                    for who in [s.guest_id, s.host_id] {
                        if Some(who) != actor {
                            let mut d = s.draft(
                                who,
                                "bookingCancelled",
                                format!("bookingCancelled:{}:{who}", s.id),
                            );
                            d.params.insert("reason".into(), json!(reason));
                            drafts.push(d);
                        }
                    }
                    if let Some(amount) = positive_amount(output.get("refundAmount")) {
                        drafts.push(refunded(&s, &amount));
                    }
                }
                _ => {
                    for who in [s.guest_id, s.host_id] {
                        drafts.push(s.draft(
                            who,
                            "bookingExpired",
                            format!("bookingExpired:{}:{who}", s.id),
                        ));
                    }
                }
            }
        }
        "startReservationPayment"
        | "refreshReservationPayment"
        | "callbackReservationPayment"
        | "paymentWebhook" => {
            let reservation = output
                .get("reservation")
                .filter(|r| r.is_object())
                .unwrap_or(output);
            let id = uuid_at(reservation, &["id"])
                .or_else(|| uuid_at(output, &["paymentResult", "orderId"]));
            let Some(s) = (match id {
                Some(id) => stay(db, id).await?,
                None => None,
            }) else {
                return Ok(());
            };
            let paid = str_at(reservation, "paymentConfirmation") == Some("paid");
            if paid && str_at(reservation, "bookingStatus") == Some("confirmed") {
                for who in [s.guest_id, s.host_id] {
                    drafts.push(s.draft(who, "bookingPaid", format!("bookingPaid:{}:{who}", s.id)));
                }
            }
            if let Some(result) = output.get("paymentResult") {
                if result.get("success") == Some(&Value::Bool(false)) {
                    let mut d = s.draft(s.guest_id, "paymentFailed", String::new());
                    d.dedupe_key = None;
                    let reason = str_at(result, "description").unwrap_or("declined");
                    d.params.insert("reason".into(), json!(reason));
                    drafts.push(d);
                }
            }
            if let Some(amount) = positive_amount(reservation.get("refundAmount")) {
                drafts.push(refunded(&s, &amount));
            }
        }
        "createDispute" | "updateDispute" => {
            let (Some(dispute), Some(resv)) = (
                uuid_at(output, &["id"]),
                uuid_at(output, &["reservationId"]),
            ) else {
                return Ok(());
            };
            let Some(s) = stay(db, resv).await? else {
                return Ok(());
            };
            let with_dispute = |mut d: Draft| {
                d.data["disputeId"] = json!(dispute);
                d.params.insert(
                    "issue".into(),
                    json!(str_at(output, "issueType").unwrap_or_default()),
                );
                d
            };
            if kind == "createDispute" {
                let raised_by = uuid_at(output, &["raisedBy"]);
                for who in [s.guest_id, s.host_id] {
                    if Some(who) != raised_by {
                        let mut d = s.draft(
                            who,
                            "disputeOpened",
                            format!("disputeOpened:{dispute}:{who}"),
                        );
                        let name = if raised_by == Some(s.guest_id) {
                            &s.guest_name
                        } else {
                            &s.host_name
                        };
                        d.params.insert("other".into(), json!(name));
                        drafts.push(with_dispute(d));
                    }
                }
            } else if let Some(status @ ("resolved" | "rejected")) =
                str_at(output, "resolutionStatus")
            {
                for who in [s.guest_id, s.host_id] {
                    let mut d = s.draft(
                        who,
                        "disputeResolved",
                        format!("disputeResolved:{dispute}:{who}"),
                    );
                    d.params.insert("resolution".into(), json!(status));
                    drafts.push(with_dispute(d));
                }
            }
        }
        "createReview" | "updateReview" => {
            if output.get("isPublished") != Some(&Value::Bool(true)) {
                return Ok(());
            }
            let Some(resv) = uuid_at(output, &["reservationId"]) else {
                return Ok(());
            };
            let Some(s) = stay(db, resv).await? else {
                return Ok(());
            };
            let published: Vec<(Uuid, Uuid, Uuid, i32)> = sqlx::query_as(
                "SELECT r.id, r.reviewer_id,
                        CASE WHEN r.reviewee_type = 'listing'
                             THEN (SELECT host_id FROM catalog.listings WHERE id = r.reviewee_id)
                             ELSE r.reviewee_id END,
                        r.rating
                   FROM reviews.reviews r
                  WHERE r.reservation_id = $1 AND r.is_published AND r.is_active",
            )
            .bind(resv)
            .fetch_all(&mut *db)
            .await?;
            for (review, reviewer, reviewee, rating) in published {
                let mut d = s.draft(
                    reviewee,
                    "reviewPublished",
                    format!("reviewPublished:{review}"),
                );
                let name = if reviewer == s.guest_id {
                    &s.guest_name
                } else {
                    &s.host_name
                };
                d.params.insert("other".into(), json!(name));
                d.params.insert("rating".into(), json!(rating));
                d.data["reviewId"] = json!(review);
                drafts.push(d);
            }
        }
        "createMessage" => {
            let sender = actor.or_else(|| uuid_at(output, &["senderId"]));
            let name: Option<String> = match sender {
                Some(id) => {
                    sqlx::query_scalar("SELECT fullname FROM auth.users WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *db)
                        .await?
                }
                None => None,
            };
            let preview: String = ["content", "text", "body", "messageText", "message"]
                .iter()
                .find_map(|k| str_at(output, k))
                .unwrap_or_default()
                .chars()
                .take(140)
                .collect();
            let message = uuid_at(output, &["id"]);
            let mut recipients: Vec<Uuid> = audience
                .iter()
                .copied()
                .filter(|u| Some(*u) != sender)
                .collect();
            if let Some(r) = uuid_at(output, &["recipientId"]) {
                if Some(r) != sender && !recipients.contains(&r) {
                    recipients.push(r);
                }
            }
            for who in recipients {
                let mut d = Draft::new(who, "newMessage");
                d.params
                    .insert("other".into(), json!(name.clone().unwrap_or_default()));
                d.params.insert("preview".into(), json!(preview));
                d.data =
                    json!({ "messageId": message, "threadId": uuid_at(output, &["threadId"]) });
                d.dedupe_key = message.map(|m| format!("newMessage:{m}:{who}"));
                drafts.push(d);
            }
        }
        _ => {}
    }
    for draft in drafts {
        notify(db, ctx, draft).await?;
    }
    Ok(())
}

fn refunded(s: &StayContext, amount: &str) -> Draft {
    let mut d = s.draft(
        s.guest_id,
        "paymentRefunded",
        format!("paymentRefunded:{}:{amount}", s.id),
    );
    d.params.insert("amount".into(), json!(amount));
    d
}
