-- Messaging: threads between a guest and a host (optionally about a listing or a reservation),
-- their messages (edits kept in message_edits, soft delete and moderation hide without erasing),
-- uploaded attachments, and abuse reports that admins moderate.
CREATE SCHEMA IF NOT EXISTS messaging;

CREATE TABLE messaging.message_threads (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    guest_id         uuid NOT NULL REFERENCES auth.users (id),
    host_id          uuid NOT NULL REFERENCES auth.users (id),
    listing_id       uuid REFERENCES catalog.listings (id),
    reservation_id   uuid REFERENCES booking.reservations (id),
    is_open          boolean NOT NULL DEFAULT true,
    -- Set by the server only, in the transaction that posts a message.
    message_count    integer NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    last_message_at  timestamptz NOT NULL DEFAULT now(),
    -- Opened without a reservation (an inquiry): counted against the inquiry limit.
    is_inquiry       boolean NOT NULL DEFAULT false,
    is_active        boolean NOT NULL DEFAULT true,
    record_version   integer NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    owner_id         uuid,
    CHECK (guest_id <> host_id)
);
-- One open thread per context (guest, host, listing, reservation).
CREATE UNIQUE INDEX message_threads_open_context_key ON messaging.message_threads (
    guest_id, host_id,
    coalesce(listing_id, '00000000-0000-0000-0000-000000000000'::uuid),
    coalesce(reservation_id, '00000000-0000-0000-0000-000000000000'::uuid))
    WHERE is_open AND is_active;
CREATE INDEX message_threads_guest_idx ON messaging.message_threads (guest_id, last_message_at DESC);
CREATE INDEX message_threads_host_idx ON messaging.message_threads (host_id, last_message_at DESC);
CREATE INDEX message_threads_inquiries_idx ON messaging.message_threads (owner_id, created_at)
    WHERE is_inquiry;

-- Files uploaded with a message (stored like avatars: bytea, base64 on the wire).
CREATE TABLE messaging.message_attachments (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id    uuid NOT NULL REFERENCES auth.users (id),
    file_name   text NOT NULL,
    mime_type   text NOT NULL,
    file_size   integer NOT NULL CHECK (file_size > 0),
    file_data   bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE messaging.messages (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    thread_id       uuid NOT NULL REFERENCES messaging.message_threads (id),
    sender_id       uuid NOT NULL REFERENCES auth.users (id),
    recipient_id    uuid NOT NULL REFERENCES auth.users (id),
    content         text NOT NULL,
    message_type    text NOT NULL CHECK (message_type IN ('text', 'media', 'system')),
    media_url       text,
    attachment_id   uuid REFERENCES messaging.message_attachments (id),
    sent_at         timestamptz NOT NULL DEFAULT now(),
    is_read         boolean NOT NULL DEFAULT false,
    read_at         timestamptz,
    is_moderated    boolean NOT NULL DEFAULT false,
    is_flagged      boolean NOT NULL DEFAULT false,
    flagged_by      uuid REFERENCES auth.users (id),
    flag_reason     text,
    edited_at       timestamptz,
    is_active       boolean NOT NULL DEFAULT true,
    record_version  integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    owner_id        uuid
);
CREATE INDEX messages_thread_idx ON messaging.messages (thread_id, sent_at, id);
-- The flood limit counts a sender's recent messages.
CREATE INDEX messages_sender_recent_idx ON messaging.messages (sender_id, sent_at);
CREATE INDEX messages_unread_idx ON messaging.messages (recipient_id, thread_id) WHERE NOT is_read;

-- Every earlier text of an edited message, for audit.
CREATE TABLE messaging.message_edits (
    id                bigserial PRIMARY KEY,
    message_id        uuid NOT NULL REFERENCES messaging.messages (id),
    previous_content  text NOT NULL,
    edited_by         uuid REFERENCES auth.users (id),
    edited_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_edits_message_idx ON messaging.message_edits (message_id);

CREATE TABLE messaging.message_reports (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    message_id         uuid NOT NULL REFERENCES messaging.messages (id),
    reported_by        uuid NOT NULL REFERENCES auth.users (id),
    report_reason      text NOT NULL,
    moderation_status  text NOT NULL DEFAULT 'pending' CHECK (moderation_status IN ('pending', 'reviewed', 'closed')),
    admin_id           uuid REFERENCES auth.users (id),
    reported_at        timestamptz NOT NULL DEFAULT now(),
    resolution_notes   text,
    is_active          boolean NOT NULL DEFAULT true,
    record_version     integer NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    owner_id           uuid
);
CREATE UNIQUE INDEX message_reports_once_key ON messaging.message_reports (message_id, reported_by) WHERE is_active;
CREATE INDEX message_reports_status_idx ON messaging.message_reports (moderation_status, reported_at DESC);
