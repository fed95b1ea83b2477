//! Integration tests: the real server on a random port, real HTTP, a fresh real Postgres database
//! per test (cloned from a migrated template in a private cluster, or on `DATABASE_URL`).

mod helpers;

mod access;
mod api_keys;
mod auth_flow;
mod bad_input;
mod groups_and_files;
mod legacy_and_stdio;
mod limits;
mod registry_faces;
mod tokens;
