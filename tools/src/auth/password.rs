//! Password hashing with Argon2id (OWASP parameters m=19 MiB, t=2, p=1), off the async threads.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::ToolError;

/// Hashes `plain` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub async fn hash(plain: &str) -> Result<String, ToolError> {
    let plain = plain.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(plain.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(ToolError::internal)
    })
    .await
    .map_err(ToolError::internal)?
}

/// Checks `plain` against a stored PHC hash. With no stored hash (unknown user) it still spends
/// the same effort on a dummy hash, so response time does not reveal which emails exist.
pub async fn verify(plain: &str, stored: Option<&str>) -> Result<bool, ToolError> {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$OyMTC7Y8uIhCB7m1Ea2Ur9hCEPsO5o9TSRx8SpGN3yE";
    let plain = plain.to_owned();
    let known = stored.is_some();
    let stored = stored.unwrap_or(DUMMY).to_owned();
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&stored).map_err(ToolError::internal)?;
        let ok = Argon2::default()
            .verify_password(plain.as_bytes(), &parsed)
            .is_ok();
        Ok(ok && known)
    })
    .await
    .map_err(ToolError::internal)?
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn hashes_verify_and_use_argon2id() {
        let h = super::hash("correct horse").await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(super::verify("correct horse", Some(&h)).await.unwrap());
        assert!(!super::verify("wrong horse", Some(&h)).await.unwrap());
        assert!(!super::verify("correct horse", None).await.unwrap());
    }
}
