//! The closed sets of values Haven's records use — statuses, roles, types, providers — one list
//! each, so the input schemas, the output schemas and the parser's check (see
//! [`crate::types::Choice`] and [`crate::types::EnumFilter`]) all agree. The order is the stored
//! order (the `_idx` fields count in it).

use crate::choices;

choices!(
    /// A user's role (`roleId`).
    Roles = ["user", "admin", "superAdmin"]
);
choices!(
    /// How a listing's bookings are confirmed.
    ApprovalTypes = ["instant", "manual"]
);
choices!(
    /// A listing's kind of property.
    PropertyTypes = ["apartment", "house", "villa", "room", "condo", "loft", "studio", "other"]
);
choices!(
    /// A reservation's `bookingStatus`.
    BookingStatuses = ["pending", "confirmed", "complete", "cancelled", "declined"]
);
choices!(
    /// The statuses that hold a listing's nights.
    HoldingStatuses = ["pending", "confirmed", "complete"]
);
choices!(
    /// A reservation's `paymentConfirmation` (and a payment ticket's `statusLiteral`).
    PaymentConfirmations = ["pending", "processing", "paid", "canceled"]
);
choices!(
    /// A reservation's `disputeStatus`.
    DisputeStatuses = ["none", "requested", "active", "resolved"]
);
choices!(
    /// A dispute's `resolutionStatus`.
    ResolutionStatuses = ["pending", "reviewing", "resolved", "rejected"]
);
choices!(
    /// A payment-ledger entry's `paymentStatus`.
    PaymentStatuses = ["pending", "paid", "refunded", "failed"]
);
choices!(
    /// The payment providers.
    Platforms = ["local", "stripe"]
);
choices!(
    /// Who or what a review is about.
    RevieweeTypes = ["host", "guest", "listing"]
);
choices!(
    /// A review's `moderationStatus`.
    ModerationStatuses = ["pending", "approved", "rejected"]
);
choices!(
    /// A message's `messageType`.
    MessageTypes = ["text", "media", "system"]
);
choices!(
    /// A message report's `moderationStatus`.
    ReportStatuses = ["pending", "reviewed", "closed"]
);
choices!(
    /// Whether an aggregate counts reviews.
    Visibilities = ["public", "hidden"]
);
choices!(
    /// What a reservation-timeline entry records (`kind`).
    ActivityKinds = [
        "reservation_requested",
        "request_approved",
        "status_changed",
        "details_changed",
        "reservation_deleted",
        "payment_recorded",
        "payment_status_changed",
        "payment_failed",
        "refund_issued",
        "dispute_opened",
        "dispute_status_changed",
        "dispute_resolution",
        "admin_dispute_action",
    ]
);
choices!(
    /// How a caller authenticated.
    Credentials = ["session", "apiKey"]
);
