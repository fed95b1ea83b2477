//! Avatar files stored in Postgres (`bytea`). The spec documents get/list/delete; we add the
//! upload it implies. Files travel base64-encoded so MCP clients can send them as JSON.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::distributions::Alphanumeric;
use rand::Rng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::context::Ctx;
use crate::error::ToolError;
use crate::registry::{Action, Method, Operation, Service};
use crate::sql;
use crate::types::{Filter, Name, Paging};

/// Canonical, padded, non-empty standard base64 (what the decoder accepts), as a JSON Schema pattern.
const BASE64_PATTERN: &str = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=|[A-Za-z0-9+/]{4})$";

/// An avatar file's metadata (lists and uploads return this; `getUserAvatarsFile` adds the data).
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AvatarFile {
    /// The file's id.
    pub id: Uuid,
    /// The name it was uploaded under.
    pub file_name: String,
    /// MIME type.
    pub mime_type: String,
    /// Size in bytes.
    pub file_size: i32,
    /// A 12-character key that lets others fetch the file.
    pub access_key: String,
    /// Who uploaded it.
    pub owner_id: Uuid,
    /// The user the avatar belongs to.
    pub user_id: Uuid,
    /// Optional JSON metadata (alt text, tags).
    pub metadata: Option<serde_json::Value>,
    /// False once deleted.
    pub is_active: bool,
    /// Optimistic-concurrency version.
    pub record_version: i32,
    /// Uploaded.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

const FILE_COLUMNS: &str =
    "id, file_name, mime_type, file_size, access_key, owner_id, user_id, metadata, \
     is_active, record_version, created_at, updated_at";

/// An avatar file with its content.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AvatarFileWithData {
    /// The metadata.
    #[serde(flatten)]
    pub file: AvatarFile,
    /// The content, base64-encoded.
    pub file_data: String,
}

/// The image types accepted as avatars.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
pub enum ImageType {
    /// PNG
    #[serde(rename = "image/png")]
    Png,
    /// JPEG
    #[serde(rename = "image/jpeg")]
    Jpeg,
    /// GIF
    #[serde(rename = "image/gif")]
    Gif,
    /// WebP
    #[serde(rename = "image/webp")]
    Webp,
}

impl ImageType {
    fn as_str(self) -> &'static str {
        match self {
            ImageType::Png => "image/png",
            ImageType::Jpeg => "image/jpeg",
            ImageType::Gif => "image/gif",
            ImageType::Webp => "image/webp",
        }
    }
}

/// Input of `uploadUserAvatarsFile`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAvatar {
    /// The original file name.
    pub file_name: Name,
    /// The image type.
    pub mime_type: ImageType,
    /// The image, base64-encoded (at most 1 MiB decoded).
    #[schemars(extend("contentEncoding" = "base64", "maxLength" = 1_398_104, "pattern" = BASE64_PATTERN))]
    pub file_data: String,
    /// Optional JSON metadata such as alt text.
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Identifies one avatar file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AvatarRef {
    /// The file's id.
    pub user_avatars_file_id: Uuid,
}

/// Input of `getUserAvatarsFile`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AvatarGet {
    /// The file's id.
    pub user_avatars_file_id: Uuid,
    /// The file's access key; lets users other than the owner (and admins) fetch it.
    #[serde(rename = "accessKey")]
    pub share_key: Option<String>,
}

/// Input of `listUserAvatarsFiles`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AvatarFilters {
    /// Partial, case-insensitive MIME type match.
    pub mime_type: Option<Filter>,
    /// Exact uploader id(s) (admins; others only see their own files).
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub owner_id: Option<Filter>,
    /// Exact user id(s).
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub user_id: Option<Filter>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of avatar files (metadata only).
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AvatarList {
    /// The files on this page.
    pub user_avatars_files: Vec<AvatarFile>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The avatar file operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("uploadUserAvatarsFile", Service::Auth)
            .title("Upload my avatar image")
            .describe(
                "Stores an avatar image (PNG, JPEG, GIF or WebP, base64 in `fileData`, at most 1 MiB) for the \
                 caller. Returns the file's metadata including its id and shareable accessKey.",
            )
            .rest(Method::Post, "/auth-api/v1/useravatarsfiles")
            .creates("userAvatarsFile")
            .handler(upload),
        Operation::build("getUserAvatarsFile", Service::Auth)
            .title("Get an avatar file")
            .who("the uploader and admins; anyone else with the file's `accessKey`")
            .describe(
                "Returns an avatar file with its base64 content. The uploader and admins may read it; anyone else \
                 must pass the file's `accessKey`.",
            )
            .rest(Method::Get, "/auth-api/v1/useravatarsfiles/{userAvatarsFileId}")
            .reads(Action::Get, "userAvatarsFile")
            .handler(get_file),
        Operation::build("listUserAvatarsFiles", Service::Auth)
            .title("List avatar files")
            .who("any logged-in user, for their own files; admins for all")
            .describe(
                "Lists avatar files' metadata (no content): the caller's own, or any for admins, filtered by MIME \
                 type, ownerId or userId. Paginated.",
            )
            .rest(Method::Get, "/auth-api/v1/useravatarsfiles")
            .reads(Action::List, "userAvatarsFiles")
            .handler(list_files),
        Operation::build("deleteUserAvatarsFile", Service::Auth)
            .title("Delete an avatar file")
            .who("the file's uploader, or an admin")
            .describe("Soft-deletes an avatar file; only its uploader or an admin may. Returns its last state.")
            .rest(Method::Delete, "/auth-api/v1/useravatarsfiles/{userAvatarsFileId}")
            .deletes("userAvatarsFile")
            .handler(delete_file),
    ]
}

async fn upload(ctx: Ctx, input: NewAvatar) -> Result<AvatarFile, ToolError> {
    let caller = ctx.caller()?.user_id;
    let data = BASE64
        .decode(input.file_data.trim())
        .map_err(|_| ToolError::field("fileData", "is not valid base64"))?;
    let max = ctx.services.settings.max_avatar_bytes;
    if data.is_empty() || data.len() > max {
        return Err(ToolError::field(
            "fileData",
            format!("must decode to 1..={max} bytes (got {})", data.len()),
        ));
    }
    let access_key: String = rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(12)
        .map(char::from)
        .collect();
    let mut db = ctx.db().await?;
    let sql = format!(
        "INSERT INTO auth.user_avatars_files (file_name, mime_type, file_size, access_key, owner_id, file_data, metadata, user_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $5) RETURNING {FILE_COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(input.file_name.as_str())
        .bind(input.mime_type.as_str())
        .bind(data.len() as i32)
        .bind(access_key)
        .bind(caller)
        .bind(data)
        .bind(input.metadata.map(serde_json::Value::Object))
        .fetch_one(&mut *db)
        .await?)
}

async fn get_file(ctx: Ctx, input: AvatarGet) -> Result<AvatarFileWithData, ToolError> {
    let caller = ctx.caller()?.clone();
    let mut db = ctx.db().await?;
    let sql = format!(
        "SELECT {FILE_COLUMNS}, file_data FROM auth.user_avatars_files WHERE id = $1 AND is_active"
    );
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        file: AvatarFile,
        file_data: Vec<u8>,
    }
    let row: Row = sqlx::query_as(&sql)
        .bind(input.user_avatars_file_id)
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("avatar file"))?;
    let shared = input.share_key.as_deref() == Some(row.file.access_key.as_str());
    if !(caller.is_self_or_admin(row.file.owner_id) || shared) {
        return Err(ToolError::not_found("avatar file"));
    }
    Ok(AvatarFileWithData {
        file_data: BASE64.encode(&row.file_data),
        file: row.file,
    })
}

async fn list_files(ctx: Ctx, input: AvatarFilters) -> Result<AvatarList, ToolError> {
    let caller = ctx.caller()?.clone();
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb = sql::list_select(FILE_COLUMNS, "auth.user_avatars_files WHERE is_active");
    if !caller.is_admin() {
        qb.push(" AND owner_id = ");
        qb.push_bind(caller.user_id);
    }
    sql::text_filter(&mut qb, "mime_type", input.mime_type.as_ref());
    sql::id_filter(&mut qb, "owner_id", "ownerId", input.owner_id.as_ref())?;
    sql::id_filter(&mut qb, "user_id", "userId", input.user_id.as_ref())?;
    let mut db = ctx.db().await?;
    let (user_avatars_files, paging) =
        sql::fetch_page(&mut db, qb, "created_at DESC, id", page).await?;
    Ok(AvatarList {
        user_avatars_files,
        paging,
    })
}

async fn delete_file(ctx: Ctx, input: AvatarRef) -> Result<AvatarFile, ToolError> {
    let caller = ctx.caller()?.clone();
    let mut db = ctx.db().await?;
    let sql = format!(
        "UPDATE auth.user_avatars_files SET is_active = false, record_version = record_version + 1, updated_at = now()
         WHERE id = $1 AND is_active AND ($2 OR owner_id = $3) RETURNING {FILE_COLUMNS}"
    );
    sqlx::query_as(&sql)
        .bind(input.user_avatars_file_id)
        .bind(caller.is_admin())
        .bind(caller.user_id)
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("avatar file"))
}
