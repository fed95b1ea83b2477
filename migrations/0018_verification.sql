-- The verification services: email and mobile verification, password reset by email or mobile,
-- and email or mobile 2FA at login. A code is six digits, stored only as a salted SHA-256, single
-- use, expiring, with a bounded number of attempts; one live code per user and purpose (per
-- session for 2FA): starting again supersedes the previous one.
ALTER TABLE auth.users
    ADD COLUMN IF NOT EXISTS mobile text,
    ADD COLUMN IF NOT EXISTS mobile_verified boolean NOT NULL DEFAULT false;

-- A session opened while the server requires a second factor owes it until a 2FA complete.
ALTER TABLE auth.sessions
    ADD COLUMN needs_email_2fa boolean NOT NULL DEFAULT false,
    ADD COLUMN needs_mobile_2fa boolean NOT NULL DEFAULT false;

CREATE TABLE auth.verification_codes (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    purpose    text NOT NULL CHECK (purpose IN ('emailVerification', 'mobileVerification',
                   'email2FA', 'mobile2FA', 'passwordResetByEmail', 'passwordResetByMobile')),
    user_id    uuid NOT NULL REFERENCES auth.users (id),
    session_id uuid REFERENCES auth.sessions (id),
    code_hash  text NOT NULL,
    attempts   integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE UNIQUE INDEX verification_codes_live_idx
    ON auth.verification_codes (purpose, user_id, coalesce(session_id, '00000000-0000-0000-0000-000000000000'))
    WHERE used_at IS NULL;
CREATE INDEX verification_codes_user_idx ON auth.verification_codes (user_id, purpose, created_at DESC);
