//! The aggregated views: each joins one primary object with what its name promises, in one
//! statement (correlated subqueries and joins; no per-row round trips), and follows the primary
//! object's visibility. Each is also an index (list, count, schema, saved filters, get by id).

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::index::{Index, Search, Seen};
use super::indexes::{
    ListingDoc, LISTING_COLUMNS, LISTING_SEARCH, LISTING_SEEN, REVIEW_SEEN, THREAD_SEEN,
};
use crate::booking::model::{Reservation, RESERVATION_COLUMNS};
use crate::money::Money;
use crate::types::Choice;
use crate::vocabulary::{
    BookingStatuses, DisputeStatuses, MessageTypes, ModerationStatuses, PaymentConfirmations,
    PaymentStatuses, ResolutionStatuses, RevieweeTypes,
};

/// A user as other people see them in a view.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserBrief {
    /// The user's id.
    pub id: Uuid,
    /// Full name.
    pub fullname: String,
    /// Avatar URL.
    pub avatar: Option<String>,
}

/// `jsonb` of a [`UserBrief`] from `auth.users` alias `$1`.
macro_rules! user_brief {
    ($u:literal) => {
        concat!(
            "jsonb_build_object('id', ",
            $u,
            ".id, 'fullname', ",
            $u,
            ".fullname, 'avatar', ",
            $u,
            ".avatar)"
        )
    };
}

/// A booking list row: the reservation, its listing's card, both parties and its payment state.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct BookingRow {
    /// The reservation's id.
    pub id: Uuid,
    /// The listing.
    pub listing_id: Uuid,
    /// The guest.
    pub guest_id: Uuid,
    /// The host.
    pub host_id: Uuid,
    /// `pending`, `confirmed`, `complete`, `cancelled` or `declined`.
    #[schemars(with = "Choice<BookingStatuses>")]
    pub booking_status: String,
    /// `pending`, `processing`, `paid` or `canceled`.
    #[schemars(with = "Choice<PaymentConfirmations>")]
    pub payment_confirmation: String,
    /// `none`, `requested`, `active` or `resolved`.
    #[schemars(with = "Choice<DisputeStatuses>")]
    pub dispute_status: String,
    /// First night.
    pub check_in: NaiveDate,
    /// Departure day.
    pub check_out: NaiveDate,
    /// Nights of the stay.
    pub nights: i32,
    /// Guests.
    pub guest_count: i32,
    /// ISO currency.
    pub currency: String,
    /// What the guest pays in total.
    pub total_price: Money,
    /// Sum of the paid payment records.
    pub amount_paid: Money,
    /// Status of the latest payment record, null before any.
    #[schemars(with = "Option<Choice<PaymentStatuses>>")]
    pub last_payment_status: Option<String>,
    /// The listing's title.
    pub listing_title: String,
    /// The listing's city.
    pub listing_city: String,
    /// The listing's main photo.
    pub listing_main_photo: Option<String>,
    /// The guest's brief.
    #[sqlx(json)]
    pub guest: UserBrief,
    /// The host's brief.
    #[sqlx(json)]
    pub host: UserBrief,
    /// False once deleted.
    pub is_active: bool,
    /// When it was requested.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// Who or what a review is about.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewSubject {
    /// `host`, `guest` or `listing`.
    pub kind: String,
    /// Its id.
    pub id: Uuid,
    /// The listing's title or the user's name.
    pub name: String,
    /// The listing's main photo or the user's avatar.
    pub photo: Option<String>,
}

/// A rating summary.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rating {
    /// Mean of the published ratings.
    pub average_rating: f64,
    /// Number of published ratings.
    pub review_count: i64,
}

/// A review shaped for display: the review, its author's brief, its subject and the subject's
/// rating summary.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ReviewCard {
    /// The review's id.
    pub id: Uuid,
    /// The stay reviewed.
    pub reservation_id: Uuid,
    /// The author.
    pub reviewer_id: Uuid,
    /// The subject's id.
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
    /// When it was published.
    pub published_at: Option<DateTime<Utc>>,
    /// The author's brief.
    #[sqlx(json)]
    pub reviewer: UserBrief,
    /// Who or what it is about (null when the caller may not see the subject).
    #[sqlx(json(nullable))]
    pub subject: Option<ReviewSubject>,
    /// The subject's public rating summary.
    #[sqlx(json(nullable))]
    pub aggregate: Option<Rating>,
    /// False once deleted.
    pub is_active: bool,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// A payment record with its reservation.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRow {
    /// The record's id.
    pub id: Uuid,
    /// The reservation.
    pub reservation_id: Uuid,
    /// ISO currency.
    pub currency: String,
    /// Amount paid.
    pub amount_paid: Money,
    /// `pending`, `paid`, `refunded` or `failed`.
    #[schemars(with = "Choice<PaymentStatuses>")]
    pub payment_status: String,
    /// Amount refunded.
    pub refund_amount: Option<Money>,
    /// Platform fee part.
    pub platform_fee: Option<Money>,
    /// What the host receives.
    pub payout_amount_host: Option<Money>,
    /// When the provider settled it.
    pub payment_date: Option<DateTime<Utc>>,
    /// The guest.
    pub guest_id: Uuid,
    /// The host.
    pub host_id: Uuid,
    /// The listing.
    pub listing_id: Uuid,
    /// The listing's title.
    pub listing_title: String,
    /// The stay's first night.
    pub check_in: NaiveDate,
    /// The stay's departure day.
    pub check_out: NaiveDate,
    /// The reservation's status.
    #[schemars(with = "Choice<BookingStatuses>")]
    pub booking_status: String,
    /// The reservation's total.
    pub total_price: Money,
    /// False once deleted.
    pub is_active: bool,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// One entry of a reservation's activity timeline.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    /// What happened (`dispute_opened`, `status_changed`, …).
    pub kind: String,
    /// Value before.
    pub old_value: Option<Value>,
    /// Value after.
    pub new_value: Option<Value>,
    /// Who did it (null: the system).
    pub actor_id: Option<Uuid>,
    /// Free note.
    pub note: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// `jsonb` array of [`TimelineEntry`] for `booking.reservation_activities a` matching `$where`.
macro_rules! timeline {
    ($from:literal, $where:literal) => {
        concat!(
            "coalesce((SELECT jsonb_agg(jsonb_build_object('kind', a.kind, 'oldValue', a.old_value,
                'newValue', a.new_value, 'actorId', a.actor_id, 'note', a.note, 'createdAt', a.created_at)
                ORDER BY a.created_at, a.id) FROM ",
            $from,
            " WHERE ",
            $where,
            "), '[]'::jsonb)"
        )
    };
}

/// A dispute with its reservation, its dispute timeline and the admins' actions on it.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct DisputeDetail {
    /// The dispute's id.
    pub id: Uuid,
    /// The reservation.
    pub reservation_id: Uuid,
    /// Who raised it.
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
    /// The reservation's guest.
    pub guest_id: Uuid,
    /// The reservation's host.
    pub host_id: Uuid,
    /// The reservation's status.
    #[schemars(with = "Choice<BookingStatuses>")]
    pub booking_status: String,
    /// The stay's first night.
    pub check_in: NaiveDate,
    /// The stay's departure day.
    pub check_out: NaiveDate,
    /// The reservation's total.
    pub total_price: Money,
    /// ISO currency.
    pub currency: String,
    /// The listing's title.
    pub listing_title: String,
    /// Who raised it, as a brief.
    #[sqlx(json)]
    pub raised_by_user: UserBrief,
    /// The reservation's dispute events (opened, status changes, resolution), oldest first.
    #[sqlx(json)]
    pub timeline: Vec<TimelineEntry>,
    /// The timeline entries made by admins.
    #[sqlx(json)]
    pub admin_actions: Vec<TimelineEntry>,
    /// False once deleted.
    pub is_active: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A listing's card inside another view.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListingBrief {
    /// Its id.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// City.
    pub city: String,
    /// Street address.
    pub address: String,
    /// Main photo.
    pub main_photo: Option<String>,
}

/// A payment record inside a reservation's detail.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentBrief {
    /// Its id.
    pub id: Uuid,
    /// `pending`, `paid`, `refunded` or `failed`.
    pub payment_status: String,
    /// Amount paid.
    pub amount_paid: f64,
    /// Amount refunded.
    pub refund_amount: Option<f64>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// A dispute inside a reservation's detail.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisputeBrief {
    /// Its id.
    pub id: Uuid,
    /// Kind of issue.
    pub issue_type: String,
    /// Its status.
    pub resolution_status: String,
    /// When it was raised.
    pub reported_at: DateTime<Utc>,
}

/// A review inside another view.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewBrief {
    /// Its id.
    pub id: Uuid,
    /// The author.
    pub reviewer_id: Uuid,
    /// `host`, `guest` or `listing`.
    pub reviewee_type: String,
    /// 1 to 5.
    pub rating: i32,
    /// The text.
    pub review_text: String,
    /// Released by the double-blind rule.
    pub is_published: bool,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// A reservation with everything about it: listing, parties, price breakdown (in the
/// reservation's fields), payments, activity timeline, latest dispute and its reviews.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ReservationDetail {
    /// The reservation itself, as `getReservation` returns it.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub reservation: Reservation,
    /// Nights of the stay.
    pub nights: i32,
    /// The listing's card.
    #[sqlx(json)]
    pub listing: ListingBrief,
    /// The guest's brief.
    #[sqlx(json)]
    pub guest: UserBrief,
    /// The host's brief.
    #[sqlx(json)]
    pub host: UserBrief,
    /// Its payment records, oldest first.
    #[sqlx(json)]
    pub payments: Vec<PaymentBrief>,
    /// Its activity timeline, oldest first.
    #[sqlx(json)]
    pub timeline: Vec<TimelineEntry>,
    /// The latest dispute, if any.
    #[sqlx(json(nullable))]
    pub dispute: Option<DisputeBrief>,
    /// Its reviews the caller may read (published ones; one's own; all for admins).
    #[sqlx(json)]
    pub reviews: Vec<ReviewBrief>,
}

/// An amenity inside a listing's detail.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AmenityItem {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Icon URL.
    pub icon_url: Option<String>,
}

/// A listing's text in one language, inside its detail.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocaleTextItem {
    /// Language tag.
    pub language_code: String,
    /// Title in that language.
    pub localized_title: String,
    /// Description in that language.
    pub localized_description: String,
}

/// Nights that cannot be booked, `[from, to)`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockedRange {
    /// First unavailable night.
    pub from: NaiveDate,
    /// Day after the last unavailable night.
    pub to: NaiveDate,
}

/// The next year of a listing's calendar, summarised.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CalendarSummary {
    /// Unavailable ranges (booked or blocked) from today on, within a year, in order.
    pub blocked: Vec<BlockedRange>,
    /// Unavailable nights among the next 30.
    pub blocked_nights_next30: i64,
    /// Calendar entries with a nightly price override from today on.
    pub price_overrides: i64,
}

/// A listing with its amenities, translations, calendar summary, rating and host.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ListingDetail {
    /// The listing's own fields.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub listing: ListingDoc,
    /// Its active amenities, by name.
    #[sqlx(json)]
    pub amenities: Vec<AmenityItem>,
    /// Its translations.
    #[sqlx(json)]
    pub locale_texts: Vec<LocaleTextItem>,
    /// Its calendar, summarised.
    #[sqlx(json)]
    pub calendar: CalendarSummary,
    /// Its public rating summary.
    #[sqlx(json(nullable))]
    pub aggregate: Option<Rating>,
    /// The host's brief.
    #[sqlx(json)]
    pub host: UserBrief,
}

/// A message inside a conversation view.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageItem {
    /// Its id.
    pub id: Uuid,
    /// Who wrote it.
    pub sender_id: Uuid,
    /// The sender's name.
    pub sender_name: String,
    /// The text.
    pub content: String,
    /// `text`, `media` or `system`.
    #[schemars(with = "Choice<MessageTypes>")]
    pub message_type: String,
    /// A linked image or document, for media messages.
    pub media_url: Option<String>,
    /// When it was posted.
    pub sent_at: DateTime<Utc>,
    /// Whether the recipient marked it read.
    pub is_read: bool,
    /// When its text was last edited.
    pub edited_at: Option<DateTime<Utc>>,
    /// Hidden by an admin (only admins see such a message here).
    pub is_moderated: bool,
    /// False once deleted (only admins see such a message here).
    pub is_active: bool,
}

/// The jsonb of a [`MessageItem`] from `messaging.messages m` and its sender `s`.
macro_rules! message_item {
    () => {
        "jsonb_build_object('id', m.id, 'senderId', m.sender_id, 'senderName', s.fullname,
            'content', m.content, 'messageType', m.message_type, 'mediaUrl', m.media_url,
            'sentAt', m.sent_at, 'isRead', m.is_read, 'editedAt', m.edited_at,
            'isModerated', m.is_moderated, 'isActive', m.is_active)"
    };
}

/// Which messages of thread `t` the caller `p` reads, as `getThreadMessages` decides: the
/// participants those neither deleted nor moderated; an admin who is not a participant all.
macro_rules! message_shown {
    () => {
        "((m.is_active AND NOT m.is_moderated)
            OR (p.admin AND p.uid IS DISTINCT FROM t.guest_id AND p.uid IS DISTINCT FROM t.host_id))"
    };
}

/// The caller's unread messages in thread `t` (as `getMessageThread`'s `unreadCount`).
macro_rules! unread_count {
    () => {
        "(SELECT count(*) FROM messaging.messages um WHERE um.thread_id = t.id
            AND um.recipient_id = p.uid AND NOT um.is_read AND um.is_active AND NOT um.is_moderated)"
    };
}

/// Conversation views' free text: the participants' names (search the `message` index for what
/// was written).
const CONVERSATION_SEARCH: Search = Search {
    tsv: "_tsv",
    fuzzy: Some("_fuzzy"),
    fields: &["guest", "host"],
};

/// A listing's card inside a conversation view.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadListing {
    /// Its id.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// City.
    pub city: String,
    /// Main photo.
    pub main_photo: Option<String>,
}

/// The reservation a conversation is about, in brief.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadReservation {
    /// Its id.
    pub id: Uuid,
    /// `pending`, `confirmed`, `complete`, `cancelled` or `declined`.
    #[schemars(with = "Choice<BookingStatuses>")]
    pub booking_status: String,
    /// First night.
    pub check_in: NaiveDate,
    /// Departure day.
    pub check_out: NaiveDate,
    /// Guests.
    pub guest_count: i32,
}

/// An inbox row: a conversation with its last message, your unread count, the other
/// participant's brief and the listing and reservation it is about.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ThreadRow {
    /// The thread's id.
    pub id: Uuid,
    /// The guest participant.
    pub guest_id: Uuid,
    /// The host participant.
    pub host_id: Uuid,
    /// The listing it is about, if any.
    pub listing_id: Option<Uuid>,
    /// The reservation it is about, if any.
    pub reservation_id: Option<Uuid>,
    /// False once closed.
    pub is_open: bool,
    /// Messages posted so far (hidden and deleted ones included).
    pub message_count: i32,
    /// When the last message was posted (the opening time before any).
    pub last_message_at: DateTime<Utc>,
    /// Messages to you in this thread that you have not marked read.
    pub unread_count: i64,
    /// The newest message you can read in it (null before any).
    #[sqlx(json(nullable))]
    pub last_message: Option<MessageItem>,
    /// The participant who is not you (null for an admin who is neither).
    #[sqlx(json(nullable))]
    pub other_party: Option<UserBrief>,
    /// The guest's brief.
    #[sqlx(json)]
    pub guest: UserBrief,
    /// The host's brief.
    #[sqlx(json)]
    pub host: UserBrief,
    /// The listing's card (null when none).
    #[sqlx(json(nullable))]
    pub listing: Option<ThreadListing>,
    /// The reservation in brief (null when none).
    #[sqlx(json(nullable))]
    pub reservation: Option<ThreadReservation>,
    /// False once deleted.
    pub is_active: bool,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// The listing a conversation is about, as whoever answers it needs it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatListing {
    /// Its id.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Street address.
    pub address: String,
    /// City.
    pub city: String,
    /// Country.
    pub country: Option<String>,
    /// Kind of property.
    pub property_type: String,
    /// `instant` or `manual` booking approval.
    pub approval_type: String,
    /// Base nightly price.
    pub price_per_night: f64,
    /// Cleaning fee per stay.
    pub cleaning_fee: f64,
    /// ISO currency.
    pub currency: String,
    /// Most guests allowed.
    pub max_guests: i32,
    /// Minimum nights per stay.
    pub min_stay: i32,
    /// Maximum nights per stay.
    pub max_stay: Option<i32>,
    /// Languages the host speaks.
    pub languages_supported: Vec<String>,
    /// Main photo.
    pub main_photo: Option<String>,
    /// Whether guests can find it.
    pub is_published: bool,
}

/// The reservation a conversation is about, as whoever answers it needs it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatReservation {
    /// Its id.
    pub id: Uuid,
    /// The listing booked.
    pub listing_id: Uuid,
    /// `pending`, `confirmed`, `complete`, `cancelled` or `declined`.
    #[schemars(with = "Choice<BookingStatuses>")]
    pub booking_status: String,
    /// `pending`, `processing`, `paid` or `canceled`.
    #[schemars(with = "Choice<PaymentConfirmations>")]
    pub payment_confirmation: String,
    /// `none`, `requested`, `active` or `resolved`.
    #[schemars(with = "Choice<DisputeStatuses>")]
    pub dispute_status: String,
    /// First night.
    pub check_in: NaiveDate,
    /// Departure day.
    pub check_out: NaiveDate,
    /// Nights of the stay.
    pub nights: i32,
    /// Guests.
    pub guest_count: i32,
    /// What the guest pays in total.
    pub total_price: f64,
    /// ISO currency.
    pub currency: String,
    /// The guest's note to the host.
    pub guest_note: Option<String>,
}

/// Everything needed to answer a conversation: the thread, both participants' briefs, the
/// listing and reservation it is about, and its most recent messages in order.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ChatContext {
    /// The thread's id.
    pub id: Uuid,
    /// The guest participant.
    pub guest_id: Uuid,
    /// The host participant.
    pub host_id: Uuid,
    /// The listing it is about, if any.
    pub listing_id: Option<Uuid>,
    /// The reservation it is about, if any.
    pub reservation_id: Option<Uuid>,
    /// False once closed (a closed thread takes no new messages).
    pub is_open: bool,
    /// Messages posted so far (hidden and deleted ones included).
    pub message_count: i32,
    /// When the last message was posted.
    pub last_message_at: DateTime<Utc>,
    /// Messages to you in this thread that you have not marked read.
    pub unread_count: i64,
    /// The guest's brief.
    #[sqlx(json)]
    pub guest: UserBrief,
    /// The host's brief.
    #[sqlx(json)]
    pub host: UserBrief,
    /// The listing (null when none, or when it is deleted or a draft you may not see).
    #[sqlx(json(nullable))]
    pub listing: Option<ChatListing>,
    /// The reservation (null when none or deleted).
    #[sqlx(json(nullable))]
    pub reservation: Option<ChatReservation>,
    /// The last 20 messages you can read, oldest first.
    #[sqlx(json)]
    pub recent_messages: Vec<MessageItem>,
    /// False once deleted.
    pub is_active: bool,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// The aggregated views.
pub fn all() -> Vec<Index> {
    vec![
        Index::of::<BookingRow>("BookingListView", "a booking list row: the reservation with its listing's title, city and photo, the guest's and host's briefs and its payment state", "getReservation")
            .select(concat!("SELECT r.id, r.listing_id, r.guest_id, r.host_id, r.booking_status,
                r.payment_confirmation, r.dispute_status, r.check_in, r.check_out,
                (r.check_out - r.check_in) AS nights, r.guest_count, r.currency, r.total_price,
                coalesce((SELECT sum(pr.amount_paid) FROM booking.payment_records pr
                    WHERE pr.reservation_id = r.id AND pr.payment_status = 'paid'), 0)::bigint AS amount_paid,
                (SELECT pr.payment_status FROM booking.payment_records pr WHERE pr.reservation_id = r.id
                    ORDER BY pr.created_at DESC, pr.id DESC LIMIT 1) AS last_payment_status,
                l.title AS listing_title, l.city AS listing_city, l.main_photo AS listing_main_photo, ",
                user_brief!("g"), " AS guest, ", user_brief!("h"), " AS host,
                r.is_active, r.created_at, r.updated_at,
                bff.listing_tsv(l.title, l.description, l.city, l.country, l.address) AS _tsv,
                bff.listing_fuzzy(l.title, l.city) AS _fuzzy
                FROM booking.reservations r JOIN catalog.listings l ON l.id = r.listing_id
                JOIN auth.users g ON g.id = r.guest_id JOIN auth.users h ON h.id = r.host_id"))
            .seen(Seen::parties(&["guest_id", "host_id"]))
            .search(Search { tsv: "_tsv", fuzzy: Some("_fuzzy"), fields: &["listingTitle", "listingCity"] })
            .done(),
        Index::of::<ReviewCard>("ReviewDisplayView", "a review shaped for display: the review, its author's brief, its subject (listing or user) and the subject's rating summary", "getReview")
            .select(concat!("SELECT rv.id, rv.reservation_id, rv.reviewer_id, rv.reviewee_id, rv.reviewee_type,
                rv.rating, rv.review_text, rv.moderation_status, rv.is_published, rv.published_at, ",
                user_brief!("u"), " AS reviewer,
                CASE WHEN rv.reviewee_type = 'listing' THEN
                    (SELECT jsonb_build_object('kind', 'listing', 'id', l.id, 'name', l.title, 'photo', l.main_photo)
                       FROM catalog.listings l WHERE l.id = rv.reviewee_id AND l.is_active
                        AND (l.is_published OR l.host_id = p.uid OR p.admin))
                ELSE (SELECT jsonb_build_object('kind', rv.reviewee_type, 'id', s.id, 'name', s.fullname, 'photo', s.avatar)
                       FROM auth.users s WHERE s.id = rv.reviewee_id) END AS subject,
                (SELECT jsonb_build_object('averageRating', a.average_rating::float8, 'reviewCount', a.review_count)
                   FROM reviews.review_aggregates a WHERE a.reviewee_id = rv.reviewee_id
                    AND a.reviewee_type = rv.reviewee_type AND a.is_active
                    AND (a.visibility_status = 'public' OR p.admin)) AS aggregate,
                rv.is_active, rv.created_at, bff.text_tsv(rv.review_text, NULL) AS _tsv
                FROM reviews.reviews rv CROSS JOIN p JOIN auth.users u ON u.id = rv.reviewer_id"))
            .seen(REVIEW_SEEN)
            .search(Search { tsv: "_tsv", fuzzy: None, fields: &["reviewText"] })
            .done(),
        Index::of::<PaymentRow>("PaymentRecordView", "a payment record with its reservation (parties, stay, status, total) and listing title", "getPaymentRecord")
            .select("SELECT pr.id, pr.reservation_id, pr.currency, pr.amount_paid, pr.payment_status,
                pr.refund_amount, pr.platform_fee, pr.payout_amount_host, pr.payment_date,
                r.guest_id, r.host_id, r.listing_id, l.title AS listing_title, r.check_in, r.check_out,
                r.booking_status, r.total_price, pr.is_active, pr.created_at
                FROM booking.payment_records pr JOIN booking.reservations r ON r.id = pr.reservation_id
                JOIN catalog.listings l ON l.id = r.listing_id")
            .seen(Seen::parties(&["guest_id", "host_id"]))
            .done(),
        Index::of::<DisputeDetail>("disputeDetailView", "a dispute with its reservation, who raised it, its timeline and the admins' actions", "getDispute")
            .select(concat!("SELECT ds.id, ds.reservation_id, ds.raised_by, ds.admin_id, ds.issue_type,
                ds.description, ds.related_payment_id, ds.resolution_status, ds.reported_at,
                ds.resolved_at, ds.refund_approved, r.guest_id, r.host_id, r.booking_status,
                r.check_in, r.check_out, r.total_price, r.currency, l.title AS listing_title, ",
                user_brief!("u"), " AS raised_by_user, ",
                timeline!("booking.reservation_activities a", "a.reservation_id = ds.reservation_id AND a.kind LIKE 'dispute%'"),
                " AS timeline, ",
                timeline!("booking.reservation_activities a JOIN auth.users au ON au.id = a.actor_id",
                    "a.reservation_id = ds.reservation_id AND a.kind LIKE 'dispute%' AND au.role_id IN ('admin', 'superAdmin')"),
                " AS admin_actions, ds.is_active, ds.created_at, ds.updated_at,
                bff.text_tsv(ds.issue_type, ds.description) AS _tsv
                FROM booking.disputes ds JOIN booking.reservations r ON r.id = ds.reservation_id
                JOIN catalog.listings l ON l.id = r.listing_id JOIN auth.users u ON u.id = ds.raised_by"))
            .seen(Seen::parties(&["guest_id", "host_id", "admin_id"]))
            .search(Search { tsv: "_tsv", fuzzy: None, fields: &["issueType", "description"] })
            .done(),
        Index::of::<ReservationDetail>("ReservationDetailView", "a reservation with everything about it: listing card, guest and host briefs, price breakdown, payments, activity timeline, latest dispute and reviews", "getReservation")
            .select(format!("SELECT {RESERVATION_COLUMNS}, (r.check_out - r.check_in) AS nights,
                jsonb_build_object('id', l.id, 'title', l.title, 'city', l.city, 'address', l.address,
                    'mainPhoto', l.main_photo) AS listing,
                {guest} AS guest, {host} AS host,
                coalesce((SELECT jsonb_agg(jsonb_build_object('id', pr.id, 'paymentStatus', pr.payment_status,
                    'amountPaid', pr.amount_paid / 100.0, 'refundAmount', pr.refund_amount / 100.0,
                    'createdAt', pr.created_at) ORDER BY pr.created_at, pr.id)
                   FROM booking.payment_records pr WHERE pr.reservation_id = r.id), '[]'::jsonb) AS payments,
                {timeline} AS timeline,
                (SELECT jsonb_build_object('id', ds.id, 'issueType', ds.issue_type,
                    'resolutionStatus', ds.resolution_status, 'reportedAt', ds.reported_at)
                   FROM booking.disputes ds WHERE ds.reservation_id = r.id AND ds.is_active
                   ORDER BY ds.reported_at DESC, ds.id DESC LIMIT 1) AS dispute,
                coalesce((SELECT jsonb_agg(jsonb_build_object('id', rv.id, 'reviewerId', rv.reviewer_id,
                    'revieweeType', rv.reviewee_type, 'rating', rv.rating, 'reviewText', rv.review_text,
                    'isPublished', rv.is_published, 'createdAt', rv.created_at) ORDER BY rv.created_at, rv.id)
                   FROM reviews.reviews rv WHERE rv.reservation_id = r.id AND rv.is_active
                    AND ((rv.is_published AND rv.moderation_status = 'approved') OR rv.reviewer_id = p.uid OR p.admin)),
                   '[]'::jsonb) AS reviews,
                bff.listing_tsv(l.title, l.description, l.city, l.country, l.address) AS _tsv,
                bff.listing_fuzzy(l.title, l.city) AS _fuzzy
                FROM booking.reservations r CROSS JOIN p JOIN catalog.listings l ON l.id = r.listing_id
                JOIN auth.users g ON g.id = r.guest_id JOIN auth.users h ON h.id = r.host_id",
                guest = user_brief!("g"), host = user_brief!("h"),
                timeline = timeline!("booking.reservation_activities a", "a.reservation_id = r.id")))
            .seen(Seen::parties(&["guest_id", "host_id"]))
            .search(Search { tsv: "_tsv", fuzzy: Some("_fuzzy"), fields: &[] })
            .done(),
        Index::of::<ListingDetail>("ListingDetailView", "a listing with its amenities, translations, calendar summary (booked or blocked nights of the next year), public rating summary and host brief", "getListing")
            .select(format!("SELECT {LISTING_COLUMNS},
                coalesce((SELECT jsonb_agg(jsonb_build_object('id', a.id, 'name', a.name, 'iconUrl', a.icon_url)
                    ORDER BY lower(a.name)) FROM catalog.amenities a WHERE a.id = ANY (l.amenity_ids) AND a.is_active),
                    '[]'::jsonb) AS amenities,
                coalesce((SELECT jsonb_agg(jsonb_build_object('languageCode', t.language_code,
                    'localizedTitle', t.localized_title, 'localizedDescription', t.localized_description)
                    ORDER BY t.language_code) FROM catalog.listing_locale_texts t
                    WHERE t.listing_id = l.id AND t.is_active), '[]'::jsonb) AS locale_texts,
                jsonb_build_object(
                    'blocked', coalesce((SELECT jsonb_agg(jsonb_build_object('from', lower(hd.stay), 'to', upper(hd.stay))
                        ORDER BY lower(hd.stay)) FROM catalog.listing_holds hd WHERE hd.listing_id = l.id
                        AND upper(hd.stay) > current_date AND lower(hd.stay) < current_date + 365), '[]'::jsonb),
                    'blockedNightsNext30', coalesce((SELECT sum(upper(hd.stay * daterange(current_date, current_date + 30))
                        - lower(hd.stay * daterange(current_date, current_date + 30)))
                        FROM catalog.listing_holds hd WHERE hd.listing_id = l.id
                        AND hd.stay && daterange(current_date, current_date + 30)), 0),
                    'priceOverrides', (SELECT count(*) FROM catalog.listing_calendars c WHERE c.listing_id = l.id
                        AND c.is_active AND c.price_override IS NOT NULL AND c.end_date > current_date)
                ) AS calendar,
                (SELECT jsonb_build_object('averageRating', ra.average_rating::float8, 'reviewCount', ra.review_count)
                   FROM reviews.review_aggregates ra WHERE ra.reviewee_id = l.id AND ra.reviewee_type = 'listing'
                    AND ra.is_active AND (ra.visibility_status = 'public' OR p.admin)) AS aggregate,
                {host} AS host
                FROM catalog.listings l CROSS JOIN p JOIN auth.users h ON h.id = l.host_id",
                host = user_brief!("h")))
            .seen(LISTING_SEEN)
            .search(LISTING_SEARCH)
            .done(),
        Index::of::<ThreadRow>("MessageThreadView", "an inbox row: a conversation with its last message, your unread count, the other participant's brief and the listing and reservation it is about", "getMessageThread")
            .select(concat!("SELECT t.id, t.guest_id, t.host_id, t.listing_id, t.reservation_id, t.is_open,
                t.message_count, t.last_message_at, ", unread_count!(), " AS unread_count,
                (SELECT ", message_item!(), " FROM messaging.messages m JOIN auth.users s ON s.id = m.sender_id
                  WHERE m.thread_id = t.id AND ", message_shown!(), "
                  ORDER BY m.sent_at DESC, m.id DESC LIMIT 1) AS last_message,
                CASE WHEN p.uid = t.guest_id THEN ", user_brief!("h"), " WHEN p.uid = t.host_id THEN ",
                user_brief!("g"), " END AS other_party, ",
                user_brief!("g"), " AS guest, ", user_brief!("h"), " AS host,
                (SELECT jsonb_build_object('id', l.id, 'title', l.title, 'city', l.city, 'mainPhoto', l.main_photo)
                   FROM catalog.listings l WHERE l.id = t.listing_id) AS listing,
                (SELECT jsonb_build_object('id', r.id, 'bookingStatus', r.booking_status, 'checkIn', r.check_in,
                    'checkOut', r.check_out, 'guestCount', r.guest_count)
                   FROM booking.reservations r WHERE r.id = t.reservation_id) AS reservation,
                t.is_active, t.created_at, t.updated_at,
                bff.text_tsv(g.fullname, h.fullname) AS _tsv, lower(g.fullname || ' ' || h.fullname) AS _fuzzy
                FROM messaging.message_threads t CROSS JOIN p
                JOIN auth.users g ON g.id = t.guest_id JOIN auth.users h ON h.id = t.host_id"))
            .seen(THREAD_SEEN)
            .search(CONVERSATION_SEARCH)
            .sort("last_message_at", true)
            .done(),
        Index::of::<ChatContext>("chatContext", "what you need to answer a conversation: the thread, the guest's and host's briefs, the listing and reservation it is about, and its last 20 messages in order", "getMessageThread")
            .select(concat!("SELECT t.id, t.guest_id, t.host_id, t.listing_id, t.reservation_id, t.is_open,
                t.message_count, t.last_message_at, ", unread_count!(), " AS unread_count, ",
                user_brief!("g"), " AS guest, ", user_brief!("h"), " AS host,
                (SELECT jsonb_build_object('id', l.id, 'title', l.title, 'description', l.description,
                    'address', l.address, 'city', l.city, 'country', l.country, 'propertyType', l.property_type,
                    'approvalType', l.approval_type, 'pricePerNight', l.price_per_night / 100.0,
                    'cleaningFee', l.cleaning_fee / 100.0, 'currency', l.currency, 'maxGuests', l.max_guests,
                    'minStay', l.min_stay, 'maxStay', l.max_stay, 'languagesSupported', l.languages_supported,
                    'mainPhoto', l.main_photo, 'isPublished', l.is_published)
                   FROM catalog.listings l WHERE l.id = t.listing_id AND l.is_active
                    AND (l.is_published OR l.host_id = p.uid OR p.admin)) AS listing,
                (SELECT jsonb_build_object('id', r.id, 'listingId', r.listing_id, 'bookingStatus', r.booking_status,
                    'paymentConfirmation', r.payment_confirmation, 'disputeStatus', r.dispute_status,
                    'checkIn', r.check_in, 'checkOut', r.check_out, 'nights', r.check_out - r.check_in,
                    'guestCount', r.guest_count, 'totalPrice', r.total_price / 100.0, 'currency', r.currency,
                    'guestNote', r.guest_note)
                   FROM booking.reservations r WHERE r.id = t.reservation_id AND r.is_active
                    AND (r.guest_id = p.uid OR r.host_id = p.uid OR p.admin)) AS reservation,
                coalesce((SELECT jsonb_agg(x.item ORDER BY x.sent_at, x.id) FROM (
                    SELECT m.id, m.sent_at, ", message_item!(), " AS item
                      FROM messaging.messages m JOIN auth.users s ON s.id = m.sender_id
                     WHERE m.thread_id = t.id AND ", message_shown!(), "
                     ORDER BY m.sent_at DESC, m.id DESC LIMIT 20) x), '[]'::jsonb) AS recent_messages,
                t.is_active, t.created_at, t.updated_at,
                bff.text_tsv(g.fullname, h.fullname) AS _tsv, lower(g.fullname || ' ' || h.fullname) AS _fuzzy
                FROM messaging.message_threads t CROSS JOIN p
                JOIN auth.users g ON g.id = t.guest_id JOIN auth.users h ON h.id = t.host_id"))
            .seen(THREAD_SEEN)
            .search(CONVERSATION_SEARCH)
            .sort("last_message_at", true)
            .done(),
    ]
}
