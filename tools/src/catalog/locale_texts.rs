//! Per-language titles and descriptions of a listing. The listing's host (or an admin) writes
//! them; they are readable wherever the listing is, and `getListing`/`listListings` pick the one
//! matching the caller's `Accept-Language`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{
    load_managed_child, load_visible_child, managed_listing, push_listing_visible, soft_delete,
    OfListing,
};
use crate::auth::model::LanguageTag;
use crate::context::Ctx;
use crate::error::{on_constraint, ErrorKind, ToolError};
use crate::registry::{Access, Action, Method, Operation, Service};
use crate::sql;
use crate::types::{Filter, LongText, Name, Paging, RecordMeta};

/// A listing's title and description in one language.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ListingLocaleText {
    /// The text's id.
    pub id: Uuid,
    /// The listing it translates.
    pub listing_id: Uuid,
    /// The language tag, lower-case (`de`, `pt-br`).
    pub language_code: String,
    /// The title in that language.
    pub localized_title: String,
    /// The description in that language.
    pub localized_description: String,
    /// System fields (`isActive`, `recordVersion`, `createdAt`, `updatedAt`); `_owner`: who wrote it.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

const TABLE: &str = "catalog.listing_locale_texts";
const COLUMNS: &str = "id, listing_id, language_code, localized_title, localized_description, is_active, record_version, created_at, updated_at, owner_id";

/// Input of `createListingLocaleText`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewLocaleText {
    /// The listing to translate (you must be its host or an admin).
    pub listing_id: Uuid,
    /// A BCP 47 language tag such as `de` or `pt-BR` (stored lower-case); one text per language.
    pub language_code: LanguageTag,
    /// The title in that language.
    pub localized_title: Name,
    /// The description in that language.
    pub localized_description: LongText,
}

/// Input of `updateListingLocaleText`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocaleTextPatch {
    /// The text to change.
    pub listing_locale_text_id: Uuid,
    /// New title.
    pub localized_title: Option<Name>,
    /// New description.
    pub localized_description: Option<LongText>,
    /// The version you read; when sent and stale the update is refused with 409.
    pub record_version: Option<i32>,
}

/// Identifies one locale text.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocaleTextRef {
    /// The text's id.
    pub listing_locale_text_id: Uuid,
}

/// Input of `listListingLocaleTexts`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocaleTextFilters {
    /// Listing ids (exact; several are OR-ed).
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub listing_id: Option<Filter>,
    /// Partial, case-insensitive language tag match.
    pub language_code: Option<Filter>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of locale texts.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocaleTextList {
    /// The texts on this page.
    pub listing_locale_texts: Vec<ListingLocaleText>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The locale-text operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("createListingLocaleText", Service::Catalog)
            .title("Add a listing translation")
            .who("the listing's host, or an admin")
            .describe("Adds a listing's title and description in one language (languageCode such as `de` or `pt-BR`). Only the listing's host or an admin; one text per listing and language (409 on a duplicate). Guests whose Accept-Language matches see it in getListing/listListings. Returns the text.")
            .rest(Method::Post, "/propertycatalog-api/v1/listinglocaletexts")
            .access(Access::Authenticated)
            .creates("listingLocaleText")
            .handler(create_text),
        Operation::build("updateListingLocaleText", Service::Catalog)
            .title("Update a listing translation")
            .who("the listing's host, or an admin")
            .describe("Changes a translation's title and/or description (listing and language are fixed). Only the listing's host or an admin; send recordVersion to get 409 instead of overwriting a concurrent edit. Returns the text.")
            .rest(Method::Patch, "/propertycatalog-api/v1/listinglocaletexts/{listingLocaleTextId}")
            .access(Access::Authenticated)
            .updates("listingLocaleText")
            .handler(update_text),
        Operation::build("deleteListingLocaleText", Service::Catalog)
            .title("Delete a listing translation")
            .who("the listing's host, or an admin")
            .describe("Soft-deletes a translation; the language can then be added again. Only the listing's host or an admin. Returns its last state (isActive false).")
            .rest(Method::Delete, "/propertycatalog-api/v1/listinglocaletexts/{listingLocaleTextId}")
            .access(Access::Authenticated)
            .deletes("listingLocaleText")
            .handler(delete_text),
        Operation::build("getListingLocaleText", Service::Catalog)
            .title("Get a listing translation")
            .who("anyone (no login needed) for published listings; drafts only their host and admins")
            .describe("Returns one translation by id. Translations of published listings are public; those of drafts only for the host and admins (others get 404).")
            .rest(Method::Get, "/propertycatalog-api/v1/listinglocaletexts/{listingLocaleTextId}")
            .access(Access::Public)
            .reads(Action::Get, "listingLocaleText")
            .handler(get_text),
        Operation::build("listListingLocaleTexts", Service::Catalog)
            .title("List listing translations")
            .who("anyone (no login needed), for the listings they can see (drafts: their host and admins)")
            .describe("Lists the translations of listings you can see, filtered by listingId and/or partial languageCode, ordered by listing and language. Paginated.")
            .rest(Method::Get, "/propertycatalog-api/v1/listinglocaletexts")
            .access(Access::Public)
            .reads(Action::List, "listingLocaleTexts")
            .handler(list_texts),
    ]
}

async fn create_text(ctx: Ctx, input: NewLocaleText) -> Result<ListingLocaleText, ToolError> {
    managed_listing(&ctx, input.listing_id, false).await?;
    crate::platformadmin::localization::check_language(
        &ctx,
        "languageCode",
        input.language_code.as_str(),
    )
    .await?;
    let owner = ctx.user_id();
    let mut db = ctx.db().await?;
    let sql = format!(
        "INSERT INTO {TABLE} (listing_id, language_code, localized_title, localized_description, owner_id)
         VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    );
    sqlx::query_as(&sql)
        .bind(input.listing_id)
        .bind(input.language_code.as_str().to_ascii_lowercase())
        .bind(input.localized_title.as_str())
        .bind(input.localized_description.as_str())
        .bind(owner)
        .fetch_one(&mut *db)
        .await
        .map_err(|e| {
            on_constraint(
                e,
                &[(
                    "listing_locale_texts_key",
                    ErrorKind::Conflict,
                    "this listing already has a text in this language; update it instead",
                )],
            )
        })
}

impl OfListing for ListingLocaleText {
    fn listing_id(&self) -> Uuid {
        self.listing_id
    }
}

async fn load_visible(ctx: &Ctx, id: Uuid) -> Result<ListingLocaleText, ToolError> {
    load_visible_child(ctx, (TABLE, COLUMNS), id, false, "locale text").await
}

async fn load_managed(ctx: &Ctx, id: Uuid) -> Result<ListingLocaleText, ToolError> {
    load_managed_child(ctx, (TABLE, COLUMNS), id, "locale text").await
}

async fn update_text(ctx: Ctx, input: LocaleTextPatch) -> Result<ListingLocaleText, ToolError> {
    let current = load_managed(&ctx, input.listing_locale_text_id).await?;
    ToolError::check_version(
        input.record_version,
        current.meta.record_version,
        "locale text",
    )?;
    let mut db = ctx.db().await?;
    let sql = format!(
        "UPDATE {TABLE} SET localized_title = COALESCE($2, localized_title),
            localized_description = COALESCE($3, localized_description),
            record_version = record_version + 1, updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(input.listing_locale_text_id)
        .bind(input.localized_title.as_ref().map(Name::as_str))
        .bind(input.localized_description.as_ref().map(LongText::as_str))
        .fetch_one(&mut *db)
        .await?)
}

async fn delete_text(ctx: Ctx, input: LocaleTextRef) -> Result<ListingLocaleText, ToolError> {
    load_managed(&ctx, input.listing_locale_text_id).await?;
    soft_delete(&ctx, TABLE, COLUMNS, input.listing_locale_text_id).await
}

async fn get_text(ctx: Ctx, input: LocaleTextRef) -> Result<ListingLocaleText, ToolError> {
    load_visible(&ctx, input.listing_locale_text_id).await
}

async fn list_texts(ctx: Ctx, input: LocaleTextFilters) -> Result<LocaleTextList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb = sql::list_select(COLUMNS, &format!("{TABLE} t WHERE is_active"));
    push_listing_visible(&mut qb, &ctx, "t.listing_id");
    sql::id_filter(
        &mut qb,
        "listing_id",
        "listingId",
        input.listing_id.as_ref(),
    )?;
    sql::text_filter(&mut qb, "language_code", input.language_code.as_ref());
    let mut db = ctx.db().await?;
    let (listing_locale_texts, paging) =
        sql::fetch_page(&mut db, qb, "listing_id, language_code, id", page).await?;
    Ok(LocaleTextList {
        listing_locale_texts,
        paging,
    })
}
