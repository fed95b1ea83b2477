//! API keys: long-lived `sk_haven_…` credentials that act as the user who created them. Any user may
//! create keys for themself; admins see and revoke everyone's. The server generates the key, shows
//! it once, and stores only its SHA-256.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::tokens::{hash_api_key, new_api_key, API_KEY_PREFIX};
use crate::context::Ctx;
use crate::error::ToolError;
use crate::registry::{Action, Method, Operation, Service};
use crate::sql;
use crate::types::{Paging, Text};

/// An API key as listed: never the secret, only a recognisable prefix.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// The key's id.
    pub id: Uuid,
    /// The first characters of the key, to recognise it.
    pub key_prefix: String,
    /// Whether the key works.
    pub active: bool,
    /// What the key is for.
    pub description: Option<String>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The user the key acts as.
    pub created_by: Uuid,
    /// Last time it authenticated a request (updated at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// False once deleted.
    pub is_active: bool,
    /// Optimistic-concurrency version.
    pub record_version: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

const KEY_COLUMNS: &str =
    "id, key_prefix, active, description, revoked_at, created_by, last_used_at, is_active, \
     record_version, created_at, updated_at";

/// A freshly created key: the only time the secret is shown.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    /// The stored key.
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The secret: send it as `Authorization: Bearer <key>`. It cannot be shown again.
    pub key: String,
}

/// Input of `createApiKey`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewApiKey {
    /// What the key is for, e.g. "Cursor on my laptop".
    pub description: Option<Text<500>>,
    /// Create it disabled (default: active).
    pub active: Option<bool>,
}

/// Input of `updateApiKey`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyPatch {
    /// The key to change.
    pub api_key_id: Uuid,
    /// `false` disables (revokes) the key; a revoked key cannot be re-enabled.
    pub active: Option<bool>,
    /// New description.
    pub description: Option<Text<500>>,
    /// Revocation time; sending it revokes the key (must not be in the future).
    pub revoked_at: Option<DateTime<Utc>>,
    /// The version you read; when sent and stale the update is refused with 409.
    pub record_version: Option<i32>,
}

/// Input of `listApiKeys`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyFilters {
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of API keys.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyList {
    /// The keys on this page.
    pub api_keys: Vec<ApiKey>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The API-key operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("createApiKey", Service::PlatformAdmin)
            .title("Create an API key")
            .describe(
                "Creates a long-lived API key that acts as the caller (same role and permissions) for MCP \
                 clients, agents and scripts. The secret `key` is in this response only; store it now. The \
                 server generates it: a client-sent key is refused.",
            )
            .rest(Method::Post, "/platformadmin-api/v1/apikeys")
            .creates("apiKey")
            .handler(create_key),
        Operation::build("listApiKeys", Service::PlatformAdmin)
            .title("List API keys")
            .who("any logged-in user, for their own keys; admins for every key")
            .describe(
                "Lists API keys with their status and prefix, never the secret: the caller's own, or everyone's \
                 for admins. Newest first, paginated.",
            )
            .rest(Method::Get, "/platformadmin-api/v1/apikeys")
            .reads(Action::List, "apiKeys")
            .handler(list_keys),
        Operation::build("updateApiKey", Service::PlatformAdmin)
            .title("Update or revoke an API key")
            .who("the key's owner, or an admin")
            .describe(
                "Changes a key's description or revokes it (`active: false` or `revokedAt`); a revoked key stops \
                 working at once and cannot be re-enabled. Owners manage their own keys; admins any key.",
            )
            .rest(Method::Patch, "/platformadmin-api/v1/apikeys/{apiKeyId}")
            .updates("apiKey")
            .handler(update_key),
    ]
}

async fn create_key(ctx: Ctx, input: NewApiKey) -> Result<CreatedApiKey, ToolError> {
    let owner = ctx.caller()?.user_id;
    let key = new_api_key();
    let active = input.active.unwrap_or(true);
    let mut db = ctx.db().await?;
    let sql = format!(
        "INSERT INTO platformadmin.api_keys (key_hash, key_prefix, active, description, created_by, revoked_at)
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $3 THEN NULL ELSE now() END) RETURNING {KEY_COLUMNS}"
    );
    let api_key = sqlx::query_as(&sql)
        .bind(hash_api_key(&key))
        .bind(&key[..API_KEY_PREFIX.len() + 6])
        .bind(active)
        .bind(input.description.as_ref().map(|d| d.as_str()))
        .bind(owner)
        .fetch_one(&mut *db)
        .await?;
    Ok(CreatedApiKey { api_key, key })
}

async fn list_keys(ctx: Ctx, input: ApiKeyFilters) -> Result<ApiKeyList, ToolError> {
    let caller = ctx.caller()?.clone();
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb = sql::list_select(KEY_COLUMNS, "platformadmin.api_keys WHERE is_active");
    if !caller.is_admin() {
        qb.push(" AND created_by = ");
        qb.push_bind(caller.user_id);
    }
    let mut db = ctx.db().await?;
    let (api_keys, paging) = sql::fetch_page(&mut db, qb, "created_at DESC, id", page).await?;
    Ok(ApiKeyList { api_keys, paging })
}

async fn update_key(ctx: Ctx, input: ApiKeyPatch) -> Result<ApiKey, ToolError> {
    let caller = ctx.caller()?.clone();
    if input
        .revoked_at
        .is_some_and(|t| t > Utc::now() + chrono::Duration::seconds(60))
    {
        return Err(ToolError::field("revokedAt", "must not be in the future"));
    }
    let mut db = ctx.db().await?;
    let current: ApiKey = sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS} FROM platformadmin.api_keys WHERE id = $1 AND is_active AND ($2 OR created_by = $3) FOR UPDATE"
    ))
    .bind(input.api_key_id)
    .bind(caller.is_admin())
    .bind(caller.user_id)
    .fetch_optional(&mut *db)
    .await?
    .ok_or_else(|| ToolError::not_found("API key"))?;
    ToolError::check_version(input.record_version, current.record_version, "API key")?;
    let revoke = input.active == Some(false) || input.revoked_at.is_some();
    if input.active == Some(true) && current.revoked_at.is_some() {
        return Err(ToolError::unprocessable(
            "a revoked API key cannot be re-enabled; create a new key",
        ));
    }
    let sql = format!(
        "UPDATE platformadmin.api_keys SET
            description = COALESCE($2, description),
            active = CASE WHEN $3 THEN false ELSE active END,
            revoked_at = CASE WHEN $3 THEN COALESCE(revoked_at, $4, now()) ELSE revoked_at END,
            record_version = record_version + 1, updated_at = now()
         WHERE id = $1 RETURNING {KEY_COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(input.api_key_id)
        .bind(input.description.as_ref().map(|d| d.as_str()))
        .bind(revoke)
        .bind(input.revoked_at)
        .fetch_one(&mut *db)
        .await?)
}
