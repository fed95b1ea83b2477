//! Sessions: login, logout, relogin, the current session, permissions and the public key.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::tokens::open_session;
use super::{password, throttle};
use crate::context::Ctx;
use crate::error::ToolError;
use crate::principal::{Credential, Principal, Role};
use crate::registry::{
    Access, Action, Annotations, CookieEffect, Envelope, Flow, Method, Operation, Registry, Service,
};
use crate::types::Choice;
use crate::vocabulary::{Credentials, Roles};

/// Input of `login`: the email as `username` (or `email`), and the password.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("anyOf" = [
    { "required": ["username"], "properties": { "username": { "type": "string" } } },
    { "required": ["email"], "properties": { "email": { "type": "string" } } }
]))]
pub struct LoginInput {
    /// The account's email (the field is named `username`).
    pub username: Option<String>,
    /// Alternative to `username`; ignored when both are sent.
    pub email: Option<String>,
    /// The password.
    pub password: String,
}

/// A login session: what `login`, `relogin` and `/currentuser` return.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The session id (absent for API-key callers).
    pub session_id: Option<Uuid>,
    /// The user.
    pub user_id: Uuid,
    /// The user's email.
    pub email: String,
    /// The user's full name.
    pub fullname: String,
    /// The user's role.
    #[schemars(with = "Choice<Roles>")]
    pub role_id: String,
    /// `session` for access tokens, `apiKey` for API keys.
    #[schemars(with = "Choice<Credentials>")]
    pub credential: String,
    /// The access token to send as `Authorization: Bearer …` (only on login and relogin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// Seconds until the access token expires (only on login and relogin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    /// When the access token expires (only on login and relogin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The session owes an email code (startEmail2FactorVerification) before anything else.
    #[serde(rename = "sessionNeedsEmail2FA")]
    pub session_needs_email_2fa: bool,
    /// The session owes an SMS code (startMobile2FactorVerification) before anything else.
    #[serde(rename = "sessionNeedsMobile2FA")]
    pub session_needs_mobile_2fa: bool,
}

/// No input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}

/// The answer of `logout`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LogoutResult {
    /// Always `OK`.
    pub status: String,
    /// What happened.
    pub message: String,
}

/// One permission the caller holds.
#[derive(Debug, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    /// The permission: an operation name.
    pub permission_name: String,
    /// Set when the grant comes from the caller's role.
    pub role_id: Option<String>,
    /// Set when the grant was made to the user directly.
    pub subject_user_id: Option<Uuid>,
    /// Set when the grant comes through a group.
    pub subject_user_group_id: Option<Uuid>,
    /// Set when the grant is tied to one object.
    pub object_id: Option<Uuid>,
    /// Whether the permission is granted (false = restricted).
    pub can_do: bool,
}

/// The caller's permissions.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Permissions {
    /// Every permission the caller holds.
    pub permissions: Vec<Permission>,
}

/// Input of `checkPermission`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PermissionQuery {
    /// The permission (operation name) to check, e.g. `updateUserRole`.
    pub permission_name: String,
}

/// Whether the caller holds a permission, and the objects excepted.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionScope {
    /// Granted in general.
    pub can_do: bool,
    /// Object ids where the general answer is reversed.
    pub exceptions: Vec<Uuid>,
}

/// Input of `getPublicKey`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublicKeyQuery {
    /// A key id; the current signing key when omitted.
    pub key_id: Option<String>,
}

/// A public key for verifying access tokens.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicKey {
    /// The key id (the JWT header's `kid`).
    pub key_id: String,
    /// The RSA public key, PEM-encoded.
    pub key_data: String,
    /// Always `RS256`.
    pub algorithm: String,
}

const SESSION_WRITE: Annotations = Annotations {
    read_only: false,
    destructive: false,
    idempotent: false,
    open_world: false,
};

/// The session operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("login", Service::Auth)
            .core(Flow::Visitor, 20)
            .title("Log in")
            .describe(
                "Checks an email (`username`) and password and opens a session. Returns the session with an \
                 `accessToken` to send as `Authorization: Bearer <token>` on later calls (REST also sets the \
                 `haven-access-token` cookie). Wrong credentials answer 401; after repeated failures the account \
                 and the caller's address are locked for a while (429 with Retry-After, even for the right \
                 password).",
            )
            .rest(Method::Post, "/auth-api/login")
            .access(Access::Public)
            .creates("session")
            .annotations(SESSION_WRITE)
            .envelope(Envelope::Raw)
            .cookie(CookieEffect::Set)
            .handler(login),
        Operation::build("logout", Service::Auth)
            .title("Log out")
            .describe(
                "Ends the caller's session: its access token stops working at once. Always succeeds, even \
                 without a session.",
            )
            .rest(Method::Post, "/auth-api/logout")
            .access(Access::Public)
            .before_second_factor()
            .updates("session")
            .envelope(Envelope::Raw)
            .cookie(CookieEffect::Clear)
            .handler(logout),
        Operation::build("relogin", Service::Auth)
            .title("Refresh the session")
            .describe(
                "Opens a new session for the caller with fresh user data (role and profile changes show up) \
                 and a new access token; the old session is ended.",
            )
            .rest(Method::Get, "/auth-api/relogin")
            .creates("session")
            .annotations(SESSION_WRITE)
            .envelope(Envelope::Raw)
            .cookie(CookieEffect::Set)
            .handler(relogin),
        Operation::build("getCurrentUser", Service::Auth)
            .core(Flow::Account, 10)
            .title("Who am I")
            .describe("Returns the caller's session: user id, email, name, role and how they authenticated.")
            .rest(Method::Get, "/currentuser")
            .aliases(&["/auth-api/currentuser"])
            .reads(Action::Get, "session")
            .envelope(Envelope::Raw)
            .handler(current_user),
        Operation::build("getPermissions", Service::Auth)
            .title("My permissions")
            .describe(
                "Lists the permissions the caller holds: every operation their role may call, plus explicit \
                 grants to them or their groups.",
            )
            .rest(Method::Get, "/permissions")
            .aliases(&["/auth-api/permissions"])
            .reads(Action::List, "permissions")
            .envelope(Envelope::RawField("permissions"))
            .handler(permissions),
        Operation::build("checkPermission", Service::Auth)
            .title("Check one permission")
            .describe(
                "Says whether the caller holds `permissionName` (an operation name) and lists object ids where \
                 the answer is reversed by explicit grants or restrictions.",
            )
            .rest(Method::Get, "/permissions/{permissionName}")
            .aliases(&["/auth-api/permissions/{permissionName}"])
            .reads(Action::Get, "permission")
            .envelope(Envelope::Raw)
            .handler(check_permission),
        Operation::build("getPublicKey", Service::Auth)
            .title("Token verification key")
            .describe(
                "Returns the RSA public key (PEM) that verifies Haven's RS256 access tokens, by key id or the \
                 current one. For services that verify tokens themselves.",
            )
            .rest(Method::Get, "/auth-api/publickey")
            .access(Access::Public)
            .reads(Action::Get, "publicKey")
            .envelope(Envelope::Raw)
            .handler(public_key),
    ]
}

fn session_of(p: &Principal) -> Session {
    Session {
        session_id: p.session_id(),
        user_id: p.user_id,
        email: p.email.clone(),
        fullname: p.fullname.clone(),
        role_id: p.role.as_str().into(),
        credential: match p.credential {
            Credential::Session(_) | Credential::SecondFactorPending(_) => "session".into(),
            Credential::ApiKey(_) => "apiKey".into(),
        },
        access_token: None,
        expires_in: None,
        expires_at: None,
        // Owed factors are known from the credential; which one is in the session row.
        session_needs_email_2fa: p.owes_second_factor(),
        session_needs_mobile_2fa: false,
    }
}

async fn start_session(
    ctx: &Ctx,
    user_id: Uuid,
    role: Role,
    email: String,
    fullname: String,
) -> Result<Session, ToolError> {
    let tokens = ctx.services.tokens.clone();
    let mut db = ctx.db().await?;
    let (session_id, token, expires) = open_session(&mut db, &tokens, user_id, role).await?;
    // The second factors the server requires of new sessions (mobile only for users with a
    // verified number); the token works only for the 2FA operations until they are given.
    let rules = &ctx.services.settings.verification;
    let (needs_email, needs_mobile): (bool, bool) = sqlx::query_as(
        "UPDATE auth.sessions s SET needs_email_2fa = $2, needs_mobile_2fa = $3 AND u.mobile_verified
         FROM auth.users u WHERE s.id = $1 AND u.id = s.user_id
         RETURNING s.needs_email_2fa, s.needs_mobile_2fa",
    )
    .bind(session_id)
    .bind(rules.email_2fa)
    .bind(rules.mobile_2fa)
    .fetch_one(&mut *db)
    .await?;
    Ok(Session {
        session_id: Some(session_id),
        user_id,
        email,
        fullname,
        role_id: role.as_str().into(),
        credential: "session".into(),
        access_token: Some(token),
        expires_in: Some((expires - Utc::now()).num_seconds()),
        expires_at: Some(expires),
        session_needs_email_2fa: needs_email,
        session_needs_mobile_2fa: needs_mobile,
    })
}

/// Checks the password without holding a pooled connection or the call's transaction while Argon2
/// runs (the reads and the failure count use the pool directly), under the lockout of
/// [`throttle`]; only a successful login opens the transaction, to write the session.
async fn login(ctx: Ctx, input: LoginInput) -> Result<Session, ToolError> {
    let email = input
        .username
        .or(input.email)
        .ok_or_else(|| ToolError::field("username", "send the account's email as `username`"))?
        .trim()
        .to_lowercase();
    if email.contains('\0') {
        return Err(ToolError::field(
            "username",
            "must not contain NUL characters",
        ));
    }
    let Some((user_id, role, fullname)) = verify_credentials(&ctx, &email, &input.password).await?
    else {
        return Err(ToolError::unauthenticated("invalid username or password"));
    };
    require_verified(&ctx, user_id).await?;
    start_session(&ctx, user_id, role, email, fullname).await
}

/// With `emailVerificationRequiredForLogin` (or the mobile one) set, a correct password on an
/// unverified account is refused with 403 naming what is needed (`EmailVerificationNeeded`,
/// `MobileVerificationNeeded`) and how to get it.
async fn require_verified(ctx: &Ctx, user_id: Uuid) -> Result<(), ToolError> {
    let rules = &ctx.services.settings.verification;
    if !rules.email_verification_required_for_login && !rules.mobile_verification_required_for_login
    {
        return Ok(());
    }
    let (email_ok, mobile_ok): (bool, bool) =
        sqlx::query_as("SELECT email_verified, mobile_verified FROM auth.users WHERE id = $1")
            .bind(user_id)
            .fetch_one(&ctx.services.db)
            .await?;
    if rules.email_verification_required_for_login && !email_ok {
        return Err(ToolError::forbidden(
            "EmailVerificationNeeded: verify your email before logging in (startEmailVerification, then \
             completeEmailVerification with the code sent to you)",
        ));
    }
    if rules.mobile_verification_required_for_login && !mobile_ok {
        return Err(ToolError::forbidden(
            "MobileVerificationNeeded: verify your mobile number before logging in \
             (startMobileVerification, then completeMobileVerification)",
        ));
    }
    Ok(())
}

/// Checks an email (already trimmed and lower-cased) and password against the active users under
/// the lockout of [`throttle`], without holding a pooled connection while Argon2 runs: the user's
/// id, role and full name when they match. Shared by `login` and the OAuth sign-in page, so both
/// are throttled alike and spend the same Argon2 effort on unknown emails.
pub async fn verify_credentials(
    ctx: &Ctx,
    email: &str,
    plain: &str,
) -> Result<Option<(Uuid, Role, String)>, ToolError> {
    throttle::begin(ctx, email).await?;
    let checked = check_password(ctx, email, plain).await;
    let outcome = match &checked {
        Ok(Some(_)) => throttle::Outcome::Succeeded,
        Ok(None) => throttle::Outcome::Failed,
        Err(_) => throttle::Outcome::Abandoned,
    };
    throttle::settle(ctx, email, outcome).await?;
    Ok(checked?
        .map(|(id, role, fullname)| (id, Role::parse(&role).unwrap_or(Role::User), fullname)))
}

/// The active user with `email` and this password (id, role, name), or `None`; always spends one
/// hash, known email or not.
async fn check_password(
    ctx: &Ctx,
    email: &str,
    password: &str,
) -> Result<Option<(Uuid, String, String)>, ToolError> {
    let row: Option<(Uuid, String, String, String)> =
        sqlx::query_as("SELECT id, password_hash, role_id, fullname FROM auth.users WHERE lower(email) = $1 AND is_active")
            .bind(email)
            .fetch_optional(&ctx.services.db)
            .await?;
    let ok = password::verify(ctx, password, row.as_ref().map(|r| r.1.as_str())).await?;
    Ok(row
        .filter(|_| ok)
        .map(|(id, _, role, fullname)| (id, role, fullname)))
}

async fn logout(ctx: Ctx, _: NoInput) -> Result<LogoutResult, ToolError> {
    let Some(session_id) = ctx.principal.as_ref().and_then(Principal::session_id) else {
        return Ok(LogoutResult {
            status: "OK".into(),
            message: "no session to end".into(),
        });
    };
    let mut db = ctx.db().await?;
    sqlx::query("UPDATE auth.sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
        .bind(session_id)
        .execute(&mut *db)
        .await?;
    Ok(LogoutResult {
        status: "OK".into(),
        message: "logged out; the access token no longer works".into(),
    })
}

async fn relogin(ctx: Ctx, _: NoInput) -> Result<Session, ToolError> {
    let caller = ctx.caller()?.clone();
    if let Some(old) = caller.session_id() {
        let mut db = ctx.db().await?;
        sqlx::query("UPDATE auth.sessions SET revoked_at = now() WHERE id = $1")
            .bind(old)
            .execute(&mut *db)
            .await?;
    }
    start_session(
        &ctx,
        caller.user_id,
        caller.role,
        caller.email,
        caller.fullname,
    )
    .await
}

async fn current_user(ctx: Ctx, _: NoInput) -> Result<Session, ToolError> {
    Ok(session_of(ctx.caller()?))
}

async fn permissions(ctx: Ctx, _: NoInput) -> Result<Permissions, ToolError> {
    let caller = ctx.caller()?.clone();
    let mut permissions: Vec<Permission> = Registry::global()
        .visible_to(Some(&caller))
        .map(|op| Permission {
            permission_name: op.name.to_string(),
            role_id: Some(caller.role.as_str().to_string()),
            subject_user_id: None,
            subject_user_group_id: None,
            object_id: None,
            can_do: true,
        })
        .collect();
    permissions.extend(explicit_grants(&ctx, &caller, None).await?);
    Ok(Permissions { permissions })
}

async fn explicit_grants(
    ctx: &Ctx,
    caller: &Principal,
    name: Option<&str>,
) -> Result<Vec<Permission>, ToolError> {
    let mut db = ctx.db().await?;
    Ok(sqlx::query_as::<_, Permission>(
        "SELECT g.permission_name, g.role_id, g.subject_user_id, g.subject_user_group_id, g.object_id, g.can_do
         FROM auth.given_permissions g
         WHERE g.is_active AND ($3::text IS NULL OR g.permission_name = $3)
           AND (g.subject_user_id = $1 OR g.role_id = $2 OR g.subject_user_group_id IN
                (SELECT group_id FROM auth.user_group_members WHERE user_id = $1 AND is_active))
         ORDER BY g.created_at",
    )
    .bind(caller.user_id)
    .bind(caller.role.as_str())
    .bind(name)
    .fetch_all(&mut *db)
    .await?)
}

async fn check_permission(ctx: Ctx, input: PermissionQuery) -> Result<PermissionScope, ToolError> {
    let caller = ctx.caller()?.clone();
    let by_role = Registry::global()
        .get(&input.permission_name)
        .is_some_and(|op| op.access.allows(Some(&caller)));
    let grants = explicit_grants(&ctx, &caller, Some(&input.permission_name)).await?;
    let general = grants
        .iter()
        .filter(|g| g.object_id.is_none())
        .map(|g| g.can_do)
        .next_back();
    let can_do = general.unwrap_or(by_role);
    let exceptions = grants
        .iter()
        .filter(|g| g.object_id.is_some() && g.can_do != can_do)
        .filter_map(|g| g.object_id)
        .collect();
    Ok(PermissionScope { can_do, exceptions })
}

async fn public_key(ctx: Ctx, input: PublicKeyQuery) -> Result<PublicKey, ToolError> {
    let (kid, pem) = ctx
        .services
        .tokens
        .public_key(input.key_id.as_deref())
        .ok_or_else(|| ToolError::not_found("public key"))?;
    Ok(PublicKey {
        key_id: kid.to_string(),
        key_data: pem.to_string(),
        algorithm: "RS256".into(),
    })
}
