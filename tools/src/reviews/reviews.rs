//! Reviews of a completed stay, written by its guest (about the host or the listing) or its host
//! (about the guest).
//!
//! **Double-blind.** A review stays unpublished until both sides of the reservation (its guest and
//! its host) have each written at least one review — then every review of that reservation is
//! published at once — or until the blind window (`Settings::review_blind_window`, 14 days) has
//! passed since it was submitted. The window is released lazily by [`release_expired`], which every
//! review and aggregate read runs first; it is one indexed `UPDATE` that touches nothing when no
//! review is due.
//!
//! **Moderation (post-moderation).** A review starts `approved` unless an automatic screen flags
//! it (a URL, an email address or a phone-number-like run of 7+ digits: contact details that would
//! take the deal off the platform); a flagged review starts `pending` until an admin approves or
//! rejects it with `updateReview`. Only published *and* approved reviews are visible to the public
//! and counted in the aggregates.
//!
//! **Publication is recorded once.** `publishedAt` is set the first time a review is released and
//! never cleared, so a review an admin unpublishes stays hidden (the release rules only touch
//! reviews that were never published) and its reviewer can no longer edit or delete it.

// The scaffold names this file after its folder (`reviews::reviews`); the path is fixed.
#![allow(clippy::module_inception)]

use chrono::{DateTime, Utc};
use rand::distributions::Alphanumeric;
use rand::Rng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::aggregates::{self, Reviewee};
use crate::booking::model::{load_reservation, Party};
use crate::context::Ctx;
use crate::error::{self, ErrorKind, ToolError};
use crate::registry::{Access, Action, Flow, Method, Operation, Service};
use crate::sql;
use crate::types::{Choice, EnumFilter};
use crate::types::{Filter, LongText, Paging, RecordMeta};
use crate::vocabulary::{ModerationStatuses, RevieweeTypes};

/// Who or what a review is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RevieweeType {
    /// The reservation's host (reviewed by the guest).
    Host,
    /// The reservation's guest (reviewed by the host).
    Guest,
    /// The booked listing (reviewed by the guest).
    Listing,
}

impl RevieweeType {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            RevieweeType::Host => "host",
            RevieweeType::Guest => "guest",
            RevieweeType::Listing => "listing",
        }
    }
}

/// A review's moderation state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModerationStatus {
    /// Flagged by the screen, waiting for an admin.
    Pending,
    /// Visible once published.
    Approved,
    /// Hidden for good and not counted.
    Rejected,
}

impl ModerationStatus {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            ModerationStatus::Pending => "pending",
            ModerationStatus::Approved => "approved",
            ModerationStatus::Rejected => "rejected",
        }
    }
}

/// A star rating: a whole number from 1 to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct Rating(i32);

impl TryFrom<i64> for Rating {
    type Error = String;
    fn try_from(n: i64) -> Result<Self, String> {
        if (1..=5).contains(&n) {
            Ok(Rating(n as i32))
        } else {
            Err(format!("must be a whole number from 1 to 5 (got {n})"))
        }
    }
}

impl JsonSchema for Rating {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rating".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "integer", "minimum": 1, "maximum": 5 })
    }
}

/// A review.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    /// The review's id.
    pub id: Uuid,
    /// The reviewed stay.
    pub reservation_id: Uuid,
    /// The author: the reservation's guest or host.
    pub reviewer_id: Uuid,
    /// The reviewed host, guest (user ids) or listing (listing id).
    pub reviewee_id: Uuid,
    /// `host`, `guest` or `listing`.
    #[schemars(with = "Choice<RevieweeTypes>")]
    pub reviewee_type: String,
    /// Index of `revieweeType`.
    #[serde(rename = "revieweeType_idx")]
    pub reviewee_type_idx: i32,
    /// Stars, 1–5.
    pub rating: i32,
    /// The text.
    pub review_text: String,
    /// `pending`, `approved` or `rejected`.
    #[schemars(with = "Choice<ModerationStatuses>")]
    pub moderation_status: String,
    /// Index of `moderationStatus`.
    #[serde(rename = "moderationStatus_idx")]
    pub moderation_status_idx: i32,
    /// Released by the double-blind rule (or by an admin).
    pub is_published: bool,
    /// The server's double-blind bookkeeping code; shown to admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blind_submission_code: Option<String>,
    /// When it was written; starts the blind window.
    pub submitted_at: DateTime<Utc>,
    /// When it was first published.
    pub published_at: Option<DateTime<Utc>>,
    /// System fields (`isActive`, `recordVersion`, `createdAt`, `updatedAt`); `_owner`: the reviewer.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

const REVIEW_COLUMNS: &str = "id, reservation_id, reviewer_id, reviewee_id, reviewee_type,
    array_position(ARRAY['host','guest','listing'], reviewee_type) - 1 AS reviewee_type_idx,
    rating, review_text, moderation_status,
    array_position(ARRAY['pending','approved','rejected'], moderation_status) - 1 AS moderation_status_idx,
    is_published, blind_submission_code, submitted_at, published_at, is_active, record_version,
    created_at, updated_at, owner_id";

impl Review {
    /// Whether the public may see it: published and approved.
    fn is_public(&self) -> bool {
        self.is_published && self.moderation_status == "approved"
    }
    /// Whether it was never released, so its reviewer may still edit or delete it.
    fn before_publish(&self) -> bool {
        !self.is_published && self.published_at.is_none()
    }
    /// The review as `ctx`'s caller receives it: the blind code only for admins.
    fn for_caller(mut self, ctx: &Ctx) -> Self {
        if !ctx.is_admin() {
            self.blind_submission_code = None;
        }
        self
    }
    fn reviewee(&self) -> Reviewee {
        Reviewee {
            id: self.reviewee_id,
            kind: self.reviewee_type.clone(),
        }
    }
}

/// Input of `createReview`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewReview {
    /// The completed reservation you stayed at (guest) or hosted (host).
    pub reservation_id: Uuid,
    /// `host` or `listing` when you are the guest, `guest` when you are the host.
    pub reviewee_type: RevieweeType,
    /// The host's id, the listing's id or the guest's id, matching `revieweeType`.
    pub reviewee_id: Uuid,
    /// Stars, a whole number from 1 to 5.
    pub rating: Rating,
    /// Your review (1–5000 characters).
    pub review_text: LongText,
}

/// Input of `updateReview`: at least one of the changeable fields.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("anyOf" = [
    { "required": ["reviewText"], "properties": { "reviewText": { "type": "string" } } },
    { "required": ["moderationStatus"], "properties": { "moderationStatus": { "type": "string" } } },
    { "required": ["isPublished"], "properties": { "isPublished": { "type": "boolean" } } }
]))]
pub struct ReviewPatch {
    /// The review to change.
    pub review_id: Uuid,
    /// New text (the reviewer, before the review is published).
    pub review_text: Option<LongText>,
    /// New moderation state (admins only).
    pub moderation_status: Option<ModerationStatus>,
    /// Publish or hide the review (admins only).
    pub is_published: Option<bool>,
    /// The version you read; when sent and stale the update is refused with 409.
    pub record_version: Option<i32>,
}

/// Identifies one review.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReviewRef {
    /// The review's id.
    pub review_id: Uuid,
}

/// Input of `listReviews`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReviewFilters {
    /// Reviews about these hosts, guests or listings.
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub reviewee_id: Option<Filter>,
    /// Reviews of these reservations.
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub reservation_id: Option<Filter>,
    /// Reviews by these users.
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub reviewer_id: Option<Filter>,
    /// `host`, `guest` and/or `listing` (case-insensitive).
    pub reviewee_type: Option<EnumFilter<RevieweeTypes>>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of reviews.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewList {
    /// The reviews on this page, newest first.
    pub reviews: Vec<Review>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The review operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("createReview", Service::Reviews)
            .core(Flow::Guest, 110)
            .title("Review a completed stay")
            .who("the guest or the host of the completed reservation")
            .describe(
                "Writes a review of a completed reservation. The guest reviews the host \
                 (revieweeType=host, revieweeId=hostId) and/or the listing (revieweeType=listing, \
                 revieweeId=listingId); the host reviews the guest (revieweeType=guest, \
                 revieweeId=guestId). rating is a whole number 1-5. Once per reservation and \
                 revieweeType. Double-blind: the review stays unpublished until both guest and host \
                 have written theirs (then all publish at once) or 14 days pass. Text with a URL, \
                 email or phone number waits for an admin (moderationStatus=pending). The server \
                 sets isPublished, moderationStatus and reviewerId. Returns the review.",
            )
            .rest(Method::Post, "/reviewsystem-api/v1/reviews")
            .access(Access::Authenticated)
            .creates("review")
            .handler(create_review),
        Operation::build("updateReview", Service::Reviews)
            .core(Flow::Admin, 40)
            .title("Edit or moderate a review")
            .who("the reviewer (the text, while unpublished); admins (moderation)")
            .describe(
                "The reviewer may change reviewText while the review is still unpublished; \
                 admins moderate with moderationStatus (pending/approved/rejected) and isPublished. \
                 Rating, reviewee and reservation never change. Aggregates are recomputed. \
                 Returns the review.",
            )
            .rest(Method::Patch, "/reviewsystem-api/v1/reviews/{reviewId}")
            .access(Access::Authenticated)
            .updates("review")
            .handler(update_review),
        Operation::build("deleteReview", Service::Reviews)
            .title("Delete a review")
            .who("the reviewer while the review is unpublished; admins at any time")
            .describe(
                "Soft-deletes a review: its reviewer while it is unpublished, admins at any time. \
                 The reviewee's aggregate is recomputed. Returns the review's last state \
                 (isActive=false).",
            )
            .rest(Method::Delete, "/reviewsystem-api/v1/reviews/{reviewId}")
            .access(Access::Authenticated)
            .deletes("review")
            .handler(delete_review),
        Operation::build("getReview", Service::Reviews)
            .title("Get a review")
            .who("anyone (no login needed) once published and approved; before that its author and admins")
            .describe(
                "Returns one review. Everyone sees it once it is published and approved; before \
                 that only its author and admins do (others get not found).",
            )
            .rest(Method::Get, "/reviewsystem-api/v1/reviews/{reviewId}")
            .access(Access::Public)
            .reads(Action::Get, "review")
            .handler(get_review),
        Operation::build("listReviews", Service::Reviews)
            .core(Flow::Guest, 120)
            .title("List published reviews")
            .describe(
                "Lists published, approved reviews, newest first, for a listing, host or guest \
                 profile. Filters (each one value or several, OR-ed): revieweeId, revieweeType \
                 (host/guest/listing), reservationId, reviewerId. Paginated.",
            )
            .rest(Method::Get, "/reviewsystem-api/v1/reviews")
            .access(Access::Public)
            .reads(Action::List, "reviews")
            .handler(list_reviews),
    ]
}

/// Whether the automatic screen holds `text` for an admin: it carries a URL, an email address
/// or a phone-number-like run of 7+ digits (contact details that take a deal off the platform).
pub fn needs_moderation(text: &str) -> bool {
    let lower = text.to_lowercase();
    let url = ["http://", "https://", "www."]
        .iter()
        .any(|p| lower.contains(p));
    let email = lower.split_whitespace().any(|word| {
        let word = word.trim_matches(|c: char| !c.is_alphanumeric());
        word.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.ends_with('.')
        })
    });
    url || email || longest_digit_run(text) >= 7
}

/// The most digits in one run where spaces, dashes, dots, slashes, parentheses and `+` may
/// separate them (how phone numbers are written).
fn longest_digit_run(text: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in text.chars() {
        if c.is_ascii_digit() {
            run += 1;
            best = best.max(run);
        } else if !matches!(c, ' ' | '-' | '.' | '/' | '(' | ')' | '+') {
            run = 0;
        }
    }
    best
}

/// The moderation state a review with `text` starts in (post-moderation, see the module docs).
fn screened_status(text: &str) -> &'static str {
    if needs_moderation(text) {
        ModerationStatus::Pending.as_str()
    } else {
        ModerationStatus::Approved.as_str()
    }
}

/// Publishes every review whose blind window has passed without the other side writing, and
/// recomputes the aggregates they count towards. Run at the start of every review and aggregate
/// read (and reusable by other modules' reads); cheap when nothing is due, via
/// `reviews_unpublished_idx`. Rows another call has locked are skipped (the next read releases
/// them), so concurrent reads never queue behind each other here.
pub async fn release_expired(ctx: &Ctx) -> Result<(), ToolError> {
    let window = ctx.services.settings.review_blind_window.num_seconds() as f64;
    let released: Vec<Reviewee> = {
        let mut db = ctx.db().await?;
        sqlx::query_as(
            "WITH due AS (
                SELECT id FROM reviews.reviews
                 WHERE is_active AND NOT is_published AND published_at IS NULL
                   AND submitted_at < now() - make_interval(secs => $1)
                   FOR UPDATE SKIP LOCKED)
             UPDATE reviews.reviews
                SET is_published = true, published_at = now(), record_version = record_version + 1, updated_at = now()
              WHERE id IN (SELECT id FROM due)
              RETURNING reviewee_id AS id, reviewee_type AS kind",
        )
        .bind(window)
        .fetch_all(&mut *db)
        .await?
    };
    aggregates::recompute(ctx, &released).await
}

/// Publishes every unreleased review of `reservation_id` once its guest and its host have each
/// written one, and recomputes the affected aggregates.
async fn release_pair(ctx: &Ctx, reservation_id: Uuid) -> Result<(), ToolError> {
    let released: Vec<Reviewee> = {
        let mut db = ctx.db().await?;
        sqlx::query_as(
            "WITH sides AS (
                SELECT bool_or(v.reviewer_id = r.guest_id) AND bool_or(v.reviewer_id = r.host_id) AS paired
                  FROM reviews.reviews v JOIN booking.reservations r ON r.id = v.reservation_id
                 WHERE v.reservation_id = $1 AND v.is_active)
             UPDATE reviews.reviews
                SET is_published = true, published_at = now(), record_version = record_version + 1, updated_at = now()
              WHERE reservation_id = $1 AND is_active AND NOT is_published AND published_at IS NULL
                AND (SELECT paired FROM sides)
              RETURNING reviewee_id AS id, reviewee_type AS kind",
        )
        .bind(reservation_id)
        .fetch_all(&mut *db)
        .await?
    };
    aggregates::recompute(ctx, &released).await
}

/// Loads an active review with no visibility check, optionally locking it for a change.
async fn load_review(ctx: &Ctx, id: Uuid, lock: bool) -> Result<Review, ToolError> {
    let mut db = ctx.db().await?;
    let sql = format!(
        "SELECT {REVIEW_COLUMNS} FROM reviews.reviews WHERE id = $1 AND is_active{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("review"))
}

/// Checks that a reservation party may review `kind`/`id`: the guest reviews the host or the
/// listing, the host reviews the guest.
fn check_reviewee(
    party: Party,
    kind: RevieweeType,
    id: Uuid,
    reservation: &crate::booking::model::Reservation,
) -> Result<(), ToolError> {
    let (expected, who) = match (party, kind) {
        (Party::Guest, RevieweeType::Host) => (reservation.host_id, "the reservation's host"),
        (Party::Guest, RevieweeType::Listing) => {
            (reservation.listing_id, "the reservation's listing")
        }
        (Party::Host, RevieweeType::Guest) => (reservation.guest_id, "the reservation's guest"),
        (Party::Guest, _) => {
            return Err(ToolError::field(
                "revieweeType",
                "as the guest you review the host (`host`) or the listing (`listing`)",
            ))
        }
        _ => {
            return Err(ToolError::field(
                "revieweeType",
                "as the host you review the guest (`guest`)",
            ))
        }
    };
    if id != expected {
        return Err(ToolError::field(
            "revieweeId",
            format!("must be the id of {who} ({expected})"),
        ));
    }
    Ok(())
}

async fn create_review(ctx: Ctx, input: NewReview) -> Result<Review, ToolError> {
    let reviewer = ctx.caller()?.user_id;
    // Locking the reservation serialises its two sides, so the pairing check below sees both.
    let reservation = load_reservation(&ctx, input.reservation_id, true).await?;
    let party = match reservation.party(&ctx) {
        Some(party @ (Party::Guest | Party::Host)) => party,
        _ => return Err(ToolError::not_found("reservation")),
    };
    if reservation.booking_status != "complete" {
        return Err(ToolError::unprocessable(format!(
            "reviews open once the stay is complete (this reservation is {})",
            reservation.booking_status
        )));
    }
    check_reviewee(party, input.reviewee_type, input.reviewee_id, &reservation)?;
    let code: String = rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    let text = input.review_text.as_str();
    let id: Uuid = {
        let mut db = ctx.db().await?;
        sqlx::query_scalar(
            "INSERT INTO reviews.reviews (reservation_id, reviewer_id, reviewee_id, reviewee_type, rating,
                 review_text, moderation_status, blind_submission_code, owner_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $2) RETURNING id",
        )
        .bind(reservation.id)
        .bind(reviewer)
        .bind(input.reviewee_id)
        .bind(input.reviewee_type.as_str())
        .bind(input.rating.0)
        .bind(text)
        .bind(screened_status(text))
        .bind(code)
        .fetch_one(&mut *db)
        .await
        .map_err(|e| {
            error::on_constraint(
                e,
                &[(
                    "reviews_once_key",
                    ErrorKind::Conflict,
                    "you already reviewed this reservation's host, guest or listing (one review per revieweeType); edit it with updateReview while it is unpublished",
                )],
            )
        })?
    };
    release_pair(&ctx, reservation.id).await?;
    Ok(load_review(&ctx, id, false).await?.for_caller(&ctx))
}

async fn update_review(ctx: Ctx, input: ReviewPatch) -> Result<Review, ToolError> {
    let caller = ctx.caller()?.user_id;
    let moderates = input.moderation_status.is_some() || input.is_published.is_some();
    if moderates && !ctx.is_admin() {
        return Err(ToolError::forbidden(
            "only admins moderate reviews (moderationStatus, isPublished)",
        ));
    }
    if !moderates && input.review_text.is_none() {
        return Err(ToolError::bad_input(
            "nothing to change: send reviewText, moderationStatus or isPublished",
        ));
    }
    let current = load_review(&ctx, input.review_id, true).await?;
    let is_reviewer = current.reviewer_id == caller;
    if !is_reviewer && !ctx.is_admin() {
        return Err(ToolError::not_found("review"));
    }
    ToolError::check_version(input.record_version, current.meta.record_version, "review")?;
    // A text edit is the reviewer's, before publication, and goes through the screen again
    // (a rejected review stays rejected).
    let text = input.review_text.as_ref().map(LongText::as_str);
    let mut status = input.moderation_status.map(ModerationStatus::as_str);
    if let Some(text) = text {
        if !is_reviewer {
            return Err(ToolError::forbidden(
                "only the reviewer edits a review's text; admins moderate it",
            ));
        }
        if !current.before_publish() {
            return Err(ToolError::unprocessable(
                "a review can be edited only before it is published",
            ));
        }
        if status.is_none() && current.moderation_status != "rejected" {
            status = Some(screened_status(text));
        }
    }
    {
        let mut db = ctx.db().await?;
        sqlx::query(
            "UPDATE reviews.reviews SET review_text = COALESCE($2, review_text),
                 moderation_status = COALESCE($3, moderation_status),
                 is_published = COALESCE($4, is_published),
                 published_at = CASE WHEN $4 THEN COALESCE(published_at, now()) ELSE published_at END,
                 record_version = record_version + 1, updated_at = now()
             WHERE id = $1",
        )
        .bind(current.id)
        .bind(text)
        .bind(status)
        .bind(input.is_published)
        .execute(&mut *db)
        .await?;
    }
    aggregates::recompute(&ctx, &[current.reviewee()]).await?;
    Ok(load_review(&ctx, current.id, false).await?.for_caller(&ctx))
}

async fn delete_review(ctx: Ctx, input: ReviewRef) -> Result<Review, ToolError> {
    let caller = ctx.caller()?.user_id;
    let current = load_review(&ctx, input.review_id, true).await?;
    if !ctx.is_admin() {
        if current.reviewer_id != caller {
            return Err(ToolError::not_found("review"));
        }
        if !current.before_publish() {
            return Err(ToolError::unprocessable(
                "a published review can no longer be deleted by its reviewer; ask an admin",
            ));
        }
    }
    let deleted: Review = {
        let mut db = ctx.db().await?;
        let sql = format!(
            "UPDATE reviews.reviews SET is_active = false, record_version = record_version + 1, updated_at = now()
             WHERE id = $1 RETURNING {REVIEW_COLUMNS}"
        );
        sqlx::query_as(&sql)
            .bind(current.id)
            .fetch_one(&mut *db)
            .await?
    };
    aggregates::recompute(&ctx, &[current.reviewee()]).await?;
    Ok(deleted.for_caller(&ctx))
}

async fn get_review(ctx: Ctx, input: ReviewRef) -> Result<Review, ToolError> {
    release_expired(&ctx).await?;
    let review = load_review(&ctx, input.review_id, false).await?;
    let mine = ctx.user_id() == Some(review.reviewer_id);
    if !(review.is_public() || mine || ctx.is_admin()) {
        return Err(ToolError::not_found("review"));
    }
    Ok(review.for_caller(&ctx))
}

async fn list_reviews(ctx: Ctx, input: ReviewFilters) -> Result<ReviewList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    release_expired(&ctx).await?;
    let mut qb = sql::list_select(
        REVIEW_COLUMNS,
        "reviews.reviews WHERE is_active AND is_published AND moderation_status = 'approved'",
    );
    sql::id_filter(
        &mut qb,
        "reviewee_id",
        "revieweeId",
        input.reviewee_id.as_ref(),
    )?;
    sql::id_filter(
        &mut qb,
        "reservation_id",
        "reservationId",
        input.reservation_id.as_ref(),
    )?;
    sql::id_filter(
        &mut qb,
        "reviewer_id",
        "reviewerId",
        input.reviewer_id.as_ref(),
    )?;
    sql::enum_filter(&mut qb, "reviewee_type", input.reviewee_type.as_deref());
    let mut db = ctx.db().await?;
    let (reviews, paging): (Vec<Review>, Paging) =
        sql::fetch_page(&mut db, qb, "published_at DESC, id DESC", page).await?;
    Ok(ReviewList {
        reviews: reviews.into_iter().map(|r| r.for_caller(&ctx)).collect(),
        paging,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_screen_flags_contact_details() {
        for flagged in [
            "Book direct at https://cheap.example",
            "see www.example.org",
            "mail me: host@example.com.",
            "call +1 (555) 123-4567 anytime",
            "0612345678",
        ] {
            assert!(needs_moderation(flagged), "{flagged}");
        }
        for clean in [
            "Lovely flat, 5 stars, 3 nights, 2 guests.",
            "Great @ the beach",
            "Room 12, floor 3",
        ] {
            assert!(!needs_moderation(clean), "{clean}");
        }
    }

    #[test]
    fn the_blind_code_is_optional_in_the_output_schema() {
        let schema = crate::registry::schema_for::<Review>();
        let required = schema["required"].as_array().unwrap();
        assert!(!required.iter().any(|f| f == "blindSubmissionCode"));
        assert!(required.iter().any(|f| f == "reviewText"));
    }

    #[test]
    fn ratings_are_one_to_five() {
        assert!(Rating::try_from(0).is_err());
        assert!(Rating::try_from(6).is_err());
        assert_eq!(Rating::try_from(5), Ok(Rating(5)));
    }
}
