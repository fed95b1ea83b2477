//! Stopping runs: `cancelAgentExecution` (a user stops their own run, an admin any run), and the
//! sweep that closes runs a stopped server left `running`.
//!
//! A cancel is recorded on the run's row and announced with `NOTIFY` in the same transaction, so
//! it reaches the run on whichever replica runs it once the request commits ([`crate::control`]).
//! The run then ends by itself as `cancelled`, closing its nested runs too.

use haven_tools::context::Ctx;
use haven_tools::error::ToolError;
use haven_tools::registry::{Access, Annotations, Method, Operation, Service};
use sqlx::PgPool;

use crate::control::CANCEL_CHANNEL;
use crate::executions::{AgentExecution, ExecutionRef, EXECUTION_COLUMNS};

/// The cancel operation.
pub fn operations() -> Vec<Operation> {
    vec![Operation::build("cancelAgentExecution", Service::AgentHub)
        .title("Cancel an agent run")
        .who("the run's user, or an admin")
        .describe(
            "Stops a running agent run (sys_agentExecutionId from runAgent or listAgentExecutions) and the agents it \
             called: the LLM call or tool call in progress is abandoned (an unfinished tool call changes nothing) and \
             the run ends with status cancelled within moments. Returns the run with cancelRequestedAt set; poll \
             getAgentExecution to see it end. Only the run's user and admins may cancel it; a run that has already \
             ended is a conflict.",
        )
        .rest(
            Method::Post,
            "/agenthub-api/v1/agentexecution/{sys_agentExecutionId}/cancel",
        )
        .access(Access::Authenticated)
        .updates("sys_agentExecution")
        .annotations(Annotations {
            read_only: false,
            destructive: true,
            idempotent: true,
            open_world: false,
        })
        .handler(cancel_execution)]
}

async fn cancel_execution(ctx: Ctx, input: ExecutionRef) -> Result<AgentExecution, ToolError> {
    let caller = ctx.caller()?.user_id;
    let admin = ctx.is_admin();
    let mut db = ctx.db().await?;
    // Another user's run is not found rather than forbidden: its existence is not theirs to know.
    let status: Option<(String, bool)> = sqlx::query_as(
        "SELECT status, cancel_requested_at IS NOT NULL FROM agenthub.agent_executions
         WHERE id = $1 AND is_active AND ($2 OR user_id = $3) FOR UPDATE",
    )
    .bind(input.id)
    .bind(admin)
    .bind(caller)
    .fetch_optional(&mut *db)
    .await?;
    match status {
        None => return Err(ToolError::not_found("agent execution")),
        Some((status, _)) if status != "running" => {
            return Err(ToolError::conflict(format!(
                "the run has already ended with status {status}"
            )))
        }
        Some((_, true)) => {}
        Some((_, false)) => {
            sqlx::query(
                "UPDATE agenthub.agent_executions SET cancel_requested_at = now(), cancelled_by = $2,
                    record_version = record_version + 1, updated_at = now()
                 WHERE id = $1",
            )
            .bind(input.id)
            .bind(caller)
            .execute(&mut *db)
            .await?;
        }
    }
    // Delivered when the call's transaction commits; resent on a repeated cancel (idempotent).
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CANCEL_CHANNEL)
        .bind(input.id.to_string())
        .execute(&mut *db)
        .await?;
    let sql =
        format!("SELECT {EXECUTION_COLUMNS} FROM agenthub.agent_executions e WHERE e.id = $1");
    Ok(sqlx::query_as(&sql)
        .bind(input.id)
        .fetch_one(&mut *db)
        .await?)
}

/// Longest a run can legitimately last: the largest time guardrail (600 s) plus slack for the
/// final log write.
pub const ABANDONED_AFTER_SECONDS: i64 = 660;

/// Closes runs still `running` long after any guardrail would have ended them — their server
/// stopped mid-run — as `error` with the reason; returns how many.
pub async fn close_abandoned(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let closed = sqlx::query(
        "UPDATE agenthub.agent_executions SET status = 'error',
            error = 'the run was interrupted: its server stopped before it ended',
            finished_at = now(),
            duration_ms = (extract(epoch FROM now() - created_at) * 1000)::bigint,
            record_version = record_version + 1, updated_at = now()
         WHERE status = 'running' AND created_at < now() - make_interval(secs => $1)",
    )
    .bind(ABANDONED_AFTER_SECONDS as f64)
    .execute(pool)
    .await?;
    Ok(closed.rows_affected())
}
