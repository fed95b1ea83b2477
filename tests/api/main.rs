//! Integration tests: the real server on a random port, real HTTP, a fresh real Postgres database
//! per test (cloned from a migrated template in a private cluster, or on `DATABASE_URL`).

mod fixtures;
mod helpers;
mod stdio_child;

mod access;
mod agent_delegation;
mod agent_runs;
mod agenthub;
mod amenities_and_texts;
mod api_keys;
mod auth_flow;
mod bad_input;
mod booking_admin;
mod catalog;
mod concurrency;
mod contract;
mod csrf;
mod dynamic_agents;
mod embedded_db;
mod fake_stripe;
mod groups_and_files;
mod guest_journey;
mod last_superadmin;
mod leaks;
mod legacy_and_stdio;
mod limits;
mod live_events;
mod mcp_surface;
mod notification_channels;
mod notifications;
mod nul_bytes;
mod oauth;
mod overload;
mod payments;
mod perf_principals;
mod perf_search;
mod rate_limits;
mod registry_faces;
mod reservations;
mod reviews;
mod scripted_llm;
mod tokens;
mod verification;
mod words;
