//! Credentials: RS256 access tokens (key pair generated on first start and kept in the database so
//! every replica shares it) and `sk_` API keys (only their SHA-256 is stored). Both resolve to a
//! [`Principal`] read from the database and kept briefly in the [`PrincipalCache`], which every
//! logout, revocation, archive and role change empties for the user at once (across replicas, by
//! NOTIFY), so they take effect immediately.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::distributions::Alphanumeric;
use rand::Rng;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use super::principal_cache::PrincipalCache;
use crate::error::ToolError;
use crate::principal::{Credential, Principal, Role};

/// The prefix of every Haven API key.
pub const API_KEY_PREFIX: &str = "sk_haven_";

/// Issues and checks access tokens and API keys.
pub struct TokenService {
    issuer: String,
    audience: String,
    ttl: Duration,
    kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    public_pems: HashMap<String, String>,
    principals: Arc<PrincipalCache>,
}

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// The login session id (revocable).
    pub sid: String,
    /// The role at minting time (informational; the stored role is authoritative).
    pub role: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires.
    pub exp: i64,
    /// OAuth scopes granted (space-separated), on tokens the authorization server minted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The OAuth client the token was minted for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// A unique id, so two tokens minted in the same second differ (RFC 9068 §2.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// What an access token grants beyond its principal: the audience it was minted for and, for
/// tokens from the OAuth authorization server, the scopes and client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// The token's `aud` (empty for API keys).
    pub audience: String,
    /// The OAuth scopes (space-separated), `None` for login tokens and API keys.
    pub scope: Option<String>,
    /// The OAuth client id, if any.
    pub client_id: Option<String>,
    /// The `iss` of the token: the OAuth authorization server's issuer URL (RFC 8414, the
    /// `issuer` of its metadata) for tokens it minted; `None` for login tokens, which carry the
    /// configured JWT issuer.
    pub issuer: Option<String>,
}

/// Where an OAuth access token is accepted: the protected resource it must be minted for
/// (RFC 8707, the token's `aud`) and the authorization server that must have issued it (its `iss`).
#[derive(Debug, Clone, Copy)]
pub struct OAuthAudience<'a> {
    /// The MCP endpoint's URL.
    pub resource: &'a str,
    /// The authorization server's issuer URL.
    pub issuer: &'a str,
}

impl TokenService {
    /// Loads the signing keys, generating and storing an RSA-2048 pair on first start (under an
    /// advisory lock, so replicas starting together agree on one key).
    pub async fn load_or_create(
        db: &PgPool,
        issuer: &str,
        audience: &str,
        ttl: Duration,
    ) -> anyhow::Result<Self> {
        let mut tx = db.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(7211)")
            .execute(&mut *tx)
            .await?;
        let mut rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT kid, private_pem, public_pem FROM auth.signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC",
        )
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            let (private_pem, public_pem) =
                tokio::task::spawn_blocking(generate_key_pair).await??;
            let kid = Uuid::new_v4().simple().to_string()[..16].to_string();
            sqlx::query(
                "INSERT INTO auth.signing_keys (kid, private_pem, public_pem) VALUES ($1, $2, $3)",
            )
            .bind(&kid)
            .bind(&private_pem)
            .bind(&public_pem)
            .execute(&mut *tx)
            .await?;
            rows.push((kid, private_pem, public_pem));
        }
        tx.commit().await?;
        let (kid, private_pem, _) = rows[0].clone();
        let mut decoding = HashMap::new();
        let mut public_pems = HashMap::new();
        for (kid, _, public_pem) in &rows {
            decoding.insert(
                kid.clone(),
                DecodingKey::from_rsa_pem(public_pem.as_bytes())?,
            );
            public_pems.insert(kid.clone(), public_pem.clone());
        }
        Ok(Self {
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            ttl,
            kid,
            encoding: EncodingKey::from_rsa_pem(private_pem.as_bytes())?,
            decoding,
            public_pems,
            principals: Arc::default(),
        })
    }

    /// The cache of resolved credentials (not served until [`TokenService::listen`] runs).
    pub fn principals(&self) -> &Arc<PrincipalCache> {
        &self.principals
    }

    /// Starts following principal changes on `pool`'s database, which turns the cache on.
    pub fn listen(&self, pool: &PgPool) {
        self.principals.listen(pool);
    }

    /// The id of the key new tokens are signed with.
    pub fn current_kid(&self) -> &str {
        &self.kid
    }

    /// The PEM public key for `kid` (the current key when `None`).
    pub fn public_key(&self, kid: Option<&str>) -> Option<(&str, &str)> {
        let kid = kid.unwrap_or(&self.kid);
        self.public_pems
            .get_key_value(kid)
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Access-token lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Signs an access token for a session; returns it with its expiry.
    pub fn sign(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        role: Role,
    ) -> Result<(String, DateTime<Utc>), ToolError> {
        let grant = Grant {
            audience: self.audience.clone(),
            ..Grant::default()
        };
        self.sign_grant(user_id, session_id, role, &grant, self.ttl)
    }

    /// Signs an access token for a session with the audience, scopes and client of `grant` and
    /// lifetime `ttl` (the OAuth authorization server's tokens, bound to one resource).
    pub fn sign_grant(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        role: Role,
        grant: &Grant,
        ttl: Duration,
    ) -> Result<(String, DateTime<Utc>), ToolError> {
        let now = Utc::now();
        let exp = now + chrono::Duration::from_std(ttl).map_err(ToolError::internal)?;
        let claims = Claims {
            iss: grant.issuer.clone().unwrap_or_else(|| self.issuer.clone()),
            aud: grant.audience.clone(),
            sub: user_id.to_string(),
            sid: session_id.to_string(),
            role: role.as_str().to_string(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: exp.timestamp(),
            scope: grant.scope.clone(),
            client_id: grant.client_id.clone(),
            jti: Some(Uuid::new_v4().simple().to_string()),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("at+jwt".into());
        let token =
            jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(ToolError::internal)?;
        Ok((token, exp))
    }

    /// Resolves a presented token (JWT or `sk_` key) to a principal, or a 401 saying why. Only
    /// tokens for the API audience are accepted; see [`TokenService::authenticate_for`].
    pub async fn authenticate(&self, db: &PgPool, token: &str) -> Result<Principal, ToolError> {
        Ok(self.authenticate_for(db, token, None).await?.0)
    }

    /// Like [`TokenService::authenticate`], also accepting the OAuth authorization server's JWTs
    /// for `oauth` (`aud` = its resource, `iss` = its issuer), and returning what the token grants.
    /// A JWT for any other audience, or whose issuer does not match its kind (an OAuth token
    /// carrying the login issuer, or the reverse), is refused.
    pub async fn authenticate_for(
        &self,
        db: &PgPool,
        token: &str,
        oauth: Option<OAuthAudience<'_>>,
    ) -> Result<(Principal, Grant), ToolError> {
        if token.starts_with("sk_") {
            Ok((
                self.authenticate_api_key(db, token).await?,
                Grant::default(),
            ))
        } else {
            self.authenticate_jwt(db, token, oauth).await
        }
    }

    async fn authenticate_jwt(
        &self,
        db: &PgPool,
        token: &str,
        oauth: Option<OAuthAudience<'_>>,
    ) -> Result<(Principal, Grant), ToolError> {
        let invalid =
            || ToolError::unauthenticated("the access token is invalid or expired; log in again");
        // Where the token is accepted is part of the key: the same token may be refused elsewhere.
        let cache_key = match oauth {
            Some(o) => format!("jwt:{}\u{0}{}\u{0}{token}", o.resource, o.issuer),
            None => format!("jwt:\u{0}\u{0}{token}"),
        };
        if let Some(hit) = self.principals.get(&cache_key) {
            return Ok(hit);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        if header.alg != Algorithm::RS256 {
            return Err(invalid());
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.decoding.get(kid))
            .ok_or_else(invalid)?;
        let mut validation = Validation::new(Algorithm::RS256);
        match oauth {
            Some(o) => {
                validation.set_issuer(&[self.issuer.as_str(), o.issuer]);
                validation.set_audience(&[self.audience.as_str(), o.resource]);
            }
            None => {
                validation.set_issuer(&[&self.issuer]);
                validation.set_audience(&[&self.audience]);
            }
        }
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|_| invalid())?
            .claims;
        // An OAuth token names its client and carries the authorization server's issuer and the
        // resource; a login token neither. A mix of the two was not minted here.
        let minted_by_oauth = claims.client_id.is_some();
        let expected = match (minted_by_oauth, oauth) {
            (true, Some(o)) => (o.issuer, o.resource),
            (false, _) => (self.issuer.as_str(), self.audience.as_str()),
            (true, None) => return Err(invalid()),
        };
        if (claims.iss.as_str(), claims.aud.as_str()) != expected {
            return Err(invalid());
        }
        let session_id = Uuid::parse_str(&claims.sid).map_err(|_| invalid())?;
        let generation = self.principals.generation();
        let row: Option<(Uuid, String, String, String, bool, DateTime<Utc>)> = sqlx::query_as(
            "SELECT u.id, u.role_id, u.email, u.fullname, s.needs_email_2fa OR s.needs_mobile_2fa, s.expires_at
             FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id
             WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > now() AND u.is_active",
        )
        .bind(session_id)
        .fetch_optional(db)
        .await?;
        let (user_id, role, email, fullname, owes_second_factor, session_end) =
            row.ok_or_else(invalid)?;
        if user_id.to_string() != claims.sub {
            return Err(invalid());
        }
        let principal = Principal {
            user_id,
            role: Role::parse(&role).unwrap_or(Role::User),
            email,
            fullname,
            credential: if owes_second_factor {
                Credential::SecondFactorPending(session_id)
            } else {
                Credential::Session(session_id)
            },
        };
        let token_end = DateTime::<Utc>::from_timestamp(claims.exp, 0).unwrap_or(session_end);
        let grant = Grant {
            audience: claims.aud,
            scope: claims.scope,
            client_id: claims.client_id,
            issuer: minted_by_oauth.then_some(claims.iss),
        };
        self.principals.put(
            cache_key,
            &principal,
            &grant,
            Some(token_end.min(session_end)),
            generation,
        );
        Ok((principal, grant))
    }

    async fn authenticate_api_key(&self, db: &PgPool, key: &str) -> Result<Principal, ToolError> {
        let hash = hash_api_key(key);
        let cache_key = format!("key:{hash}");
        let principal = match self.principals.get(&cache_key) {
            Some((principal, _)) => principal,
            None => {
                let generation = self.principals.generation();
                let row: Option<(Uuid, Uuid, String, String, String)> = sqlx::query_as(
                    "SELECT k.id, u.id, u.role_id, u.email, u.fullname FROM platformadmin.api_keys k
                     JOIN auth.users u ON u.id = k.created_by
                     WHERE k.key_hash = $1 AND k.active AND k.revoked_at IS NULL AND k.is_active AND u.is_active",
                )
                .bind(&hash)
                .fetch_optional(db)
                .await?;
                let (key_id, user_id, role, email, fullname) = row.ok_or_else(|| {
                    ToolError::unauthenticated("the API key is unknown or revoked")
                })?;
                let principal = Principal {
                    user_id,
                    role: Role::parse(&role).unwrap_or(Role::User),
                    email,
                    fullname,
                    credential: Credential::ApiKey(key_id),
                };
                self.principals
                    .put(cache_key, &principal, &Grant::default(), None, generation);
                principal
            }
        };
        // At most one write a minute per key, decided here in memory: heavy use of a key does
        // not turn its reads into writes (the condition keeps replicas to about one a minute too).
        if let Credential::ApiKey(key_id) = principal.credential {
            if self.principals.key_use_due(key_id) {
                sqlx::query(
                    "UPDATE platformadmin.api_keys SET last_used_at = now()
                     WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds')",
                )
                .bind(key_id)
                .execute(db)
                .await?;
            }
        }
        Ok(principal)
    }
}

fn generate_key_pair() -> anyhow::Result<(String, String)> {
    let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)?;
    let private_pem = private.to_pkcs1_pem(LineEnding::LF)?.to_string();
    let public_pem = private.to_public_key().to_public_key_pem(LineEnding::LF)?;
    Ok((private_pem, public_pem))
}

/// A fresh API key: the prefix plus 40 random alphanumerics (~238 bits).
pub fn new_api_key() -> String {
    let body: String = rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    format!("{API_KEY_PREFIX}{body}")
}

/// The stored form of an API key: hex SHA-256 (the key is high-entropy, so no slow hash is needed).
pub fn hash_api_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates a login session for `user_id` and signs its access token.
pub async fn open_session(
    db: &mut sqlx::PgConnection,
    tokens: &TokenService,
    user_id: Uuid,
    role: Role,
) -> Result<(Uuid, String, DateTime<Utc>), ToolError> {
    let session_id = Uuid::new_v4();
    let (token, expires) = tokens.sign(user_id, session_id, role)?;
    sqlx::query("INSERT INTO auth.sessions (id, user_id, expires_at) VALUES ($1, $2, $3)")
        .bind(session_id)
        .bind(user_id)
        .bind(expires)
        .execute(db)
        .await?;
    Ok((session_id, token, expires))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_have_prefix_and_entropy() {
        let a = new_api_key();
        assert!(a.starts_with(API_KEY_PREFIX));
        assert_eq!(a.len(), API_KEY_PREFIX.len() + 40);
        assert_ne!(a, new_api_key());
        assert_eq!(hash_api_key(&a).len(), 64);
    }
}
