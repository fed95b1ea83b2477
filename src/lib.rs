//! Haven: a rental-marketplace backend whose every business operation is an MCP tool, also served
//! as REST and OpenAPI. This crate is the server: configuration, database, and the HTTP, MCP and
//! stdio faces derived from `haven-tools`' registry.

pub mod app;
pub mod config;
pub mod db;
pub mod demo;
pub mod http;
pub mod stdio;
