//! The handlers of the 12 verification operations: each start finds the account, issues a code
//! ([`codes::issue`]) and queues it ([`delivery::send`]) in one transaction; each complete redeems
//! it ([`codes::redeem`]) and applies what it proves.

use chrono::Utc;
use uuid::Uuid;

use super::delivery::{self, Destination};
use super::{
    codes, ByEmail, ByMobile, CodeForEmail, Completed, NewPasswordWithCode, Purpose, SessionCode,
    SessionStart, Started,
};
use crate::auth::password;
use crate::auth::session::Session;
use crate::auth::users::revoke_sessions;
use crate::context::Ctx;
use crate::error::ToolError;
use crate::principal::{Principal, Role};

/// The account facts the flows need.
#[derive(sqlx::FromRow)]
struct Account {
    id: Uuid,
    email: String,
    fullname: String,
    role_id: String,
    email_verified: bool,
    mobile: Option<String>,
    mobile_verified: bool,
}

const ACCOUNT: &str =
    "SELECT id, email, fullname, role_id, email_verified, mobile, mobile_verified FROM auth.users";

async fn by_email(db: &mut sqlx::PgConnection, email: &str) -> Result<Account, ToolError> {
    sqlx::query_as::<_, Account>(&format!("{ACCOUNT} WHERE lower(email) = $1 AND is_active"))
        .bind(email)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| ToolError::not_found("account with this email"))
}

async fn by_id(db: &mut sqlx::PgConnection, id: Uuid) -> Result<Account, ToolError> {
    sqlx::query_as::<_, Account>(&format!("{ACCOUNT} WHERE id = $1 AND is_active"))
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| ToolError::not_found("user"))
}

/// Issues and queues a code, and shapes the start's answer.
async fn start(
    ctx: &Ctx,
    db: &mut sqlx::PgConnection,
    purpose: Purpose,
    account: &Account,
    session_id: Option<Uuid>,
    to: Destination<'_>,
) -> Result<Started, ToolError> {
    let issued = codes::issue(db, ctx, purpose, account.id, session_id).await?;
    delivery::send(db, ctx, account.id, purpose, to, &issued.code).await?;
    let dev = ctx.services.settings.verification.codes_in_responses;
    Ok(Started {
        user_id: account.id,
        email: matches!(to, Destination::Email(_)).then(|| account.email.clone()),
        mobile: match to {
            Destination::Sms(m) => Some(m.to_string()),
            Destination::Email(_) => None,
        },
        session_id,
        secret_code: dev.then_some(issued.code),
        expire_time: issued.expire_time,
        date: issued.date,
    })
}

pub(super) async fn start_email_verification(
    ctx: Ctx,
    input: ByEmail,
) -> Result<Started, ToolError> {
    let mut db = ctx.db().await?;
    let account = by_email(&mut db, input.email.as_str()).await?;
    if account.email_verified {
        return Err(ToolError::conflict("the email address is already verified"));
    }
    let to = account.email.clone();
    start(
        &ctx,
        &mut db,
        Purpose::EmailVerification,
        &account,
        None,
        Destination::Email(&to),
    )
    .await
}

/// Redeems a verification code and marks what it proves (the email or the mobile number).
async fn complete_verification(
    ctx: Ctx,
    input: CodeForEmail,
    purpose: Purpose,
) -> Result<Completed, ToolError> {
    let mut db = ctx.db().await?;
    let account = by_email(&mut db, input.email.as_str()).await?;
    codes::redeem(
        &mut db,
        &ctx,
        purpose,
        account.id,
        None,
        input.secret_code.as_str(),
    )
    .await?;
    let email = purpose == Purpose::EmailVerification;
    sqlx::query(
        "UPDATE auth.users SET email_verified = email_verified OR $2, mobile_verified = mobile_verified OR NOT $2,
             updated_at = now(), record_version = record_version + 1 WHERE id = $1",
    )
    .bind(account.id)
    .bind(email)
    .execute(&mut *db)
    .await?;
    Ok(Completed {
        user_id: account.id,
        email: email.then_some(account.email),
        mobile: if email { None } else { account.mobile },
        is_verified: true,
    })
}

pub(super) async fn complete_email_verification(
    ctx: Ctx,
    input: CodeForEmail,
) -> Result<Completed, ToolError> {
    complete_verification(ctx, input, Purpose::EmailVerification).await
}

pub(super) async fn start_mobile_verification(
    ctx: Ctx,
    input: ByEmail,
) -> Result<Started, ToolError> {
    let mut db = ctx.db().await?;
    let account = by_email(&mut db, input.email.as_str()).await?;
    let Some(mobile) = account.mobile.clone() else {
        return Err(ToolError::conflict(
            "the account has no mobile number: set one with updateProfile first",
        ));
    };
    if account.mobile_verified {
        return Err(ToolError::conflict("the mobile number is already verified"));
    }
    start(
        &ctx,
        &mut db,
        Purpose::MobileVerification,
        &account,
        None,
        Destination::Sms(&mobile),
    )
    .await
}

pub(super) async fn complete_mobile_verification(
    ctx: Ctx,
    input: CodeForEmail,
) -> Result<Completed, ToolError> {
    complete_verification(ctx, input, Purpose::MobileVerification).await
}

/// The caller's own session, when `user_id`/`session_id` name it; another session's id
/// invalidates the caller's live 2FA codes (the spec: "incorrect sessionId will invalidate the
/// attempt") and is answered like a missing session.
async fn own_session(ctx: &Ctx, user_id: Uuid, session_id: Uuid) -> Result<&Principal, ToolError> {
    let caller = ctx.caller()?;
    let Some(own) = caller.session_id() else {
        return Err(ToolError::forbidden(
            "second-factor checks belong to login sessions; API keys have none",
        ));
    };
    if caller.user_id != user_id || own != session_id {
        codes::invalidate_session_codes(ctx, own).await?;
        return Err(ToolError::unauthenticated(
            "session not found: userId and sessionId must be your own (your pending code is now invalid; start again)",
        ));
    }
    Ok(caller)
}

/// Whether the session still owes the email / mobile factor.
async fn owed(db: &mut sqlx::PgConnection, session_id: Uuid) -> Result<(bool, bool), ToolError> {
    Ok(
        sqlx::query_as("SELECT needs_email_2fa, needs_mobile_2fa FROM auth.sessions WHERE id = $1")
            .bind(session_id)
            .fetch_optional(db)
            .await?
            .unwrap_or((false, false)),
    )
}

pub(super) async fn start_email_2fa(ctx: Ctx, input: SessionStart) -> Result<Started, ToolError> {
    own_session(&ctx, input.user_id, input.session_id).await?;
    let mut db = ctx.db().await?;
    if !owed(&mut db, input.session_id).await?.0 {
        return Err(ToolError::field(
            "sessionId",
            "names a session that owes no email second factor",
        ));
    }
    let account = by_id(&mut db, input.user_id).await?;
    let to = account.email.clone();
    start(
        &ctx,
        &mut db,
        Purpose::Email2Fa,
        &account,
        Some(input.session_id),
        Destination::Email(&to),
    )
    .await
}

pub(super) async fn start_mobile_2fa(ctx: Ctx, input: SessionStart) -> Result<Started, ToolError> {
    own_session(&ctx, input.user_id, input.session_id).await?;
    let mut db = ctx.db().await?;
    if !owed(&mut db, input.session_id).await?.1 {
        return Err(ToolError::field(
            "sessionId",
            "names a session that owes no mobile second factor",
        ));
    }
    let account = by_id(&mut db, input.user_id).await?;
    let mobile = match (&account.mobile, account.mobile_verified) {
        (Some(m), true) => m.clone(),
        _ => {
            return Err(ToolError::forbidden(
                "the account's mobile number is not verified",
            ))
        }
    };
    start(
        &ctx,
        &mut db,
        Purpose::Mobile2Fa,
        &account,
        Some(input.session_id),
        Destination::Sms(&mobile),
    )
    .await
}

/// Redeems a 2FA code, clears what it proves from the session, and answers the session with a
/// fresh access token (the old one works too once nothing is owed).
async fn complete_2fa(
    ctx: Ctx,
    input: SessionCode,
    purpose: Purpose,
) -> Result<Session, ToolError> {
    own_session(&ctx, input.user_id, input.session_id).await?;
    let mut db = ctx.db().await?;
    codes::redeem(
        &mut db,
        &ctx,
        purpose,
        input.user_id,
        Some(input.session_id),
        input.secret_code.as_str(),
    )
    .await?;
    let column = if purpose == Purpose::Email2Fa {
        "needs_email_2fa"
    } else {
        "needs_mobile_2fa"
    };
    let (needs_email, needs_mobile): (bool, bool) = sqlx::query_as(&format!(
        "UPDATE auth.sessions SET {column} = false WHERE id = $1 RETURNING needs_email_2fa, needs_mobile_2fa"
    ))
    .bind(input.session_id)
    .fetch_one(&mut *db)
    .await?;
    let account = by_id(&mut db, input.user_id).await?;
    let role = Role::parse(&account.role_id).unwrap_or(Role::User);
    let (token, expires) = ctx
        .services
        .tokens
        .sign(account.id, input.session_id, role)?;
    Ok(Session {
        session_id: Some(input.session_id),
        user_id: account.id,
        email: account.email,
        fullname: account.fullname,
        role_id: role.as_str().into(),
        credential: "session".into(),
        access_token: Some(token),
        expires_in: Some((expires - Utc::now()).num_seconds()),
        expires_at: Some(expires),
        session_needs_email_2fa: needs_email,
        session_needs_mobile_2fa: needs_mobile,
    })
}

pub(super) async fn complete_email_2fa(ctx: Ctx, input: SessionCode) -> Result<Session, ToolError> {
    complete_2fa(ctx, input, Purpose::Email2Fa).await
}

pub(super) async fn complete_mobile_2fa(
    ctx: Ctx,
    input: SessionCode,
) -> Result<Session, ToolError> {
    complete_2fa(ctx, input, Purpose::Mobile2Fa).await
}

pub(super) async fn start_reset_by_email(ctx: Ctx, input: ByEmail) -> Result<Started, ToolError> {
    let mut db = ctx.db().await?;
    let account = by_email(&mut db, input.email.as_str()).await?;
    let to = account.email.clone();
    start(
        &ctx,
        &mut db,
        Purpose::PasswordResetByEmail,
        &account,
        None,
        Destination::Email(&to),
    )
    .await
}

pub(super) async fn start_reset_by_mobile(ctx: Ctx, input: ByMobile) -> Result<Started, ToolError> {
    let mut db = ctx.db().await?;
    let found: Vec<Account> = sqlx::query_as::<_, Account>(&format!(
        "{ACCOUNT} WHERE mobile = $1 AND mobile_verified AND is_active LIMIT 2"
    ))
    .bind(input.mobile.as_str())
    .fetch_all(&mut *db)
    .await?;
    let [account] = <[Account; 1]>::try_from(found).map_err(|found| {
        if found.is_empty() {
            ToolError::not_found("account with this verified mobile number")
        } else {
            ToolError::field(
                "mobile",
                "is verified on more than one account: reset by email instead",
            )
        }
    })?;
    let mobile = input.mobile.as_str().to_string();
    start(
        &ctx,
        &mut db,
        Purpose::PasswordResetByMobile,
        &account,
        None,
        Destination::Sms(&mobile),
    )
    .await
}

/// Redeems a reset code, sets the password (Argon2id, outside the transaction's hold on nothing
/// else), and ends every session of the account.
async fn complete_reset(
    ctx: Ctx,
    input: NewPasswordWithCode,
    purpose: Purpose,
) -> Result<Completed, ToolError> {
    let hash = password::hash(&ctx, input.password.expose()).await?;
    let mut db = ctx.db().await?;
    let account = by_email(&mut db, input.email.as_str()).await?;
    codes::redeem(
        &mut db,
        &ctx,
        purpose,
        account.id,
        None,
        input.secret_code.as_str(),
    )
    .await?;
    let by_email = purpose == Purpose::PasswordResetByEmail;
    sqlx::query(
        "UPDATE auth.users SET password_hash = $2, email_verified = email_verified OR $3,
             updated_at = now(), record_version = record_version + 1 WHERE id = $1",
    )
    .bind(account.id)
    .bind(&hash)
    .bind(by_email)
    .execute(&mut *db)
    .await?;
    revoke_sessions(&mut db, account.id, None).await?;
    Ok(Completed {
        user_id: account.id,
        email: by_email.then(|| account.email.clone()),
        mobile: (!by_email).then(|| account.mobile.clone()).flatten(),
        is_verified: true,
    })
}

pub(super) async fn complete_reset_by_email(
    ctx: Ctx,
    input: NewPasswordWithCode,
) -> Result<Completed, ToolError> {
    complete_reset(ctx, input, Purpose::PasswordResetByEmail).await
}

pub(super) async fn complete_reset_by_mobile(
    ctx: Ctx,
    input: NewPasswordWithCode,
) -> Result<Completed, ToolError> {
    complete_reset(ctx, input, Purpose::PasswordResetByMobile).await
}
