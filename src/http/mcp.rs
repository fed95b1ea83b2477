//! MCP over Streamable HTTP (rmcp, stateless, JSON responses) and the handler shared with the
//! legacy SSE and stdio transports: tools straight over the registry, the discovery meta-tools,
//! prompts from the design-time agents, and resource templates read through the owning operations.
//!
//! What a connection sees and may call is its [`Selection`] (toolsets, read-only, core or full
//! listing), enforced on every call. Calls honour cancellation (the token flows into
//! `Operation::invoke`) and report progress when the client sent a `progressToken`.

mod inflight;
mod meta;
mod prompts;
mod resources;
mod scope_challenge;
pub mod selection;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use haven_tools::context::{Progress, ProgressSink, Transport};
use haven_tools::registry::Operation;
use haven_tools::{Ctx, Principal};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult,
    ContentBlock, GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProgressNotificationParam, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use self::inflight::InFlight;
pub use self::selection::Selection;
use super::auth::Caller;
use super::guard::host_and_origin_allowed;
use crate::app::AppState;

/// The MCP server: one per process (cloned cheaply per request in stateless mode).
#[derive(Clone)]
pub struct HavenMcp {
    state: Arc<AppState>,
    tools: Arc<BTreeMap<&'static str, Tool>>,
    /// The principal and selection for transports without per-request auth (stdio).
    fixed: Option<(Principal, Selection)>,
    inflight: InFlight,
    /// `tools/list` answers already built, per (role, selection): what a caller sees depends on
    /// nothing else, so each is built once per process.
    listings: Arc<std::sync::Mutex<ToolListings>>,
}

/// Built `tools/list` answers, keyed by the caller's role (`None`: anonymous) and selection.
type ToolListings = std::collections::HashMap<(Option<&'static str>, Selection), Arc<Vec<Tool>>>;

/// An operation as an MCP tool: schemas, title and all four annotations set explicitly.
pub fn tool_of(op: &Operation) -> Tool {
    compact_tool_of(op).with_raw_output_schema(op.output_schema.clone())
}

/// An operation as the core listing shows it: everything but the output schema, which
/// `describe_tool` and the full listing (`?tools=all`) carry. Clients forward name, description
/// and input schema to their model; output schemas are most of a tool's bytes.
pub fn compact_tool_of(op: &Operation) -> Tool {
    let a = op.annotations;
    Tool::new(op.name, op.description.clone(), op.input_schema.clone())
        .with_title(op.title)
        .with_annotations(
            ToolAnnotations::with_title(op.title)
                .read_only(a.read_only)
                .destructive(a.destructive)
                .idempotent(a.idempotent)
                .open_world(a.open_world),
        )
}

impl HavenMcp {
    /// A server whose caller and selection come from each HTTP request.
    pub fn new(state: Arc<AppState>) -> Self {
        let tools = state
            .registry
            .all()
            .map(|op| (op.name, tool_of(op)))
            .collect();
        let inflight = InFlight::shared(state.services.db.clone());
        Self {
            state,
            tools: Arc::new(tools),
            fixed: None,
            inflight,
            listings: Arc::default(),
        }
    }

    /// A server that always acts as `principal` through `selection` (stdio).
    pub fn acting_as(state: Arc<AppState>, principal: Principal, selection: Selection) -> Self {
        Self {
            fixed: Some((principal, selection)),
            ..Self::new(state)
        }
    }

    /// The registry of in-flight calls that cancellation notifications reach.
    pub fn inflight(&self) -> InFlight {
        self.inflight.clone()
    }

    /// The caller and the connection's selection: from the HTTP request (the auth and selection
    /// layers put them in its extensions), or the fixed ones of stdio.
    fn caller(&self, ctx: &RequestContext<RoleServer>) -> (Caller, Selection) {
        match ctx.extensions.get::<http::request::Parts>() {
            Some(parts) => (
                parts
                    .extensions
                    .get::<Caller>()
                    .cloned()
                    .unwrap_or_default(),
                parts
                    .extensions
                    .get::<Selection>()
                    .cloned()
                    .unwrap_or_default(),
            ),
            None => match &self.fixed {
                Some((principal, selection)) => (
                    Caller {
                        principal: Some(principal.clone()),
                        ..Caller::default()
                    },
                    selection.clone(),
                ),
                None => (Caller::default(), Selection::default()),
            },
        }
    }

    /// A fresh operation context for `caller`.
    fn op_ctx(&self, caller: &Caller) -> Ctx {
        Ctx::new(
            self.state.services.clone(),
            caller.principal.clone(),
            format!("mcp-{}", Uuid::new_v4().simple()),
            caller.ip.clone(),
        )
        .with_languages(caller.languages.clone())
        .via(Transport::Mcp)
    }

    /// Calls tool `name` for `caller` through `selection`: the one path behind `tools/call` and
    /// `call_tool`. Unknown names and tools the connection excludes are tool errors an LLM can
    /// act on; so is every failure of the operation.
    async fn call_named(
        &self,
        name: &str,
        args: Value,
        caller: &Caller,
        selection: &Selection,
        ctx: &RequestContext<RoleServer>,
    ) -> CallToolResult {
        let Some(op) = self.state.registry.get(name) else {
            return tool_error(format!(
                "NotFound: there is no tool `{name}`; use search_tools to find the right one"
            ));
        };
        if let Some(why) = selection.refusal(op) {
            return tool_error(format!("Forbidden: {why}"));
        }
        let mut call = self.op_ctx(caller).with_cancellation(ctx.ct.clone());
        let (progress, forwarder) = progress_sink(ctx);
        if let Some(sink) = progress {
            call = call.with_progress(sink);
        }
        let _registered = self.inflight.register(
            inflight::caller_key(caller),
            inflight::id_key(&serde_json::to_value(&ctx.id).unwrap_or_default()),
            ctx.ct.clone(),
        );
        let result = op.invoke(call, args).await;
        if let Some(forwarder) = forwarder {
            // Every progress report goes out before the answer.
            let _ = forwarder.await;
        }
        match result {
            Ok(output) => CallToolResult::structured(output),
            Err(err) => tool_error(format!("{:?}: {}", err.kind, err.message)),
        }
    }

    /// `call_tool`'s own arguments, then the call.
    async fn call_meta_call(
        &self,
        args: Value,
        caller: &Caller,
        selection: &Selection,
        ctx: &RequestContext<RoleServer>,
    ) -> CallToolResult {
        let input: meta::CallInput = match haven_tools::registry::parse_input(args) {
            Ok(i) => i,
            Err(e) => return tool_error(format!("BadInput: {}", e.message)),
        };
        if meta::is_meta(&input.name) {
            return tool_error(format!(
                "BadInput: `name`: call {} directly, not through call_tool",
                input.name
            ));
        }
        let args = input.arguments.map(Value::Object).unwrap_or(Value::Null);
        Box::pin(self.call_named(&input.name, args, caller, selection, ctx)).await
    }
}

/// A tool error result with `text`.
fn tool_error(text: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

/// A progress sink for the request, when the client sent a `progressToken`: reports go through
/// one forwarding task, in order; the task ends once the call drops the sink.
fn progress_sink(
    ctx: &RequestContext<RoleServer>,
) -> (Option<ProgressSink>, Option<tokio::task::JoinHandle<()>>) {
    let Some(token) = ctx.meta.get_progress_token() else {
        return (None, None);
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Progress>();
    let peer = ctx.peer.clone();
    let forwarder = tokio::spawn(async move {
        while let Some(p) = rx.recv().await {
            let mut param =
                ProgressNotificationParam::new(token.clone(), p.progress).with_message(p.message);
            if let Some(total) = p.total {
                param = param.with_total(total);
            }
            if let Err(err) = peer.notify_progress(param).await {
                tracing::debug!(%err, "could not send a progress notification");
                break;
            }
        }
    });
    let sink: ProgressSink = Arc::new(move |p| {
        let _ = tx.send(p);
    });
    (Some(sink), Some(forwarder))
}

impl HavenMcp {
    /// The `tools/list` answer for a caller of `principal`'s role through `selection`.
    fn build_listing(&self, principal: Option<&Principal>, selection: &Selection) -> Vec<Tool> {
        let full = selection.listing == selection::Listing::All;
        let mut tools: Vec<Tool> = selection
            .listed(self.state.registry, principal)
            .into_iter()
            .map(|op| {
                if full {
                    self.tools
                        .get(op.name)
                        .cloned()
                        .unwrap_or_else(|| tool_of(op))
                } else {
                    compact_tool_of(op)
                }
            })
            .collect();
        tools.extend(meta::tools(selection));
        tools
    }
}

impl ServerHandler for HavenMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("haven", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Haven is a short-term-rental marketplace: guests search, book and pay for stays, hosts list \
             homes and answer requests, admins moderate. Your tool list holds the core tools of your role; \
             every other operation you may use is reachable with search_tools (find it), describe_tool (its \
             full definition) and call_tool (call it by name). Anonymous callers can search listings, \
             registerUser and login; send the returned accessToken (or an sk_haven_ API key) as \
             `Authorization: Bearer …` to act as that user. Prompts offer the main jobs (plan and book a \
             stay, write a listing, triage disputes); resources haven://listings/{listingId} and \
             haven://reservations/{reservationId} attach an object as context.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let (caller, selection) = self.caller(&ctx);
        let key = (
            caller.principal.as_ref().map(|p| p.role.as_str()),
            selection,
        );
        let cached = self
            .listings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let tools = match cached {
            Some(tools) => tools,
            None => {
                let tools = Arc::new(self.build_listing(caller.principal.as_ref(), &key.1));
                self.listings
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, tools.clone());
                tools
            }
        };
        Ok(ListToolsResult::with_all_items((*tools).clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        if meta::is_meta(name) {
            return meta::tools(&Selection::default())
                .into_iter()
                .find(|t| t.name == name);
        }
        self.tools.get(name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let (caller, selection) = self.caller(&ctx);
        let args = request.arguments.map(Value::Object).unwrap_or(Value::Null);
        let principal = caller.principal.as_ref();
        let result = match request.name.as_ref() {
            meta::SEARCH => match haven_tools::registry::parse_input::<meta::SearchInput>(args) {
                Err(e) => tool_error(format!("BadInput: {}", e.message)),
                Ok(input) => {
                    match meta::search(self.state.registry, &selection, principal, input) {
                        Ok(found) => CallToolResult::structured(
                            serde_json::to_value(found).unwrap_or_default(),
                        ),
                        Err(message) => tool_error(format!("BadInput: {message}")),
                    }
                }
            },
            meta::DESCRIBE => match haven_tools::registry::parse_input::<meta::DescribeInput>(args)
            {
                Err(e) => tool_error(format!("BadInput: {}", e.message)),
                Ok(input) => match self
                    .state
                    .registry
                    .get(&input.name)
                    .filter(|op| op.access.allows(principal) && selection.admits(op))
                {
                    Some(op) => CallToolResult::structured(json!({ "tool": meta::describe(op) })),
                    None => tool_error(format!(
                        "NotFound: no tool `{}` is available to you on this connection; use search_tools",
                        input.name
                    )),
                },
            },
            meta::CALL => self.call_meta_call(args, &caller, &selection, &ctx).await,
            name => {
                if self.state.registry.get(name).is_none() {
                    return Err(McpError::invalid_params(
                        format!("unknown tool `{name}`; use search_tools to find the right one"),
                        None,
                    ));
                }
                self.call_named(name, args, &caller, &selection, &ctx).await
            }
        };
        Ok(result.into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let (caller, _) = self.caller(&ctx);
        Ok(ListPromptsResult::with_all_items(prompts::list(
            caller.principal.as_ref(),
        )))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let (caller, _) = self.caller(&ctx);
        prompts::get(
            &self.state.services.db,
            caller.principal.as_ref(),
            &request.name,
            request.arguments,
        )
        .await
        .map(Into::into)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        // Haven's resources are per object; the templates name them.
        Ok(ListResourcesResult::with_all_items(Vec::new()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let (caller, _) = self.caller(&ctx);
        let make = || self.op_ctx(&caller).with_cancellation(ctx.ct.clone());
        let contents = resources::read(self.state.registry, &make, &request.uri).await?;
        Ok(ReadResourceResult::new(contents).into())
    }

    async fn complete(
        &self,
        _request: CompleteRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        // Completions are not declared, so they are not served.
        Err(McpError::method_not_found::<
            rmcp::model::CompleteRequestMethod,
        >())
    }
}

/// The JSON-RPC error body of a refused MCP request (HTTP 4xx before rmcp sees it).
fn jsonrpc_refusal(status: StatusCode, code: i32, message: String) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json!({ "jsonrpc": "2.0", "id": null, "error": { "code": code, "message": message } })
            .to_string(),
    )
        .into_response()
}

/// Refuses a request whose Host or browser Origin is not allowed (DNS rebinding; the spec says
/// servers MUST validate Origin): 403, on `/mcp` exactly as on `/mcp/sse`.
pub async fn check_host_and_origin(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    if !host_and_origin_allowed(
        req.headers(),
        &state.config.allowed_hosts,
        &state.config.allowed_origins,
    ) {
        return jsonrpc_refusal(
            StatusCode::FORBIDDEN,
            -32600,
            "Forbidden: Host or Origin is not allowed (see HAVEN_ALLOWED_HOSTS, HAVEN_ALLOWED_ORIGINS)".into(),
        );
    }
    next.run(req).await
}

/// Reads the connection's [`Selection`] from the query string and headers into the request's
/// extensions (read-only forced for an OAuth token holding only `haven:read`); an unknown
/// toolset or value is a 400 listing the valid ones.
pub async fn bind_selection(mut req: Request, next: Next) -> Response {
    match Selection::from_request(req.uri().query(), req.headers()) {
        Ok(mut selection) => {
            // An OAuth token with only the read scope makes the connection read-only.
            if req
                .extensions()
                .get::<Caller>()
                .is_some_and(Caller::read_only_scope)
            {
                selection.read_only = true;
            }
            req.extensions_mut().insert(selection);
            next.run(req).await
        }
        Err(message) => jsonrpc_refusal(StatusCode::BAD_REQUEST, -32602, message),
    }
}

/// `POST /mcp`: stateless Streamable HTTP with JSON responses; Host and Origin checked, the
/// selection bound, cancellation notifications routed to the calls they name.
pub fn routes(state: &Arc<AppState>, shutdown: CancellationToken) -> Router<Arc<AppState>> {
    let server = HavenMcp::new(state.clone());
    let inflight = server.inflight();
    tokio::spawn(inflight.clone().listen(shutdown.clone()));
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
    Router::new()
        .route_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(
            inflight,
            inflight::intercept_cancel,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            scope_challenge::challenge_insufficient_scope,
        ))
        .layer(axum::middleware::from_fn(bind_selection))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            check_host_and_origin,
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use haven_tools::principal::Credential;
    use haven_tools::Role;

    fn principal(role: Role) -> Principal {
        Principal {
            user_id: Uuid::nil(),
            role,
            email: "someone@example.com".into(),
            fullname: "Someone".into(),
            credential: Credential::ApiKey(Uuid::nil()),
        }
    }

    /// The budget every role's default list must keep as operations are added: Cursor forwards
    /// 40 tools; 60 KB keeps far inside Claude Desktop's limit.
    #[test]
    fn every_roles_core_list_stays_within_the_client_budget() {
        let registry = crate::registry();
        let selection = Selection::default();
        for who in [
            None,
            Some(principal(Role::User)),
            Some(principal(Role::Admin)),
            Some(principal(Role::SuperAdmin)),
        ] {
            let mut tools: Vec<Tool> = selection
                .listed(registry, who.as_ref())
                .into_iter()
                .map(|op| compact_tool_of(op))
                .collect();
            tools.extend(meta::tools(&selection));
            let bytes = serde_json::to_string(&tools).unwrap().len();
            let role = who.as_ref().map_or("anonymous", |p| p.role.as_str());
            assert!(tools.len() <= 40, "{role}: {} tools", tools.len());
            assert!(bytes <= 60 * 1024, "{role}: {bytes} bytes");
        }
    }

    /// A core operation must be callable by some role whose flows include it, or it would never
    /// be listed.
    #[test]
    fn every_core_operation_is_listed_for_some_role() {
        let registry = crate::registry();
        let roles = [
            None,
            Some(principal(Role::User)),
            Some(principal(Role::Admin)),
        ];
        for op in registry.all().filter(|op| op.core.is_some()) {
            let listed = roles.iter().any(|who| {
                Selection::default()
                    .listed(registry, who.as_ref())
                    .iter()
                    .any(|o| o.name == op.name)
            });
            assert!(listed, "{} is core but no role lists it", op.name);
        }
    }
}
