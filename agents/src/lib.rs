//! The agent hub (issue 4): design-time agent definitions, their runtime overrides, the tool
//! catalog cached from the registry, and the execution log. Its operations join the registry
//! through [`operations`] (installed by the server with `Registry::install_with`), so they get
//! every face — MCP tool, REST route, OpenAPI entry — like any other operation.

pub mod cancel;
pub mod catalog;
pub mod control;
pub mod definitions;
pub mod delegate;
pub mod dynamic;
pub mod executions;
pub mod llm;
pub mod overrides;
pub mod run_agent;
pub mod runner;

use haven_tools::Operation;

/// Every agent-hub operation: overrides and agents, the tool catalog, the execution log, running
/// design-time and dynamic agents, cancelling runs.
pub fn operations() -> Vec<Operation> {
    overrides::operations()
        .into_iter()
        .chain(catalog::operations())
        .chain(executions::operations())
        .chain(run_agent::operations())
        .chain(dynamic::operations())
        .chain(cancel::operations())
        .collect()
}
