-- Reviews: double-blind, moderated, with per-reviewee aggregates kept in the same transaction.
CREATE SCHEMA reviews;

CREATE TABLE reviews.reviews (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    reservation_id        uuid NOT NULL REFERENCES booking.reservations (id),
    reviewer_id           uuid NOT NULL REFERENCES auth.users (id),
    reviewee_id           uuid NOT NULL,
    reviewee_type         text NOT NULL CHECK (reviewee_type IN ('host', 'guest', 'listing')),
    rating                integer NOT NULL CHECK (rating BETWEEN 1 AND 5),
    review_text           text NOT NULL,
    moderation_status     text NOT NULL DEFAULT 'pending' CHECK (moderation_status IN ('pending', 'approved', 'rejected')),
    is_published          boolean NOT NULL DEFAULT false,
    blind_submission_code text NOT NULL,
    submitted_at          timestamptz NOT NULL DEFAULT now(),
    published_at          timestamptz,
    is_active             boolean NOT NULL DEFAULT true,
    record_version        integer NOT NULL DEFAULT 1,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    owner_id              uuid
);
-- Once per reviewer, reservation and subject (a guest may review both the host and the listing).
CREATE UNIQUE INDEX reviews_once_key ON reviews.reviews (reservation_id, reviewer_id, reviewee_type) WHERE is_active;
CREATE INDEX reviews_reviewee_idx ON reviews.reviews (reviewee_id, reviewee_type) WHERE is_active;
CREATE INDEX reviews_unpublished_idx ON reviews.reviews (submitted_at) WHERE is_active AND NOT is_published;

CREATE TABLE reviews.review_aggregates (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    reviewee_id       uuid NOT NULL,
    reviewee_type     text NOT NULL CHECK (reviewee_type IN ('host', 'guest', 'listing')),
    average_rating    numeric(4, 2) NOT NULL DEFAULT 0,
    review_count      integer NOT NULL DEFAULT 0,
    visibility_status text NOT NULL DEFAULT 'public' CHECK (visibility_status IN ('public', 'hidden')),
    is_active         boolean NOT NULL DEFAULT true,
    record_version    integer NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX review_aggregates_key ON reviews.review_aggregates (reviewee_id, reviewee_type);
