"use strict";
// The event types: every operation that changes something (filled in by the server).
const KINDS = /*KINDS*/[];
const $ = (id) => document.getElementById(id);
let token = null;

function describe(e) {
  const p = e.payload || {};
  const parts = [p.dataName, p.bookingStatus, p.paymentConfirmation, p.title].filter(Boolean);
  return parts.join(" · ");
}

function add(list, kind, when, what) {
  const li = document.createElement("li");
  const k = document.createElement("span");
  k.className = "kind";
  k.textContent = kind;
  const t = document.createElement("time");
  t.textContent = when;
  const w = document.createElement("div");
  w.className = "what";
  w.textContent = what;
  li.append(k, t, w);
  list.prepend(li);
  return li;
}

function watch() {
  // EventSource cannot send headers; the token goes in the query (never logged by Haven).
  const events = new EventSource("/events?access_token=" + encodeURIComponent(token));
  events.onopen = () => { $("status").textContent = "connected"; };
  events.onerror = () => { $("status").textContent = "reconnecting…"; };
  const seen = (msg) => {
    const e = JSON.parse(msg.data);
    const li = add($("events"), msg.type, new Date(e.createdAt).toLocaleTimeString(), describe(e));
    li.dataset.kind = msg.type;
    li.dataset.objectId = e.objectId || "";
  };
  // Every changing operation is an event type (the server fills KINDS from its registry).
  for (const kind of KINDS) events.addEventListener(kind, seen);
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  const resp = await fetch("/auth-api/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: $("email").value, password: $("password").value }),
  });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok || !body.accessToken) {
    $("login-error").textContent = (body && body.message) || "sign-in failed";
    return;
  }
  token = body.accessToken;
  $("login").classList.add("hidden");
  $("agent").classList.remove("hidden");
  $("status").textContent = "signed in as " + (body.email || $("email").value);
  watch();
});

$("agent").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("answer").textContent = "";
  $("run").textContent = "";
  const name = $("agent-name").value;
  const resp = await fetch("/agenthub-api/v1/agents/" + encodeURIComponent(name) + "/stream", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer " + token },
    body: JSON.stringify({ input: $("agent-input").value }),
  });
  if (!resp.ok || !resp.body) {
    $("answer").textContent = "the run could not start (" + resp.status + ")";
    return;
  }
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let end;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("");
      if (!data) continue;
      const e = JSON.parse(data);
      if (e.event === "text_delta") $("answer").textContent += e.text;
      else if (e.event === "tool_call_started") add($("run"), e.name, "", "called");
      else if (e.event === "run_finished") add($("run"), "finished", "", e.status + (e.error ? ": " + e.error : ""));
    }
  }
});
