//! A `haven stdio` child process speaking newline-delimited JSON-RPC over its stdin/stdout (the
//! stdio tests and the shared-cluster tests drive real processes through it).

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::time::timeout;

/// A running `haven stdio`.
pub struct StdioChild {
    /// The process.
    pub child: tokio::process::Child,
    /// Its stdin (drop it to end the session).
    pub stdin: tokio::process::ChildStdin,
    /// Its stdout, line by line.
    pub stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    /// Everything it wrote to stderr, once it exits.
    pub stderr: tokio::task::JoinHandle<String>,
}

impl StdioChild {
    /// Spawns `cmd` (a `haven stdio` command) with piped stdio.
    pub fn spawn(mut cmd: tokio::process::Command) -> StdioChild {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawning haven stdio");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut err = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s).await;
            s
        });
        StdioChild {
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    /// Writes one JSON-RPC message.
    pub async fn send(&mut self, msg: Value) {
        let mut line = serde_json::to_vec(&msg).unwrap();
        line.push(b'\n');
        self.stdin.write_all(&line).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Reads stdout lines until the response with `id` (60 s at most).
    pub async fn response_for(&mut self, id: i64) -> Value {
        let lines = &mut self.stdout;
        let found = timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.trim().is_empty() {
                    continue;
                }
                let msg: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout carried a non-JSON line {line:?}: {e}"));
                if msg["id"] == json!(id) {
                    return Some(msg);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(msg)) => msg,
            Ok(None) => {
                let _ = self.child.start_kill();
                let err = (&mut self.stderr).await.unwrap_or_default();
                panic!("haven stdio closed stdout before answering id {id}; stderr:\n{err}")
            }
            Err(_) => {
                let _ = self.child.start_kill();
                panic!("haven stdio did not answer id {id} within 60 s")
            }
        }
    }

    /// `initialize` (protocol 2025-06-18) then `notifications/initialized`; panics on an error.
    pub async fn handshake(&mut self, id: i64) {
        self.send(json!({
            "jsonrpc": "2.0", "id": id, "method": "initialize",
            "params": { "protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": { "name": "haven-tests", "version": "0.0.1" } }
        }))
        .await;
        let init = self.response_for(id).await;
        assert!(init["error"].is_null(), "initialize failed: {init}");
        self.send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .await;
    }

    /// `tools/call name` with `args`; returns the whole result object.
    pub async fn call(&mut self, id: i64, name: &str, args: Value) -> Value {
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
                          "params": { "name": name, "arguments": args } }))
            .await;
        self.response_for(id).await["result"].clone()
    }

    /// Closes stdin and waits (20 s at most) for a clean exit; panics with stderr otherwise.
    pub async fn close(self) -> String {
        let StdioChild {
            mut child,
            stdin,
            stderr,
            ..
        } = self;
        drop(stdin);
        match timeout(Duration::from_secs(20), child.wait()).await {
            Ok(status) => {
                let status = status.unwrap();
                let err = stderr.await.unwrap_or_default();
                assert!(
                    status.success(),
                    "haven stdio exited with {status} after stdin closed; stderr:\n{err}"
                );
                err
            }
            Err(_) => {
                child.kill().await.unwrap();
                panic!("haven stdio did not exit within 20 s of stdin closing");
            }
        }
    }

    /// SIGTERM (how clients end a server they launched) and waits (20 s at most) for a clean exit;
    /// returns stderr.
    pub async fn terminate(self) -> String {
        let pid = self.child.id().expect("stdio still running").to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let StdioChild {
            mut child, stderr, ..
        } = self;
        let status = timeout(Duration::from_secs(20), child.wait())
            .await
            .expect("haven stdio did not exit within 20 s of SIGTERM")
            .unwrap();
        let err = stderr.await.unwrap_or_default();
        assert!(
            status.success(),
            "haven stdio exited with {status} on SIGTERM; stderr:\n{err}"
        );
        err
    }
}
