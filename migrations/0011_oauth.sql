-- The OAuth 2.1 authorization server for remote MCP connectors: dynamically registered public
-- clients (RFC 7591), consent tickets between the sign-in and consent pages, single-use
-- authorization codes (PKCE S256), grants (one per authorization, each an auth.sessions row, so
-- revoking a grant kills its access tokens at once) and rotated refresh tokens.
CREATE SCHEMA oauth;

CREATE TABLE oauth.clients (
    id            text PRIMARY KEY,
    client_name   text NOT NULL,
    redirect_uris text[] NOT NULL,
    scope         text NOT NULL,
    metadata      jsonb NOT NULL,
    created_ip    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);
CREATE INDEX clients_created_ip_idx ON oauth.clients (created_ip, created_at);

-- Issued after a correct password on the sign-in page; the consent form must present it together
-- with the browser's CSRF cookie value (stored hashed) within ten minutes.
CREATE TABLE oauth.consent_tickets (
    ticket_hash    text PRIMARY KEY,
    csrf_hash      text NOT NULL,
    user_id        uuid NOT NULL REFERENCES auth.users (id),
    client_id      text NOT NULL REFERENCES oauth.clients (id),
    redirect_uri   text NOT NULL,
    scope          text NOT NULL,
    state          text,
    code_challenge text NOT NULL,
    resource       text NOT NULL,
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);

CREATE TABLE oauth.grants (
    session_id uuid PRIMARY KEY REFERENCES auth.sessions (id),
    client_id  text NOT NULL REFERENCES oauth.clients (id),
    user_id    uuid NOT NULL REFERENCES auth.users (id),
    scope      text NOT NULL,
    resource   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX grants_user_idx ON oauth.grants (user_id);
CREATE INDEX grants_client_idx ON oauth.grants (client_id);

CREATE TABLE oauth.codes (
    code_hash      text PRIMARY KEY,
    client_id      text NOT NULL REFERENCES oauth.clients (id),
    user_id        uuid NOT NULL REFERENCES auth.users (id),
    redirect_uri   text NOT NULL,
    scope          text NOT NULL,
    code_challenge text NOT NULL,
    resource       text NOT NULL,
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz,
    -- The grant the code was exchanged for: revoked if the code is presented again.
    session_id     uuid REFERENCES oauth.grants (session_id)
);

CREATE TABLE oauth.refresh_tokens (
    token_hash text PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES oauth.grants (session_id),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_session_idx ON oauth.refresh_tokens (session_id);
