//! The OAuth apps (remote MCP connectors) people have authorized: users list and revoke their
//! own authorizations; admins list every registered client and disable one (which also ends
//! every authorization it holds). The authorization server itself lives in the HTTP crate.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::context::Ctx;
use crate::error::ToolError;
use crate::registry::{Access, Action, Method, Operation, Service};
use crate::types::Text;

/// One app the caller authorized.
#[derive(Debug, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizedApp {
    /// The app's OAuth client id.
    pub client_id: String,
    /// The name the app registered with (chosen by the app).
    pub client_name: String,
    /// The scopes granted (the widest of the live authorizations).
    pub scope: String,
    /// Live authorizations (each a sign-in from that app).
    pub authorizations: i64,
    /// The first live authorization.
    pub authorized_at: DateTime<Utc>,
}

/// The caller's authorized apps.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizedApps {
    /// Apps with at least one live authorization, most recent first.
    pub apps: Vec<AuthorizedApp>,
}

/// A registered OAuth client, as admins see it.
#[derive(Debug, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct OAuthClient {
    /// The client id.
    pub client_id: String,
    /// The name it registered with.
    pub client_name: String,
    /// Its registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// When it registered.
    pub created_at: DateTime<Utc>,
    /// The address it registered from.
    pub created_ip: Option<String>,
    /// When an admin disabled it, if one did.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Live authorizations it holds.
    pub active_grants: i64,
}

/// Registered clients.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuthClients {
    /// Newest first, at most 500.
    pub clients: Vec<OAuthClient>,
}

/// Names one OAuth client.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientRef {
    /// The client id as listed: `haven-…` for a registered app, or the `https` URL of the app's
    /// client metadata document.
    pub client_id: Text<255>,
}

/// No input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}

/// What a revocation or disabling ended.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Revoked {
    /// The client.
    pub client_id: String,
    /// Authorizations ended (their access and refresh tokens stop working at once).
    pub revoked: i64,
}

/// The OAuth app operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("listAuthorizedApps", Service::Auth)
            .title("List apps I authorized")
            .describe(
                "Lists the OAuth apps (remote MCP connectors such as claude.ai) you signed in to Haven \
                 from, with the scopes granted. Revoke one with revokeAuthorizedApp.",
            )
            .rest(Method::Get, "/auth-api/v1/oauth/authorizedapps")
            .access(Access::Authenticated)
            .reads(Action::List, "authorizedApps")
            .handler(list_mine),
        Operation::build("revokeAuthorizedApp", Service::Auth)
            .title("Revoke an app I authorized")
            .describe(
                "Ends every authorization you gave one OAuth app: its access and refresh tokens stop \
                 working at once; the app must ask you to sign in again.",
            )
            .rest(Method::Post, "/auth-api/v1/oauth/authorizedapps/{clientId}/revoke")
            .access(Access::Authenticated)
            .updates("authorizedApp")
            .handler(revoke_mine),
        Operation::build("listOAuthClients", Service::PlatformAdmin)
            .title("List OAuth clients")
            .describe(
                "Admins: every dynamically registered OAuth client (remote MCP connectors), with its \
                 redirect URIs, origin address, live authorizations and whether it is disabled.",
            )
            .rest(Method::Get, "/platformadmin-api/v1/oauth/clients")
            .access(Access::Admin)
            .reads(Action::List, "oauthClients")
            .handler(list_all),
        Operation::build("disableOAuthClient", Service::PlatformAdmin)
            .title("Disable an OAuth client")
            .describe(
                "Admins: disables an OAuth client: it can no longer sign anyone in or refresh, and every \
                 authorization it holds ends at once.",
            )
            .rest(Method::Post, "/platformadmin-api/v1/oauth/clients/{clientId}/disable")
            .access(Access::Admin)
            .updates("oauthClient")
            .handler(disable),
    ]
}

/// Revokes the live grants of `client_id` (of `user_id` only, when given); returns how many.
async fn revoke_grants(
    db: &mut sqlx::PgConnection,
    client_id: &str,
    user_id: Option<uuid::Uuid>,
) -> Result<i64, ToolError> {
    let revoked: i64 = sqlx::query_scalar(
        "WITH ended AS (
            UPDATE auth.sessions s SET revoked_at = now()
            FROM oauth.grants g
            WHERE g.session_id = s.id AND g.client_id = $1 AND ($2::uuid IS NULL OR g.user_id = $2)
              AND s.revoked_at IS NULL
            RETURNING s.id
         ), spent AS (
            UPDATE oauth.refresh_tokens r SET used_at = coalesce(r.used_at, now())
            WHERE r.session_id IN (SELECT id FROM ended)
         )
         SELECT count(*) FROM ended",
    )
    .bind(client_id)
    .bind(user_id)
    .fetch_one(&mut *db)
    .await?;
    Ok(revoked)
}

async fn list_mine(ctx: Ctx, _: NoInput) -> Result<AuthorizedApps, ToolError> {
    let user_id = ctx.caller()?.user_id;
    let mut db = ctx.db().await?;
    let apps = sqlx::query_as(
        "SELECT c.id AS client_id, c.client_name, max(g.scope) AS scope, count(*) AS authorizations,
                min(g.created_at) AS authorized_at
         FROM oauth.grants g
         JOIN oauth.clients c ON c.id = g.client_id
         JOIN auth.sessions s ON s.id = g.session_id
         WHERE g.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > now()
         GROUP BY c.id, c.client_name
         ORDER BY max(g.created_at) DESC",
    )
    .bind(user_id)
    .fetch_all(&mut *db)
    .await?;
    Ok(AuthorizedApps { apps })
}

async fn revoke_mine(ctx: Ctx, input: ClientRef) -> Result<Revoked, ToolError> {
    let user_id = ctx.caller()?.user_id;
    let mut db = ctx.db().await?;
    let revoked = revoke_grants(&mut db, input.client_id.as_str(), Some(user_id)).await?;
    if revoked == 0 {
        return Err(ToolError::not_found("authorized app"));
    }
    Ok(Revoked {
        client_id: input.client_id.as_str().to_string(),
        revoked,
    })
}

async fn list_all(ctx: Ctx, _: NoInput) -> Result<OAuthClients, ToolError> {
    let mut db = ctx.db().await?;
    let clients = sqlx::query_as(
        "SELECT c.id AS client_id, c.client_name, c.redirect_uris, c.created_at, c.created_ip, c.disabled_at,
                (SELECT count(*) FROM oauth.grants g JOIN auth.sessions s ON s.id = g.session_id
                 WHERE g.client_id = c.id AND s.revoked_at IS NULL AND s.expires_at > now()) AS active_grants
         FROM oauth.clients c ORDER BY c.created_at DESC, c.id LIMIT 500",
    )
    .fetch_all(&mut *db)
    .await?;
    Ok(OAuthClients { clients })
}

async fn disable(ctx: Ctx, input: ClientRef) -> Result<Revoked, ToolError> {
    let mut db = ctx.db().await?;
    let found: Option<String> = sqlx::query_scalar(
        "UPDATE oauth.clients SET disabled_at = coalesce(disabled_at, now()) WHERE id = $1 RETURNING id",
    )
    .bind(input.client_id.as_str())
    .fetch_optional(&mut *db)
    .await?;
    let client_id = found.ok_or_else(|| ToolError::not_found("OAuth client"))?;
    let revoked = revoke_grants(&mut db, &client_id, None).await?;
    Ok(Revoked { client_id, revoked })
}
