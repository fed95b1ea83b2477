-- Failed-login lockout (tools/src/auth/throttle.rs): one row per email or IP address with recent
-- failures. In Postgres, not process memory, so a lockout holds on every replica.
CREATE TABLE auth.login_throttle (
    scope             text        NOT NULL CHECK (scope IN ('account', 'ip')),
    key               text        NOT NULL,
    failures          integer     NOT NULL DEFAULT 0,
    pending           integer     NOT NULL DEFAULT 0, -- attempts whose password is being checked
    window_started_at timestamptz NOT NULL DEFAULT now(),
    locked_until      timestamptz,
    lockouts          integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, key)
);
