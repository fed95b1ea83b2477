//! User operations: register, create, read, update, archive/delete, list/search, role and
//! password changes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use super::model::{BriefUser, ImageUrl, LanguageTag, User, USER_COLUMNS};
use super::password;
use crate::context::Ctx;
use crate::error::{on_constraint, ErrorKind, ToolError};
use crate::principal::{Principal, Role};
use crate::registry::{Access, Action, Flow, Method, Operation, Service};
use crate::sql;
use crate::types::EnumFilter;
use crate::types::{Email, Filter, LongText, Mobile, Name, NewPassword, Page, Paging};
use crate::vocabulary::Roles;

const EMAIL_TAKEN: &[(&str, ErrorKind, &str)] = &[(
    "users_email_key",
    ErrorKind::Conflict,
    "a user with this email already exists",
)];

/// Input of `registerUser` and `createUser`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewUser {
    /// Login email; must be unused.
    pub email: Email,
    /// Password, 8–128 characters; stored as an Argon2id hash and never returned.
    pub password: NewPassword,
    /// Full name.
    pub fullname: Name,
    /// Avatar URL; a random avatar is generated when omitted.
    pub avatar: Option<ImageUrl>,
    /// Preferred UI language, e.g. `en`.
    pub preferred_language: Option<LanguageTag>,
    /// Biography.
    pub bio: Option<LongText>,
}

/// Identifies one user by the `userId` path parameter.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserRef {
    /// The user's id.
    pub user_id: Uuid,
}

/// Input of `updateUser` and `updateProfile`: only the fields sent change.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserPatch {
    /// The user to change.
    pub user_id: Uuid,
    /// New full name.
    pub fullname: Option<Name>,
    /// New avatar URL.
    pub avatar: Option<ImageUrl>,
    /// New preferred language.
    pub preferred_language: Option<LanguageTag>,
    /// New biography.
    pub bio: Option<LongText>,
    /// New mobile number in international form (e.g. `+351912345678`); a change makes it
    /// unverified until mobile verification completes.
    pub mobile: Option<Mobile>,
    /// The version you read; when sent and stale the update is refused with 409.
    pub record_version: Option<i32>,
}

/// Input of `updateUserRole`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleChange {
    /// The user whose role changes.
    pub user_id: Uuid,
    /// The new role.
    pub role_id: Role,
}

/// Input of `updateUserPassword`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordChange {
    /// Must be the caller's own id.
    pub user_id: Uuid,
    /// The current password, checked before anything changes.
    pub old_password: String,
    /// The new password, 8–128 characters.
    pub new_password: NewPassword,
}

/// Input of `updateUserPasswordByAdmin`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordReset {
    /// The user whose password is replaced.
    pub user_id: Uuid,
    /// The new password, 8–128 characters.
    pub password: NewPassword,
}

/// Input of `listUsers`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserFilters {
    /// Partial, case-insensitive email match.
    pub email: Option<Filter>,
    /// Partial, case-insensitive name match.
    pub fullname: Option<Filter>,
    /// Role filter (`user`, `admin`, `superAdmin`).
    pub role_id: Option<EnumFilter<Roles>>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// Input of `searchUsers`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserSearch {
    /// Matched against email and full name (partial, case-insensitive).
    pub keyword: Name,
    /// Role filter.
    pub role_id: Option<EnumFilter<Roles>>,
    /// Page number (1-based).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of users.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UserList {
    /// The users on this page.
    pub users: Vec<User>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The user operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("registerUser", Service::Auth)
            .core(Flow::Visitor, 10)
            .title("Register a new account")
            .describe(
                "Creates a new user account with role `user` for the person calling (sign-up). \
                 Returns the created user (never the password). A taken email is refused with a conflict. \
                 Log in with `login` afterwards to get an access token.",
            )
            .rest(Method::Post, "/auth-api/v1/registeruser")
            .access(Access::Public)
            .creates("user")
            .handler(register_user),
        Operation::build("createUser", Service::Auth)
            .title("Create a user (admin)")
            .describe("Creates a user account from the admin panel, with role `user`. Returns the user.")
            .rest(Method::Post, "/auth-api/v1/users")
            .access(Access::Admin)
            .creates("user")
            .handler(create_user),
        Operation::build("getUser", Service::Auth)
            .title("Get a user")
            .who("the user themself, or an admin")
            .describe(
                "Returns one user's full profile. Users may read only themselves; admins may read anyone. \
                 Anyone else's id answers not found.",
            )
            .rest(Method::Get, "/auth-api/v1/users/{userId}")
            .reads(Action::Get, "user")
            .handler(get_user),
        Operation::build("getBriefUser", Service::Auth)
            .title("Get a public profile")
            .describe("Returns the public profile of an active user: id, full name, avatar and biography.")
            .rest(Method::Get, "/auth-api/v1/briefuser/{userId}")
            .access(Access::Public)
            .reads(Action::Get, "user")
            .handler(get_brief_user),
        Operation::build("updateUser", Service::Auth)
            .title("Update a user (admin)")
            .who("admins; only superAdmins may change a superAdmin")
            .describe(
                "Changes a user's full name, avatar, preferred language, biography or mobile number (a new number is unverified until mobile verification). Email, password and role \
                 have their own operations. Only superAdmins may change a superAdmin. Returns the updated user.",
            )
            .rest(Method::Patch, "/auth-api/v1/users/{userId}")
            .access(Access::Admin)
            .updates("user")
            .handler(update_user),
        Operation::build("updateProfile", Service::Auth)
            .core(Flow::Account, 20)
            .title("Update my profile")
            .who("the user themself (`userId` must be the caller)")
            .describe(
                "Changes the caller's own full name, avatar, preferred language, biography or mobile number (a new number is unverified until mobile verification); `userId` must be \
                 the caller. Returns the updated user.",
            )
            .rest(Method::Patch, "/auth-api/v1/profile/{userId}")
            .updates("user")
            .handler(update_profile),
        Operation::build("deleteUser", Service::Auth)
            .title("Delete a user (admin)")
            .who("admins for plain users; only superAdmins for admins and superAdmins; nobody for themself")
            .describe(
                "Soft-deletes a user (isActive=false): their tokens and API keys stop working at once. \
                 Only superAdmins may delete admins or superAdmins; nobody deletes themself here; the last \
                 active superAdmin cannot be deleted (422). Returns the user's last state.",
            )
            .rest(Method::Delete, "/auth-api/v1/users/{userId}")
            .access(Access::Admin)
            .deletes("user")
            .handler(delete_user),
        Operation::build("archiveProfile", Service::Auth)
            .title("Archive my profile")
            .who("the user themself (`userId` must be the caller)")
            .describe(
                "Archives the caller's own account (isActive=false) and logs them out everywhere; `userId` must \
                 be the caller. The last active superAdmin cannot archive themself (422). Returns the user's \
                 last state.",
            )
            .rest(Method::Delete, "/auth-api/v1/archiveprofile/{userId}")
            .deletes("user")
            .handler(archive_profile),
        Operation::build("listUsers", Service::Auth)
            .core(Flow::Admin, 50)
            .title("List users (admin)")
            .describe(
                "Lists active users, newest first, filtered by partial email, full name or role (each filter takes \
                 one value or an array; the value \"null\" matches empty). Paginated with pageNumber/pageRowCount.",
            )
            .rest(Method::Get, "/auth-api/v1/users")
            .access(Access::Admin)
            .reads(Action::List, "users")
            .handler(list_users),
        Operation::build("searchUsers", Service::Auth)
            .core(Flow::Admin, 60)
            .title("Search users (admin)")
            .describe(
                "Finds active users whose email or full name contains `keyword` (case-insensitive), optionally \
                 restricted by role. Paginated.",
            )
            .rest(Method::Get, "/auth-api/v1/searchusers")
            .access(Access::Admin)
            .reads(Action::List, "users")
            .handler(search_users),
        Operation::build("updateUserRole", Service::Auth)
            .title("Change a user's role (admin)")
            .who("admins between `user` and `admin`; only superAdmins grant or take away `superAdmin` or change an admin; nobody for their own role")
            .describe(
                "Sets a user's role to `user`, `admin` or `superAdmin`. Admins may move users between `user` and \
                 `admin`; only superAdmins may grant or take away `superAdmin` or change an admin. Nobody changes \
                 their own role, and the last active superAdmin cannot be demoted (422). Takes effect on the \
                 user's next request.",
            )
            .rest(Method::Patch, "/auth-api/v1/userrole/{userId}")
            .access(Access::Admin)
            .updates("user")
            .handler(update_user_role),
        Operation::build("updateUserPassword", Service::Auth)
            .title("Change my password")
            .who("the user themself (`userId` must be the caller)")
            .describe(
                "Changes the caller's own password after checking `oldPassword`; `userId` must be the caller. \
                 Other sessions of the user are logged out. Returns the user.",
            )
            .rest(Method::Patch, "/auth-api/v1/userpassword/{userId}")
            .updates("user")
            .handler(update_user_password),
        Operation::build("updateUserPasswordByAdmin", Service::Auth)
            .title("Set a user's password (admin)")
            .who("superAdmins for anyone; admins for plain users only")
            .describe(
                "Replaces a user's password without the old one and logs them out everywhere. SuperAdmins may \
                 change anyone's password; admins only those of plain users. Returns the user.",
            )
            .rest(Method::Patch, "/auth-api/v1/userpasswordbyadmin/{userId}")
            .access(Access::Admin)
            .updates("user")
            .handler(update_user_password_by_admin),
    ]
}

async fn insert_user(ctx: &Ctx, input: NewUser, owner: Option<Uuid>) -> Result<User, ToolError> {
    let hash = password::hash(ctx, input.password.expose()).await?;
    let id = Uuid::new_v4();
    let avatar = input.avatar.map(String::from).unwrap_or_else(|| {
        format!(
            "https://api.dicebear.com/9.x/thumbs/svg?seed={}",
            id.simple()
        )
    });
    let mut db = ctx.db().await?;
    let sql = format!(
        "INSERT INTO auth.users (id, email, password_hash, fullname, avatar, preferred_language, bio, owner_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {USER_COLUMNS}"
    );
    sqlx::query_as::<_, User>(&sql)
        .bind(id)
        .bind(input.email.as_str())
        .bind(hash)
        .bind(input.fullname.as_str())
        .bind(avatar)
        .bind(input.preferred_language.as_ref().map(LanguageTag::as_str))
        .bind(input.bio.as_ref().map(|b| b.as_str()))
        .bind(owner.unwrap_or(id))
        .fetch_one(&mut *db)
        .await
        .map_err(|e| on_constraint(e, EMAIL_TAKEN))
}

async fn register_user(ctx: Ctx, input: NewUser) -> Result<User, ToolError> {
    ctx.services.limits.admit_registration(&ctx)?;
    insert_user(&ctx, input, None).await
}

async fn create_user(ctx: Ctx, input: NewUser) -> Result<User, ToolError> {
    let owner = ctx.user_id();
    insert_user(&ctx, input, owner).await
}

/// Loads an active user by id, locking the row for the rest of the transaction when `lock`.
pub async fn load_user(
    db: &mut PgConnection,
    user_id: Uuid,
    lock: bool,
) -> Result<Option<User>, ToolError> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM auth.users WHERE id = $1 AND is_active{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(sqlx::query_as::<_, User>(&sql)
        .bind(user_id)
        .fetch_optional(db)
        .await?)
}

/// The caller, when they are `user_id` or an admin; otherwise "not found" (existence must not leak).
fn self_or_admin(ctx: &Ctx, user_id: Uuid) -> Result<&Principal, ToolError> {
    let caller = ctx.caller()?;
    if caller.is_self_or_admin(user_id) {
        Ok(caller)
    } else {
        Err(ToolError::not_found("user"))
    }
}

/// The caller, when they are `user_id` themself; otherwise "not found".
fn only_self(ctx: &Ctx, user_id: Uuid) -> Result<&Principal, ToolError> {
    let caller = ctx.caller()?;
    if caller.user_id == user_id {
        Ok(caller)
    } else {
        Err(ToolError::not_found("user"))
    }
}

async fn get_user(ctx: Ctx, input: UserRef) -> Result<User, ToolError> {
    self_or_admin(&ctx, input.user_id)?;
    let mut db = ctx.db().await?;
    load_user(&mut db, input.user_id, false)
        .await?
        .ok_or_else(|| ToolError::not_found("user"))
}

async fn get_brief_user(ctx: Ctx, input: UserRef) -> Result<BriefUser, ToolError> {
    let mut db = ctx.db().await?;
    sqlx::query_as::<_, BriefUser>(
        "SELECT id, fullname, avatar, bio, is_active FROM auth.users WHERE id = $1 AND is_active",
    )
    .bind(input.user_id)
    .fetch_optional(&mut *db)
    .await?
    .ok_or_else(|| ToolError::not_found("user"))
}

/// Refuses when `caller` may not manage `target`: only superAdmins manage admins and superAdmins.
fn may_manage(caller: &Principal, target: &User) -> Result<(), ToolError> {
    let target_role = Role::parse(&target.role_id).unwrap_or(Role::User);
    if target_role.is_admin() && caller.role < Role::SuperAdmin {
        return Err(ToolError::forbidden(
            "only a superAdmin may change an admin or superAdmin account",
        ));
    }
    Ok(())
}

async fn patch_user(ctx: &Ctx, input: UserPatch) -> Result<User, ToolError> {
    let mut db = ctx.db().await?;
    let sql = format!(
        "UPDATE auth.users SET
            fullname = COALESCE($2, fullname), avatar = COALESCE($3, avatar),
            preferred_language = COALESCE($4, preferred_language), bio = COALESCE($5, bio),
            mobile_verified = mobile_verified AND ($6::text IS NULL OR $6 IS NOT DISTINCT FROM mobile),
            mobile = COALESCE($6, mobile),
            record_version = record_version + 1, updated_at = now()
         WHERE id = $1 AND is_active RETURNING {USER_COLUMNS}"
    );
    sqlx::query_as::<_, User>(&sql)
        .bind(input.user_id)
        .bind(input.fullname.as_ref().map(|n| n.as_str()))
        .bind(input.avatar.as_ref().map(ImageUrl::as_str))
        .bind(input.preferred_language.as_ref().map(LanguageTag::as_str))
        .bind(input.bio.as_ref().map(|b| b.as_str()))
        .bind(input.mobile.as_ref().map(Mobile::as_str))
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("user"))
}

/// Locks the target row and checks the optional `recordVersion` the caller read.
async fn lock_for_update(
    ctx: &Ctx,
    user_id: Uuid,
    record_version: Option<i32>,
) -> Result<User, ToolError> {
    let mut db = ctx.db().await?;
    let user = load_user(&mut db, user_id, true)
        .await?
        .ok_or_else(|| ToolError::not_found("user"))?;
    ToolError::check_version(record_version, user.meta.record_version, "user")?;
    Ok(user)
}

async fn update_user(ctx: Ctx, input: UserPatch) -> Result<User, ToolError> {
    let caller = ctx.caller()?.clone();
    let target = lock_for_update(&ctx, input.user_id, input.record_version).await?;
    may_manage(&caller, &target)?;
    patch_user(&ctx, input).await
}

async fn update_profile(ctx: Ctx, input: UserPatch) -> Result<User, ToolError> {
    only_self(&ctx, input.user_id)?;
    lock_for_update(&ctx, input.user_id, input.record_version).await?;
    patch_user(&ctx, input).await
}

async fn deactivate(ctx: &Ctx, user_id: Uuid) -> Result<User, ToolError> {
    let mut db = ctx.db().await?;
    let sql = format!(
        "UPDATE auth.users SET is_active = false, record_version = record_version + 1, updated_at = now()
         WHERE id = $1 AND is_active RETURNING {USER_COLUMNS}"
    );
    let user = sqlx::query_as::<_, User>(&sql)
        .bind(user_id)
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("user"))?;
    revoke_sessions(&mut db, user_id, None).await?;
    Ok(user)
}

/// Revokes every open session of `user_id` except `keep`.
pub async fn revoke_sessions(
    db: &mut PgConnection,
    user_id: Uuid,
    keep: Option<Uuid>,
) -> Result<(), ToolError> {
    sqlx::query(
        "UPDATE auth.sessions SET revoked_at = now()
         WHERE user_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR id <> $2)",
    )
    .bind(user_id)
    .bind(keep)
    .execute(db)
    .await?;
    Ok(())
}

/// Locks every active superAdmin's row (in id order, before any other user row of the call, so
/// concurrent calls queue here instead of deadlocking) and returns their ids. Two superAdmins
/// removing each other at once thus see each other's change, and [`keep_a_superadmin`] counts
/// exactly.
async fn lock_superadmins(ctx: &Ctx) -> Result<Vec<Uuid>, ToolError> {
    let mut db = ctx.db().await?;
    Ok(sqlx::query_scalar(
        "SELECT id FROM auth.users WHERE role_id = 'superAdmin' AND is_active ORDER BY id FOR UPDATE",
    )
    .fetch_all(&mut *db)
    .await?)
}

/// Refuses `doing` (archiving, deleting, demoting) `target` when it is the last active superAdmin
/// among `superadmins` (from [`lock_superadmins`]): nobody could administer the instance after.
fn keep_a_superadmin(superadmins: &[Uuid], target: Uuid, doing: &str) -> Result<(), ToolError> {
    if superadmins == [target] {
        return Err(ToolError::unprocessable(format!(
            "{doing} the last active superAdmin is refused: the instance would have no superAdmin left. \
             Make another user superAdmin first (updateUserRole)"
        )));
    }
    Ok(())
}

async fn delete_user(ctx: Ctx, input: UserRef) -> Result<User, ToolError> {
    let caller = ctx.caller()?.clone();
    if caller.user_id == input.user_id {
        return Err(ToolError::unprocessable(
            "you cannot delete yourself here; use archiveProfile",
        ));
    }
    let superadmins = lock_superadmins(&ctx).await?;
    let target = lock_for_update(&ctx, input.user_id, None).await?;
    may_manage(&caller, &target)?;
    keep_a_superadmin(&superadmins, input.user_id, "deleting")?;
    deactivate(&ctx, input.user_id).await
}

async fn archive_profile(ctx: Ctx, input: UserRef) -> Result<User, ToolError> {
    only_self(&ctx, input.user_id)?;
    let superadmins = lock_superadmins(&ctx).await?;
    keep_a_superadmin(&superadmins, input.user_id, "archiving")?;
    deactivate(&ctx, input.user_id).await
}

fn user_query<'a>() -> QueryBuilder<'a, Postgres> {
    sql::list_select(USER_COLUMNS, "auth.users WHERE is_active")
}

async fn fetch_user_page(
    ctx: &Ctx,
    qb: QueryBuilder<'_, Postgres>,
    page: Page,
) -> Result<UserList, ToolError> {
    let mut db = ctx.db().await?;
    let (users, paging) = sql::fetch_page(&mut db, qb, "created_at DESC, id", page).await?;
    Ok(UserList { users, paging })
}

async fn list_users(ctx: Ctx, input: UserFilters) -> Result<UserList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb = user_query();
    sql::text_filter(&mut qb, "email", input.email.as_ref());
    sql::text_filter(&mut qb, "fullname", input.fullname.as_ref());
    sql::enum_filter(&mut qb, "role_id", input.role_id.as_deref());
    fetch_user_page(&ctx, qb, page).await
}

async fn search_users(ctx: Ctx, input: UserSearch) -> Result<UserList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb = user_query();
    let pattern = format!("%{}%", sql::escape_like(input.keyword.as_str()));
    qb.push(" AND (email ILIKE ");
    qb.push_bind(pattern.clone());
    qb.push(" OR fullname ILIKE ");
    qb.push_bind(pattern);
    qb.push(")");
    sql::enum_filter(&mut qb, "role_id", input.role_id.as_deref());
    fetch_user_page(&ctx, qb, page).await
}

async fn set_role(ctx: &Ctx, user_id: Uuid, role: Role) -> Result<User, ToolError> {
    let mut db = ctx.db().await?;
    let sql = format!(
        "UPDATE auth.users SET role_id = $2, record_version = record_version + 1, updated_at = now()
         WHERE id = $1 AND is_active RETURNING {USER_COLUMNS}"
    );
    Ok(sqlx::query_as::<_, User>(&sql)
        .bind(user_id)
        .bind(role.as_str())
        .fetch_one(&mut *db)
        .await?)
}

async fn update_user_role(ctx: Ctx, input: RoleChange) -> Result<User, ToolError> {
    let caller = ctx.caller()?.clone();
    if caller.user_id == input.user_id {
        return Err(ToolError::forbidden("you cannot change your own role"));
    }
    let superadmins = lock_superadmins(&ctx).await?;
    let target = lock_for_update(&ctx, input.user_id, None).await?;
    may_manage(&caller, &target)?;
    if input.role_id == Role::SuperAdmin && caller.role < Role::SuperAdmin {
        return Err(ToolError::forbidden(
            "only a superAdmin may grant the superAdmin role",
        ));
    }
    if input.role_id != Role::SuperAdmin {
        keep_a_superadmin(&superadmins, input.user_id, "demoting")?;
    }
    set_role(&ctx, input.user_id, input.role_id).await
}

/// Stores `hash` as the user's password; with `expected`, only if the stored hash is still that
/// one (the old password was checked outside the transaction, so a concurrent change wins).
async fn set_password(
    ctx: &Ctx,
    user_id: Uuid,
    hash: String,
    expected: Option<&str>,
) -> Result<User, ToolError> {
    let mut db = ctx.db().await?;
    let sql = format!(
        "UPDATE auth.users SET password_hash = $2, record_version = record_version + 1, updated_at = now()
         WHERE id = $1 AND is_active AND ($3::text IS NULL OR password_hash = $3) RETURNING {USER_COLUMNS}"
    );
    sqlx::query_as::<_, User>(&sql)
        .bind(user_id)
        .bind(hash)
        .bind(expected)
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| {
            ToolError::conflict("the password was changed meanwhile; read it again and retry")
        })
}

/// Checks the old password and hashes the new one before the transaction opens, so no pooled
/// connection waits on Argon2.
async fn update_user_password(ctx: Ctx, input: PasswordChange) -> Result<User, ToolError> {
    let caller = only_self(&ctx, input.user_id)?.clone();
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM auth.users WHERE id = $1 AND is_active")
            .bind(input.user_id)
            .fetch_optional(&ctx.services.db)
            .await?
            .ok_or_else(|| ToolError::not_found("user"))?;
    if !password::verify(&ctx, &input.old_password, Some(&stored)).await? {
        return Err(ToolError::field(
            "oldPassword",
            "does not match the current password",
        ));
    }
    let hash = password::hash(&ctx, input.new_password.expose()).await?;
    let user = set_password(&ctx, input.user_id, hash, Some(&stored)).await?;
    let mut db = ctx.db().await?;
    revoke_sessions(&mut db, input.user_id, caller.session_id()).await?;
    Ok(user)
}

async fn update_user_password_by_admin(ctx: Ctx, input: PasswordReset) -> Result<User, ToolError> {
    let caller = ctx.caller()?.clone();
    // Hash first: the row lock below must not be held while Argon2 runs.
    let hash = password::hash(&ctx, input.password.expose()).await?;
    let target = lock_for_update(&ctx, input.user_id, None).await?;
    if caller.user_id != target.id {
        may_manage(&caller, &target)?;
    }
    let user = set_password(&ctx, input.user_id, hash, None).await?;
    let mut db = ctx.db().await?;
    revoke_sessions(
        &mut db,
        input.user_id,
        caller
            .session_id()
            .filter(|_| caller.user_id == input.user_id),
    )
    .await?;
    Ok(user)
}
