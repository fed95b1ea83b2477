//! The principal cache: a presented credential (access token or API key) resolved to its
//! [`Principal`] is kept in memory for a short while, so an authenticated call costs no database
//! round trip before its own statement.
//!
//! "Takes effect at once" still holds: every change that can alter or end a principal (logout,
//! session or key revocation, role change, archive, delete) fires a trigger (migration 0016) that
//! announces the user on [`CHANNEL`]. Every process listens there and forgets the user's entries
//! when the change commits; the process making the change forgets them itself before it answers
//! (see [`crate::audit::record`]). While the listener is not connected the cache is neither read
//! nor filled, so a missed announcement can never leave a revoked credential working; when it
//! (re)connects the cache starts empty.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use uuid::Uuid;

use super::tokens::Grant;
use crate::principal::Principal;

/// The NOTIFY channel the migration's triggers announce changed users on (payload: the user id).
pub const CHANNEL: &str = "haven_principals";

/// How long an entry is trusted at most (the announcements make it exact; this bounds the harm
/// of anything that changes a user outside the triggered tables).
pub const TTL: Duration = Duration::from_secs(15);

/// How often an API key's `last_used_at` is written at most.
pub const LAST_USED_EVERY: Duration = Duration::from_secs(60);

/// Entries kept at most; past it the cache starts over (a flood of distinct tokens).
const MAX_ENTRIES: usize = 20_000;

#[derive(Clone)]
struct Entry {
    principal: Principal,
    grant: Grant,
    stored: Instant,
    /// The credential's own end (a token's `exp`, its session's expiry).
    expires: Option<DateTime<Utc>>,
}

/// Resolved credentials, by credential.
#[derive(Default)]
pub struct PrincipalCache {
    entries: Mutex<HashMap<String, Entry>>,
    /// Whether the listener is connected: only then is the cache read and filled.
    live: AtomicBool,
    /// Bumped by every forget, so a lookup that started before one does not store its answer.
    generation: AtomicU64,
    /// When each API key's `last_used_at` was last written by this process.
    key_uses: Mutex<HashMap<Uuid, Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PrincipalCache {
    /// Whether entries are being served (the invalidation listener is connected).
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// The cached principal for `key`, if live, fresh and not past the credential's expiry.
    pub fn get(&self, key: &str) -> Option<(Principal, Grant)> {
        if !self.is_live() {
            return None;
        }
        let entries = lock(&self.entries);
        let entry = entries.get(key)?;
        let fresh = entry.stored.elapsed() < TTL && entry.expires.is_none_or(|e| e > Utc::now());
        fresh.then(|| (entry.principal.clone(), entry.grant.clone()))
    }

    /// The current generation, read before a database lookup and handed to [`Self::put`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Stores a lookup's answer unless the cache is not live or something was forgotten since the
    /// lookup began (`generation`).
    pub fn put(
        &self,
        key: String,
        principal: &Principal,
        grant: &Grant,
        expires: Option<DateTime<Utc>>,
        generation: u64,
    ) {
        if !self.is_live() {
            return;
        }
        let mut entries = lock(&self.entries);
        if self.generation() != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                principal: principal.clone(),
                grant: grant.clone(),
                stored: Instant::now(),
                expires,
            },
        );
    }

    /// Forgets every entry of `user`.
    pub fn forget_user(&self, user: Uuid) {
        let mut entries = lock(&self.entries);
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, e| e.principal.user_id != user);
    }

    /// Forgets everything.
    pub fn forget_all(&self) {
        let mut entries = lock(&self.entries);
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    /// Whether API key `key` is due a `last_used_at` write (none by this process in the last
    /// [`LAST_USED_EVERY`]); decided in memory, and counted as written when it says yes.
    pub fn key_use_due(&self, key: Uuid) -> bool {
        let mut uses = lock(&self.key_uses);
        let now = Instant::now();
        match uses.get(&key) {
            Some(at) if now.duration_since(*at) < LAST_USED_EVERY => false,
            _ => {
                if uses.len() >= MAX_ENTRIES {
                    uses.clear();
                }
                uses.insert(key, now);
                true
            }
        }
    }

    /// Starts the invalidation listener on its own connection (outside `pool`'s limit). It runs
    /// until the cache is dropped, reconnecting after a lost connection; the cache is live only
    /// while it listens.
    pub fn listen(self: &Arc<Self>, pool: &PgPool) {
        let weak = Arc::downgrade(self);
        tokio::spawn(follow(weak, crate::pools::own_connection_pool(pool)));
    }
}

async fn follow(cache: Weak<PrincipalCache>, pool: PgPool) {
    loop {
        if cache.strong_count() == 0 {
            return;
        }
        if let Ok(mut listener) = PgListener::connect_with(&pool).await {
            // A lost connection must end the loop at once (the cache stops being served), not
            // reconnect inside `try_recv` while stale entries are still trusted.
            listener.eager_reconnect(false);
            if listener.listen(CHANNEL).await.is_ok() {
                if let Some(c) = cache.upgrade() {
                    c.forget_all();
                    c.live.store(true, Ordering::Release);
                }
                loop {
                    match tokio::time::timeout(Duration::from_secs(5), listener.try_recv()).await {
                        Err(_) => {
                            if cache.strong_count() == 0 {
                                return;
                            }
                        }
                        Ok(Ok(Some(note))) => {
                            let Some(c) = cache.upgrade() else { return };
                            match Uuid::parse_str(note.payload()) {
                                Ok(user) => c.forget_user(user),
                                Err(_) => c.forget_all(),
                            }
                        }
                        // The connection was lost (announcements may have been missed).
                        Ok(Ok(None)) | Ok(Err(_)) => break,
                    }
                }
            }
        }
        match cache.upgrade() {
            Some(c) => {
                c.live.store(false, Ordering::Release);
                c.forget_all();
            }
            None => return,
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::{Credential, Role};

    fn principal(user: Uuid) -> Principal {
        Principal {
            user_id: user,
            role: Role::User,
            email: "a@b.c".into(),
            fullname: "A".into(),
            credential: Credential::ApiKey(Uuid::new_v4()),
        }
    }

    #[test]
    fn nothing_is_served_or_stored_unless_the_listener_is_live() {
        let cache = PrincipalCache::default();
        let user = Uuid::new_v4();
        cache.put("k".into(), &principal(user), &Grant::default(), None, 0);
        assert!(cache.get("k").is_none());
        cache.live.store(true, Ordering::Release);
        assert!(
            cache.get("k").is_none(),
            "the put while not live was dropped"
        );
        cache.put(
            "k".into(),
            &principal(user),
            &Grant::default(),
            None,
            cache.generation(),
        );
        assert_eq!(cache.get("k").map(|(p, _)| p.user_id), Some(user));
        cache.live.store(false, Ordering::Release);
        assert!(
            cache.get("k").is_none(),
            "a disconnected listener stops serving"
        );
    }

    #[test]
    fn forgetting_a_user_drops_their_entries_and_a_lookup_begun_before_it() {
        let cache = PrincipalCache::default();
        cache.live.store(true, Ordering::Release);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        cache.put(
            "a".into(),
            &principal(a),
            &Grant::default(),
            None,
            cache.generation(),
        );
        cache.put(
            "b".into(),
            &principal(b),
            &Grant::default(),
            None,
            cache.generation(),
        );
        let begun = cache.generation();
        cache.forget_user(a);
        assert!(cache.get("a").is_none());
        assert!(cache.get("b").is_some());
        cache.put("a".into(), &principal(a), &Grant::default(), None, begun);
        assert!(
            cache.get("a").is_none(),
            "a lookup older than the forget is not stored"
        );
        let expired = Utc::now() - chrono::Duration::seconds(1);
        cache.put(
            "c".into(),
            &principal(b),
            &Grant::default(),
            Some(expired),
            cache.generation(),
        );
        assert!(
            cache.get("c").is_none(),
            "an expired credential is not served"
        );
    }

    #[test]
    fn a_key_use_is_due_once_a_minute() {
        let cache = PrincipalCache::default();
        let key = Uuid::new_v4();
        assert!(cache.key_use_due(key));
        assert!(!cache.key_use_due(key));
        assert!(cache.key_use_due(Uuid::new_v4()));
    }
}
