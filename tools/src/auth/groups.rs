//! User groups: admin-managed, publicly readable.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::ImageUrl;
use crate::context::Ctx;
use crate::error::ToolError;
use crate::registry::{Access, Action, Method, Operation, Service};
use crate::sql;
use crate::types::{Filter, Name, Paging, RecordMeta};

/// A user group.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct UserGroup {
    /// The group's id.
    pub id: Uuid,
    /// The group's name.
    pub group_name: String,
    /// The group's icon URL.
    pub avatar: Option<String>,
    /// System fields (`isActive`, `recordVersion`, `createdAt`, `updatedAt`); `_owner`: the admin who created it.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

const GROUP_COLUMNS: &str =
    "id, group_name, avatar, is_active, record_version, created_at, updated_at, owner_id";

/// Input of `createUserGroup`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewGroup {
    /// The group's name.
    pub group_name: Name,
    /// The group's icon URL.
    pub avatar: Option<ImageUrl>,
}

/// Input of `updateUserGroup`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupPatch {
    /// The group to change.
    pub user_group_id: Uuid,
    /// New name.
    pub group_name: Option<Name>,
    /// New icon URL.
    pub avatar: Option<ImageUrl>,
    /// The version you read; when sent and stale the update is refused with 409.
    pub record_version: Option<i32>,
}

/// Identifies one group.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupRef {
    /// The group's id.
    pub user_group_id: Uuid,
}

/// Input of `listUserGroups`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupFilters {
    /// Partial, case-insensitive name match.
    pub group_name: Option<Filter>,
    /// Partial, case-insensitive icon URL match.
    pub avatar: Option<Filter>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of groups.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupList {
    /// The groups on this page.
    pub user_groups: Vec<UserGroup>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The group operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("createUserGroup", Service::Auth)
            .title("Create a user group (admin)")
            .describe("Creates a user group with a name and optional icon. Returns the group.")
            .rest(Method::Post, "/auth-api/v1/usergroups")
            .access(Access::Admin)
            .creates("userGroup")
            .handler(create_group),
        Operation::build("updateUserGroup", Service::Auth)
            .title("Update a user group (admin)")
            .describe("Renames a user group or changes its icon. Returns the group.")
            .rest(Method::Patch, "/auth-api/v1/usergroups/{userGroupId}")
            .access(Access::Admin)
            .updates("userGroup")
            .handler(update_group),
        Operation::build("deleteUserGroup", Service::Auth)
            .title("Delete a user group (admin)")
            .describe("Soft-deletes a user group and ends its memberships. Returns the group's last state.")
            .rest(Method::Delete, "/auth-api/v1/usergroups/{userGroupId}")
            .access(Access::Admin)
            .deletes("userGroup")
            .handler(delete_group),
        Operation::build("getUserGroup", Service::Auth)
            .title("Get a user group")
            .describe("Returns one active user group by id.")
            .rest(Method::Get, "/auth-api/v1/usergroups/{userGroupId}")
            .access(Access::Public)
            .reads(Action::Get, "userGroup")
            .handler(get_group),
        Operation::build("listUserGroups", Service::Auth)
            .title("List user groups")
            .describe("Lists active user groups by name, filtered by partial name or icon URL. Paginated.")
            .rest(Method::Get, "/auth-api/v1/usergroups")
            .access(Access::Public)
            .reads(Action::List, "userGroups")
            .handler(list_groups),
    ]
}

async fn create_group(ctx: Ctx, input: NewGroup) -> Result<UserGroup, ToolError> {
    let owner = ctx.user_id();
    let mut db = ctx.db().await?;
    let sql = format!("INSERT INTO auth.user_groups (group_name, avatar, owner_id) VALUES ($1, $2, $3) RETURNING {GROUP_COLUMNS}");
    Ok(sqlx::query_as(&sql)
        .bind(input.group_name.as_str())
        .bind(input.avatar.as_ref().map(ImageUrl::as_str))
        .bind(owner)
        .fetch_one(&mut *db)
        .await?)
}

/// Loads an active group, optionally locking it.
pub async fn load_group(ctx: &Ctx, id: Uuid, lock: bool) -> Result<UserGroup, ToolError> {
    let mut db = ctx.db().await?;
    let sql = format!(
        "SELECT {GROUP_COLUMNS} FROM auth.user_groups WHERE id = $1 AND is_active{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("user group"))
}

async fn update_group(ctx: Ctx, input: GroupPatch) -> Result<UserGroup, ToolError> {
    let current = load_group(&ctx, input.user_group_id, true).await?;
    ToolError::check_version(
        input.record_version,
        current.meta.record_version,
        "user group",
    )?;
    let mut db = ctx.db().await?;
    let sql = format!(
        "UPDATE auth.user_groups SET group_name = COALESCE($2, group_name), avatar = COALESCE($3, avatar),
            record_version = record_version + 1, updated_at = now()
         WHERE id = $1 RETURNING {GROUP_COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(input.user_group_id)
        .bind(input.group_name.as_ref().map(|n| n.as_str()))
        .bind(input.avatar.as_ref().map(ImageUrl::as_str))
        .fetch_one(&mut *db)
        .await?)
}

async fn delete_group(ctx: Ctx, input: GroupRef) -> Result<UserGroup, ToolError> {
    load_group(&ctx, input.user_group_id, true).await?;
    let mut db = ctx.db().await?;
    sqlx::query(
        "UPDATE auth.user_group_members SET is_active = false, record_version = record_version + 1, updated_at = now()
         WHERE group_id = $1 AND is_active",
    )
    .bind(input.user_group_id)
    .execute(&mut *db)
    .await?;
    let sql = format!(
        "UPDATE auth.user_groups SET is_active = false, record_version = record_version + 1, updated_at = now()
         WHERE id = $1 RETURNING {GROUP_COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(input.user_group_id)
        .fetch_one(&mut *db)
        .await?)
}

async fn get_group(ctx: Ctx, input: GroupRef) -> Result<UserGroup, ToolError> {
    load_group(&ctx, input.user_group_id, false).await
}

async fn list_groups(ctx: Ctx, input: GroupFilters) -> Result<GroupList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb = sql::list_select(GROUP_COLUMNS, "auth.user_groups WHERE is_active");
    sql::text_filter(&mut qb, "group_name", input.group_name.as_ref());
    sql::text_filter(&mut qb, "avatar", input.avatar.as_ref());
    let mut db = ctx.db().await?;
    let (user_groups, paging) = sql::fetch_page(&mut db, qb, "group_name, id", page).await?;
    Ok(GroupList {
        user_groups,
        paging,
    })
}
