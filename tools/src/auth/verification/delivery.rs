//! Sending a code: by email or SMS through the notification channels, written to their durable
//! outbox in the same transaction as the code, so a code that exists is a code that goes out.

use sqlx::PgConnection;
use uuid::Uuid;

use super::Purpose;
use crate::context::Ctx;
use crate::error::ToolError;
use crate::notification::enqueue::send_direct;

/// Where a code goes.
#[derive(Debug, Clone, Copy)]
pub enum Destination<'a> {
    /// An email address.
    Email(&'a str),
    /// A mobile number (E.164).
    Sms(&'a str),
}

/// The subject line and the text of a code message.
pub fn texts(purpose: Purpose, code: &str, minutes: i64) -> (String, String) {
    let (subject, what) = match purpose {
        Purpose::EmailVerification => (
            "Verify your email for Haven",
            "to verify your email address",
        ),
        Purpose::MobileVerification => (
            "Verify your mobile number for Haven",
            "to verify your mobile number",
        ),
        Purpose::Email2Fa | Purpose::Mobile2Fa => {
            ("Your Haven sign-in code", "to finish signing in")
        }
        Purpose::PasswordResetByEmail | Purpose::PasswordResetByMobile => {
            ("Reset your Haven password", "to set a new password")
        }
    };
    let lifetime = if minutes >= 120 {
        format!("{} hours", minutes / 60)
    } else {
        format!("{minutes} minutes")
    };
    (
        subject.to_string(),
        format!(
            "Your Haven code is {code}. Enter it {what}; it works once and expires in {lifetime}. \
             If you did not ask for it, ignore this message."
        ),
    )
}

/// Queues the code for `user_id` to `to` through the notification outbox (in the caller's
/// transaction; the text is wiped from the outbox once sent, and admins never see it). Without a
/// provider for the channel the code cannot reach anyone: refused with 503 naming the setting,
/// except in the development mode, where the response carries the code.
pub async fn send(
    db: &mut PgConnection,
    ctx: &Ctx,
    user_id: Uuid,
    purpose: Purpose,
    to: Destination<'_>,
    code: &str,
) -> Result<(), ToolError> {
    let settings = &ctx.services.settings;
    let minutes = purpose.lifetime_secs(&settings.verification) / 60;
    let (subject, text) = texts(purpose, code, minutes);
    let (channel, destination, setting) = match to {
        Destination::Email(email) => ("email", email, "HAVEN_SMTP_URL"),
        Destination::Sms(mobile) => ("sms", mobile, "HAVEN_SMS_BASE_URL"),
    };
    let queued = send_direct(db, ctx, user_id, channel, destination, &subject, &text).await?;
    if !queued && !settings.verification.codes_in_responses {
        return Err(ToolError::unavailable(
            format!("this Haven cannot send codes by {channel}: no {channel} provider is configured ({setting})"),
            3600,
        ));
    }
    Ok(())
}
