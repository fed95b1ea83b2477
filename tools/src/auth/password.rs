//! Password hashing with Argon2id (OWASP parameters m=19 MiB, t=2, p=1), on the blocking pool
//! behind the server's [`HashGate`](crate::limits::HashGate): a bounded number at once, a bounded
//! queue, 503 past it. Callers hash before taking a database connection, never while holding one.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::context::Ctx;
use crate::error::ToolError;

/// Hashes `plain` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub async fn hash(ctx: &Ctx, plain: &str) -> Result<String, ToolError> {
    let plain = plain.to_owned();
    ctx.services
        .limits
        .hashing
        .run(move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            Argon2::default()
                .hash_password(plain.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(ToolError::internal)
        })
        .await
}

/// Checks `plain` against a stored PHC hash. With no stored hash (unknown user) it still spends
/// the same effort on a dummy hash, so response time does not reveal which emails exist.
pub async fn verify(ctx: &Ctx, plain: &str, stored: Option<&str>) -> Result<bool, ToolError> {
    let plain = plain.to_owned();
    let known = stored.is_some();
    let stored = stored.unwrap_or(DUMMY).to_owned();
    ctx.services
        .limits
        .hashing
        .run(move || verify_now(&plain, &stored).map(|ok| ok && known))
        .await
}

const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$OyMTC7Y8uIhCB7m1Ea2Ur9hCEPsO5o9TSRx8SpGN3yE";

fn verify_now(plain: &str, stored: &str) -> Result<bool, ToolError> {
    let parsed = PasswordHash::new(stored).map_err(ToolError::internal)?;
    Ok(Argon2::default()
        .verify_password(plain.as_bytes(), &parsed)
        .is_ok())
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use argon2::Argon2;

    #[test]
    fn hashes_verify_and_use_argon2id() {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let h = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(super::verify_now("correct horse", &h).unwrap());
        assert!(!super::verify_now("wrong horse", &h).unwrap());
        assert!(super::verify_now("x", super::DUMMY).is_ok());
    }
}
