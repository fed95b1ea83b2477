//! Control of runs in flight: the limits a run spends (shared with the agents it calls), its stop
//! signal (deadline or cancellation), and the process's table of running runs, which
//! `cancelAgentExecution` reaches through Postgres `NOTIFY`, so a cancel sent to any replica stops
//! the run on whichever replica is running it.
//!
//! Why a token and not dropping the run's future: a dropped future would leave its execution row
//! (and every nested agent's row) `running` forever. A stopped run instead notices the token at
//! its next await, abandons the LLM call or tool call in progress (a tool's transaction rolls
//! back), lets nested runs close their own rows, and closes its row with the reason.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::definitions::Guardrails;
use crate::executions::TokenUsage;

/// The `NOTIFY` channel carrying the ids of runs to cancel.
pub const CANCEL_CHANNEL: &str = "haven_agent_cancel";

/// Why a run was stopped before its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A time guardrail ran out.
    Timeout {
        /// The limit that ran out.
        seconds: u32,
        /// Whether it was the stopped run's own limit (else a caller's, which ended first).
        own: bool,
    },
    /// Someone cancelled the run (or the run that called it).
    Cancelled,
    /// The server is shutting down.
    Shutdown,
}

/// The live state of one run: its guardrails and what it (with its nested runs) has spent, its
/// deadline, and its stop signal. Nested runs hold their caller's control as `parent`: spending
/// is charged to every run up the chain, so nested calls count against the parent's guardrails.
pub struct RunControl {
    /// The run's execution id.
    pub execution_id: Uuid,
    /// The agent's name (a nested run may not call an agent already in its chain).
    pub agent: String,
    parent: Option<Arc<RunControl>>,
    token: CancellationToken,
    stop: OnceLock<Stop>,
    guardrails: Guardrails,
    /// When this run's own time limit ends (a caller's may end first).
    deadline: Instant,
    calls: AtomicI32,
    prompt: AtomicI64,
    completion: AtomicI64,
    total: AtomicI64,
}

impl RunControl {
    /// The control of a run started by a trigger.
    pub fn root(execution_id: Uuid, agent: &str, guardrails: Guardrails) -> Arc<Self> {
        Self::new(execution_id, agent, guardrails, None)
    }

    /// The control of a run that `parent` started by calling an agent as a tool: stopped with
    /// its parent, and never running past the parent's deadline.
    pub fn child(
        parent: &Arc<RunControl>,
        execution_id: Uuid,
        agent: &str,
        guardrails: Guardrails,
    ) -> Arc<Self> {
        Self::new(execution_id, agent, guardrails, Some(parent.clone()))
    }

    fn new(
        execution_id: Uuid,
        agent: &str,
        guardrails: Guardrails,
        parent: Option<Arc<RunControl>>,
    ) -> Arc<Self> {
        let deadline =
            Instant::now() + Duration::from_secs(guardrails.timeout_seconds.get() as u64);
        let token = match &parent {
            Some(p) => p.token.child_token(),
            None => CancellationToken::new(),
        };
        Arc::new(RunControl {
            execution_id,
            agent: agent.to_string(),
            parent,
            token,
            stop: OnceLock::new(),
            guardrails,
            deadline,
            calls: AtomicI32::new(0),
            prompt: AtomicI64::new(0),
            completion: AtomicI64::new(0),
            total: AtomicI64::new(0),
        })
    }

    /// This run and the runs that (transitively) called it, innermost first.
    fn chain(&self) -> impl Iterator<Item = &RunControl> {
        std::iter::successors(Some(self), |c| c.parent.as_deref())
    }

    /// How many agents called this one (0 for a run started by a trigger).
    pub fn depth(&self) -> usize {
        self.chain().count() - 1
    }

    /// Whether `agent` is this run's agent or one of its callers' (calling it would loop).
    pub fn in_chain(&self, agent: &str) -> bool {
        self.chain().any(|c| c.agent == agent)
    }

    /// Takes one tool call from every run up the chain, or says which guardrail refuses it.
    /// (Runs of one chain never call tools concurrently: a caller waits for its nested run.)
    pub fn take_tool_call(&self) -> Result<(), String> {
        for (i, c) in self.chain().enumerate() {
            let max = c.guardrails.max_tool_calls.get() as i32;
            if c.calls.load(Ordering::Relaxed) >= max {
                return Err(c.reason(i, format!("more than {max} tool calls")));
            }
        }
        for c in self.chain() {
            c.calls.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Charges one completion's usage to every run up the chain, then says which token budget
    /// (if any) it broke.
    pub fn charge(&self, prompt: i64, completion: i64, total: i64) -> Result<(), String> {
        for c in self.chain() {
            c.prompt.fetch_add(prompt, Ordering::Relaxed);
            c.completion.fetch_add(completion, Ordering::Relaxed);
            c.total.fetch_add(total, Ordering::Relaxed);
        }
        for (i, c) in self.chain().enumerate() {
            let budget = c.guardrails.max_token_budget.get() as i64;
            let used = c.total.load(Ordering::Relaxed);
            if used > budget {
                return Err(c.reason(
                    i,
                    format!("token budget of {budget} tokens exceeded ({used} used)"),
                ));
            }
        }
        Ok(())
    }

    /// The guardrail reason for this run's limit, `up` links above the run that hit it (a caller's
    /// limit names the caller).
    fn reason(&self, up: usize, what: String) -> String {
        if up == 0 {
            format!("guardrail: {what}")
        } else {
            format!("guardrail of the calling agent `{}`: {what}", self.agent)
        }
    }

    /// Tool calls made by this run and its nested runs.
    pub fn tool_calls(&self) -> i32 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Tokens used by this run and its nested runs.
    pub fn usage(&self) -> TokenUsage {
        TokenUsage {
            prompt: self.prompt.load(Ordering::Relaxed),
            completion: self.completion.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
        }
    }

    /// When the run must end (its own limit, or an earlier caller's).
    pub fn deadline(&self) -> Instant {
        self.chain()
            .map(|c| c.deadline)
            .min()
            .unwrap_or(self.deadline)
    }

    /// The stop for reaching the deadline: this run's own limit, or the caller's that ends first.
    pub fn timed_out(&self) -> Stop {
        let (i, c) = self
            .chain()
            .enumerate()
            .min_by_key(|(i, c)| (c.deadline, *i))
            .expect("a chain has at least this run");
        Stop::Timeout {
            seconds: c.guardrails.timeout_seconds.get(),
            own: i == 0,
        }
    }

    /// Stops the run (and its nested runs) for `why`; the first reason wins.
    pub fn stop(&self, why: Stop) {
        let _ = self.stop.set(why);
        self.token.cancel();
    }

    /// Resolves when the run (or a caller) has been stopped.
    pub async fn stopped(&self) {
        self.token.cancelled().await
    }

    /// Whether the run has been stopped.
    pub fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Why the run was stopped, and whether the reason is its own (else the nearest caller's).
    pub fn why(&self) -> (Stop, bool) {
        self.chain()
            .enumerate()
            .find_map(|(i, c)| c.stop.get().map(|s| (*s, i == 0)))
            .unwrap_or((Stop::Cancelled, true))
    }
}

/// The runs in flight in this process, by execution id, for cancellation.
#[derive(Default)]
pub struct Runs {
    live: Mutex<HashMap<Uuid, Weak<RunControl>>>,
}

impl Runs {
    /// Lists `control` until the returned guard is dropped (when the run ends).
    pub fn register<'a>(&'a self, control: &Arc<RunControl>) -> Registration<'a> {
        self.lock()
            .insert(control.execution_id, Arc::downgrade(control));
        Registration {
            runs: self,
            id: control.execution_id,
        }
    }

    /// Cancels the run `id` if it runs in this process; says whether it did.
    pub fn cancel(&self, id: Uuid) -> bool {
        let control = self.lock().get(&id).and_then(Weak::upgrade);
        match control {
            Some(c) => {
                c.stop(Stop::Cancelled);
                true
            }
            None => false,
        }
    }

    /// Stops every run in this process (the server is shutting down) and waits up to `grace` for
    /// them to close their rows; returns how many were still running when it gave up.
    pub async fn stop_all(&self, grace: Duration) -> usize {
        let live: Vec<Arc<RunControl>> = self.lock().values().filter_map(Weak::upgrade).collect();
        for control in &live {
            control.stop(Stop::Shutdown);
        }
        drop(live);
        let until = Instant::now() + grace;
        while !self.is_empty() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.len()
    }

    /// How many runs are in flight in this process.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no run is in flight in this process.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Weak<RunControl>>> {
        // A panic while holding this lock cannot leave the map inconsistent; keep using it.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Follows [`CANCEL_CHANNEL`] and cancels the runs it names that run here. Reconnects after
    /// a lost connection (notifications sent meanwhile are caught by the run loop's own check of
    /// the row after each tool call).
    pub async fn listen(self: Arc<Self>, pool: PgPool) {
        loop {
            match PgListener::connect_with(&pool).await {
                Ok(mut listener) => {
                    if let Err(err) = listener.listen(CANCEL_CHANNEL).await {
                        tracing::warn!(%err, "agent cancel listener could not LISTEN");
                    } else {
                        while let Ok(note) = listener.recv().await {
                            if let Ok(id) = note.payload().parse::<Uuid>() {
                                self.cancel(id);
                            }
                        }
                    }
                }
                Err(err) => tracing::warn!(%err, "agent cancel listener could not connect"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Keeps a run listed in [`Runs`] while it is alive.
pub struct Registration<'a> {
    runs: &'a Runs,
    id: Uuid,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.runs.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(calls: i64, seconds: i64, tokens: i64) -> Guardrails {
        Guardrails {
            max_tool_calls: calls.try_into().unwrap(),
            timeout_seconds: seconds.try_into().unwrap(),
            max_token_budget: tokens.try_into().unwrap(),
        }
    }

    fn chain() -> (Arc<RunControl>, Arc<RunControl>) {
        let parent = RunControl::root(Uuid::new_v4(), "desk", limits(3, 60, 1000));
        let child = RunControl::child(&parent, Uuid::new_v4(), "moderator", limits(10, 30, 5000));
        (parent, child)
    }

    #[test]
    fn nested_tool_calls_are_charged_up_the_chain_and_refused_by_the_tightest_limit() {
        let (parent, child) = chain();
        parent.take_tool_call().unwrap();
        child.take_tool_call().unwrap();
        child.take_tool_call().unwrap();
        assert_eq!((parent.tool_calls(), child.tool_calls()), (3, 2));
        let refused = child.take_tool_call().unwrap_err();
        assert_eq!(
            refused,
            "guardrail of the calling agent `desk`: more than 3 tool calls"
        );
        // A refused call is not counted anywhere.
        assert_eq!((parent.tool_calls(), child.tool_calls()), (3, 2));
        assert_eq!(
            parent.take_tool_call().unwrap_err(),
            "guardrail: more than 3 tool calls"
        );
    }

    #[test]
    fn nested_tokens_are_charged_up_the_chain() {
        let (parent, child) = chain();
        parent.charge(300, 100, 400).unwrap();
        let over = child.charge(500, 200, 700).unwrap_err();
        assert!(over.starts_with("guardrail of the calling agent `desk`: token budget of 1000"));
        assert_eq!(child.usage().total, 700);
        assert_eq!(
            parent.usage(),
            TokenUsage {
                prompt: 800,
                completion: 300,
                total: 1100
            }
        );
    }

    #[test]
    fn depth_chain_and_deadlines() {
        let (parent, child) = chain();
        assert_eq!((parent.depth(), child.depth()), (0, 1));
        assert!(child.in_chain("desk") && child.in_chain("moderator"));
        assert!(!parent.in_chain("moderator"));
        // The child's 30 s end first: its own limit binds.
        assert_eq!(child.deadline(), child.deadline);
        assert_eq!(
            child.timed_out(),
            Stop::Timeout {
                seconds: 30,
                own: true
            }
        );
        let short = RunControl::root(Uuid::new_v4(), "short", limits(3, 1, 1000));
        let long = RunControl::child(&short, Uuid::new_v4(), "long", limits(3, 600, 1000));
        assert_eq!(long.deadline(), short.deadline());
        assert_eq!(
            long.timed_out(),
            Stop::Timeout {
                seconds: 1,
                own: false
            }
        );
    }

    #[tokio::test]
    async fn stopping_a_caller_stops_its_nested_runs_with_the_callers_reason() {
        let (parent, child) = chain();
        let runs = Runs::default();
        let listed = runs.register(&parent);
        assert_eq!(runs.len(), 1);
        assert!(runs.cancel(parent.execution_id));
        child.stopped().await;
        assert!(child.is_stopped());
        assert_eq!(child.why(), (Stop::Cancelled, false));
        assert_eq!(parent.why(), (Stop::Cancelled, true));
        drop(listed);
        assert!(runs.is_empty());
        assert!(!runs.cancel(parent.execution_id));
    }
}
