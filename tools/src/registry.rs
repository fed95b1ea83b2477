//! The registry: every business operation declared once, as data plus a typed handler.
//!
//! An [`Operation`] carries everything the four faces need — the MCP tool (name, title,
//! description, input/output JSON Schema, annotations), the REST route (method, path, status,
//! envelope), the agent catalog entry and the OpenAPI entry — so the server derives all of them
//! from [`Registry::all`] with no per-operation code. [`Operation::invoke`] is the one way to run an
//! operation: access rule, input parsing (unknown, ill-typed and server-owned fields become errors
//! naming the field), the handler inside one transaction, and the audit row on success.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use schemars::generate::SchemaSettings;
/// The schema trait every operation input implements, re-exported for callers of [`parse_input`].
pub use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::audit;
use crate::context::Ctx;
use crate::error::ToolError;
use crate::principal::{Principal, Role};

/// The spec's services; each is a REST prefix (`/<segment>-api`) and an MCP toolset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    /// Users, groups, sessions, tokens.
    Auth,
    /// Administration: API keys, audit log, localization, dispute actions, reports, GDPR.
    PlatformAdmin,
    /// Listings, calendars, amenities, locale texts.
    Catalog,
    /// Reservations, payments, disputes.
    Booking,
    /// Double-blind reviews and rating aggregates.
    Reviews,
    /// Guest–host threads, messages and message reports.
    Messaging,
    /// The agent hub: agent configuration, the tool catalog and the execution log.
    AgentHub,
    /// The BFF read side: index search, counts, schemas, saved filters and aggregated views.
    Search,
    /// Notifications: push devices, the in-app inbox, channel preferences, admin sends, deliveries.
    Notification,
}

impl Service {
    /// Every service, in the order toolsets are listed.
    pub const ALL: [Service; 9] = [
        Service::Auth,
        Service::PlatformAdmin,
        Service::Catalog,
        Service::Booking,
        Service::Reviews,
        Service::Messaging,
        Service::AgentHub,
        Service::Search,
        Service::Notification,
    ];

    /// The service whose toolset name ([`Service::segment`]) is `name`.
    pub fn from_segment(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.segment() == name)
    }

    /// The URL segment and toolset name, e.g. `auth`.
    pub fn segment(self) -> &'static str {
        match self {
            Service::Auth => "auth",
            Service::PlatformAdmin => "platformadmin",
            Service::Catalog => "propertycatalog",
            Service::Booking => "bookingmanagement",
            Service::Reviews => "reviewsystem",
            Service::Messaging => "messaging",
            Service::AgentHub => "agenthub",
            Service::Search => "search",
            Service::Notification => "notification",
        }
    }
    /// The spec's service name, e.g. `airbnb-auth-service`.
    pub fn title(self) -> &'static str {
        match self {
            Service::Auth => "Auth",
            Service::PlatformAdmin => "Platform admin",
            Service::Catalog => "Property catalog",
            Service::Booking => "Booking management",
            Service::Reviews => "Review system",
            Service::Messaging => "Messaging",
            Service::AgentHub => "Agent hub",
            Service::Search => "Search (BFF)",
            Service::Notification => "Notification",
        }
    }
}

/// The jobs a role's default MCP surface is built around. Clients forward only the first few dozen
/// tools to their model (Cursor: 40), so a connection's default `tools/list` is the core set of the
/// flows its role needs, plus discovery tools that reach everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flow {
    /// Someone not logged in: sign up and log in.
    Visitor,
    /// A guest: search, availability, quote, book, pay, follow, cancel, review.
    Guest,
    /// A host: listings, calendar, answering requests.
    Host,
    /// One's own account and the agent hub.
    Account,
    /// An admin's moderation work: disputes, reviews, users.
    Admin,
}

impl Flow {
    /// The flows whose core tools make up the default surface of `principal`'s role, most useful
    /// first (the order `tools/list` follows).
    pub fn for_caller(principal: Option<&Principal>) -> &'static [Flow] {
        match principal.map(|p| p.role) {
            None => &[Flow::Guest, Flow::Visitor],
            Some(Role::User) => &[Flow::Guest, Flow::Host, Flow::Account],
            // Admins moderate first; hosting tools stay one search_tools away.
            Some(_) => &[Flow::Admin, Flow::Guest, Flow::Account],
        }
    }

    /// The flow's name as shown (`guest`, `host`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Visitor => "visitor",
            Flow::Guest => "guest",
            Flow::Host => "host",
            Flow::Account => "account",
            Flow::Admin => "admin",
        }
    }
}

/// An operation's place in the default MCP surface: its flow and its rank within the flow (lower
/// comes first). Operations without one are reached through `search_tools` / `call_tool` or a
/// full list (`?tools=all`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Core {
    /// The job it belongs to.
    pub flow: Flow,
    /// Its position within the flow, lower first.
    pub rank: u8,
}

/// Who may call an operation at all. Object-level rules (own record or admin) live in handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, including anonymous callers.
    Public,
    /// Any logged-in user.
    Authenticated,
    /// Admins and superAdmins.
    Admin,
    /// SuperAdmins only.
    SuperAdmin,
}

impl Access {
    /// Whether a caller may see and call the operation.
    pub fn allows(self, principal: Option<&Principal>) -> bool {
        match (self, principal) {
            (Access::Public, _) => true,
            (_, None) => false,
            (Access::Authenticated, Some(_)) => true,
            (Access::Admin, Some(p)) => p.role >= Role::Admin,
            (Access::SuperAdmin, Some(p)) => p.role >= Role::SuperAdmin,
        }
    }
    /// The refusal for a caller that [`Access::allows`] rejects: 401 when anonymous, else 403.
    pub fn check(self, principal: Option<&Principal>) -> Result<(), ToolError> {
        if self.allows(principal) {
            return Ok(());
        }
        match (self, principal) {
            (_, None) => Err(ToolError::unauthenticated(
                "this operation needs a login: send an access token or API key",
            )),
            (Access::SuperAdmin, _) => Err(ToolError::forbidden("only a superAdmin may do this")),
            _ => Err(ToolError::forbidden("only an admin may do this")),
        }
    }
    /// The rule's name as stored and shown (`public`, `authenticated`, `admin`, `superAdmin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Authenticated => "authenticated",
            Access::Admin => "admin",
            Access::SuperAdmin => "superAdmin",
        }
    }
    /// A short phrase for descriptions and OpenAPI.
    pub fn describe(self) -> &'static str {
        match self {
            Access::Public => "public (no login needed)",
            Access::Authenticated => "any logged-in user",
            Access::Admin => "admins only",
            Access::SuperAdmin => "superAdmins only",
        }
    }
}

/// The REST verb of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    /// Upper-case verb.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// One more REST route serving an operation, with its own verb, and path parameters the route
/// fixes (the spec's `/ReservationDetailView/list` is the generic `/{indexName}/list` with
/// `indexName` bound): a bound value overrides whatever the request sends for that field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// REST verb.
    pub method: Method,
    /// Path with `{param}` placeholders.
    pub path: String,
    /// The input field this route fixes, and its value.
    pub bound: Option<(&'static str, String)>,
    /// Unique suffix of the route's OpenAPI `operationId` (empty for the main route).
    pub id_suffix: String,
}

impl Route {
    /// A route with its own verb and path.
    pub fn new(method: Method, path: impl Into<String>, id_suffix: impl Into<String>) -> Route {
        Route {
            method,
            path: path.into(),
            bound: None,
            id_suffix: id_suffix.into(),
        }
    }
    /// The same route with `field` fixed to `value`.
    pub fn bind(mut self, field: &'static str, value: impl Into<String>) -> Route {
        self.bound = Some((field, value.into()));
        self
    }
}

/// The spec's response `action`; decides the REST status (create → 201) and the envelope shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read one object.
    Get,
    /// Read a page of objects.
    List,
    /// Create one object (201).
    Create,
    /// Change one object.
    Update,
    /// Soft-delete one object.
    Delete,
}

impl Action {
    /// The spec's lower-case action name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Get => "get",
            Action::List => "list",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// How REST wraps the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// The spec's success envelope: object under `dataName` (lists: the output's fields merged in).
    Standard,
    /// The output as is (login sessions, `/currentuser`).
    Raw,
    /// One field of the output as is (`/permissions` answers a bare array).
    RawField(&'static str),
    /// The output's fields merged into the standard envelope, for answers with several top-level
    /// parts (the payment operations answer `reservation` plus `paymentResult`).
    Fields,
}

/// What a REST call does to the `haven-access-token` cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieEffect {
    /// Nothing.
    None,
    /// Sets it from the output's `accessToken` (login).
    Set,
    /// Clears it (logout).
    Clear,
}

/// MCP tool annotations, always all four set: the protocol's defaults are the unsafe values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Annotations {
    /// Changes nothing.
    pub read_only: bool,
    /// May overwrite or remove data.
    pub destructive: bool,
    /// Repeating the call has no further effect.
    pub idempotent: bool,
    /// Reaches outside Haven (payment providers, the web).
    pub open_world: bool,
}

type Handler =
    Arc<dyn Fn(Ctx, Value) -> BoxFuture<'static, Result<Value, ToolError>> + Send + Sync>;

/// How a REST query-string value must be coerced before the input type parses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Leave as a string.
    String,
    /// Parse as an integer.
    Integer,
    /// Parse as a number.
    Number,
    /// Parse `true`/`false`.
    Boolean,
    /// Repeated keys become an array.
    List,
}

/// One business operation: metadata for every face plus its handler.
#[derive(Clone)]
pub struct Operation {
    /// The spec's camelCase API name; the MCP tool name.
    pub name: &'static str,
    /// The owning service (REST prefix and toolset).
    pub service: Service,
    /// Human display name.
    pub title: &'static str,
    /// What it does, who may call it and what it returns, written for an LLM.
    pub description: String,
    /// REST verb.
    pub method: Method,
    /// REST path with `{param}` placeholders, e.g. `/auth-api/v1/users/{userId}`.
    pub path: &'static str,
    /// Extra REST paths serving the same operation.
    pub aliases: &'static [&'static str],
    /// Extra REST routes with their own verb and bound parameters (see [`Route`]).
    pub routes: Vec<Route>,
    /// Who may call it.
    pub access: Access,
    /// The business rule in words when it is narrower than [`Operation::access`] (object-level
    /// checks in the handler: "the listing's host, or an admin"); shown as the access line.
    pub who: Option<&'static str>,
    /// MCP annotations.
    pub annotations: Annotations,
    /// Its place in the default MCP surface, if it is in a core set.
    pub core: Option<Core>,
    /// Callable by a session that has passed its password but still owes its second factor
    /// (the 2FA operations and logout); every other operation refuses such a session.
    pub before_second_factor: bool,
    /// The spec's action.
    pub action: Action,
    /// The envelope key for the payload, e.g. `user` or `users`.
    pub data_name: &'static str,
    /// REST envelope shape.
    pub envelope: Envelope,
    /// REST cookie handling.
    pub cookie: CookieEffect,
    /// JSON Schema (2020-12, inlined) of the input object.
    pub input_schema: Arc<Map<String, Value>>,
    /// JSON Schema of the output object.
    pub output_schema: Arc<Map<String, Value>>,
    fields: BTreeMap<String, FieldKind>,
    handler: Handler,
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operation")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish()
    }
}

/// Fields the server owns, with the reason given to a caller that sends one where the operation
/// does not declare it (mass-assignment protection with a message that says what to do instead).
const SERVER_OWNED: &[(&str, &str)] = &[
    ("id", "ids are assigned by the server"),
    ("_owner", "the owner is always the caller"),
    ("ownerId", "the owner is always the caller"),
    ("createdBy", "the creator is always the caller"),
    ("createdAt", "timestamps are kept by the server"),
    ("updatedAt", "timestamps are kept by the server"),
    (
        "isActive",
        "records are deactivated only by their delete/archive operation",
    ),
    (
        "roleId",
        "roles change only through updateUserRole, by an admin",
    ),
    (
        "emailVerified",
        "set by the server when the email is verified",
    ),
    (
        "mobileVerified",
        "set by the server when the mobile number is verified (mobile verification)",
    ),
    (
        "password",
        "passwords change only through updateUserPassword or updateUserPasswordByAdmin",
    ),
    (
        "key",
        "API keys are generated by the server and shown once at creation",
    ),
    ("keyPrefix", "computed by the server from the generated key"),
    ("lastUsedAt", "kept by the server"),
    ("accessKey", "generated by the server"),
    ("fileSize", "computed by the server from the uploaded data"),
    ("hostId", "the host is the listing's owner: the caller for a new listing, the listing's host for a reservation"),
    ("guestId", "the guest is always the caller"),
    ("bookingStatus", "a reservation's status changes only through approveReservation, declineReservation, cancelReservation, completeReservation and payment"),
    ("paymentConfirmation", "set by the payment flow (startReservationPayment, refreshReservationPayment, provider webhooks)"),
    ("disputeStatus", "follows the reservation's disputes (createDispute, updateDispute)"),
    ("totalPrice", "computed by the server from the listing's prices, nights, fees and taxes (see quoteReservation)"),
    ("currency", "taken from the listing"),
    ("approvalType", "taken from the listing"),
    ("bookingPoliciesSnapshot", "copied from the listing when the reservation is made"),
    ("cancellationPolicySnapshot", "copied from the listing when the reservation is made"),
    ("priceBreakdown", "computed by the server (see quoteReservation)"),
    ("refundAmount", "computed from the reservation's cancellation-policy snapshot"),
    ("platformFee", "computed by the server from the configured fees"),
    ("payoutAmountHost", "computed by the server from the configured fees"),
    ("cityTax", "computed by the server from the listing's cityTaxPercent"),
    ("amountPaid", "recorded from the payment provider"),
    ("paymentStatus", "recorded from the payment provider"),
    ("bookedBy", "set by the server from the reservation that books the night"),
    ("isPublished", "reviews are released by the double-blind rule; only admins change publication"),
    ("moderationStatus", "reviews and message reports start pending; only admins moderate them (updateReview, updateMessageReport)"),
    ("reviewerId", "the reviewer is always the caller"),
    ("blindSubmissionCode", "generated by the server"),
    ("submittedAt", "timestamps are kept by the server"),
    ("averageRating", "aggregates are recomputed by the server"),
    ("reviewCount", "aggregates are recomputed by the server"),
    ("raisedBy", "a dispute is raised by the caller"),
    ("reportedAt", "timestamps are kept by the server"),
    ("resolutionStatus", "disputes start pending; admins move them with updateDispute"),
    ("adminId", "admins assign themselves through updateDispute or updateMessageReport"),
    ("senderId", "the sender is always the caller"),
    ("recipientId", "the recipient is the thread's other participant"),
    ("sentAt", "set by the server when the message is posted"),
    ("messageCount", "counted by the server as messages are posted"),
    ("lastMessageAt", "set by the server when a message is posted"),
    ("isModerated", "only admins moderate messages (updateMessage)"),
    ("isFlagged", "a message is flagged by reporting it (createMessageReport) or by its recipient with updateMessage"),
    ("flaggedBy", "the flagger is always the caller"),
    ("flagReason", "given when flagging (createMessageReport, or updateMessage by the recipient)"),
    ("isRead", "the recipient marks a message read with updateMessage"),
    ("reportedBy", "the reporter is always the caller"),
    ("resolutionNotes", "written by the admin handling the report (updateMessageReport)"),
    ("updatedBy", "the last editor is always the caller"),
    ("performedBy", "the performer is always the caller"),
    ("ipAddress", "recorded by the server from the request"),
    ("occurredAt", "timestamps are kept by the server"),
    ("actionDate", "timestamps are kept by the server"),
    ("requestedAt", "timestamps are kept by the server"),
    ("generatedAt", "timestamps are kept by the server"),
    ("processedAt", "set when the request has been processed"),
    ("totalRevenue", "report figures are computed by the server from the payment ledger"),
    ("totalPayouts", "report figures are computed by the server from the payment ledger"),
    ("totalRefunds", "report figures are computed by the server from the payment ledger"),
    ("cityTaxByLocation", "report figures are computed by the server from the payment ledger"),
];

impl Operation {
    /// Starts declaring an operation.
    pub fn build(name: &'static str, service: Service) -> OperationBuilder {
        OperationBuilder {
            name,
            service,
            title: name,
            description: String::new(),
            method: Method::Get,
            path: "",
            aliases: &[],
            routes: Vec::new(),
            access: Access::Authenticated,
            who: None,
            annotations: Annotations {
                read_only: true,
                destructive: false,
                idempotent: true,
                open_world: false,
            },
            core: None,
            before_second_factor: false,
            action: Action::Get,
            data_name: "",
            envelope: Envelope::Standard,
            cookie: CookieEffect::None,
        }
    }

    /// The input fields the operation declares and how REST query values coerce into them.
    pub fn fields(&self) -> &BTreeMap<String, FieldKind> {
        &self.fields
    }

    /// The REST path parameters, in order (`{userId}` → `userId`).
    pub fn path_params(&self) -> Vec<&'static str> {
        path_params(self.path)
    }

    /// Every REST route of the operation: the main one, its aliases (same verb, operationId
    /// suffix `Alias`), then the extra [`Route`]s.
    pub fn rest_routes(&self) -> Vec<Route> {
        std::iter::once(Route::new(self.method, self.path, ""))
            .chain(
                self.aliases
                    .iter()
                    .map(|path| Route::new(self.method, *path, "Alias")),
            )
            .chain(self.routes.iter().cloned())
            .collect()
    }

    /// Runs the operation for `ctx.principal` on raw JSON arguments: the caller's request rate
    /// (REST and MCP), access rule, parsing, the handler in one transaction, then the audit row;
    /// commits only when everything succeeded.
    pub async fn invoke(&self, ctx: Ctx, args: Value) -> Result<Value, ToolError> {
        // A read-only operation runs its statements on one plain connection: no BEGIN/COMMIT.
        let ctx = ctx.plain_when(self.annotations.read_only);
        ctx.services.limits.admit(&ctx)?;
        self.access.check(ctx.principal.as_ref())?;
        if !self.before_second_factor
            && ctx
                .principal
                .as_ref()
                .is_some_and(Principal::owes_second_factor)
        {
            return Err(ToolError::forbidden(
                "this session still needs its second factor: complete the email or mobile 2FA \
                 verification (startEmail2FactorVerification / completeEmail2FactorVerification, or \
                 the mobile ones) before calling anything else",
            ));
        }
        let args = match args {
            Value::Null => Value::Object(Map::new()),
            Value::Object(mut map) => {
                self.reject_server_owned(&map)?;
                map.values_mut().for_each(integral_floats_to_integers);
                Value::Object(map)
            }
            other => {
                return Err(ToolError::bad_input(format!(
                    "arguments must be a JSON object, got {}",
                    json_type(&other)
                )))
            }
        };
        reject_nul(&args)?;
        let mut attempt = 1;
        let mut reconnected = false;
        loop {
            match self.attempt(&ctx, args.clone()).await {
                Err(err)
                    if err.is_transient()
                        && attempt < MAX_ATTEMPTS
                        && !self.annotations.open_world =>
                {
                    // Postgres aborted the transaction to break a deadlock or a serialization
                    // conflict: nothing was written, so roll back and run the whole call again.
                    ctx.rollback().await;
                    tokio::select! {
                        _ = ctx.cancellation().cancelled() => return Err(cancelled()),
                        _ = tokio::time::sleep(retry_pause(attempt)) => {}
                    }
                    attempt += 1;
                }
                Err(err)
                    if err.kind == crate::error::ErrorKind::Unavailable
                        && self.annotations.read_only
                        && !reconnected
                        && !ctx.cancellation().is_cancelled() =>
                {
                    // Pooled connections are not pinged when handed out; one that broke under a
                    // read (the database restarted) costs the read one more try, on a connection
                    // that answers. A failure to get any connection is not retried.
                    if !ctx.release().await {
                        return Err(err);
                    }
                    reconnected = true;
                    ctx.take_checked().await?;
                }
                result => return result,
            }
        }
    }

    /// One run of the handler, the audit row and the commit.
    async fn attempt(&self, ctx: &Ctx, args: Value) -> Result<Value, ToolError> {
        // A cancelled call drops the handler where it stands; its transaction (still in `ctx`) is
        // dropped without a commit, so nothing it wrote survives.
        let cancel = ctx.cancellation().clone();
        let output = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(cancelled()),
            output = (self.handler)(ctx.clone(), args) => output?,
        };
        if !self.annotations.read_only {
            let mut db = ctx.db().await?;
            audit::record(&mut db, ctx, self, &output).await?;
        }
        if cancel.is_cancelled() {
            return Err(cancelled());
        }
        if self.annotations.read_only {
            // A read-only call's plain connection goes back to the pool.
            ctx.release().await;
        } else {
            ctx.commit().await?;
        }
        Ok(output)
    }

    fn reject_server_owned(&self, args: &Map<String, Value>) -> Result<(), ToolError> {
        for key in args.keys() {
            if self.fields.contains_key(key) {
                continue;
            }
            if let Some((_, why)) = SERVER_OWNED.iter().find(|(name, _)| name == key) {
                return Err(ToolError::field(
                    key.clone(),
                    format!(
                        "the server sets this field and clients may not send it to {} ({why})",
                        self.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// How many times [`Operation::invoke`] runs a call whose transaction Postgres aborted because of a
/// concurrent one (deadlock, serialization failure) before answering [`ToolError::transient`].
/// Operations that reach outside Haven (`open_world`) are run once.
pub const MAX_ATTEMPTS: u32 = 4;

/// A short randomised pause before attempt `attempt + 1`, so colliding calls do not collide again.
fn retry_pause(attempt: u32) -> std::time::Duration {
    use rand::Rng;
    let base = 5u64 << attempt.min(4);
    std::time::Duration::from_millis(rand::thread_rng().gen_range(base / 2..=base))
}

/// Refuses a NUL character anywhere in `value`, nested values and keys included (Postgres text
/// cannot hold one, so it would fail deep inside a query), naming the field by its path, e.g.
/// `agent.tools[0]`. [`Operation::invoke`] runs it on every call's arguments.
pub fn reject_nul(value: &Value) -> Result<(), ToolError> {
    reject_nul_at(value, &mut String::new())
}

fn reject_nul_at(value: &Value, path: &mut String) -> Result<(), ToolError> {
    let refuse = |path: &str, what: &str| {
        let field = if path.is_empty() { "arguments" } else { path };
        Err(ToolError::field(
            field.to_string(),
            format!("{what}must not contain NUL characters (\\u0000)"),
        ))
    };
    match value {
        Value::String(text) if text.contains('\0') => refuse(path, ""),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                reject_nul_at(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (key, item) in map {
                if key.contains('\0') {
                    return refuse(path, "its keys ");
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                reject_nul_at(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Declares an operation field by field; [`OperationBuilder::handler`] finishes it.
pub struct OperationBuilder {
    name: &'static str,
    service: Service,
    title: &'static str,
    description: String,
    method: Method,
    path: &'static str,
    aliases: &'static [&'static str],
    routes: Vec<Route>,
    access: Access,
    who: Option<&'static str>,
    annotations: Annotations,
    core: Option<Core>,
    before_second_factor: bool,
    action: Action,
    data_name: &'static str,
    envelope: Envelope,
    cookie: CookieEffect,
}

impl OperationBuilder {
    /// Display title.
    pub fn title(mut self, title: &'static str) -> Self {
        self.title = title;
        self
    }
    /// The LLM-facing description; the access rule is appended automatically.
    pub fn describe(mut self, text: &str) -> Self {
        self.description = text.trim().to_string();
        self
    }
    /// REST verb and path (`{param}` placeholders).
    pub fn rest(mut self, method: Method, path: &'static str) -> Self {
        self.method = method;
        self.path = path;
        self
    }
    /// Extra paths serving the same operation.
    pub fn aliases(mut self, aliases: &'static [&'static str]) -> Self {
        self.aliases = aliases;
        self
    }
    /// One more REST route (its own verb, some input fields fixed), see [`Route`].
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }
    /// Who may call it.
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }
    /// Who really may do it, when object-level checks make it narrower than the role
    /// ([`OperationBuilder::access`]): e.g. "the listing's host, or an admin". It becomes the
    /// description's access line instead of the role's generic phrase.
    pub fn who(mut self, rule: &'static str) -> Self {
        self.who = Some(rule);
        self
    }
    /// Puts the operation in `flow`'s core set at `rank` (lower first): it is then in the default
    /// MCP `tools/list` of every role that has the flow and may call it.
    pub fn core(mut self, flow: Flow, rank: u8) -> Self {
        self.core = Some(Core { flow, rank });
        self
    }
    /// Lets a session that still owes its second factor call the operation (see
    /// [`Operation::before_second_factor`]).
    pub fn before_second_factor(mut self) -> Self {
        self.before_second_factor = true;
        self
    }
    /// A read: read-only, idempotent.
    pub fn reads(mut self, action: Action, data_name: &'static str) -> Self {
        self.annotations = Annotations {
            read_only: true,
            destructive: false,
            idempotent: true,
            open_world: false,
        };
        self.action = action;
        self.data_name = data_name;
        self
    }
    /// A create: additive, not idempotent.
    pub fn creates(mut self, data_name: &'static str) -> Self {
        self.annotations = Annotations {
            read_only: false,
            destructive: false,
            idempotent: false,
            open_world: false,
        };
        self.action = Action::Create;
        self.data_name = data_name;
        self
    }
    /// An update: overwrites fields, idempotent.
    pub fn updates(mut self, data_name: &'static str) -> Self {
        self.annotations = Annotations {
            read_only: false,
            destructive: true,
            idempotent: true,
            open_world: false,
        };
        self.action = Action::Update;
        self.data_name = data_name;
        self
    }
    /// A (soft) delete: destructive, idempotent.
    pub fn deletes(mut self, data_name: &'static str) -> Self {
        self.annotations = Annotations {
            read_only: false,
            destructive: true,
            idempotent: true,
            open_world: false,
        };
        self.action = Action::Delete;
        self.data_name = data_name;
        self
    }
    /// Marks the operation as reaching outside Haven (a payment provider refunding or charging, an
    /// LLM); call it after the preset ([`OperationBuilder::updates`] …), which resets annotations.
    pub fn open_world(mut self) -> Self {
        self.annotations.open_world = true;
        self
    }
    /// Overrides the annotations a preset chose.
    pub fn annotations(mut self, annotations: Annotations) -> Self {
        self.annotations = annotations;
        self
    }
    /// REST envelope shape.
    pub fn envelope(mut self, envelope: Envelope) -> Self {
        self.envelope = envelope;
        self
    }
    /// REST cookie handling.
    pub fn cookie(mut self, cookie: CookieEffect) -> Self {
        self.cookie = cookie;
        self
    }

    /// Finishes the declaration with a typed handler; the input and output schemas come from `I`
    /// and `O`, and raw arguments are parsed into `I` with errors that name the field.
    pub fn handler<I, O, F, Fut>(self, f: F) -> Operation
    where
        I: DeserializeOwned + JsonSchema + Send + 'static,
        O: Serialize + JsonSchema + 'static,
        F: Fn(Ctx, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, ToolError>> + Send + 'static,
    {
        let input_schema = schema_for::<I>();
        let mut output_schema = schema_for::<O>();
        drop_multiple_of(&mut output_schema);
        let fields = field_kinds(&input_schema);
        let input_schema = Arc::new(input_schema);
        let schema = input_schema.clone();
        let f = Arc::new(f);
        let handler: Handler = Arc::new(move |ctx, args| {
            let f = f.clone();
            let schema = schema.clone();
            Box::pin(async move {
                let input: I = parse_with_schema(args, &schema)?;
                let output = f(ctx, input).await?;
                serde_json::to_value(output).map_err(ToolError::internal)
            })
        });
        let description = format!(
            "{}\n\nWho may call: {}.",
            self.description,
            self.who.unwrap_or(self.access.describe())
        );
        Operation {
            name: self.name,
            service: self.service,
            title: self.title,
            description,
            method: self.method,
            path: self.path,
            aliases: self.aliases,
            routes: self.routes,
            access: self.access,
            who: self.who,
            annotations: self.annotations,
            core: self.core,
            before_second_factor: self.before_second_factor,
            action: self.action,
            data_name: self.data_name,
            envelope: self.envelope,
            cookie: self.cookie,
            input_schema,
            output_schema: Arc::new(output_schema),
            fields,
            handler,
        }
    }
}

/// The answer to a call the client cancelled (it is usually not delivered: the client has gone).
fn cancelled() -> ToolError {
    ToolError::new(
        crate::error::ErrorKind::Unavailable,
        "the call was cancelled by the client before it finished; nothing was changed",
    )
}

/// Parses raw arguments into `I`; a failure becomes a `BadInput` naming the field and saying in
/// words what it must be, read from `I`'s JSON Schema (see [`crate::words::explain`]).
pub fn parse_input<I: DeserializeOwned + JsonSchema>(args: Value) -> Result<I, ToolError> {
    parse_with_schema(args, &schema_for::<I>())
}

/// [`parse_input`] with `I`'s schema already at hand (operations keep theirs): the schema's
/// numeric bounds are enforced, serde parses, and every refusal is in words.
pub fn parse_with_schema<I: DeserializeOwned>(
    args: Value,
    schema: &Map<String, Value>,
) -> Result<I, ToolError> {
    // Bounds first, so an out-of-range value is named before any missing field, as a wrong type is.
    crate::words::check_bounds(&args, schema)?;
    serde_path_to_error::deserialize(&args).map_err(|err| crate::words::explain(err, &args, schema))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// JSON Schema 2020-12 for `T` with every subschema inlined (some MCP clients cannot follow `$ref`).
pub fn schema_for<T: JsonSchema>() -> Map<String, Value> {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
        })
        .into_generator();
    let mut value = generator.into_root_schema_for::<T>().to_value();
    strip_rust_formats(&mut value);
    if let Value::Object(map) = &mut value {
        map.remove("$schema");
        map.remove("title");
        if !map.contains_key("type") {
            map.insert("type".into(), Value::String("object".into()));
        }
        return map.clone();
    }
    Map::new()
}

/// Removes `multipleOf` from an output schema: clients validate `structuredContent` with binary
/// floating point, where 310.4 is not a multiple of 0.01, so the rule (amounts have at most two
/// decimals, which the server guarantees) is kept only where inputs are checked.
fn drop_multiple_of(schema: &mut Map<String, Value>) {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("multipleOf");
                map.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    schema.remove("multipleOf");
    schema.values_mut().for_each(walk);
}

/// Removes schemars' Rust-specific `format`s (`uint32`, `int64`, …): they are not JSON Schema
/// formats and validators warn about them. The range they stand for becomes `minimum`/`maximum`
/// where the schema sets none (schemars writes only `minimum: 0` for unsigned types), so a value
/// the type cannot hold (an `i32` `recordVersion` of 2^40) is outside the documented schema too.
fn strip_rust_formats(value: &mut Value) {
    const RUST_FORMATS: &[&str] = &[
        "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float",
        "double",
    ];
    match value {
        Value::Object(map) => {
            let format = map
                .get("format")
                .and_then(Value::as_str)
                .filter(|f| RUST_FORMATS.contains(f))
                .map(str::to_owned);
            if let Some(format) = format {
                map.remove("format");
                if let Some((min, max)) = integer_range(&format) {
                    map.entry("minimum").or_insert(min);
                    map.entry("maximum").or_insert(max);
                }
            }
            map.values_mut().for_each(strip_rust_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_rust_formats),
        _ => {}
    }
}

/// The bounds of a schemars integer format, as JSON numbers.
fn integer_range(format: &str) -> Option<(Value, Value)> {
    Some(match format {
        "int8" => (i8::MIN.into(), i8::MAX.into()),
        "int16" => (i16::MIN.into(), i16::MAX.into()),
        "int32" => (i32::MIN.into(), i32::MAX.into()),
        "int64" => (i64::MIN.into(), i64::MAX.into()),
        "uint8" => (0.into(), u8::MAX.into()),
        "uint16" => (0.into(), u16::MAX.into()),
        "uint32" => (0.into(), u32::MAX.into()),
        "uint64" | "uint" => (0.into(), u64::MAX.into()),
        _ => return None,
    })
}

/// Rewrites numbers such as `5.0` as the integers they are: JSON Schema counts them as integers,
/// so clients (and generators) send them for `integer` fields, which serde would refuse.
fn integral_floats_to_integers(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

fn field_kinds(schema: &Map<String, Value>) -> BTreeMap<String, FieldKind> {
    let Some(Value::Object(props)) = schema.get("properties") else {
        return BTreeMap::new();
    };
    props
        .iter()
        .map(|(name, prop)| (name.clone(), kind_of(prop)))
        .collect()
}

/// Collects the JSON types a property schema admits, looking through `anyOf`/`oneOf` (an
/// `Option<Filter>` is a nullable union of a string and an array).
fn collect_types<'a>(schema: &'a Value, types: &mut Vec<&'a str>) {
    match schema.get("type") {
        Some(Value::String(t)) => types.push(t),
        Some(Value::Array(ts)) => types.extend(ts.iter().filter_map(Value::as_str)),
        _ => {}
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(alts)) = schema.get(key) {
            for alt in alts {
                collect_types(alt, types);
            }
        }
    }
}

fn kind_of(prop: &Value) -> FieldKind {
    let mut types: Vec<&str> = Vec::new();
    collect_types(prop, &mut types);
    if types.contains(&"array") {
        FieldKind::List
    } else if types.contains(&"integer") {
        FieldKind::Integer
    } else if types.contains(&"number") {
        FieldKind::Number
    } else if types.contains(&"boolean") {
        FieldKind::Boolean
    } else {
        FieldKind::String
    }
}

/// The `{param}` names in a path template, in order.
pub fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// Every operation, by name, in a stable order.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    ops: BTreeMap<&'static str, Arc<Operation>>,
}

/// The registry of this crate's operations alone, built lazily for callers that never install more.
static BASE: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
/// The registry a downstream crate completed with its own operations (see [`Registry::install_with`]).
static INSTALLED: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();

impl Registry {
    /// The process-wide registry: the installed one when a downstream crate installed it, else the
    /// base one. Reading it never locks the base version in, so a later install still takes effect.
    pub fn global() -> &'static Registry {
        INSTALLED
            .get()
            .unwrap_or_else(|| BASE.get_or_init(Registry::haven))
    }

    /// Installs (once per process) the registry of [`Registry::haven`] plus `extra()`'s operations,
    /// so a crate above this one (the agent hub) contributes operations without a dependency cycle.
    /// Later calls return the first installation.
    pub fn install_with(extra: fn() -> Vec<Operation>) -> &'static Registry {
        INSTALLED.get_or_init(|| {
            let mut registry = Registry::haven();
            for op in extra() {
                registry.add(op);
            }
            registry
        })
    }

    /// The registry of all of Haven's business operations.
    pub fn haven() -> Self {
        let mut registry = Registry::default();
        for op in crate::auth::operations()
            .into_iter()
            .chain(crate::platformadmin::operations())
            .chain(crate::catalog::operations())
            .chain(crate::booking::operations())
            .chain(crate::reviews::operations())
            .chain(crate::search::operations())
            .chain(crate::notification::operations())
            .chain(crate::messaging::operations())
        {
            registry.add(op);
        }
        registry
    }

    /// Adds one operation; a duplicate name is a programming error caught by the registry test.
    pub fn add(&mut self, op: Operation) {
        let previous = self.ops.insert(op.name, Arc::new(op));
        assert!(previous.is_none(), "operation declared twice");
    }

    /// Looks an operation up by name.
    pub fn get(&self, name: &str) -> Option<&Arc<Operation>> {
        self.ops.get(name)
    }

    /// All operations, sorted by name (deterministic `tools/list` order).
    pub fn all(&self) -> impl Iterator<Item = &Arc<Operation>> {
        self.ops.values()
    }

    /// The operations `principal` may call.
    pub fn visible_to<'a>(
        &'a self,
        principal: Option<&'a Principal>,
    ) -> impl Iterator<Item = &'a Arc<Operation>> {
        self.all().filter(move |op| op.access.allows(principal))
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_well_formed() {
        let registry = Registry::haven();
        assert!(registry.len() >= 30);
        for op in registry.all() {
            assert!(op.name.len() <= 64 && !op.name.is_empty(), "{}", op.name);
            assert!(
                op.name.chars().all(|c| c.is_ascii_alphanumeric()),
                "{}",
                op.name
            );
            assert!(
                op.description.len() > 40,
                "{} needs a real description",
                op.name
            );
            assert!(op.path.starts_with('/'), "{}", op.name);
            assert_eq!(
                op.input_schema.get("type"),
                Some(&Value::String("object".into())),
                "{}",
                op.name
            );
            assert_eq!(
                op.output_schema.get("type"),
                Some(&Value::String("object".into())),
                "{}",
                op.name
            );
            assert!(!op.data_name.is_empty(), "{}", op.name);
            if op.fields().contains_key("pageRowCount") {
                assert_eq!(
                    op.fields()["pageRowCount"],
                    FieldKind::Integer,
                    "{}",
                    op.name
                );
            }
            for (name, kind) in op.fields() {
                if ["email", "userId", "ownerId", "roleId", "groupName"].contains(&name.as_str())
                    && op.action == Action::List
                {
                    assert_eq!(*kind, FieldKind::List, "{}.{name} is a filter", op.name);
                }
            }
            for param in op.path_params() {
                assert!(
                    op.fields().contains_key(param),
                    "{}: path param {param} not in input",
                    op.name
                );
            }
            if op.annotations.read_only {
                assert!(!op.annotations.destructive, "{}", op.name);
            }
        }
    }

    #[test]
    fn output_schemas_carry_no_multiple_of() {
        for op in Registry::global().all() {
            let text = Value::Object((*op.output_schema).clone()).to_string();
            assert!(!text.contains("multipleOf"), "{}", op.name);
        }
    }

    #[test]
    fn schemas_carry_no_rust_formats() {
        for op in Registry::global().all() {
            let text = Value::Object((*op.output_schema).clone()).to_string()
                + &Value::Object((*op.input_schema).clone()).to_string();
            assert!(
                !text.contains("\"uint32\"") && !text.contains("\"int32\""),
                "{}",
                op.name
            );
        }
    }
}
