//! The verification services (`/auth-api/verification-services/…`, the spec's 12 routes): email
//! and mobile verification, password reset by email or by mobile, and email or mobile 2FA at
//! login. Each is a start (issue a six-digit code and send it) and a complete (redeem it).
//!
//! Codes live in [`codes`]; they are sent through the notification channels ([`delivery`]) and
//! returned in the response only when the server runs in the explicit development mode
//! (`HAVEN_VERIFICATION_CODES_IN_RESPONSES`). Whether login requires a verified email or mobile
//! and whether it requires a second factor are server settings ([`VerificationSettings`]); a
//! session that owes its second factor may call only the 2FA operations and logout.

pub mod codes;
pub mod delivery;
mod flows;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::registry::{Access, Annotations, Envelope, Method, Operation, Service};
use crate::types::{Email, Mobile, NewPassword, Text};

/// The server's verification settings (from `HAVEN_*` environment variables).
#[derive(Debug, Clone)]
pub struct VerificationSettings {
    /// Development only: put the code in start responses (never in production).
    pub codes_in_responses: bool,
    /// Login refuses accounts whose email is not verified (403 `EmailVerificationNeeded`).
    pub email_verification_required_for_login: bool,
    /// Login refuses accounts whose mobile number is not verified (403 `MobileVerificationNeeded`).
    pub mobile_verification_required_for_login: bool,
    /// Every new session owes an email code before it can call anything else.
    pub email_2fa: bool,
    /// Every new session of a user with a verified mobile owes an SMS code.
    pub mobile_2fa: bool,
    /// A new code for the same purpose is refused this soon after the last one.
    pub resend_window_secs: i64,
    /// Lifetime of verification and password-reset codes.
    pub code_ttl_secs: i64,
    /// Lifetime of 2FA codes.
    pub two_factor_ttl_secs: i64,
}

impl Default for VerificationSettings {
    fn default() -> Self {
        Self {
            codes_in_responses: false,
            email_verification_required_for_login: false,
            mobile_verification_required_for_login: false,
            email_2fa: false,
            mobile_2fa: false,
            resend_window_secs: 60,
            code_ttl_secs: 86_400,
            two_factor_ttl_secs: 300,
        }
    }
}

/// What a code is for (stored as the `purpose` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Proving the account's email address.
    EmailVerification,
    /// Proving the account's mobile number.
    MobileVerification,
    /// The second factor of a session, by email.
    Email2Fa,
    /// The second factor of a session, by SMS.
    Mobile2Fa,
    /// Setting a new password with a code sent by email.
    PasswordResetByEmail,
    /// Setting a new password with a code sent by SMS.
    PasswordResetByMobile,
}

impl Purpose {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::EmailVerification => "emailVerification",
            Purpose::MobileVerification => "mobileVerification",
            Purpose::Email2Fa => "email2FA",
            Purpose::Mobile2Fa => "mobile2FA",
            Purpose::PasswordResetByEmail => "passwordResetByEmail",
            Purpose::PasswordResetByMobile => "passwordResetByMobile",
        }
    }
    /// In words, for messages.
    pub fn words(self) -> &'static str {
        match self {
            Purpose::EmailVerification => "email verification",
            Purpose::MobileVerification => "mobile verification",
            Purpose::Email2Fa => "email second-factor check",
            Purpose::Mobile2Fa => "mobile second-factor check",
            Purpose::PasswordResetByEmail | Purpose::PasswordResetByMobile => "password reset",
        }
    }
    /// How long its codes live.
    pub fn lifetime_secs(self, settings: &VerificationSettings) -> i64 {
        match self {
            Purpose::Email2Fa | Purpose::Mobile2Fa => settings.two_factor_ttl_secs,
            _ => settings.code_ttl_secs,
        }
    }
}

/// A six-digit code as the person typed it.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct SecretCode(String);

impl SecretCode {
    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SecretCode {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        let code = raw.trim();
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            Ok(SecretCode(code.to_string()))
        } else {
            Err("must be the 6-digit code that was sent".into())
        }
    }
}

impl JsonSchema for SecretCode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretCode".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "pattern": "^[0-9]{6}$" })
    }
}

/// Input of the email-located starts (email and mobile verification, password reset by email).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ByEmail {
    /// The account's email.
    pub email: Email,
}

/// Input of `startPasswordResetByMobile`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ByMobile {
    /// The account's verified mobile number.
    pub mobile: Mobile,
}

/// Input of the verification completes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CodeForEmail {
    /// The account's email.
    pub email: Email,
    /// The 6-digit code that was sent.
    pub secret_code: SecretCode,
}

/// Input of the password-reset completes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewPasswordWithCode {
    /// The account's email.
    pub email: Email,
    /// The 6-digit code that was sent.
    pub secret_code: SecretCode,
    /// The new password, 8–128 characters.
    pub password: NewPassword,
}

/// Input of the 2FA starts: the caller's own session.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionStart {
    /// The caller's user id.
    pub user_id: Uuid,
    /// The caller's session id (from login); another session's id invalidates the attempt.
    pub session_id: Uuid,
    /// What the client is (shown in the message), e.g. `Haven web`.
    pub client: Option<Text<100>>,
    /// Why the code is asked for (shown in the message), e.g. `login`.
    pub reason: Option<Text<200>>,
}

/// Input of the 2FA completes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionCode {
    /// The caller's user id.
    pub user_id: Uuid,
    /// The caller's session id.
    pub session_id: Uuid,
    /// The 6-digit code that was sent.
    pub secret_code: SecretCode,
}

/// What a start answers.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    /// The account.
    pub user_id: Uuid,
    /// The email the code went to (email flows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The number the code went to (mobile flows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    /// The session (2FA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    /// The code itself: only in the explicit development mode, never in production.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_code: Option<String>,
    /// Seconds the code stays valid.
    pub expire_time: i64,
    /// When it was issued.
    pub date: DateTime<Utc>,
}

/// What a verification or password-reset complete answers.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Completed {
    /// The account.
    pub user_id: Uuid,
    /// Its email (email flows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Its mobile number (mobile flows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    /// Always true on success.
    pub is_verified: bool,
}

const WRITE: Annotations = Annotations {
    read_only: false,
    destructive: false,
    idempotent: false,
    open_world: true,
};

/// The 12 verification operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("startEmailVerification", Service::Auth)
            .title("Send an email verification code")
            .describe(
                "Sends a 6-digit code to the account's email to prove the address. Refused as a conflict when \
                 the email is already verified, and as too frequent when a code was sent less than a minute ago. The code \
                 lives one day; complete with completeEmailVerification.",
            )
            .rest(Method::Post, "/auth-api/verification-services/email-verification/start")
            .access(Access::Public)
            .creates("verification")
            .annotations(WRITE)
            .envelope(Envelope::Raw)
            .handler(flows::start_email_verification),
        Operation::build("completeEmailVerification", Service::Auth)
            .title("Verify an email with its code")
            .describe(
                "Checks the code sent by startEmailVerification and marks the email verified. A wrong code \
                 counts against it (five wrong codes end it); an expired or used code is refused.",
            )
            .rest(Method::Post, "/auth-api/verification-services/email-verification/complete")
            .access(Access::Public)
            .updates("verification")
            .annotations(WRITE)
            .envelope(Envelope::Raw)
            .handler(flows::complete_email_verification),
        Operation::build("startMobileVerification", Service::Auth)
            .title("Send a mobile verification code")
            .describe(
                "Sends a 6-digit code by SMS to the mobile number of the account with this email (set the \
                 number with updateProfile first). Refused as a conflict when the account has no number or it is \
                 already verified, and as too frequent when a code was sent less than a minute ago. Complete with completeMobileVerification.",
            )
            .rest(Method::Post, "/auth-api/verification-services/mobile-verification/start")
            .access(Access::Public)
            .creates("verification")
            .annotations(WRITE)
            .envelope(Envelope::Raw)
            .handler(flows::start_mobile_verification),
        Operation::build("completeMobileVerification", Service::Auth)
            .title("Verify a mobile number with its code")
            .describe("Checks the SMS code sent by startMobileVerification and marks the mobile number verified.")
            .rest(Method::Post, "/auth-api/verification-services/mobile-verification/complete")
            .access(Access::Public)
            .updates("verification")
            .annotations(WRITE)
            .envelope(Envelope::Raw)
            .handler(flows::complete_mobile_verification),
        Operation::build("startEmail2FactorVerification", Service::Auth)
            .title("Send the login's email second factor")
            .describe(
                "For a session opened by login while email 2FA is required (sessionNeedsEmail2FA): sends a \
                 6-digit code to the account's email, valid five minutes. userId and sessionId must be the \
                 caller's own; another session's id invalidates the attempt. Complete with \
                 completeEmail2FactorVerification.",
            )
            .rest(Method::Post, "/auth-api/verification-services/email-2factor-verification/start")
            .access(Access::Authenticated)
            .who("a signed-in user, for their own login session only")
            .before_second_factor()
            .creates("verification")
            .annotations(WRITE)
            .envelope(Envelope::Raw)
            .handler(flows::start_email_2fa),
        Operation::build("completeEmail2FactorVerification", Service::Auth)
            .title("Pass the login's email second factor")
            .describe(
                "Checks the email code of the caller's session; on success the session may call everything \
                 its role allows. Returns the session with a fresh access token.",
            )
            .rest(Method::Post, "/auth-api/verification-services/email-2factor-verification/complete")
            .access(Access::Authenticated)
            .who("a signed-in user, for their own login session only")
            .before_second_factor()
            .updates("session")
            .annotations(WRITE)
            .envelope(Envelope::Raw)
            .handler(flows::complete_email_2fa),
        Operation::build("startMobile2FactorVerification", Service::Auth)
            .title("Send the login's SMS second factor")
            .describe(
                "For a session that owes mobile 2FA (sessionNeedsMobile2FA): sends a 6-digit code by SMS to the \
                 account's verified mobile number, valid five minutes. Refused when the number is not verified.",
            )
            .rest(Method::Post, "/auth-api/verification-services/mobile-2factor-verification/start")
            .access(Access::Authenticated)
            .who("a signed-in user, for their own login session only")
            .before_second_factor()
            .creates("verification")
            .annotations(WRITE)
            .envelope(Envelope::Raw)
            .handler(flows::start_mobile_2fa),
        Operation::build("completeMobile2FactorVerification", Service::Auth)
            .title("Pass the login's SMS second factor")
            .describe(
                "Checks the SMS code of the caller's session; on success the session may call everything its \
                 role allows. Returns the session with a fresh access token.",
            )
            .rest(Method::Post, "/auth-api/verification-services/mobile-2factor-verification/complete")
            .access(Access::Authenticated)
            .who("a signed-in user, for their own login session only")
            .before_second_factor()
            .updates("session")
            .annotations(WRITE)
            .envelope(Envelope::Raw)
            .handler(flows::complete_mobile_2fa),
        Operation::build("startPasswordResetByEmail", Service::Auth)
            .title("Send a password reset code by email")
            .describe(
                "For someone who forgot their password: sends a 6-digit code to the account's email, valid one \
                 day. Complete with completePasswordResetByEmail and the new password.",
            )
            .rest(Method::Post, "/auth-api/verification-services/password-reset-by-email/start")
            .access(Access::Public)
            .creates("verification")
            .annotations(WRITE)
            .envelope(Envelope::Raw)
            .handler(flows::start_reset_by_email),
        Operation::build("completePasswordResetByEmail", Service::Auth)
            .title("Set a new password with an emailed code")
            .describe(
                "Checks the code from startPasswordResetByEmail, sets the new password, marks the email \
                 verified, and ends every session of the account (log in again).",
            )
            .rest(Method::Post, "/auth-api/verification-services/password-reset-by-email/complete")
            .access(Access::Public)
            .updates("verification")
            .annotations(WRITE)
            .envelope(Envelope::Raw)
            .handler(flows::complete_reset_by_email),
        Operation::build("startPasswordResetByMobile", Service::Auth)
            .title("Send a password reset code by SMS")
            .describe(
                "Sends a 6-digit code by SMS to the account whose verified mobile number this is, valid one day. \
                 Complete with completePasswordResetByMobile (with the account's email) and the new password.",
            )
            .rest(Method::Post, "/auth-api/verification-services/password-reset-by-mobile/start")
            .access(Access::Public)
            .creates("verification")
            .annotations(WRITE)
            .envelope(Envelope::Raw)
            .handler(flows::start_reset_by_mobile),
        Operation::build("completePasswordResetByMobile", Service::Auth)
            .title("Set a new password with an SMS code")
            .describe(
                "Checks the SMS code from startPasswordResetByMobile for the account with this email, sets the \
                 new password and ends every session of the account.",
            )
            .rest(Method::Post, "/auth-api/verification-services/password-reset-by-mobile/complete")
            .access(Access::Public)
            .updates("verification")
            .annotations(WRITE)
            .envelope(Envelope::Raw)
            .handler(flows::complete_reset_by_mobile),
    ]
}
