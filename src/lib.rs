//! Haven: a rental-marketplace backend whose every business operation is an MCP tool, also served
//! as REST and OpenAPI. This crate is the server: configuration, database, and the HTTP, MCP and
//! stdio faces derived from `haven-tools`' registry.

pub mod app;
pub mod config;
pub mod db;
pub mod demo;
pub mod http;
pub mod notifications;
pub mod stdio;

/// The process-wide operation registry: every `haven-tools` operation plus the agent hub's. Every
/// face (REST, MCP, OpenAPI, CLI) reads it through here so the hub's operations are never missed.
pub fn registry() -> &'static haven_tools::Registry {
    haven_tools::Registry::install_with(haven_agents::operations)
}
