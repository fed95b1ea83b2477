//! Haven's business operations and the registry that describes them.
//!
//! Each operation is declared once (see [`registry`]) and every interface — MCP tools, REST
//! routes, the agent catalog, OpenAPI — is derived from that declaration by the server.

pub mod announce;
pub mod audit;
pub mod auth;
pub mod booking;
pub mod catalog;
pub mod context;
pub mod error;
pub mod limits;
pub mod messaging;
pub mod money;
pub mod notification;
pub mod platformadmin;
pub mod pools;
pub mod principal;
pub mod registry;
pub mod reviews;
pub mod rules;
pub mod search;
pub mod sql;
pub mod stay;
pub mod types;
pub mod vocabulary;
pub mod words;

pub use context::{Ctx, Services, Settings};
pub use error::{ErrorKind, ToolError};
pub use principal::{Principal, Role};
pub use registry::{Operation, Registry};
