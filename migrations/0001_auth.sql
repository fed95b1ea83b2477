-- The auth service: users, login sessions, signing keys, groups, memberships, avatar files and
-- explicit permission grants. Every business table carries the spec's system fields.
CREATE SCHEMA auth;

CREATE TABLE auth.users (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email              text NOT NULL,
    password_hash      text NOT NULL,
    fullname           text NOT NULL,
    avatar             text,
    role_id            text NOT NULL DEFAULT 'user' CHECK (role_id IN ('user', 'admin', 'superAdmin')),
    email_verified     boolean NOT NULL DEFAULT false,
    preferred_language text,
    bio                text,
    is_active          boolean NOT NULL DEFAULT true,
    record_version     integer NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    owner_id           uuid
);
-- Emails are login names: unique regardless of case, and kept by archived users too.
CREATE UNIQUE INDEX users_email_key ON auth.users (lower(email));
CREATE INDEX users_role_idx ON auth.users (role_id);

-- A login session; access tokens carry its id, so logout (revocation) is immediate.
CREATE TABLE auth.sessions (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES auth.users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX sessions_user_idx ON auth.sessions (user_id);

-- RS256 key pairs; generated on first start and shared by every replica through the database.
CREATE TABLE auth.signing_keys (
    kid         text PRIMARY KEY,
    private_pem text NOT NULL,
    public_pem  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);

CREATE TABLE auth.user_groups (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    group_name     text NOT NULL,
    avatar         text,
    is_active      boolean NOT NULL DEFAULT true,
    record_version integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    owner_id       uuid
);

CREATE TABLE auth.user_group_members (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    group_id       uuid NOT NULL REFERENCES auth.user_groups (id),
    user_id        uuid NOT NULL REFERENCES auth.users (id),
    owner_id       uuid,
    is_active      boolean NOT NULL DEFAULT true,
    record_version integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX user_group_members_once ON auth.user_group_members (group_id, user_id) WHERE is_active;

CREATE TABLE auth.user_avatars_files (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    file_name      text NOT NULL,
    mime_type      text NOT NULL,
    file_size      integer NOT NULL,
    access_key     text NOT NULL,
    owner_id       uuid NOT NULL REFERENCES auth.users (id),
    file_data      bytea NOT NULL,
    metadata       jsonb,
    user_id        uuid NOT NULL REFERENCES auth.users (id),
    is_active      boolean NOT NULL DEFAULT true,
    record_version integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX user_avatars_files_owner_idx ON auth.user_avatars_files (owner_id);

-- Explicit grants beyond what a role implies (the spec's givenPermissions).
CREATE TABLE auth.given_permissions (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    permission_name       text NOT NULL,
    role_id               text,
    subject_user_id       uuid REFERENCES auth.users (id),
    subject_user_group_id uuid REFERENCES auth.user_groups (id),
    object_id             uuid,
    can_do                boolean NOT NULL DEFAULT true,
    is_active             boolean NOT NULL DEFAULT true,
    created_at            timestamptz NOT NULL DEFAULT now()
);
