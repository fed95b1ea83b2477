//! MCP over Streamable HTTP (rmcp, stateless, JSON responses) and the handler shared with the
//! legacy SSE and stdio transports: `tools/list` and `tools/call` straight over the registry.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use haven_tools::context::Transport;
use haven_tools::registry::Operation;
use haven_tools::{Ctx, Principal};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::auth::Caller;
use crate::app::AppState;

/// Which tools a connection wants to see, from the `/mcp` query string.
#[derive(Debug, Default, Clone)]
pub struct ToolFilter {
    /// `?toolsets=auth,platformadmin`: only these services.
    pub toolsets: Option<Vec<String>>,
    /// `?readonly=true`: only read-only tools.
    pub read_only: bool,
}

impl ToolFilter {
    /// Parses the query string of the MCP request.
    pub fn from_query(query: Option<&str>) -> Self {
        let mut filter = ToolFilter::default();
        for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match k.as_ref() {
                "toolsets" => {
                    filter.toolsets = Some(
                        v.split(',')
                            .map(|s| s.trim().to_lowercase())
                            .filter(|s| !s.is_empty())
                            .collect(),
                    )
                }
                "readonly" | "read_only" => filter.read_only = v == "true" || v == "1",
                _ => {}
            }
        }
        filter
    }

    fn admits(&self, op: &Operation) -> bool {
        let in_set = self
            .toolsets
            .as_ref()
            .is_none_or(|sets| sets.iter().any(|s| s == op.service.segment()));
        in_set && (!self.read_only || op.annotations.read_only)
    }
}

/// The MCP server: one per process (cloned cheaply per request in stateless mode).
#[derive(Clone)]
pub struct HavenMcp {
    state: Arc<AppState>,
    tools: Arc<BTreeMap<&'static str, Tool>>,
    /// The principal for transports without per-request auth (stdio).
    fixed: Option<Principal>,
}

/// An operation as an MCP tool: schemas, title and all four annotations set explicitly.
pub fn tool_of(op: &Operation) -> Tool {
    let a = op.annotations;
    Tool::new(op.name, op.description.clone(), op.input_schema.clone())
        .with_title(op.title)
        .with_raw_output_schema(op.output_schema.clone())
        .with_annotations(
            ToolAnnotations::with_title(op.title)
                .read_only(a.read_only)
                .destructive(a.destructive)
                .idempotent(a.idempotent)
                .open_world(a.open_world),
        )
}

impl HavenMcp {
    /// A server whose caller comes from each HTTP request.
    pub fn new(state: Arc<AppState>) -> Self {
        let tools = state
            .registry
            .all()
            .map(|op| (op.name, tool_of(op)))
            .collect();
        Self {
            state,
            tools: Arc::new(tools),
            fixed: None,
        }
    }

    /// A server that always acts as `principal` (stdio).
    pub fn acting_as(state: Arc<AppState>, principal: Principal) -> Self {
        Self {
            fixed: Some(principal),
            ..Self::new(state)
        }
    }

    fn caller(&self, ctx: &RequestContext<RoleServer>) -> (Caller, ToolFilter) {
        match ctx.extensions.get::<http::request::Parts>() {
            Some(parts) => {
                let caller = parts
                    .extensions
                    .get::<Caller>()
                    .cloned()
                    .unwrap_or_default();
                (caller, ToolFilter::from_query(parts.uri.query()))
            }
            None => (
                Caller {
                    principal: self.fixed.clone(),
                    ..Caller::default()
                },
                ToolFilter::default(),
            ),
        }
    }
}

impl ServerHandler for HavenMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("haven", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Haven is a short-term-rental marketplace. Every operation is a tool; you see the tools your \
                 credentials allow. Anonymous callers can registerUser and login; send the returned accessToken \
                 (or an sk_haven_ API key) as `Authorization: Bearer …` to act as that user. Narrow the list \
                 with /mcp?toolsets=auth,platformadmin or /mcp?readonly=true.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let (caller, filter) = self.caller(&ctx);
        let tools = self
            .state
            .registry
            .visible_to(caller.principal.as_ref())
            .filter(|op| filter.admits(op))
            .filter_map(|op| self.tools.get(op.name).cloned())
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.get(name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let op = self.state.registry.get(&request.name).ok_or_else(|| {
            McpError::invalid_params(format!("unknown tool `{}`", request.name), None)
        })?;
        let (caller, _) = self.caller(&ctx);
        let request_id = format!("mcp-{}", Uuid::new_v4().simple());
        let call = Ctx::new(
            self.state.services.clone(),
            caller.principal,
            request_id,
            caller.ip,
        )
        .with_languages(caller.languages)
        .via(Transport::Mcp);
        let args = request.arguments.map(Value::Object).unwrap_or(Value::Null);
        let result = match op.invoke(call, args).await {
            Ok(output) => CallToolResult::structured(output),
            Err(err) => CallToolResult::error(vec![ContentBlock::text(format!(
                "{:?}: {}",
                err.kind, err.message
            ))]),
        };
        Ok(result.into())
    }
}

/// `POST /mcp`: stateless Streamable HTTP with JSON responses, Host/Origin checked.
pub fn routes(state: &Arc<AppState>, shutdown: CancellationToken) -> Router<Arc<AppState>> {
    let server = HavenMcp::new(state.clone());
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(state.config.allowed_hosts.clone())
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_max_request_body_bytes(state.config.max_body_bytes)
        .with_cancellation_token(shutdown);
    if !state.config.allowed_origins.is_empty() {
        config = config.with_allowed_origins(state.config.allowed_origins.clone());
    }
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    Router::new().route_service("/mcp", service)
}
