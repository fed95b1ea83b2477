// A real browser on the /live page (headless Debian Chromium driven by playwright-core):
// sign in through the page's form, watch a change made elsewhere arrive over GET /events, and run
// an agent from the page while its stream arrives (CI's scripted LLM answers "Found N homes."),
// and talk: another user asks about the viewer's listing through the API, the message appears on
// the page, the viewer replies from the page and the other user reads the reply through the API.
//
//   node .ci/live_page.mjs http://127.0.0.1:PORT [screenshot.png]
//
// Exits 0 when every check passed, 1 otherwise; prints one line per check.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { chromium } = require("./browser/node_modules/playwright-core");

const base = process.argv[2];
const shot = process.argv[3] || ".ci/out/live.png";
const email = `live-${Date.now()}@example.com`;
const password = "Live-page-pw-2026";
let failed = 0;

function check(ok, what) {
  console.log(`${ok ? "PASS" : "FAIL"}  live page: ${what}`);
  if (!ok) failed += 1;
}

async function api(path, body, token, method = "POST") {
  const resp = await fetch(base + path, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: resp.status, body: await resp.json().catch(() => null) };
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const reg = await api("/auth-api/v1/registeruser", { email, password, fullname: "Live Viewer" });
  check(reg.status === 201 || reg.status === 200, `registered a user (${reg.status})`);
  const login = await api("/auth-api/login", { username: email, password });
  const token = login.body && login.body.accessToken;

  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(base + "/live", { waitUntil: "load", timeout: 20000 });
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.click("#login button");
  await page.waitForFunction(() => document.getElementById("status").textContent === "connected", null, { timeout: 15000 })
    .then(() => check(true, "signed in through the form and connected to /events"))
    .catch(() => check(false, `connected to /events (status: ${""})`));

  // A change made outside the page (over REST) arrives on it.
  const created = await api("/propertycatalog-api/v1/listings", {
    title: "Live page loft", description: "Created while the page watches.", address: "1 Live St",
    location: { city: "Lisbon" }, propertyType: "loft", approvalType: "instant",
    pricePerNight: 90, currency: "EUR", maxGuests: 2, isPublished: true,
  }, token);
  check(created.status === 201, `created a listing over REST (${created.status})`);
  const arrived = await page.waitForSelector('#events li[data-kind="createListing"]', { timeout: 15000 })
    .then(() => true).catch(() => false);
  check(arrived, "the createListing event appeared on the page");

  // Messaging: another user asks about the listing; the page shows the thread and the message.
  const listingId = created.body && created.body.listing && created.body.listing.id;
  const otherEmail = `asker-${Date.now()}@example.com`;
  await api("/auth-api/v1/registeruser", { email: otherEmail, password, fullname: "Curious Guest" });
  const other = (await api("/auth-api/login", { username: otherEmail, password })).body.accessToken;
  const thread = await api("/messaging-api/v1/messagethreads", { listingId }, other);
  check(thread.status === 201, `another user opened an inquiry thread (${thread.status})`);
  const threadId = thread.body && thread.body.messageThread && thread.body.messageThread.id;
  const listed = await page.waitForSelector(`#threads li[data-thread-id="${threadId}"]`, { timeout: 15000 })
    .then(() => true).catch(() => false);
  check(listed, "the new thread appeared in the page's conversations");
  await page.click(`#threads li[data-thread-id="${threadId}"]`);
  const question = "Is the loft quiet at night?";
  const sent = await api("/messaging-api/v1/messages", { threadId, content: question }, other);
  check(sent.status === 201, `the other user posted a message through the API (${sent.status})`);
  const shown = await page.waitForFunction((text) => [...document.querySelectorAll("#messages li .body")]
    .some((el) => el.textContent === text), question, { timeout: 15000 }).then(() => true).catch(() => false);
  check(shown, "the message appeared on the page");
  const answer = "Very quiet, the bedroom faces the courtyard.";
  await page.fill("#reply-text", answer);
  await page.click("#reply button");
  let replied = false;
  for (let i = 0; i < 30 && !replied; i++) {
    const read = await api(`/messaging-api/v1/threadmessages/${threadId}`, undefined, other, "GET");
    replied = ((read.body && read.body.messages) || []).some((m) => m.content === answer && m.senderId === login.body.userId);
    if (!replied) await new Promise((r) => setTimeout(r, 500));
  }
  check(replied, "the reply sent from the page reached the other user (read through the API)");

  if (process.env.HAVEN_CI_LLM_URL) {
    await page.fill("#agent-input", "Find me a home");
    await page.click("#agent button");
    const answered = await page.waitForFunction(() => document.getElementById("answer").textContent.startsWith("Found"), null, { timeout: 30000 })
      .then(() => true).catch(() => false);
    check(answered, "an agent run streamed its answer onto the page");
  }
  check(errors.length === 0, `no script errors (${errors.join("; ")})`);
  await page.screenshot({ path: shot, fullPage: true });
} catch (e) {
  check(false, `unexpected: ${e}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
