"use strict";
// The event types: every operation that changes something (filled in by the server).
const KINDS = /*KINDS*/[];
const $ = (id) => document.getElementById(id);
let token = null;
let me = null;
let openThread = null;
const MESSAGING = "/messaging-api/v1";

async function api(method, path, body) {
  const resp = await fetch(path, {
    method,
    headers: { authorization: "Bearer " + token, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await resp.json().catch(() => ({}));
  return { ok: resp.ok, status: resp.status, data };
}

// The other participant's name in a thread.
function partner(t) {
  return t.guestId === me ? t.hostName : t.guestName;
}

async function loadThreads() {
  const { ok, data } = await api("GET", MESSAGING + "/messagethreads?pageRowCount=50");
  if (!ok) return;
  const list = $("threads");
  list.textContent = "";
  for (const t of data.messageThreads || []) {
    const li = document.createElement("li");
    li.dataset.threadId = t.id;
    if (t.id === openThread) li.className = "current";
    const who = document.createElement("span");
    who.className = "kind";
    who.textContent = partner(t);
    const about = document.createElement("span");
    about.className = "what";
    const listing = (t.listingDets && t.listingDets[0]) ? " · " + t.listingDets[0].title : "";
    about.textContent = " " + t.messageCount + " messages" + listing + (t.isOpen ? "" : " · closed");
    li.append(who, about);
    if (t.unreadCount > 0) {
      const n = document.createElement("span");
      n.className = "unread";
      n.textContent = String(t.unreadCount);
      li.append(n);
    }
    li.addEventListener("click", () => showThread(t.id, partner(t)));
    list.append(li);
  }
}

async function loadMessages() {
  if (!openThread) return;
  const { ok, data } = await api("GET", MESSAGING + "/threadmessages/" + openThread + "?pageNumber=0");
  if (!ok) return;
  const list = $("messages");
  list.textContent = "";
  for (const m of data.messages || []) {
    const li = document.createElement("li");
    li.dataset.messageId = m.id;
    if (m.senderId === me) li.className = "mine";
    const who = document.createElement("span");
    who.className = "kind";
    who.textContent = m.senderId === me ? "you" : m.senderName;
    const t = document.createElement("time");
    t.textContent = new Date(m.sentAt).toLocaleTimeString();
    const body = document.createElement("div");
    body.className = "body";
    body.textContent = m.content;
    li.append(who, t, body);
    list.append(li);
  }
  list.scrollTop = list.scrollHeight;
  // What was written to me and is now on screen counts as read.
  for (const m of data.messages || []) {
    if (m.recipientId === me && !m.isRead) await api("PATCH", MESSAGING + "/messages/" + m.id, { isRead: true });
  }
}

async function showThread(id, title) {
  openThread = id;
  $("thread").classList.remove("hidden");
  $("thread-title").textContent = "With " + title;
  await loadMessages();
  await loadThreads();
}

$("reply").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("reply-error").textContent = "";
  const { ok, data } = await api("POST", MESSAGING + "/messages", { threadId: openThread, content: $("reply-text").value });
  if (!ok) {
    $("reply-error").textContent = data.message || "not sent";
    return;
  }
  $("reply-text").value = "";
  await loadMessages();
});

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
    // Messages and threads: refresh the conversation list, and the open thread when it changed.
    const p = e.payload || {};
    if (p.dataName === "message" || p.dataName === "messageThread") {
      if (p.threadId && p.threadId === openThread) loadMessages().then(loadThreads);
      else loadThreads();
    }
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
  me = body.userId;
  $("conversations").classList.remove("hidden");
  loadThreads();
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
