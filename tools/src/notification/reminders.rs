//! The check-in reminder: a periodic scan (every replica may run it) that tells each guest of a
//! confirmed stay starting tomorrow. It is idempotent: each reservation's reminder has its own
//! dedupe key, so a second scan, on this replica or another, writes nothing.

use uuid::Uuid;

use super::enqueue::{notify, Draft};
use crate::context::{Ctx, Services};
use crate::error::ToolError;

/// Writes tomorrow's check-in reminders not yet written; returns how many it wrote.
pub async fn remind_check_ins(services: &Services) -> Result<u64, ToolError> {
    let ctx = Ctx::new(services.clone(), None, "check-in-reminders".into(), None);
    let mut written = 0;
    {
        let mut db = ctx.db().await?;
        let due: Vec<(Uuid, Uuid, Uuid, String, chrono::NaiveDate)> = sqlx::query_as(
            "SELECT r.id, r.guest_id, r.listing_id, l.title, r.check_in
               FROM booking.reservations r JOIN catalog.listings l ON l.id = r.listing_id
              WHERE r.booking_status = 'confirmed' AND r.is_active AND r.check_in = current_date + 1
                AND NOT EXISTS (SELECT 1 FROM notification.notifications n
                                 WHERE n.dedupe_key = 'checkInReminder:' || r.id::text)
              LIMIT 1000",
        )
        .fetch_all(&mut *db)
        .await?;
        for (reservation, guest, listing, title, check_in) in due {
            let mut d = Draft::new(guest, "checkInReminder");
            d.params.insert("listing".into(), title.into());
            d.params
                .insert("checkIn".into(), check_in.to_string().into());
            d.data = serde_json::json!({ "reservationId": reservation, "listingId": listing });
            d.dedupe_key = Some(format!("checkInReminder:{reservation}"));
            if notify(&mut db, &ctx, d).await?.is_some() {
                written += 1;
            }
        }
    }
    ctx.commit().await?;
    Ok(written)
}
