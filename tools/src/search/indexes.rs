//! The per-object indexes: one declaration each — the document type (its JSON Schema gives the
//! fields), the row query over the owning tables, the owning `get`'s visibility, free text.
//! Documents carry only what the owning operation shows; secrets (password hashes, API key
//! hashes, payment provider secrets, blind-review codes) have no field here, so they can be
//! neither returned nor filtered on.

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use uuid::Uuid;

use super::index::{Index, Search, Seen};
use crate::auth::model::BriefUser;
use crate::booking::model::{Reservation, RESERVATION_COLUMNS};
use crate::messaging::model::{thread_columns_for, Message, Thread, MESSAGE_COLUMNS};
use crate::messaging::reports::{MessageReport, REPORT_COLUMNS};
use crate::money::Money;
use crate::types::{Choice, RecordMeta};
use crate::vocabulary::{
    ApprovalTypes, ModerationStatuses, PaymentStatuses, PropertyTypes, ResolutionStatuses,
    RevieweeTypes, Visibilities,
};

/// A listing as search shows it: its own fields, without the joins `getListing` adds.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ListingDoc {
    /// The listing's id.
    pub id: Uuid,
    /// The host.
    pub host_id: Uuid,
    /// Title (base language).
    pub title: String,
    /// Description (base language).
    pub description: String,
    /// Street address.
    pub address: String,
    /// City.
    pub city: String,
    /// Country.
    pub country: Option<String>,
    /// Latitude.
    pub latitude: Option<f64>,
    /// Longitude.
    pub longitude: Option<f64>,
    /// Kind of property.
    #[schemars(with = "Choice<PropertyTypes>")]
    pub property_type: String,
    /// `instant` or `manual` booking approval.
    #[schemars(with = "Choice<ApprovalTypes>")]
    pub approval_type: String,
    /// Base nightly price.
    pub price_per_night: Money,
    /// Cleaning fee per stay.
    pub cleaning_fee: Money,
    /// ISO currency of every price.
    pub currency: String,
    /// Most guests allowed.
    pub max_guests: i32,
    /// Minimum nights per stay.
    pub min_stay: i32,
    /// Maximum nights per stay.
    pub max_stay: Option<i32>,
    /// Languages the host speaks.
    pub languages_supported: Vec<String>,
    /// Amenity ids.
    pub amenity_ids: Vec<Uuid>,
    /// Main photo URL.
    pub main_photo: Option<String>,
    /// Photo URLs.
    pub photos: Vec<String>,
    /// Whether guests can find it.
    pub is_published: bool,
    /// System fields.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

/// The columns of a [`ListingDoc`] from `catalog.listings l`, with its text-search columns.
pub const LISTING_COLUMNS: &str = "l.id, l.host_id, l.title, l.description, l.address, l.city,
    l.country, l.latitude, l.longitude, l.property_type, l.approval_type, l.price_per_night,
    l.cleaning_fee, l.currency, l.max_guests, l.min_stay, l.max_stay, l.languages_supported,
    l.amenity_ids, l.main_photo, l.photos, l.is_published, l.is_active, l.record_version,
    l.created_at, l.updated_at, l.owner_id,
    bff.listing_tsv(l.title, l.description, l.city, l.country, l.address) AS _tsv,
    bff.listing_fuzzy(l.title, l.city) AS _fuzzy";

/// `getListing`'s rule: live listings only; published ones for anyone, drafts for their host.
pub const LISTING_SEEN: Seen = Seen {
    always: Some("d.is_active"),
    public: Some("d.is_published"),
    parties: &["host_id"],
    shown: None,
    login: false,
};

/// Listing free text: title, places, address and description; fuzzy on title and city.
pub const LISTING_SEARCH: Search = Search {
    tsv: "_tsv",
    fuzzy: Some("_fuzzy"),
    fields: &["title", "description", "city", "country", "address"],
};

/// An amenity of the dictionary.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AmenityDoc {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Icon URL.
    pub icon_url: Option<String>,
    /// System fields.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

/// A listing's text in one language.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct LocaleTextDoc {
    /// Its id.
    pub id: Uuid,
    /// The listing.
    pub listing_id: Uuid,
    /// Language tag, e.g. `pt-BR`.
    pub language_code: String,
    /// Title in that language.
    pub localized_title: String,
    /// Description in that language.
    pub localized_description: String,
    /// System fields.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

/// A calendar entry of a listing (nights `[date, endDate)`), without its import settings.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct CalendarDoc {
    /// Its id.
    pub id: Uuid,
    /// The listing.
    pub listing_id: Uuid,
    /// First night.
    pub date: NaiveDate,
    /// Day after the last night.
    pub end_date: NaiveDate,
    /// Whether the nights can be booked.
    pub is_available: bool,
    /// Nightly price for these nights, if different.
    pub price_override: Option<Money>,
    /// Minimum stay for these nights, if different.
    pub min_stay: Option<i32>,
    /// System fields.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

/// Rows that belong to a listing follow the listing's rule (the `_listing_*` and `_host`
/// columns come from the joined listing).
const OF_LISTING_SEEN: Seen = Seen {
    always: Some("d.is_active AND d._listing_active"),
    public: Some("d._listing_published"),
    parties: &["_host"],
    shown: None,
    login: false,
};

/// A payment record (ledger row) of a reservation, without the provider's internal keys.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRecordDoc {
    /// Its id.
    pub id: Uuid,
    /// The reservation paid for.
    pub reservation_id: Uuid,
    /// ISO currency.
    pub currency: String,
    /// Amount paid.
    pub amount_paid: Money,
    /// `pending`, `paid`, `refunded` or `failed`.
    #[schemars(with = "Choice<PaymentStatuses>")]
    pub payment_status: String,
    /// City tax part.
    pub city_tax: Option<Money>,
    /// Platform fee part.
    pub platform_fee: Option<Money>,
    /// What the host receives.
    pub payout_amount_host: Option<Money>,
    /// Amount refunded.
    pub refund_amount: Option<Money>,
    /// When the provider settled it.
    pub payment_date: Option<DateTime<Utc>>,
    /// System fields.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

/// A dispute about a reservation.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct DisputeDoc {
    /// Its id.
    pub id: Uuid,
    /// The reservation.
    pub reservation_id: Uuid,
    /// Who raised it (the guest or the host).
    pub raised_by: Uuid,
    /// The admin handling it.
    pub admin_id: Option<Uuid>,
    /// Kind of issue.
    pub issue_type: String,
    /// What happened.
    pub description: String,
    /// The payment it is about.
    pub related_payment_id: Option<Uuid>,
    /// `pending`, `reviewing`, `resolved` or `rejected`.
    #[schemars(with = "Choice<ResolutionStatuses>")]
    pub resolution_status: String,
    /// When it was raised.
    pub reported_at: DateTime<Utc>,
    /// When it was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Whether a refund was approved.
    pub refund_approved: Option<bool>,
    /// System fields.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

/// A review, without its blind-submission code.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ReviewDoc {
    /// Its id.
    pub id: Uuid,
    /// The stay reviewed.
    pub reservation_id: Uuid,
    /// The author.
    pub reviewer_id: Uuid,
    /// Who or what is reviewed.
    pub reviewee_id: Uuid,
    /// `host`, `guest` or `listing`.
    #[schemars(with = "Choice<RevieweeTypes>")]
    pub reviewee_type: String,
    /// 1 to 5.
    pub rating: i32,
    /// The text.
    pub review_text: String,
    /// `pending`, `approved` or `rejected`.
    #[schemars(with = "Choice<ModerationStatuses>")]
    pub moderation_status: String,
    /// Released by the double-blind rule.
    pub is_published: bool,
    /// When it was written.
    pub submitted_at: DateTime<Utc>,
    /// When it was published.
    pub published_at: Option<DateTime<Utc>>,
    /// System fields.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

/// `getReview`'s rule: live reviews; published and approved ones for anyone, the rest for their
/// author.
pub const REVIEW_SEEN: Seen = Seen {
    always: Some("d.is_active"),
    public: Some("d.is_published AND d.moderation_status = 'approved'"),
    parties: &["reviewer_id"],
    shown: None,
    login: false,
};

/// The rating summary of a host, guest or listing.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AggregateDoc {
    /// Its id.
    pub id: Uuid,
    /// Who or what is rated.
    pub reviewee_id: Uuid,
    /// `host`, `guest` or `listing`.
    #[schemars(with = "Choice<RevieweeTypes>")]
    pub reviewee_type: String,
    /// Mean of the published ratings.
    pub average_rating: f64,
    /// Number of published ratings.
    pub review_count: i32,
    /// `public` or `hidden`.
    #[schemars(with = "Choice<Visibilities>")]
    pub visibility_status: String,
    /// False once deleted.
    pub is_active: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// `getMessageThread`'s rule: live threads, for their guest and host (and admins).
pub const THREAD_SEEN: Seen = Seen::parties(&["guest_id", "host_id"]).always("d.is_active");

/// Thread free text: the participants' names (a thread has no text of its own; search the
/// `message` index for what was written).
pub const THREAD_SEARCH: Search = Search {
    tsv: "_tsv",
    fuzzy: Some("_fuzzy"),
    fields: &["guestName", "hostName"],
};

/// `getMessage`'s rule: messages of live threads, for the thread's guest and host while neither
/// deleted nor moderated; admins also read the hidden ones (kept for audit). A message's sender
/// and recipient are exactly its thread's two participants (createMessage sets the sender to the
/// posting participant and the recipient to the other; nothing changes either), so the parties
/// are the message's own columns, whose b-tree indexes and statistics serve a participant's
/// search without going through the threads (a consistency predicate on the thread's columns
/// here would ruin the planner's estimates).
pub const MESSAGE_SEEN: Seen = Seen::parties(&["sender_id", "recipient_id"])
    .always("d._thread_active")
    .shown("d.is_active AND NOT d.is_moderated");

/// The per-object indexes.
pub fn all() -> Vec<Index> {
    vec![
        Index::of::<ListingDoc>("listing", "a rental listing", "getListing")
            .select(format!("SELECT {LISTING_COLUMNS} FROM catalog.listings l"))
            .seen(LISTING_SEEN)
            .search(LISTING_SEARCH)
            .done(),
        Index::of::<AmenityDoc>("listingAmenity", "an amenity of the dictionary", "getListingAmenity")
            .select("SELECT a.id, a.name, a.icon_url, a.is_active, a.record_version, a.created_at,
                a.updated_at, a.owner_id, lower(a.name) AS _fuzzy,
                to_tsvector('simple', a.name) AS _tsv FROM catalog.amenities a")
            .seen(Seen { always: Some("d.is_active"), public: Some("true"), parties: &[], shown: None, login: false })
            .search(Search { tsv: "_tsv", fuzzy: Some("_fuzzy"), fields: &["name"] })
            .sort("name", false)
            .done(),
        Index::of::<LocaleTextDoc>("listingLocaleText", "a listing's title and description in one language", "getListingLocaleText")
            .select("SELECT t.id, t.listing_id, t.language_code, t.localized_title,
                t.localized_description, t.is_active, t.record_version, t.created_at, t.updated_at,
                t.owner_id, l.is_active AS _listing_active, l.is_published AS _listing_published,
                l.host_id AS _host, bff.text_tsv(t.localized_title, t.localized_description) AS _tsv
                FROM catalog.listing_locale_texts t JOIN catalog.listings l ON l.id = t.listing_id")
            .seen(OF_LISTING_SEEN)
            .search(Search { tsv: "_tsv", fuzzy: None, fields: &["localizedTitle", "localizedDescription"] })
            .done(),
        Index::of::<CalendarDoc>("listingCalendar", "a calendar entry (available or blocked nights, price overrides) of a listing", "getListingCalendar")
            .select("SELECT c.id, c.listing_id, c.date, c.end_date, c.is_available, c.price_override,
                c.min_stay, c.is_active, c.record_version, c.created_at, c.updated_at, c.owner_id,
                l.is_active AS _listing_active, l.is_published AS _listing_published, l.host_id AS _host
                FROM catalog.listing_calendars c JOIN catalog.listings l ON l.id = c.listing_id")
            .seen(OF_LISTING_SEEN)
            .sort("date", false)
            .done(),
        Index::of::<Reservation>("reservation", "a reservation (booking)", "getReservation")
            .select(format!("SELECT {RESERVATION_COLUMNS},
                bff.text_tsv(r.guest_note, r.cancellation_reason) AS _tsv FROM booking.reservations r"))
            .seen(Seen::parties(&["guest_id", "host_id"]))
            .search(Search { tsv: "_tsv", fuzzy: None, fields: &["guestNote", "cancellationReason"] })
            .done(),
        Index::of::<PaymentRecordDoc>("paymentRecord", "a payment record (ledger row) of a reservation", "getPaymentRecord")
            .select("SELECT p.id, p.reservation_id, p.currency, p.amount_paid, p.payment_status,
                p.city_tax, p.platform_fee, p.payout_amount_host, p.refund_amount, p.payment_date,
                p.is_active, p.record_version, p.created_at, p.updated_at, p.owner_id,
                r.guest_id AS _guest, r.host_id AS _host
                FROM booking.payment_records p JOIN booking.reservations r ON r.id = p.reservation_id")
            .seen(Seen::parties(&["_guest", "_host"]))
            .done(),
        Index::of::<DisputeDoc>("dispute", "a dispute about a reservation", "getDispute")
            .select("SELECT ds.id, ds.reservation_id, ds.raised_by, ds.admin_id, ds.issue_type,
                ds.description, ds.related_payment_id, ds.resolution_status, ds.reported_at,
                ds.resolved_at, ds.refund_approved, ds.is_active, ds.record_version, ds.created_at,
                ds.updated_at, ds.owner_id, r.guest_id AS _guest, r.host_id AS _host,
                bff.text_tsv(ds.issue_type, ds.description) AS _tsv
                FROM booking.disputes ds JOIN booking.reservations r ON r.id = ds.reservation_id")
            .seen(Seen::parties(&["_guest", "_host", "admin_id"]))
            .search(Search { tsv: "_tsv", fuzzy: None, fields: &["issueType", "description"] })
            .done(),
        Index::of::<ReviewDoc>("review", "a review of a host, guest or listing", "getReview")
            .select("SELECT rv.id, rv.reservation_id, rv.reviewer_id, rv.reviewee_id, rv.reviewee_type,
                rv.rating, rv.review_text, rv.moderation_status, rv.is_published, rv.submitted_at,
                rv.published_at, rv.is_active, rv.record_version, rv.created_at, rv.updated_at,
                rv.owner_id, bff.text_tsv(rv.review_text, NULL) AS _tsv FROM reviews.reviews rv")
            .seen(REVIEW_SEEN)
            .search(Search { tsv: "_tsv", fuzzy: None, fields: &["reviewText"] })
            .done(),
        Index::of::<AggregateDoc>("reviewAggregate", "the rating summary of a host, guest or listing", "getReviewAggregate")
            .select("SELECT a.id, a.reviewee_id, a.reviewee_type, a.average_rating::float8 AS average_rating,
                a.review_count, a.visibility_status, a.is_active, a.created_at, a.updated_at
                FROM reviews.review_aggregates a")
            .seen(Seen { always: Some("d.is_active"), public: Some("d.visibility_status = 'public'"), parties: &[], shown: None, login: false })
            .done(),
        Index::of::<Thread>("messageThread", "a conversation between a guest and a host (participants' names, your unread count, the listing and reservation it is about)", "getMessageThread")
            .select(format!("SELECT {},
                bff.text_tsv(g.fullname, h.fullname) AS _tsv, lower(g.fullname || ' ' || h.fullname) AS _fuzzy
                FROM messaging.message_threads t CROSS JOIN p
                JOIN auth.users g ON g.id = t.guest_id JOIN auth.users h ON h.id = t.host_id",
                thread_columns_for("p.uid")))
            .seen(THREAD_SEEN)
            .search(THREAD_SEARCH)
            .sort("last_message_at", true)
            .done(),
        Index::of::<Message>("message", "a message of a conversation (its text, sender, read and moderation state)", "getMessage")
            .select(format!("SELECT {MESSAGE_COLUMNS},
                t.is_active AS _thread_active, bff.text_tsv(m.content, NULL) AS _tsv
                FROM messaging.messages m JOIN messaging.message_threads t ON t.id = m.thread_id"))
            .seen(MESSAGE_SEEN)
            .search(Search { tsv: "_tsv", fuzzy: None, fields: &["content"] })
            .sort("sent_at", true)
            .done(),
        Index::of::<MessageReport>("messageReport", "an abuse report about a message (reason, moderation status, the admin's notes)", "getMessageReport")
            .select(format!("SELECT {REPORT_COLUMNS}, m.sender_id AS _sender,
                bff.text_tsv(p.report_reason, p.resolution_notes) AS _tsv
                FROM messaging.message_reports p JOIN messaging.messages m ON m.id = p.message_id"))
            .seen(Seen::parties(&["reported_by", "_sender"]).always("d.is_active"))
            .search(Search { tsv: "_tsv", fuzzy: None, fields: &["reportReason", "resolutionNotes"] })
            .sort("reported_at", true)
            .done(),
        Index::of::<BriefUser>("user", "a user's public profile (name, avatar, bio; never email or credentials)", "getBriefUser")
            .select("SELECT u.id, u.fullname, u.avatar, u.bio, u.is_active, u.created_at,
                bff.text_tsv(u.fullname, u.bio) AS _tsv, lower(u.fullname) AS _fuzzy FROM auth.users u")
            .seen(Seen { always: Some("d.is_active"), public: Some("true"), parties: &[], shown: None, login: false })
            .search(Search { tsv: "_tsv", fuzzy: Some("_fuzzy"), fields: &["fullname", "bio"] })
            .done(),
    ]
}
