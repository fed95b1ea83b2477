//! Connection pools beside the request pool.

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// A one-connection pool with `pool`'s connect options but outside its limit.
///
/// Long-lived background work (a `LISTEN`, the announcer's sends) holds its connection for as
/// long as it runs; taking it from the request pool would shrink what requests can use, and a
/// busy request pool would delay the background work. The connection opens on first use.
pub fn own_connection_pool(pool: &PgPool) -> PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with((*pool.connect_options()).clone())
}
