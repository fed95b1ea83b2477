-- Notifications: registered push devices, the in-app inbox, per-user channel preferences and the
-- delivery outbox (email, SMS, push) drained by workers on any replica with SKIP LOCKED.
CREATE SCHEMA IF NOT EXISTS notification;

-- A device that receives push notifications. A push token belongs to one user at a time:
-- registering it again (say, after a sign-in as someone else) moves it.
CREATE TABLE notification.devices (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        uuid NOT NULL REFERENCES auth.users (id),
    platform       text NOT NULL CHECK (platform IN ('ios', 'android', 'web')),
    push_token     text NOT NULL,
    device_name    text,
    app_version    text,
    is_active      boolean NOT NULL DEFAULT true,
    record_version integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX devices_token_key ON notification.devices (push_token) WHERE is_active;
CREATE INDEX devices_user_idx ON notification.devices (user_id) WHERE is_active;

-- The in-app inbox: one row per notification a user receives (always written, whatever the
-- channel preferences say). dedupe_key makes automatic notifications idempotent (a retried
-- webhook, a second reminder scan).
CREATE TABLE notification.notifications (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        uuid NOT NULL REFERENCES auth.users (id),
    event_type     text NOT NULL,
    title          text NOT NULL,
    body           text NOT NULL,
    data           jsonb NOT NULL DEFAULT '{}',
    language       text NOT NULL DEFAULT 'en',
    is_seen        boolean NOT NULL DEFAULT false,
    seen_at        timestamptz,
    sent_by        uuid REFERENCES auth.users (id),
    dedupe_key     text,
    is_active      boolean NOT NULL DEFAULT true,
    record_version integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX notifications_dedupe_key ON notification.notifications (dedupe_key);
CREATE INDEX notifications_user_idx ON notification.notifications (user_id, created_at DESC);
CREATE INDEX notifications_unseen_idx ON notification.notifications (user_id) WHERE NOT is_seen AND is_active;

-- A user's contact details for channels that need one beyond the account's email.
CREATE TABLE notification.contacts (
    user_id      uuid PRIMARY KEY REFERENCES auth.users (id),
    phone_number text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Per-user overrides of the default (every event on every channel); in-app is always on.
CREATE TABLE notification.preferences (
    user_id    uuid NOT NULL REFERENCES auth.users (id),
    event_type text NOT NULL,
    channel    text NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    enabled    boolean NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, event_type, channel)
);

-- The outbox: one row per message to send on an external channel, written in the transaction of
-- its cause. A worker claims due rows (FOR UPDATE SKIP LOCKED) by taking a lease, sends, and marks
-- the row sent together with the provider's message id in one statement; a failure schedules the
-- next attempt with exponential backoff until max_attempts, then `failed`.
CREATE TABLE notification.deliveries (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Null for messages that are not notifications (verification codes).
    notification_id     uuid REFERENCES notification.notifications (id),
    user_id             uuid NOT NULL REFERENCES auth.users (id),
    channel             text NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    destination         text NOT NULL,
    device_id           uuid REFERENCES notification.devices (id),
    subject             text NOT NULL,
    body_text           text NOT NULL,
    body_html           text,
    payload             jsonb NOT NULL DEFAULT '{}',
    -- Secret content (a verification code): the text is wiped once the row is sent or failed.
    sensitive           boolean NOT NULL DEFAULT false,
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts            integer NOT NULL DEFAULT 0,
    max_attempts        integer NOT NULL DEFAULT 8,
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    lease_until         timestamptz,
    leased_by           text,
    last_error          text,
    provider_message_id text,
    sent_at             timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_due_idx ON notification.deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_notification_idx ON notification.deliveries (notification_id);
CREATE INDEX deliveries_user_idx ON notification.deliveries (user_id, created_at DESC);
