//! Demo data: a handful of realistic accounts so a newcomer can try the tools at once.

use serde_json::json;

use crate::app::AppState;

/// The demo accounts: (email, full name, role, bio). All share [`DEMO_PASSWORD`].
pub const DEMO_USERS: &[(&str, &str, &str, &str)] = &[
    (
        "ada.host@demo.haven",
        "Ada Lindqvist",
        "user",
        "Hosts two lakeside cabins near Stockholm.",
    ),
    (
        "kemal.host@demo.haven",
        "Kemal Aydın",
        "user",
        "Rents out a restored stone house in Cappadocia.",
    ),
    (
        "maria.guest@demo.haven",
        "María Fernández",
        "user",
        "Travels for work; loves quiet flats with good Wi-Fi.",
    ),
    (
        "li.guest@demo.haven",
        "Li Wei",
        "user",
        "Family of four, books summer holidays by the sea.",
    ),
    (
        "sam.admin@demo.haven",
        "Sam Okafor",
        "admin",
        "Trust & safety lead.",
    ),
];

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "haven-demo-2026";

/// Creates the demo accounts that do not exist yet; returns how many were created.
pub async fn load(state: &AppState) -> anyhow::Result<usize> {
    let mut created = 0;
    for (email, fullname, role, bio) in DEMO_USERS {
        let args = json!({ "email": email, "password": DEMO_PASSWORD, "fullname": fullname, "bio": bio, "preferredLanguage": "en" });
        match state.call("registerUser", None, args).await {
            Ok(_) => created += 1,
            Err(e) if e.kind == haven_tools::ErrorKind::Conflict => continue,
            Err(e) => anyhow::bail!("creating demo user {email}: {e}"),
        }
        sqlx::query(
            "UPDATE auth.users SET role_id = $2, email_verified = true WHERE lower(email) = $1",
        )
        .bind(email)
        .bind(role)
        .execute(&state.services.db)
        .await?;
    }
    Ok(created)
}
