//! Review aggregates: the cached average rating and review count per reviewee (a listing, a host
//! or a guest), counting only active, published and approved reviews.
//!
//! There is no API to write them: [`recompute`] runs inside the same transaction as every change
//! that moves a count (publication, moderation, deletion), so an aggregate never disagrees with
//! the reviews it summarises. An aggregate is `public` while it counts at least one review and
//! `hidden` when it counts none (e.g. its only review was rejected or deleted); non-admins only
//! see public ones.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::reviews::release_expired;
use crate::context::Ctx;
use crate::error::ToolError;
use crate::registry::{Access, Action, Method, Operation, Service};
use crate::sql;
use crate::types::{Choice, EnumFilter};
use crate::types::{Filter, Paging, RecordMeta};
use crate::vocabulary::{RevieweeTypes, Visibilities};

/// One reviewee whose aggregate a change may have moved.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Reviewee {
    /// The listing's or user's id.
    pub id: Uuid,
    /// `host`, `guest` or `listing`.
    pub kind: String,
}

/// Rating statistics for one reviewee.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ReviewAggregate {
    /// The aggregate's id.
    pub id: Uuid,
    /// The rated listing or user.
    pub reviewee_id: Uuid,
    /// `host`, `guest` or `listing`.
    #[schemars(with = "Choice<RevieweeTypes>")]
    pub reviewee_type: String,
    /// Index of `revieweeType`.
    #[serde(rename = "revieweeType_idx")]
    pub reviewee_type_idx: i32,
    /// Mean rating of the counted reviews, rounded to 2 decimals (0 when none).
    pub average_rating: f64,
    /// Published, approved, active reviews counted.
    pub review_count: i32,
    /// `public` (counts reviews) or `hidden` (counts none).
    #[schemars(with = "Choice<Visibilities>")]
    pub visibility_status: String,
    /// Index of `visibilityStatus`.
    #[serde(rename = "visibilityStatus_idx")]
    pub visibility_status_idx: i32,
    /// System fields (`isActive`, `recordVersion`, `createdAt`, `updatedAt`); `_owner`: always null: the service owns aggregates.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

const AGGREGATE_COLUMNS: &str = "id, reviewee_id, reviewee_type,
    array_position(ARRAY['host','guest','listing'], reviewee_type) - 1 AS reviewee_type_idx,
    average_rating::float8 AS average_rating, review_count, visibility_status,
    array_position(ARRAY['public','hidden'], visibility_status) - 1 AS visibility_status_idx,
    is_active, record_version, created_at, updated_at, NULL::uuid AS owner_id";

/// Identifies one aggregate.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AggregateRef {
    /// The aggregate's own id (not the reviewee's; find it with listReviewAggregates).
    pub review_aggregate_id: Uuid,
}

/// Input of `listReviewAggregates`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AggregateFilters {
    /// Aggregates of these listings or users.
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub reviewee_id: Option<Filter>,
    /// `host`, `guest` and/or `listing` (case-insensitive).
    pub reviewee_type: Option<EnumFilter<RevieweeTypes>>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of aggregates.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AggregateList {
    /// The aggregates on this page, most reviewed first.
    pub review_aggregates: Vec<ReviewAggregate>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The aggregate operations (read-only).
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("getReviewAggregate", Service::Reviews)
            .title("Get a rating aggregate")
            .who("anyone (no login needed) for public aggregates; hidden ones only admins")
            .describe(
                "Returns one rating aggregate by its own id: averageRating (number, 2 decimals) \
                 and reviewCount over the published, approved reviews of a listing, host or guest.",
            )
            .rest(
                Method::Get,
                "/reviewsystem-api/v1/reviewaggregates/{reviewAggregateId}",
            )
            .access(Access::Public)
            .reads(Action::Get, "reviewAggregate")
            .handler(get_aggregate),
        Operation::build("listReviewAggregates", Service::Reviews)
            .title("List rating aggregates")
            .who("anyone (no login needed) for public aggregates; admins also see hidden ones")
            .describe(
                "Lists rating aggregates (averageRating, reviewCount) of listings, hosts and \
                 guests, most reviewed first. Filters: revieweeId, revieweeType (host/guest/listing), \
                 each one value or several. Non-admins see public aggregates only. Paginated.",
            )
            .rest(Method::Get, "/reviewsystem-api/v1/reviewaggregates")
            .access(Access::Public)
            .reads(Action::List, "reviewAggregates")
            .handler(list_aggregates),
    ]
}

/// Recomputes the aggregates of `reviewees` from their counted reviews, in the call's
/// transaction: one upsert for all of them. A reviewee with no counted review and no aggregate yet
/// gets none.
pub async fn recompute(ctx: &Ctx, reviewees: &[Reviewee]) -> Result<(), ToolError> {
    if reviewees.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = reviewees.iter().map(|r| r.id).collect();
    let kinds: Vec<&str> = reviewees.iter().map(|r| r.kind.as_str()).collect();
    let mut db = ctx.db().await?;
    sqlx::query(
        "INSERT INTO reviews.review_aggregates (reviewee_id, reviewee_type, average_rating, review_count, visibility_status)
         SELECT t.id, t.kind, COALESCE(round(avg(v.rating), 2), 0), count(v.id),
                CASE WHEN count(v.id) > 0 THEN 'public' ELSE 'hidden' END
           FROM unnest($1::uuid[], $2::text[]) AS t(id, kind)
           LEFT JOIN reviews.reviews v ON v.reviewee_id = t.id AND v.reviewee_type = t.kind
                AND v.is_active AND v.is_published AND v.moderation_status = 'approved'
          GROUP BY t.id, t.kind
         HAVING count(v.id) > 0 OR EXISTS (SELECT 1 FROM reviews.review_aggregates a
                                            WHERE a.reviewee_id = t.id AND a.reviewee_type = t.kind)
         ON CONFLICT (reviewee_id, reviewee_type) DO UPDATE
            SET average_rating = EXCLUDED.average_rating, review_count = EXCLUDED.review_count,
                visibility_status = EXCLUDED.visibility_status,
                record_version = review_aggregates.record_version + 1, updated_at = now()
          WHERE (review_aggregates.average_rating, review_aggregates.review_count, review_aggregates.visibility_status)
                IS DISTINCT FROM (EXCLUDED.average_rating, EXCLUDED.review_count, EXCLUDED.visibility_status)",
    )
    .bind(&ids)
    .bind(&kinds)
    .execute(&mut *db)
    .await?;
    Ok(())
}

async fn get_aggregate(ctx: Ctx, input: AggregateRef) -> Result<ReviewAggregate, ToolError> {
    release_expired(&ctx).await?;
    let mut db = ctx.db().await?;
    let sql = format!(
        "SELECT {AGGREGATE_COLUMNS} FROM reviews.review_aggregates
          WHERE id = $1 AND is_active AND (visibility_status = 'public' OR $2)"
    );
    sqlx::query_as(&sql)
        .bind(input.review_aggregate_id)
        .bind(ctx.is_admin())
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("review aggregate"))
}

async fn list_aggregates(ctx: Ctx, input: AggregateFilters) -> Result<AggregateList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    release_expired(&ctx).await?;
    let mut qb = sql::list_select(
        AGGREGATE_COLUMNS,
        "reviews.review_aggregates WHERE is_active",
    );
    if !ctx.is_admin() {
        qb.push(" AND visibility_status = 'public'");
    }
    sql::id_filter(
        &mut qb,
        "reviewee_id",
        "revieweeId",
        input.reviewee_id.as_ref(),
    )?;
    sql::enum_filter(&mut qb, "reviewee_type", input.reviewee_type.as_deref());
    let mut db = ctx.db().await?;
    let (review_aggregates, paging) =
        sql::fetch_page(&mut db, qb, "review_count DESC, id", page).await?;
    Ok(AggregateList {
        review_aggregates,
        paging,
    })
}
