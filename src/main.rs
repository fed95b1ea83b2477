//! The `haven` command: serve (default), migrate, stdio, keys, demo, db, openapi, tools.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use haven::app::AppState;
use haven::config::Config;
use haven::db::{Durability, PrivateCluster};
use haven::{app, demo, http, stdio};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "haven",
    version,
    about = "Rental-marketplace backend where every operation is an MCP tool"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Serve REST, MCP (Streamable HTTP and legacy SSE), OpenAPI and health (the default).
    Serve {
        /// Also load the demo accounts.
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Serve MCP on stdin/stdout as the owner of HAVEN_API_KEY (for Claude Desktop).
    Stdio {
        /// The API key to act as.
        #[arg(long, env = "HAVEN_API_KEY", hide_env_values = true)]
        api_key: String,
        /// Only these toolsets (comma-separated: auth, platformadmin, propertycatalog,
        /// bookingmanagement, reviewsystem, messaging, agenthub, or all); enforced on every call.
        #[arg(long, env = "HAVEN_MCP_TOOLSETS")]
        toolsets: Option<String>,
        /// Only read-only tools may be listed and called.
        #[arg(long, env = "HAVEN_MCP_READONLY", num_args = 0..=1, default_missing_value = "true")]
        readonly: Option<String>,
        /// What tools/list shows: `core` (the role's core set plus search_tools / call_tool) or
        /// `all`.
        #[arg(long, env = "HAVEN_MCP_TOOLS")]
        tools: Option<String>,
    },
    /// Create an API key for an existing user and print it once. When the instance has no active
    /// superAdmin left, that user becomes one first (reactivated, promoted, or created).
    Keys {
        /// The user's email.
        #[arg(long)]
        email: String,
        /// What the key is for.
        #[arg(long, default_value = "created with haven keys")]
        description: String,
    },
    /// Load demo accounts and exit.
    Demo,
    /// The private Postgres cluster in HAVEN_DATA_DIR: status, start (and keep running), stop.
    Db {
        #[command(subcommand)]
        action: DbAction,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Print every tool: name, access, REST route.
    Tools,
}

#[derive(Subcommand)]
enum DbAction {
    /// Where the cluster lives, whether it runs, and which Haven processes use it.
    Status,
    /// Start the cluster (creating it when missing) and keep it running until `haven db stop`.
    Start,
    /// Stop the cluster now; Haven processes still using it start it again when they need it.
    Stop,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "haven=info,warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // Install the full registry (agent hub included) before anything reads it.
    haven::registry();
    match cli.command.unwrap_or(Command::Serve { demo: false }) {
        Command::Openapi => {
            println!("{:#}", http::openapi::document(haven::registry()));
            Ok(())
        }
        Command::Tools => {
            for op in haven::registry().all() {
                println!(
                    "{:<28} {:<26} {:<7} {}",
                    op.name,
                    op.access.describe(),
                    op.method.as_str(),
                    op.path
                );
            }
            Ok(())
        }
        Command::Migrate => with_state(cli.config, "migrate", true, |_| async { Ok(()) }).await,
        Command::Demo => {
            with_state(cli.config, "demo", true, |state| async move {
                print_demo(&state).await
            })
            .await
        }
        Command::Keys { email, description } => {
            with_state(cli.config, "keys", false, |state| async move {
                let (key, recovered) = state.recovery_key(&email, &description).await?;
                if let Some(how) = recovered {
                    eprintln!("the instance had no active superAdmin: {email} {how}");
                }
                println!("{key}");
                Ok(())
            })
            .await
        }
        Command::Stdio {
            api_key,
            toolsets,
            readonly,
            tools,
        } => {
            let selection =
                stdio::selection(toolsets.as_deref(), readonly.as_deref(), tools.as_deref())?;
            let result = with_state(cli.config, "stdio", false, |state| async move {
                stdio::serve(state, &api_key, selection).await
            })
            .await;
            // The cluster is left by now. Exit at once: tokio's stdin reader is a blocking read
            // that cannot be cancelled, so after a signal the runtime would wait for more input.
            if let Err(e) = result {
                eprintln!("Error: {e:?}");
                std::process::exit(1);
            }
            std::process::exit(0);
        }
        Command::Db { action } => db_command(&cli.config, action),
        Command::Serve { demo } => serve(cli.config, demo).await,
    }
}

/// Starts the state as `purpose` (creating the database only when `create`), runs `f`, and
/// always leaves the private cluster (the last user leaving stops it).
async fn with_state<F, Fut>(
    config: Config,
    purpose: &'static str,
    create: bool,
    f: F,
) -> anyhow::Result<()>
where
    F: FnOnce(Arc<AppState>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let state = AppState::start_as(config, purpose, create).await?;
    let result = f(state.clone()).await;
    state.shutdown();
    result
}

async fn print_demo(state: &AppState) -> anyhow::Result<()> {
    let created = demo::load(state).await?;
    eprintln!(
        "demo: {created} new accounts; every demo account's password is {}",
        demo::DEMO_PASSWORD
    );
    for (email, _, role, _) in demo::DEMO_USERS {
        eprintln!("  {email:<26} {role}");
    }
    Ok(())
}

async fn serve(config: Config, with_demo: bool) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let state = AppState::start(config).await?;
    if let Some(key) = state.bootstrap_superadmin().await? {
        let url = state.config.public_url();
        println!("HAVEN_ADMIN_API_KEY={key}");
        println!(
            "First start: created superAdmin {} — this API key is shown once. mcp.json:",
            state.config.admin_email
        );
        println!(
            "{{\n  \"mcpServers\": {{\n    \"haven\": {{\n      \"url\": \"{url}/mcp\",\n      \"headers\": {{ \"Authorization\": \"Bearer {key}\" }}\n    }}\n  }}\n}}"
        );
    }
    if with_demo {
        print_demo(&state).await?;
    }
    let open_files = http::connections::raise_open_files_limit();
    let mut limits = http::ConnectionLimits::from_config(&state.config);
    limits.max_connections = http::connections::fit_to_open_files(
        limits.max_connections,
        open_files,
        state.config.db_max_connections,
    );
    let listener = tokio::net::TcpListener::bind(state.config.bind)
        .await
        .with_context(|| format!("binding {}", state.config.bind))?;
    let shutdown = CancellationToken::new();
    let router = http::router(state.clone(), shutdown.clone());
    tokio::spawn(app::sweep_periodically(state.clone(), shutdown.clone()));
    let bound = listener.local_addr().unwrap_or(state.config.bind);
    tracing::info!(
        "haven listening on http://{bound} ({} tools; ready in {} ms)",
        state.registry.len(),
        started.elapsed().as_millis()
    );
    let signal = shutdown.clone();
    tokio::spawn(async move {
        app::termination_signal().await;
        tracing::info!("shutting down");
        signal.cancel();
    });
    let served = http::serve_with(listener, router, limits, shutdown).await;
    state.stop_agent_runs(Duration::from_secs(5)).await;
    state.shutdown();
    served.context("serving HTTP")
}

/// `haven db status|start|stop` on the private cluster of `config.data_dir`.
fn db_command(config: &Config, action: DbAction) -> anyhow::Result<()> {
    if config.database_url.is_some() {
        anyhow::bail!("DATABASE_URL is set: Haven does not manage that server (unset it to manage the private cluster in HAVEN_DATA_DIR)");
    }
    let create = matches!(action, DbAction::Start);
    let cluster = PrivateCluster::locate(&config.data_dir, Durability::Durable, create)?;
    let home = cluster.home().display();
    match action {
        DbAction::Status => {
            let status = cluster.status()?;
            println!("data dir: {}", cluster.data_dir().display());
            println!("cluster:  {home}");
            println!("log:      {}", cluster.log_file().display());
            match (status.exists, status.running) {
                (false, _) => println!("state:    no cluster yet"),
                (true, Some(pid)) => println!("state:    running (postmaster pid {pid})"),
                (true, None) => println!("state:    stopped"),
            }
            if status.pinned {
                println!("pinned:   yes (haven db start): keeps running until haven db stop");
            }
            println!("users:    {}", status.users.len());
            for user in status.users {
                println!("  pid {:<8} {}", user.pid, user.purpose);
            }
        }
        DbAction::Start => {
            let started = cluster.start_pinned()?;
            let verb = if started {
                "started"
            } else {
                "already running"
            };
            println!("private cluster in {home}: {verb}; it keeps running until `haven db stop`");
        }
        DbAction::Stop => {
            let (was_running, users) = cluster.stop()?;
            if was_running {
                println!("private cluster in {home}: stopped");
            } else {
                println!("private cluster in {home}: was not running");
            }
            if !users.is_empty() {
                println!(
                    "{} Haven process(es) still use it and will start it again when they need it: {}",
                    users.len(),
                    users
                        .iter()
                        .map(|u| format!("{} (pid {})", u.purpose, u.pid))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    Ok(())
}
