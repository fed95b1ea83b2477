//! The amenity dictionary (wifi, pool, …): admins curate it, everyone reads it, listings reference
//! its entries by id.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{load_active, soft_delete};
use crate::auth::model::ImageUrl;
use crate::context::Ctx;
use crate::error::{on_constraint, ErrorKind, ToolError};
use crate::registry::{Access, Action, Method, Operation, Service};
use crate::sql;
use crate::types::{Filter, Name, Paging, RecordMeta};

/// An amenity of the master list.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ListingAmenity {
    /// The amenity's id (what listings put in `amenityIds`).
    pub id: Uuid,
    /// Its name, unique (case-insensitive) among active amenities.
    pub name: String,
    /// Icon URL.
    pub icon_url: Option<String>,
    /// System fields (`isActive`, `recordVersion`, `createdAt`, `updatedAt`); `_owner`: the admin who created it.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

const TABLE: &str = "catalog.amenities";
const COLUMNS: &str =
    "id, name, icon_url, is_active, record_version, created_at, updated_at, owner_id";

/// Input of `createListingAmenity`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAmenity {
    /// The amenity's name, e.g. `Wifi`; must not already exist (case-insensitive).
    pub name: Name,
    /// Icon URL (http(s) or a path on this server).
    pub icon_url: Option<ImageUrl>,
}

/// Input of `updateListingAmenity`: only the icon changes (the name is the amenity's identity).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AmenityPatch {
    /// The amenity to change.
    pub listing_amenity_id: Uuid,
    /// New icon URL.
    pub icon_url: Option<ImageUrl>,
    /// The version you read; when sent and stale the update is refused with 409.
    pub record_version: Option<i32>,
}

/// Identifies one amenity.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AmenityRef {
    /// The amenity's id.
    pub listing_amenity_id: Uuid,
}

/// Input of `listListingAmenities`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AmenityFilters {
    /// Partial, case-insensitive name match (several values are OR-ed).
    pub name: Option<Filter>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of amenities.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AmenityList {
    /// The amenities on this page, by name.
    pub listing_amenities: Vec<ListingAmenity>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The amenity operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("createListingAmenity", Service::Catalog)
            .title("Create an amenity (admin)")
            .describe("Adds an amenity (name, optional icon URL) to the master list hosts pick from for their listings' amenityIds. Names are unique case-insensitively (409 on a duplicate). Returns the amenity.")
            .rest(Method::Post, "/propertycatalog-api/v1/listingamenities")
            .access(Access::Admin)
            .creates("listingAmenity")
            .handler(create_amenity),
        Operation::build("updateListingAmenity", Service::Catalog)
            .title("Update an amenity's icon (admin)")
            .describe("Changes an amenity's icon URL; the name cannot change. Send recordVersion to guard against concurrent edits (409 when stale). Returns the amenity.")
            .rest(Method::Patch, "/propertycatalog-api/v1/listingamenities/{listingAmenityId}")
            .access(Access::Admin)
            .updates("listingAmenity")
            .handler(update_amenity),
        Operation::build("deleteListingAmenity", Service::Catalog)
            .title("Delete an amenity (admin)")
            .describe("Soft-deletes an amenity: it disappears from the list and from listings' amenities, and new listings can no longer reference it. Returns its last state (isActive false).")
            .rest(Method::Delete, "/propertycatalog-api/v1/listingamenities/{listingAmenityId}")
            .access(Access::Admin)
            .deletes("listingAmenity")
            .handler(delete_amenity),
        Operation::build("getListingAmenity", Service::Catalog)
            .title("Get an amenity")
            .describe("Returns one active amenity (id, name, iconUrl) by id.")
            .rest(Method::Get, "/propertycatalog-api/v1/listingamenities/{listingAmenityId}")
            .access(Access::Public)
            .reads(Action::Get, "listingAmenity")
            .handler(get_amenity),
        Operation::build("listListingAmenities", Service::Catalog)
            .title("List amenities")
            .describe("Lists the active amenities by name, optionally filtered by partial name; use their ids as a listing's amenityIds or as the amenityIds search filter of listListings. Paginated.")
            .rest(Method::Get, "/propertycatalog-api/v1/listingamenities")
            .access(Access::Public)
            .reads(Action::List, "listingAmenities")
            .handler(list_amenities),
    ]
}

async fn create_amenity(ctx: Ctx, input: NewAmenity) -> Result<ListingAmenity, ToolError> {
    let owner = ctx.user_id();
    let mut db = ctx.db().await?;
    let sql = format!(
        "INSERT INTO {TABLE} (name, icon_url, owner_id) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
    );
    sqlx::query_as(&sql)
        .bind(input.name.as_str())
        .bind(input.icon_url.as_ref().map(ImageUrl::as_str))
        .bind(owner)
        .fetch_one(&mut *db)
        .await
        .map_err(|e| {
            on_constraint(
                e,
                &[(
                    "amenities_name_key",
                    ErrorKind::Conflict,
                    "an amenity with this name already exists; use it instead",
                )],
            )
        })
}

async fn load(ctx: &Ctx, id: Uuid, lock: bool) -> Result<ListingAmenity, ToolError> {
    load_active(ctx, TABLE, COLUMNS, id, lock, "amenity").await
}

async fn update_amenity(ctx: Ctx, input: AmenityPatch) -> Result<ListingAmenity, ToolError> {
    let current = load(&ctx, input.listing_amenity_id, true).await?;
    ToolError::check_version(input.record_version, current.meta.record_version, "amenity")?;
    let mut db = ctx.db().await?;
    let sql = format!(
        "UPDATE {TABLE} SET icon_url = COALESCE($2, icon_url),
            record_version = record_version + 1, updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(input.listing_amenity_id)
        .bind(input.icon_url.as_ref().map(ImageUrl::as_str))
        .fetch_one(&mut *db)
        .await?)
}

async fn delete_amenity(ctx: Ctx, input: AmenityRef) -> Result<ListingAmenity, ToolError> {
    load(&ctx, input.listing_amenity_id, true).await?;
    soft_delete(&ctx, TABLE, COLUMNS, input.listing_amenity_id).await
}

async fn get_amenity(ctx: Ctx, input: AmenityRef) -> Result<ListingAmenity, ToolError> {
    load(&ctx, input.listing_amenity_id, false).await
}

async fn list_amenities(ctx: Ctx, input: AmenityFilters) -> Result<AmenityList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb = sql::list_select(COLUMNS, &format!("{TABLE} WHERE is_active"));
    sql::text_filter(&mut qb, "name", input.name.as_ref());
    let mut db = ctx.db().await?;
    let (listing_amenities, paging) = sql::fetch_page(&mut db, qb, "lower(name), id", page).await?;
    Ok(AmenityList {
        listing_amenities,
        paging,
    })
}
