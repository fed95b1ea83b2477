//! Saved filters: a named `filters` object per user and index (the BFF's only writes). A filter
//! is checked against the index's fields when saved, and only its owner lists, uses or deletes
//! it; anyone else's id is "not found".

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::context::Ctx;
use crate::error::ToolError;

/// A saved filter.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct SavedFilter {
    /// Its id.
    pub id: Uuid,
    /// The index it filters.
    pub index_name: String,
    /// Its name.
    pub filter_name: String,
    /// The `filters` object it applies.
    #[sqlx(json)]
    pub conditions: Map<String, Value>,
    /// Whose it is (the caller).
    #[serde(rename = "_owner")]
    pub user_id: Uuid,
    /// When it was saved.
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, index_name, filter_name, conditions, user_id, created_at";

/// Saves a filter of the caller.
pub async fn insert(
    ctx: &Ctx,
    index: &str,
    name: &str,
    conditions: &Map<String, Value>,
) -> Result<SavedFilter, ToolError> {
    let user = ctx.caller()?.user_id;
    let mut db = ctx.db().await?;
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM bff.saved_filters WHERE user_id = $1")
            .bind(user)
            .fetch_one(&mut *db)
            .await?;
    if count >= MAX_PER_USER {
        return Err(ToolError::unprocessable(format!(
            "you already have {MAX_PER_USER} saved filters; delete some first"
        )));
    }
    Ok(sqlx::query_as(&format!(
        "INSERT INTO bff.saved_filters (user_id, index_name, filter_name, conditions)
         VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
    ))
    .bind(user)
    .bind(index)
    .bind(name)
    .bind(sqlx::types::Json(conditions))
    .fetch_one(&mut *db)
    .await?)
}

/// The most saved filters one user keeps.
pub const MAX_PER_USER: i64 = 500;

/// One page of the caller's filters of an index, newest first, and their total.
pub async fn page(
    ctx: &Ctx,
    index: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<SavedFilter>, i64), ToolError> {
    let user = ctx.caller()?.user_id;
    let mut db = ctx.db().await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bff.saved_filters WHERE user_id = $1 AND index_name = $2",
    )
    .bind(user)
    .bind(index)
    .fetch_one(&mut *db)
    .await?;
    let rows = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM bff.saved_filters WHERE user_id = $1 AND index_name = $2
         ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(user)
    .bind(index)
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *db)
    .await?;
    Ok((rows, total))
}

/// The caller's filter `id` of `index`, or "not found".
pub async fn get(ctx: &Ctx, index: &str, id: Uuid) -> Result<SavedFilter, ToolError> {
    let user = ctx.caller()?.user_id;
    let mut db = ctx.db().await?;
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM bff.saved_filters WHERE id = $1 AND user_id = $2 AND index_name = $3"
    ))
    .bind(id)
    .bind(user)
    .bind(index)
    .fetch_optional(&mut *db)
    .await?
    .ok_or_else(|| ToolError::not_found("saved filter"))
}

/// Deletes the caller's filter `id` of `index`, returning it; anyone else's is "not found".
pub async fn delete(ctx: &Ctx, index: &str, id: Uuid) -> Result<SavedFilter, ToolError> {
    let user = ctx.caller()?.user_id;
    let mut db = ctx.db().await?;
    sqlx::query_as(&format!(
        "DELETE FROM bff.saved_filters WHERE id = $1 AND user_id = $2 AND index_name = $3
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(user)
    .bind(index)
    .fetch_optional(&mut *db)
    .await?
    .ok_or_else(|| ToolError::not_found("saved filter"))
}
