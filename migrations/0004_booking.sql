-- Booking management: reservations with their activity timeline, payments (tickets, customers,
-- methods, the append-only ledger, provider webhook receipts) and disputes.
CREATE SCHEMA booking;

CREATE TABLE booking.reservations (
    id                           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    listing_id                   uuid NOT NULL REFERENCES catalog.listings (id),
    guest_id                     uuid NOT NULL REFERENCES auth.users (id),
    host_id                      uuid NOT NULL REFERENCES auth.users (id),
    approval_type                text NOT NULL CHECK (approval_type IN ('instant', 'manual')),
    booking_status               text NOT NULL DEFAULT 'pending'
        CHECK (booking_status IN ('pending', 'confirmed', 'complete', 'cancelled', 'declined')),
    payment_confirmation         text NOT NULL DEFAULT 'pending'
        CHECK (payment_confirmation IN ('pending', 'processing', 'paid', 'canceled')),
    dispute_status               text NOT NULL DEFAULT 'none'
        CHECK (dispute_status IN ('none', 'requested', 'active', 'resolved')),
    check_in                     date NOT NULL,
    check_out                    date NOT NULL,
    guest_count                  integer NOT NULL CHECK (guest_count >= 1),
    currency                     text NOT NULL,
    total_price                  bigint NOT NULL CHECK (total_price >= 0),
    price_breakdown              jsonb NOT NULL,
    booking_policies_snapshot    jsonb NOT NULL,
    cancellation_policy_snapshot jsonb NOT NULL,
    guest_note                   text,
    ical_export_url              text,
    ical_import_source           text,
    approved_at                  timestamptz,
    hold_expires_at              timestamptz,
    cancelled_at                 timestamptz,
    cancelled_by                 uuid,
    cancellation_reason          text,
    refund_amount                bigint,
    is_active                    boolean NOT NULL DEFAULT true,
    record_version               integer NOT NULL DEFAULT 1,
    created_at                   timestamptz NOT NULL DEFAULT now(),
    updated_at                   timestamptz NOT NULL DEFAULT now(),
    owner_id                     uuid,
    CONSTRAINT reservations_dates_ck CHECK (check_out > check_in)
);
CREATE INDEX reservations_listing_idx ON booking.reservations (listing_id, check_in);
CREATE INDEX reservations_guest_idx ON booking.reservations (guest_id, created_at DESC);
CREATE INDEX reservations_host_idx ON booking.reservations (host_id, created_at DESC);
CREATE INDEX reservations_expiry_idx ON booking.reservations (hold_expires_at)
    WHERE booking_status = 'pending';

ALTER TABLE catalog.listing_holds ADD CONSTRAINT listing_holds_reservation_fk
    FOREIGN KEY (reservation_id) REFERENCES booking.reservations (id) ON DELETE CASCADE;

-- pending, confirmed and complete reservations hold their nights; every other state frees them.
-- An upsert keeps the hold's range in step if an admin script ever moves the dates.
CREATE FUNCTION booking.sync_reservation_hold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.is_active AND NEW.booking_status IN ('pending', 'confirmed', 'complete') THEN
        INSERT INTO catalog.listing_holds (listing_id, stay, reservation_id)
        VALUES (NEW.listing_id, daterange(NEW.check_in, NEW.check_out, '[)'), NEW.id)
        ON CONFLICT (reservation_id) DO UPDATE SET stay = EXCLUDED.stay
            WHERE catalog.listing_holds.stay IS DISTINCT FROM EXCLUDED.stay;
    ELSE
        DELETE FROM catalog.listing_holds WHERE reservation_id = NEW.id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER reservations_hold AFTER INSERT OR UPDATE ON booking.reservations
    FOR EACH ROW EXECUTE FUNCTION booking.sync_reservation_hold();

-- The per-reservation timeline: what changed, from what to what, by whom (null = the system).
CREATE TABLE booking.reservation_activities (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    reservation_id uuid NOT NULL REFERENCES booking.reservations (id),
    kind           text NOT NULL,
    old_value      jsonb,
    new_value      jsonb,
    actor_id       uuid,
    note           text,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX reservation_activities_idx ON booking.reservation_activities (reservation_id, created_at DESC);

-- Sys_reservationPayment: one payment ticket per reservation, tracking the provider's object.
CREATE TABLE booking.reservation_payments (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id        uuid NOT NULL REFERENCES auth.users (id),
    order_id        uuid NOT NULL REFERENCES booking.reservations (id),
    payment_id      text NOT NULL,
    payment_status  text NOT NULL,
    status_literal  text NOT NULL,
    redirect_url    text,
    platform        text NOT NULL,
    amount          bigint NOT NULL,
    currency        text NOT NULL,
    is_active       boolean NOT NULL DEFAULT true,
    record_version  integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX reservation_payments_order_key ON booking.reservation_payments (order_id) WHERE is_active;
CREATE UNIQUE INDEX reservation_payments_payment_key ON booking.reservation_payments (payment_id);

CREATE TABLE booking.payment_customers (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        uuid NOT NULL REFERENCES auth.users (id),
    customer_id    text NOT NULL,
    platform       text NOT NULL DEFAULT 'stripe',
    is_active      boolean NOT NULL DEFAULT true,
    record_version integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX payment_customers_user_key ON booking.payment_customers (user_id, platform);

CREATE TABLE booking.payment_methods (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    payment_method_id text NOT NULL,
    user_id           uuid NOT NULL REFERENCES auth.users (id),
    customer_id       text NOT NULL,
    card_holder_name  text,
    card_holder_zip   text,
    platform          text NOT NULL DEFAULT 'stripe',
    card_info         jsonb,
    is_active         boolean NOT NULL DEFAULT true,
    record_version    integer NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX payment_methods_key ON booking.payment_methods (user_id, platform, payment_method_id);

-- The money ledger: append-only (a refund is a new row), amounts in minor units.
CREATE TABLE booking.payment_records (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    reservation_id     uuid NOT NULL REFERENCES booking.reservations (id),
    payment_intent_id  text NOT NULL,
    stripe_charge_id   text,
    currency           text NOT NULL,
    amount_paid        bigint NOT NULL,
    payment_status     text NOT NULL CHECK (payment_status IN ('pending', 'paid', 'refunded', 'failed')),
    city_tax           bigint,
    platform_fee       bigint,
    payout_amount_host bigint,
    refund_amount      bigint,
    payment_date       timestamptz,
    -- One ledger row per provider fact (e.g. `pi_x:paid`), so replays cannot double-book money.
    dedupe_key         text UNIQUE,
    is_active          boolean NOT NULL DEFAULT true,
    record_version     integer NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    owner_id           uuid
);
CREATE INDEX payment_records_reservation_idx ON booking.payment_records (reservation_id);
CREATE FUNCTION booking.reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'payment records are append-only';
END $$;
CREATE TRIGGER payment_records_append_only BEFORE UPDATE OR DELETE ON booking.payment_records
    FOR EACH ROW EXECUTE FUNCTION booking.reject_change();

-- Provider webhook events already applied (at-least-once delivery: duplicates are ignored).
CREATE TABLE booking.webhook_events (
    event_id    text PRIMARY KEY,
    platform    text NOT NULL,
    event_type  text NOT NULL,
    object_id   text,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- The local provider's own intents (it is a real provider, so its state lives outside the ticket).
CREATE TABLE booking.local_payment_intents (
    id                text PRIMARY KEY,
    idempotency_key   text UNIQUE NOT NULL,
    amount            bigint NOT NULL,
    currency          text NOT NULL,
    customer_id       text,
    payment_method_id text NOT NULL,
    status            text NOT NULL,
    refunded_amount   bigint NOT NULL DEFAULT 0,
    metadata          jsonb NOT NULL DEFAULT '{}',
    client_secret     text,
    latest_charge     text,
    last_error        text,
    description       text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- The local provider's refunds, one per idempotency key.
CREATE TABLE booking.local_payment_refunds (
    id              text PRIMARY KEY,
    idempotency_key text UNIQUE NOT NULL,
    intent_id       text NOT NULL REFERENCES booking.local_payment_intents (id),
    amount          bigint NOT NULL CHECK (amount > 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE booking.disputes (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    reservation_id     uuid NOT NULL REFERENCES booking.reservations (id),
    raised_by          uuid NOT NULL REFERENCES auth.users (id),
    admin_id           uuid REFERENCES auth.users (id),
    issue_type         text NOT NULL,
    description        text NOT NULL,
    related_payment_id uuid REFERENCES booking.payment_records (id),
    resolution_status  text NOT NULL DEFAULT 'pending'
        CHECK (resolution_status IN ('pending', 'reviewing', 'resolved', 'rejected')),
    reported_at        timestamptz NOT NULL DEFAULT now(),
    resolved_at        timestamptz,
    refund_approved    boolean,
    is_active          boolean NOT NULL DEFAULT true,
    record_version     integer NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    owner_id           uuid
);
CREATE INDEX disputes_reservation_idx ON booking.disputes (reservation_id);
-- One open dispute per reservation at a time.
CREATE UNIQUE INDEX disputes_open_key ON booking.disputes (reservation_id)
    WHERE resolution_status IN ('pending', 'reviewing');
