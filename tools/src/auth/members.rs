//! Group memberships: admins add and remove members; anyone may read a group's member list
//! (member emails are shown to admins only).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::groups::load_group;
use crate::context::Ctx;
use crate::error::{on_constraint, ErrorKind, ToolError};
use crate::registry::{Access, Action, Method, Operation, Service};
use crate::sql;
use crate::types::{Filter, Paging};

/// A user's membership in a group.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct UserGroupMember {
    /// The membership's id.
    pub id: Uuid,
    /// The group.
    pub group_id: Uuid,
    /// The member.
    pub user_id: Uuid,
    /// The admin who added the member.
    pub owner_id: Option<Uuid>,
    /// False once removed.
    pub is_active: bool,
    /// Optimistic-concurrency version.
    pub record_version: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

const MEMBER_COLUMNS: &str = "m.id, m.group_id, m.user_id, m.owner_id, m.is_active, m.record_version, m.created_at, m.updated_at";

/// The member's user, joined into member lists.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberUser {
    /// Full name.
    pub fullname: String,
    /// Avatar URL.
    pub avatar: Option<String>,
    /// Email, shown to admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A membership with its user joined.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberWithUser {
    /// The membership.
    #[serde(flatten)]
    pub member: UserGroupMember,
    /// The member's user.
    pub user: MemberUser,
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    #[sqlx(flatten)]
    member: UserGroupMember,
    fullname: String,
    avatar: Option<String>,
    email: String,
}

/// Input of `createUserGroupMember`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewMember {
    /// The group to add to.
    pub group_id: Uuid,
    /// The user to add.
    pub user_id: Uuid,
}

/// Identifies one membership.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberRef {
    /// The membership's id.
    pub user_group_member_id: Uuid,
}

/// Input of `listUserGroupMembers`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberFilters {
    /// The group whose members to list.
    pub group_id: Uuid,
    /// Exact member id(s).
    pub user_id: Option<Filter>,
    /// Exact id(s) of the admin who added them.
    pub owner_id: Option<Filter>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of memberships.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberList {
    /// The memberships on this page, each with its user.
    pub user_group_members: Vec<MemberWithUser>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The membership operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("createUserGroupMember", Service::Auth)
            .title("Add a user to a group (admin)")
            .describe("Adds an active user to an active group; adding someone twice is a conflict. Returns the membership.")
            .rest(Method::Post, "/auth-api/v1/usergroupmembers")
            .access(Access::Admin)
            .creates("userGroupMember")
            .handler(create_member),
        Operation::build("deleteUserGroupMember", Service::Auth)
            .title("Remove a user from a group (admin)")
            .describe("Ends a membership (soft delete). Returns the membership's last state.")
            .rest(Method::Delete, "/auth-api/v1/usergroupmembers/{userGroupMemberId}")
            .access(Access::Admin)
            .deletes("userGroupMember")
            .handler(delete_member),
        Operation::build("getUserGroupMember", Service::Auth)
            .title("Get a group membership")
            .describe("Returns one active membership by id.")
            .rest(Method::Get, "/auth-api/v1/usergroupmembers/{userGroupMemberId}")
            .access(Access::Public)
            .reads(Action::Get, "userGroupMember")
            .handler(get_member),
        Operation::build("listUserGroupMembers", Service::Auth)
            .title("List a group's members")
            .describe(
                "Lists the active members of group `groupId`, each with the member's name and avatar (and email \
                 for admins), optionally filtered by userId or ownerId. Paginated.",
            )
            .rest(Method::Get, "/auth-api/v1/listusergroupmembers/{groupId}")
            .access(Access::Public)
            .reads(Action::List, "userGroupMembers")
            .handler(list_members),
    ]
}

const ALREADY_MEMBER: &[(&str, ErrorKind, &str)] = &[(
    "user_group_members_once",
    ErrorKind::Conflict,
    "this user is already a member of the group",
)];

async fn create_member(ctx: Ctx, input: NewMember) -> Result<UserGroupMember, ToolError> {
    load_group(&ctx, input.group_id, true).await?;
    let owner = ctx.user_id();
    let mut db = ctx.db().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM auth.users WHERE id = $1 AND is_active)")
            .bind(input.user_id)
            .fetch_one(&mut *db)
            .await?;
    if !exists {
        return Err(ToolError::not_found("user"));
    }
    let sql = format!(
        "INSERT INTO auth.user_group_members AS m (group_id, user_id, owner_id) VALUES ($1, $2, $3) RETURNING {MEMBER_COLUMNS}"
    );
    sqlx::query_as(&sql)
        .bind(input.group_id)
        .bind(input.user_id)
        .bind(owner)
        .fetch_one(&mut *db)
        .await
        .map_err(|e| on_constraint(e, ALREADY_MEMBER))
}

async fn delete_member(ctx: Ctx, input: MemberRef) -> Result<UserGroupMember, ToolError> {
    let mut db = ctx.db().await?;
    let sql = format!(
        "UPDATE auth.user_group_members AS m SET is_active = false, record_version = record_version + 1, updated_at = now()
         WHERE id = $1 AND is_active RETURNING {MEMBER_COLUMNS}"
    );
    sqlx::query_as(&sql)
        .bind(input.user_group_member_id)
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("user group member"))
}

async fn get_member(ctx: Ctx, input: MemberRef) -> Result<UserGroupMember, ToolError> {
    let mut db = ctx.db().await?;
    let sql = format!(
        "SELECT {MEMBER_COLUMNS} FROM auth.user_group_members m WHERE m.id = $1 AND m.is_active"
    );
    sqlx::query_as(&sql)
        .bind(input.user_group_member_id)
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("user group member"))
}

async fn list_members(ctx: Ctx, input: MemberFilters) -> Result<MemberList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let show_email = ctx.principal.as_ref().is_some_and(|p| p.is_admin());
    load_group(&ctx, input.group_id, false).await?;
    let mut qb = QueryBuilder::new(format!(
        "SELECT {MEMBER_COLUMNS}, u.fullname, u.avatar, u.email, count(*) OVER () AS total_count
         FROM auth.user_group_members m JOIN auth.users u ON u.id = m.user_id
         WHERE m.is_active AND m.group_id = "
    ));
    qb.push_bind(input.group_id);
    sql::id_filter(&mut qb, "m.user_id", "userId", input.user_id.as_ref())?;
    sql::id_filter(&mut qb, "m.owner_id", "ownerId", input.owner_id.as_ref())?;
    let mut db = ctx.db().await?;
    let (rows, paging) =
        sql::fetch_page::<MemberRow>(&mut db, qb, "m.created_at, m.id", page).await?;
    let user_group_members = rows
        .into_iter()
        .map(|r| MemberWithUser {
            member: r.member,
            user: MemberUser {
                fullname: r.fullname,
                avatar: r.avatar,
                email: show_email.then_some(r.email),
            },
        })
        .collect();
    Ok(MemberList {
        user_group_members,
        paging,
    })
}
