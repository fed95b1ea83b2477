//! `GET /events`: the domain events the caller may watch, as Server-Sent Events.
//!
//! Every successful change writes a row to `events.domain_events` (with its audience: the actor and
//! the parties the object names) in the change's own transaction, and once it committed its id is
//! announced on `NOTIFY haven_events` (several ids per payload under load, see
//! [`haven_tools::announce`]). One listener per process fetches each new event once and broadcasts
//! it to the streams open here, which keep the caller's own (admins: all). So a change made through any
//! replica reaches every viewer, and `Last-Event-ID` (or `?lastEventId=`) resumes from the table.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use chrono::{DateTime, Utc};
use futures::Stream;
use haven_tools::pools::own_connection_pool;
use haven_tools::{Principal, ToolError};
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::auth::Caller;
use super::envelope;
use crate::app::AppState;

/// The channel committed changes announce their event ids on.
pub const CHANNEL: &str = haven_tools::announce::EVENTS_CHANNEL;
/// Most events replayed on a resume.
const REPLAY_LIMIT: i64 = 500;

/// A refusal in the standard error envelope.
fn error_response(err: &ToolError) -> Response {
    envelope::error_response(err).into_response()
}

/// One domain event as a viewer receives it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct DomainEvent {
    /// Increasing id; the SSE `id:` and what `Last-Event-ID` resumes from.
    pub id: i64,
    /// The operation that made the change (`createReservation`, `approveReservation`, …).
    pub kind: String,
    /// The changed object.
    pub object_id: Option<Uuid>,
    /// Who made the change.
    pub actor_id: Option<Uuid>,
    /// The object's kind, the action and the state fields people follow.
    pub payload: Value,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Who may watch it (not sent).
    #[serde(skip)]
    pub audience: Vec<Uuid>,
}

impl DomainEvent {
    fn visible_to(&self, p: &Principal) -> bool {
        p.role.is_admin() || self.audience.contains(&p.user_id)
    }
}

const COLUMNS: &str = "id, kind, object_id, actor_id, payload, created_at, audience";

/// The events of this process's viewers: fed by one `LISTEN`, fanned out to every open stream.
#[derive(Clone)]
pub struct Feed {
    tx: broadcast::Sender<Arc<DomainEvent>>,
}

impl Feed {
    /// A feed with nobody listening yet.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(1024);
        Feed { tx }
    }

    /// Follows [`CHANNEL`] until `stop`: fetches each announced event and broadcasts it.
    /// Reconnects after a lost connection (viewers then resume from their last id).
    pub async fn listen(self, pool: PgPool, stop: CancellationToken) {
        while !stop.is_cancelled() {
            if let Ok(mut listener) = PgListener::connect_with(&own_connection_pool(&pool)).await {
                if listener.listen(CHANNEL).await.is_ok() {
                    loop {
                        let note = tokio::select! {
                            _ = stop.cancelled() => return,
                            note = listener.recv() => note,
                        };
                        let Ok(note) = note else { break };
                        let ids = haven_tools::announce::event_ids(note.payload());
                        if ids.is_empty() {
                            continue;
                        }
                        let sql = format!(
                            "SELECT {COLUMNS} FROM events.domain_events WHERE id = ANY($1) ORDER BY id"
                        );
                        // Read on the listener's own connection: a busy request pool must not
                        // make the feed drop an event.
                        match sqlx::query_as::<_, DomainEvent>(&sql)
                            .bind(&ids)
                            .fetch_all(&mut listener)
                            .await
                        {
                            Ok(events) => {
                                for event in events {
                                    let _ = self.tx.send(Arc::new(event));
                                }
                            }
                            Err(err) => tracing::debug!(%err, "could not read events {ids:?}"),
                        }
                    }
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

impl Default for Feed {
    fn default() -> Self {
        Self::new()
    }
}

/// `GET /events` (the listener starts with the router and stops with `shutdown`).
pub fn routes(state: &Arc<AppState>, shutdown: CancellationToken) -> Router<Arc<AppState>> {
    let feed = Feed::new();
    tokio::spawn(feed.clone().listen(state.services.db.clone(), shutdown));
    Router::new()
        .route("/events", get(stream))
        .layer(Extension(feed))
}

/// The query of `GET /events`: `lastEventId` (resume after this id, as the `Last-Event-ID` header
/// does), `kinds` (comma-separated operation names) and `access_token` (read by the auth layer,
/// for `EventSource`, which cannot send headers).
#[derive(Debug, Default)]
pub struct EventsQuery {
    last_event_id: Option<i64>,
    kinds: Option<String>,
}

impl EventsQuery {
    /// Reads the query string; an unknown parameter or a bad id is an error naming it.
    fn parse(query: Option<&str>) -> Result<Self, ToolError> {
        let mut out = EventsQuery::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "lastEventId" => {
                    out.last_event_id = Some(value.trim().parse().map_err(|_| {
                        ToolError::field("lastEventId", "must be a whole number (an event id)")
                    })?)
                }
                "kinds" => out.kinds = Some(value.into_owned()),
                "access_token" => {}
                other => return Err(ToolError::field(
                    other,
                    "is not a parameter of /events; it takes lastEventId, kinds and access_token",
                )),
            }
        }
        Ok(out)
    }
}

async fn replay(
    pool: &PgPool,
    who: &Principal,
    after: i64,
) -> Result<Vec<DomainEvent>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events.domain_events
         WHERE id > $1 AND ($2 OR $3 = ANY (audience)) ORDER BY id LIMIT $4"
    );
    sqlx::query_as::<_, DomainEvent>(&sql)
        .bind(after)
        .bind(who.role.is_admin())
        .bind(who.user_id)
        .bind(REPLAY_LIMIT)
        .fetch_all(pool)
        .await
}

fn sse_event(e: &DomainEvent) -> Event {
    Event::default()
        .id(e.id.to_string())
        .event(e.kind.clone())
        .data(serde_json::to_string(e).unwrap_or_default())
}

async fn stream(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(feed): Extension<Feed>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let Some(who) = caller.principal else {
        return error_response(&ToolError::unauthenticated(
            "watching events needs a login: send an access token or API key (EventSource: ?access_token=)",
        ));
    };
    let query = match EventsQuery::parse(uri.query()) {
        Ok(q) => q,
        Err(e) => return error_response(&e),
    };
    let kinds: Option<Vec<String>> = query.kinds.as_deref().map(|k| {
        k.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    });
    if let Some(unknown) = kinds.iter().flatten().find(|k| {
        state.registry.get(k).is_none() && !haven_tools::audit::SYSTEM_KINDS.contains(&k.as_str())
    }) {
        return error_response(&ToolError::field(
            "kinds",
            format!(
                "`{unknown}` is not an operation; kinds are operation names such as createReservation, or {}",
                haven_tools::audit::SYSTEM_KINDS.join(", ")
            ),
        ));
    }
    let header_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let resume = query.last_event_id.or(header_id);
    // Subscribe before reading the backlog so nothing falls between them.
    let live = feed.tx.subscribe();
    let pool = state.services.db.clone();
    let start = match resume {
        Some(after) => after,
        None => {
            match sqlx::query_scalar::<_, Option<i64>>("SELECT max(id) FROM events.domain_events")
                .fetch_one(&pool)
                .await
            {
                Ok(max) => max.unwrap_or(0),
                Err(e) => return error_response(&ToolError::from(e)),
            }
        }
    };
    let backlog = match resume {
        Some(after) => match replay(&pool, &who, after).await {
            Ok(rows) => rows,
            Err(e) => return error_response(&ToolError::from(e)),
        },
        None => Vec::new(),
    };
    Sse::new(events(pool, who, kinds, start, backlog, live))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The ids a stream has sent lately, so an event that reaches it twice (in the backlog and live,
/// or in a re-read after a lag) goes out once. Event ids are taken when a change inserts its event
/// but changes commit in their own order, so a live event may carry a lower id than one already
/// sent: it is new all the same (the notification comes at commit), and only ids actually sent are
/// skipped, never "everything below the last id".
struct Sent {
    ids: std::collections::HashSet<i64>,
    order: std::collections::VecDeque<i64>,
    /// The highest id sent (or the stream's starting point): where a re-read after a lag starts.
    last: i64,
}

impl Sent {
    /// How many recent ids are remembered.
    const WINDOW: usize = 4096;

    fn new(start: i64) -> Self {
        Sent {
            ids: Default::default(),
            order: Default::default(),
            last: start,
        }
    }

    /// Records `id`; false when it was already sent.
    fn first_time(&mut self, id: i64) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > Self::WINDOW {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        self.last = self.last.max(id);
        true
    }
}

/// The stream: the backlog, then every live event not already sent; after a lag (the viewer fell
/// more than the channel's size behind) it re-reads the table from the highest id sent.
fn events(
    pool: PgPool,
    who: Principal,
    kinds: Option<Vec<String>>,
    start: i64,
    backlog: Vec<DomainEvent>,
    live: broadcast::Receiver<Arc<DomainEvent>>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let who_replay = who.clone();
    let wanted = move |e: &DomainEvent| {
        e.visible_to(&who) && kinds.as_ref().is_none_or(|k| k.contains(&e.kind))
    };
    futures::stream::unfold(
        (
            backlog.into_iter(),
            live,
            Sent::new(start),
            pool,
            wanted,
            who_replay,
        ),
        |(mut backlog, mut live, mut sent, pool, wanted, who_replay)| async move {
            loop {
                let event = match backlog.next() {
                    Some(e) => Arc::new(e),
                    None => match live.recv().await {
                        Ok(e) => e,
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            if let Ok(rows) = replay(&pool, &who_replay, sent.last).await {
                                backlog = rows.into_iter();
                            }
                            continue;
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                };
                if sent.first_time(event.id) && wanted(&event) {
                    return Some((
                        Ok(sse_event(&event)),
                        (backlog, live, sent, pool, wanted, who_replay),
                    ));
                }
            }
        },
    )
}
