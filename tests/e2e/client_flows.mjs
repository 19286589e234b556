// End-to-end flows driven by the OFFICIAL Better Auth client (`better-auth/client`).
//
// Usage:  node client_flows.mjs <baseURL-origin> <cookie|bearer>
//         node client_flows.mjs <baseURL-origin> <password-reset|verify-email> <outbox.jsonl>
//         e.g. node client_flows.mjs http://127.0.0.1:5123 cookie
//
// The auth API is expected under <origin>/api/auth. The script prints exactly one JSON line on
// stdout at the end: {"mode":..,"passed":N,"failed":M,"failures":[...], ...} and exits 1 if any
// check failed, 0 otherwise. Set E2E_TRACE=1 to log every HTTP exchange to stderr.
//
// Modes:
//   cookie  - each "device" has its own small cookie jar (implemented here, via customFetchImpl)
//             that stores Set-Cookie and sends Cookie back, like a browser. Cookie names are never
//             inspected. The Secure attribute is recorded but NOT enforced (we talk plain http to
//             127.0.0.1). Origin: <origin> is always sent, as a browser would.
//   bearer  - no cookie jar at all; the `set-auth-token` response header is captured in
//             fetchOptions.onSuccess and sent back as `Authorization: Bearer <token>` through
//             fetchOptions.auth (Better Auth's documented bearer usage). Origin is still sent.
//   password-reset, verify-email
//           - email flows (cookie transport) against a server whose email backend is the JSONL
//             outbox (BETTER_AUTH_EMAIL_BACKEND=outbox); the outbox path is the third argument (or
//             E2E_OUTBOX). Emailed links are followed with a plain fetch (redirect: "manual", no
//             Origin header, the device's cookies), as a click in a mail client would. verify-email
//             needs a server with BETTER_AUTH_REQUIRE_EMAIL_VERIFICATION=true.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createAuthClient } from "better-auth/client";

const MODES = ["cookie", "bearer", "password-reset", "verify-email"];
const EMAIL_MODES = ["password-reset", "verify-email"];
const [origin, mode, outboxArg] = process.argv.slice(2);
const OUTBOX = outboxArg || process.env.E2E_OUTBOX || "";
if (!origin || !MODES.includes(mode) || (EMAIL_MODES.includes(mode) && !OUTBOX)) {
  console.error(
    "usage: node client_flows.mjs <baseURL-origin> <cookie|bearer>\n" +
      "       node client_flows.mjs <baseURL-origin> <password-reset|verify-email> <outbox.jsonl>",
  );
  process.exit(2);
}
// How a device carries its session: only the bearer mode uses Authorization headers.
const TRANSPORT = mode === "bearer" ? "bearer" : "cookie";
const ORIGIN = new URL(origin).origin;
const BASE_URL = `${ORIGIN}/api/auth`;
const TRACE = process.env.E2E_TRACE === "1";
const REQUEST_TIMEOUT_MS = Number(process.env.E2E_REQUEST_TIMEOUT_MS || 20000);

// ---------------------------------------------------------------------------------------------
// Check bookkeeping
// ---------------------------------------------------------------------------------------------
let passed = 0;
const failures = [];

function short(value) {
  let s;
  try {
    s = JSON.stringify(value, (k, v) => (k === "password" || k === "newPassword" || k === "currentPassword" ? "***" : v));
  } catch {
    s = String(value);
  }
  if (s === undefined) s = String(value);
  return s.length > 400 ? s.slice(0, 400) + "…" : s;
}

function check(name, condition, detail) {
  if (condition) {
    passed += 1;
  } else {
    failures.push(detail === undefined ? name : `${name}: ${typeof detail === "string" ? detail : short(detail)}`);
  }
  return Boolean(condition);
}

function describeError(err) {
  if (!err) return String(err);
  let text = err.stack ? err.stack.split("\n").slice(0, 3).join(" | ") : String(err);
  if (err.cause) text += ` (cause: ${err.cause.code || ""} ${err.cause.message || err.cause})`;
  return text;
}

// Runs one named step; an exception inside it is recorded as a failure of that step.
async function step(name, fn) {
  try {
    await fn();
  } catch (err) {
    failures.push(`${name}: threw ${describeError(err)}`);
  }
}

const isDate = (v) => v instanceof Date && !Number.isNaN(v.getTime());

// ---------------------------------------------------------------------------------------------
// HTTP plumbing: tracing + timeout wrapper around Node's fetch, and a minimal cookie jar
// ---------------------------------------------------------------------------------------------
const exchanges = []; // {device, method, path, body, status, setCookie, setAuthToken}

function withTimeout(init) {
  const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
  const signal = init && init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
  return { ...(init || {}), signal };
}

// `jar` (optional): cookies are added to the request from it and Set-Cookie stored into it.
// `link`: the request is a followed email link (a top-level navigation, so no Origin header).
async function tracedFetch(device, input, init, jar, link = false) {
  const request = new Request(input, withTimeout(init));
  if (jar) {
    const cookie = jar.headerFor(request.url);
    if (cookie) request.headers.set("cookie", cookie);
  }
  let bodyText;
  if (TRACE && request.body) bodyText = await request.clone().text();
  const response = await fetch(request);
  if (jar) jar.storeFrom(response, request.url);
  const url = new URL(request.url);
  const entry = {
    device,
    method: request.method,
    path: url.pathname + url.search,
    status: response.status,
    sentCookie: request.headers.has("cookie"),
    sentOrigin: request.headers.get("origin"),
    link,
  };
  exchanges.push(entry);
  if (TRACE) {
    let shownBody = bodyText;
    try {
      shownBody = short(JSON.parse(bodyText));
    } catch {}
    const sent = {
      cookie: request.headers.get("cookie") ? "<present>" : undefined,
      authorization: request.headers.get("authorization") ? "Bearer <token>" : undefined,
      origin: request.headers.get("origin") || undefined,
      "content-type": request.headers.get("content-type") || undefined,
    };
    const respText = await response.clone().text();
    console.error(
      `[e2e ${mode}/${device}] ${request.method} ${entry.path} sent=${short(sent)} body=${shownBody ?? "-"}\n` +
        `    -> ${response.status} set-cookie=${short(response.headers.getSetCookie())} ` +
        `set-auth-token=${response.headers.get("set-auth-token") ? "<present>" : "-"} body=${respText.slice(0, 300)}`,
    );
  }
  return response;
}

class CookieJar {
  constructor() {
    this.cookies = new Map(); // key "name;path" -> {name, value, path, expiresAt|null, secure, httpOnly, sameSite}
    this.observed = []; // every Set-Cookie seen (attributes only, no values)
    this.deletions = 0;
  }

  static defaultPath(url) {
    const p = url.pathname;
    if (!p.startsWith("/") || p.lastIndexOf("/") === 0) return "/";
    return p.slice(0, p.lastIndexOf("/"));
  }

  static pathMatches(requestPath, cookiePath) {
    if (requestPath === cookiePath) return true;
    if (!requestPath.startsWith(cookiePath)) return false;
    return cookiePath.endsWith("/") || requestPath.charAt(cookiePath.length) === "/";
  }

  storeFrom(response, requestUrl) {
    const url = new URL(requestUrl);
    for (const header of response.headers.getSetCookie()) this.store(header, url);
  }

  store(header, url) {
    const [pair, ...attrParts] = header.split(";");
    const eq = pair.indexOf("=");
    if (eq <= 0) return; // nameless cookies are ignored
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const attrs = {};
    for (const part of attrParts) {
      const i = part.indexOf("=");
      const key = (i === -1 ? part : part.slice(0, i)).trim().toLowerCase();
      const val = i === -1 ? "" : part.slice(i + 1).trim();
      if (key) attrs[key] = val;
    }
    const now = Date.now();
    let expiresAt = null; // null = session cookie
    let deleted = false;
    if ("max-age" in attrs && /^-?\d+$/.test(attrs["max-age"])) {
      const maxAge = Number(attrs["max-age"]);
      if (maxAge <= 0) deleted = true;
      else expiresAt = now + maxAge * 1000;
    } else if ("expires" in attrs) {
      const t = Date.parse(attrs.expires);
      if (!Number.isNaN(t)) {
        if (t <= now) deleted = true;
        else expiresAt = t;
      }
    }
    const path = attrs.path && attrs.path.startsWith("/") ? attrs.path : CookieJar.defaultPath(url);
    const key = `${name};${path}`;
    const record = {
      name,
      path,
      secure: "secure" in attrs, // recorded, deliberately not enforced (plain http on loopback)
      httpOnly: "httponly" in attrs,
      sameSite: attrs.samesite || null,
      maxAge: attrs["max-age"] ?? null,
      expires: attrs.expires ?? null,
      deleted,
    };
    this.observed.push(record);
    if (deleted) {
      if (this.cookies.delete(key)) this.deletions += 1;
      return;
    }
    this.cookies.set(key, { name, value, path, expiresAt, secure: record.secure, httpOnly: record.httpOnly, sameSite: record.sameSite });
  }

  headerFor(requestUrl) {
    const url = new URL(requestUrl);
    const now = Date.now();
    const list = [];
    for (const [key, c] of this.cookies) {
      if (c.expiresAt !== null && c.expiresAt <= now) {
        this.cookies.delete(key);
        continue;
      }
      if (CookieJar.pathMatches(url.pathname, c.path)) list.push(c);
    }
    list.sort((a, b) => b.path.length - a.path.length);
    return list.map((c) => `${c.name}=${c.value}`).join("; ");
  }

  get size() {
    return this.cookies.size;
  }
}

// ---------------------------------------------------------------------------------------------
// Devices: one official client each, with its own credential store
// ---------------------------------------------------------------------------------------------
function makeDevice(label) {
  const device = { label, jar: null, token: null, tokens: [] };
  if (TRANSPORT === "cookie") {
    const jar = new CookieJar();
    device.jar = jar;
    device.client = createAuthClient({
      baseURL: BASE_URL,
      fetchOptions: {
        headers: { Origin: ORIGIN },
        customFetchImpl: (input, init) => tracedFetch(label, input, init, jar),
      },
    });
  } else {
    device.client = createAuthClient({
      baseURL: BASE_URL,
      fetchOptions: {
        headers: { Origin: ORIGIN },
        customFetchImpl: (input, init) => tracedFetch(label, input, init),
        onSuccess: (ctx) => {
          const t = ctx.response.headers.get("set-auth-token");
          if (t) {
            device.token = t;
            device.tokens.push(t);
          }
        },
        auth: { type: "Bearer", token: () => device.token || undefined },
      },
    });
  }
  return device;
}

// ---------------------------------------------------------------------------------------------
// Flow
// ---------------------------------------------------------------------------------------------
const runId = randomUUID().replace(/-/g, "").slice(0, 16);
const email = `e2e-${mode}-${runId}@example.com`;
const password = `Pw-${randomUUID()}`;
const newPassword = `NewPw-${randomUUID()}`;
const name = "E2E Tester";
const newName = `E2E Renamed ${runId.slice(0, 6)}`;

const A = makeDevice("A");
const B = makeDevice("B");
let userId = null;

// Assert the standard "signed in" getSession shape.
async function expectSession(prefix, device, expectedName) {
  const { data, error } = await device.client.getSession();
  check(`${prefix}: no error`, error === null, error);
  check(`${prefix}: data.user.email`, data?.user?.email === email, data);
  if (userId) check(`${prefix}: same user id`, data?.user?.id === userId, data?.user?.id);
  check(`${prefix}: data.session.userId === data.user.id`, data?.session && data.session.userId === data.user.id, data?.session);
  check(`${prefix}: user.createdAt revived as Date`, isDate(data?.user?.createdAt), typeof data?.user?.createdAt);
  check(`${prefix}: session.expiresAt revived as Date (future)`, isDate(data?.session?.expiresAt) && data.session.expiresAt.getTime() > Date.now(), data?.session?.expiresAt);
  if (expectedName !== undefined) check(`${prefix}: user.name`, data?.user?.name === expectedName, data?.user?.name);
  return data;
}

async function expectNoSession(prefix, device) {
  const { data, error } = await device.client.getSession();
  check(`${prefix}: no error`, error === null, error);
  check(`${prefix}: data is null`, data === null, data);
}

async function expectBadCredentials(prefix, device, pw, withEmail = email) {
  const { data, error } = await device.client.signIn.email({ email: withEmail, password: pw });
  check(`${prefix}: data is null`, data === null, data);
  check(`${prefix}: error.status 401`, error?.status === 401, error);
  check(`${prefix}: error.code INVALID_EMAIL_OR_PASSWORD`, error?.code === "INVALID_EMAIL_OR_PASSWORD", error);
  check(`${prefix}: error.message is a string`, typeof error?.message === "string" && error.message.length > 0, error);
}

function expectBearerToken(prefix, device, rawToken) {
  if (mode !== "bearer") return;
  check(`${prefix}: set-auth-token header received`, typeof device.token === "string" && device.token.length > 0, device.token);
  if (typeof rawToken === "string") {
    check(`${prefix}: set-auth-token is "<data.token>.<signature>"`, device.token?.startsWith(rawToken + "."), { header: device.token, token: rawToken });
  }
}

async function runCore() {
  // 1. sign up
  await step("signUp.email", async () => {
    const before = mode === "cookie" ? A.jar.size : 0;
    const { data, error } = await A.client.signUp.email({ email, password, name });
    check("signUp.email: no error", error === null, error);
    check("signUp.email: data.user.email", data?.user?.email === email, data);
    check("signUp.email: data.user.name", data?.user?.name === name, data?.user);
    check("signUp.email: data.user.emailVerified false", data?.user?.emailVerified === false, data?.user);
    check("signUp.email: data.token is a string", typeof data?.token === "string" && data.token.length > 0, data);
    check("signUp.email: user.createdAt revived as Date", isDate(data?.user?.createdAt), typeof data?.user?.createdAt);
    check("signUp.email: user.updatedAt revived as Date", isDate(data?.user?.updatedAt), typeof data?.user?.updatedAt);
    check("signUp.email: no password in user object", data?.user && !("password" in data.user), data?.user);
    userId = data?.user?.id ?? null;
    check("signUp.email: data.user.id", typeof userId === "string" && userId.length > 0, data?.user);
    if (mode === "cookie") check("signUp.email: cookies were set", A.jar.size > before, A.jar.observed);
    expectBearerToken("signUp.email", A, data?.token);
  });

  await step("signUp.email duplicate", async () => {
    const other = makeDevice("dup");
    const { data, error } = await other.client.signUp.email({ email, password, name });
    check("signUp.email duplicate: data is null", data === null, data);
    check("signUp.email duplicate: error.status 422", error?.status === 422, error);
    check("signUp.email duplicate: error.code USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL", error?.code === "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL", error);
  });

  // 2. session after sign-up
  await step("getSession after signUp", () => expectSession("getSession after signUp", A, name));

  // 3. sign out
  await step("signOut", async () => {
    const deletionsBefore = mode === "cookie" ? A.jar.deletions : 0;
    const { data, error } = await A.client.signOut();
    check("signOut: no error", error === null, error);
    check("signOut: data.success true", data?.success === true, data);
    if (mode === "cookie") check("signOut: a cookie was expired (Max-Age=0/Expires past)", A.jar.deletions > deletionsBefore, A.jar.observed.slice(-4));
  });
  await step("getSession after signOut", () => expectNoSession("getSession after signOut", A));

  // 4. sign in
  await step("signIn.email wrong password", () => expectBadCredentials("signIn.email wrong password", A, password + "-wrong"));
  await step("signIn.email unknown email", () => expectBadCredentials("signIn.email unknown email", A, password, `nobody-${runId}@example.com`));
  await step("signIn.email", async () => {
    const { data, error } = await A.client.signIn.email({ email, password });
    check("signIn.email: no error", error === null, error);
    check("signIn.email: data.user.email", data?.user?.email === email, data);
    check("signIn.email: same user id", data?.user?.id === userId, data?.user);
    check("signIn.email: data.token is a string", typeof data?.token === "string" && data.token.length > 0, data);
    check("signIn.email: data.redirect false", data?.redirect === false, data);
    check("signIn.email: user.createdAt revived as Date", isDate(data?.user?.createdAt), typeof data?.user?.createdAt);
    expectBearerToken("signIn.email", A, data?.token);
  });
  await step("getSession after signIn", () => expectSession("getSession after signIn", A, name));

  // 5. update user
  await step("updateUser", async () => {
    const { data, error } = await A.client.updateUser({ name: newName });
    check("updateUser: no error", error === null, error);
    check("updateUser: data.status true", data?.status === true, data);
  });
  await step("getSession after updateUser", () => expectSession("getSession after updateUser", A, newName));

  // 6. second device
  await step("device B signIn.email", async () => {
    const { data, error } = await B.client.signIn.email({ email, password });
    check("device B signIn.email: no error", error === null, error);
    check("device B signIn.email: data.user.email", data?.user?.email === email, data);
    check("device B signIn.email: data.user.name is updated name", data?.user?.name === newName, data?.user);
    expectBearerToken("device B signIn.email", B, data?.token);
    if (mode === "bearer") check("device B token differs from device A token", B.token && B.token !== A.token, null);
  });
  await step("device B getSession", () => expectSession("device B getSession", B, newName));

  await step("listSessions (2 devices)", async () => {
    const { data, error } = await A.client.listSessions();
    check("listSessions: no error", error === null, error);
    check("listSessions: array", Array.isArray(data), data);
    check("listSessions: length >= 2", Array.isArray(data) && data.length >= 2, data?.length);
    check("listSessions: all belong to user", Array.isArray(data) && data.every((s) => s.userId === userId), data);
    check("listSessions: expiresAt/createdAt revived as Date", Array.isArray(data) && data.length > 0 && data.every((s) => isDate(s.expiresAt) && isDate(s.createdAt)), data?.[0]);
  });

  // 7. change password
  await step("changePassword wrong current", async () => {
    const { data, error } = await A.client.changePassword({ currentPassword: password + "-wrong", newPassword });
    check("changePassword wrong current: data is null", data === null, data);
    check("changePassword wrong current: error.status 400", error?.status === 400, error);
    check("changePassword wrong current: error.code INVALID_PASSWORD", error?.code === "INVALID_PASSWORD", error);
  });
  await step("changePassword", async () => {
    const { data, error } = await A.client.changePassword({ currentPassword: password, newPassword });
    check("changePassword: no error", error === null, error);
    check("changePassword: data.user.email", data?.user?.email === email, data);
    check("changePassword: data.token null (no revokeOtherSessions)", data?.token === null, data);
    check("changePassword: user.updatedAt revived as Date", isDate(data?.user?.updatedAt), typeof data?.user?.updatedAt);
  });

  // 8. revoke other sessions
  await step("revokeOtherSessions", async () => {
    const { data, error } = await A.client.revokeOtherSessions();
    check("revokeOtherSessions: no error", error === null, error);
    check("revokeOtherSessions: data.status true", data?.status === true, data);
  });
  await step("listSessions after revokeOtherSessions", async () => {
    const { data, error } = await A.client.listSessions();
    check("listSessions after revokeOtherSessions: no error", error === null, error);
    check("listSessions after revokeOtherSessions: length 1", Array.isArray(data) && data.length === 1, data);
  });
  await step("device B getSession after revokeOtherSessions", () => expectNoSession("device B getSession after revokeOtherSessions", B));
  await step("device A getSession after revokeOtherSessions", () => expectSession("device A getSession after revokeOtherSessions", A, newName));

  // 9. credentials after the password change
  await step("signIn.email old password", () => expectBadCredentials("signIn.email old password", B, password));
  await step("signIn.email new password", async () => {
    const { data, error } = await B.client.signIn.email({ email, password: newPassword });
    check("signIn.email new password: no error", error === null, error);
    check("signIn.email new password: data.user.email", data?.user?.email === email, data);
    check("signIn.email new password: data.token is a string", typeof data?.token === "string" && data.token.length > 0, data);
    expectBearerToken("signIn.email new password", B, data?.token);
  });
  await step("device B getSession after new-password signIn", () => expectSession("device B getSession after new-password signIn", B, newName));

  // 10. sign out both devices
  await step("signOut device A", async () => {
    const { data, error } = await A.client.signOut();
    check("signOut device A: no error", error === null, error);
    check("signOut device A: data.success true", data?.success === true, data);
  });
  await step("getSession device A after final signOut", () => expectNoSession("getSession device A after final signOut", A));
  await step("device B still signed in after A's signOut", () => expectSession("device B still signed in after A's signOut", B, newName));
  await step("signOut device B", async () => {
    const { data, error } = await B.client.signOut();
    check("signOut device B: no error", error === null, error);
    check("signOut device B: data.success true", data?.success === true, data);
  });
  await step("getSession device B after signOut", () => expectNoSession("getSession device B after signOut", B));

  checkOrigins();
  if (mode === "bearer") {
    // No cookie jar in this mode: every request relied on the Authorization header alone.
    check("bearer: no request carried a Cookie header", exchanges.every((e) => !e.sentCookie), exchanges.filter((e) => e.sentCookie));
  }
}

// Every API call carried `Origin: <origin>` (followed email links are navigations: no Origin).
function checkOrigins() {
  const api = exchanges.filter((e) => !e.link);
  check("every request carried Origin: <origin>", api.length > 0 && api.every((e) => e.sentOrigin === ORIGIN), api.filter((e) => e.sentOrigin !== ORIGIN));
}

// ---------------------------------------------------------------------------------------------
// Email flows: the server's JSONL outbox, and following emailed links like a browser
// ---------------------------------------------------------------------------------------------
const RESET_MESSAGE = "If this email exists in our system, check your email for the reset link";

function readOutbox() {
  let text;
  try {
    text = readFileSync(OUTBOX, "utf8");
  } catch (err) {
    if (err.code === "ENOENT") return [];
    throw err;
  }
  const messages = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      messages.push(JSON.parse(line));
    } catch {
      // a line still being appended: picked up on the next read
    }
  }
  return messages;
}

function messagesFor(kind, to) {
  const address = to.toLowerCase();
  return readOutbox().filter((m) => m.kind === kind && String(m.to).toLowerCase() === address);
}

// The newest `kind` message to `to` once there are more than `after` of them. The server writes
// the message just after it answers (mail goes out once the response is sent): poll briefly.
async function newestMessage(kind, to, after = 0, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const list = messagesFor(kind, to);
    if (list.length > after) return list[list.length - 1];
    if (Date.now() >= deadline) return null;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// Checks shared by every outbox message; returns the message (or null when there is none).
function checkMessage(prefix, message, kind) {
  if (!check(`${prefix}: a "${kind}" message to ${email} is in the outbox`, message !== null, { outbox: OUTBOX, kinds: readOutbox().map((m) => `${m.kind}->${m.to}`) })) return null;
  check(`${prefix}: to`, message.to === email, message.to);
  check(`${prefix}: user_id is the user's id`, message.user_id === userId, { user_id: message.user_id, userId });
  check(`${prefix}: subject is a non-empty string`, typeof message.subject === "string" && message.subject.length > 0, message.subject);
  check(`${prefix}: text contains the url`, typeof message.text === "string" && message.text.includes(message.url), message.text);
  check(`${prefix}: sent_at is an ISO date`, typeof message.sent_at === "string" && !Number.isNaN(Date.parse(message.sent_at)), message.sent_at);
  return message;
}

// Open an emailed link as a browser would (GET, the device's cookies, no Origin), not following
// the redirect. `target` is Location resolved against the link (relative or absolute).
async function followLink(device, url) {
  const response = await tracedFetch(device.label, url, { method: "GET", redirect: "manual" }, device.jar, true);
  const location = response.headers.get("location");
  const body = await response.text();
  return { status: response.status, location, body: body.slice(0, 300), target: location === null ? null : new URL(location, url) };
}

function decodeJwtPayload(token) {
  const parts = String(token).split(".");
  if (parts.length !== 3) return null;
  try {
    return JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
  } catch {
    return null;
  }
}

async function signUpAndSignOut(prefix) {
  await step(`${prefix} signUp.email`, async () => {
    const { data, error } = await A.client.signUp.email({ email, password, name });
    check(`${prefix} signUp.email: no error`, error === null, error);
    check(`${prefix} signUp.email: data.token is a string`, typeof data?.token === "string" && data.token.length > 0, data);
    userId = data?.user?.id ?? null;
    check(`${prefix} signUp.email: data.user.id`, typeof userId === "string" && userId.length > 0, data?.user);
  });
  await step(`${prefix} signOut`, async () => {
    const { data, error } = await A.client.signOut();
    check(`${prefix} signOut: no error`, error === null, error);
    check(`${prefix} signOut: data.success true`, data?.success === true, data);
  });
  await step(`${prefix} getSession after signOut`, () => expectNoSession(`${prefix} getSession after signOut`, A));
}

// Server: the default example app with the outbox backend.
async function runPasswordReset() {
  const redirectTo = "/reset";
  let message = null;
  let linkToken = null;

  await signUpAndSignOut("reset:");
  const before = messagesFor("reset-password", email).length;

  await step("requestPasswordReset", async () => {
    const { data, error } = await A.client.requestPasswordReset({ email, redirectTo });
    check("requestPasswordReset: no error", error === null, error);
    check("requestPasswordReset: data.status true", data?.status === true, data);
    check("requestPasswordReset: data.message", data?.message === RESET_MESSAGE, data);
  });

  await step("outbox: reset-password message", async () => {
    message = checkMessage("outbox reset-password", await newestMessage("reset-password", email, before), "reset-password");
    if (!message) return;
    check("outbox reset-password: exactly one new message", messagesFor("reset-password", email).length === before + 1, messagesFor("reset-password", email).length - before);
    check("outbox reset-password: token is 24 [A-Za-z0-9]", /^[A-Za-z0-9]{24}$/.test(message.token ?? ""), message.token);
    const expectedUrl = `${BASE_URL}/reset-password/${message.token}?callbackURL=${encodeURIComponent(redirectTo)}`;
    check("outbox reset-password: url is <baseURL>/reset-password/<token>?callbackURL=<redirectTo>", message.url === expectedUrl, { url: message.url, expected: expectedUrl });
  });

  await step("follow reset link", async () => {
    if (!message) throw new Error("no reset-password message to follow");
    const { status, location, target, body } = await followLink(A, message.url);
    check("follow reset link: 302", status === 302, { status, location, body });
    check("follow reset link: Location on the app's origin", target?.origin === ORIGIN, location);
    check(`follow reset link: Location path is ${redirectTo}`, target?.pathname === redirectTo, location);
    check("follow reset link: Location ?token= is the emailed token", target?.searchParams.get("token") === message.token, location);
    check("follow reset link: no error parameter", target !== null && !target.searchParams.has("error"), location);
    linkToken = target?.searchParams.get("token") || null;
  });

  await step("resetPassword", async () => {
    if (!linkToken) throw new Error("no token from the reset link's Location");
    const { data, error } = await A.client.resetPassword({ newPassword, token: linkToken });
    check("resetPassword: no error", error === null, error);
    check("resetPassword: data.status true", data?.status === true, data);
  });
  await step("getSession after resetPassword (not signed in)", () => expectNoSession("getSession after resetPassword", A));

  await step("resetPassword reusing the token", async () => {
    if (!linkToken) throw new Error("no token from the reset link's Location");
    const { data, error } = await A.client.resetPassword({ newPassword: `${newPassword}-again`, token: linkToken });
    check("resetPassword reusing the token: data is null", data === null, data);
    check("resetPassword reusing the token: error.status 400", error?.status === 400, error);
    check("resetPassword reusing the token: error.code INVALID_TOKEN", error?.code === "INVALID_TOKEN", error);
    check("resetPassword reusing the token: error.message", error?.message === "Invalid token", error);
  });

  await step("follow reset link after use", async () => {
    if (!message) throw new Error("no reset-password message to follow");
    const { status, location, target, body } = await followLink(A, message.url);
    check("follow reset link after use: 302", status === 302, { status, location, body });
    check(`follow reset link after use: Location path is ${redirectTo}`, target?.origin === ORIGIN && target?.pathname === redirectTo, location);
    check("follow reset link after use: ?error=INVALID_TOKEN", target?.searchParams.get("error") === "INVALID_TOKEN", location);
    check("follow reset link after use: no token parameter", target !== null && !target.searchParams.has("token"), location);
  });

  await step("signIn.email old password after reset", () => expectBadCredentials("signIn.email old password after reset", A, password));
  await step("signIn.email new password after reset", async () => {
    const { data, error } = await A.client.signIn.email({ email, password: newPassword });
    check("signIn.email new password after reset: no error", error === null, error);
    check("signIn.email new password after reset: same user id", data?.user?.id === userId, data?.user);
    check("signIn.email new password after reset: data.token is a string", typeof data?.token === "string" && data.token.length > 0, data);
  });
  await step("getSession after new-password signIn", () => expectSession("getSession after new-password signIn", A, name));

  await step("requestPasswordReset unknown email", async () => {
    const unknown = `nobody-${runId}@example.com`;
    const { data, error } = await A.client.requestPasswordReset({ email: unknown, redirectTo });
    check("requestPasswordReset unknown email: no error", error === null, error);
    check("requestPasswordReset unknown email: same answer", data?.status === true && data?.message === RESET_MESSAGE, data);
    check("requestPasswordReset unknown email: nothing in the outbox", messagesFor("reset-password", unknown).length === 0, messagesFor("reset-password", unknown));
  });

  checkOrigins();
}

// Server: the example app with BETTER_AUTH_REQUIRE_EMAIL_VERIFICATION=true and the outbox backend.
async function runVerifyEmail() {
  const callbackURL = "/verified";
  let message = null;

  await step("signUp.email (verification required)", async () => {
    const { data, error } = await A.client.signUp.email({ email, password, name, callbackURL });
    check("signUp.email (verification required): no error", error === null, error);
    check("signUp.email (verification required): data.token is null", data?.token === null, data);
    check("signUp.email (verification required): data.user.email", data?.user?.email === email, data?.user);
    check("signUp.email (verification required): data.user.emailVerified false", data?.user?.emailVerified === false, data?.user);
    check("signUp.email (verification required): no session cookie stored", A.jar.size === 0, A.jar.observed);
    userId = data?.user?.id ?? null;
    check("signUp.email (verification required): data.user.id", typeof userId === "string" && userId.length > 0, data?.user);
  });
  await step("getSession after signUp (verification required)", () => expectNoSession("getSession after signUp (verification required)", A));

  await step("outbox: verification message from signUp", async () => {
    message = checkMessage("outbox verification (signUp)", await newestMessage("verification", email), "verification");
    if (!message) return;
    let link = null;
    try {
      link = new URL(message.url);
    } catch {}
    check("outbox verification (signUp): url is <baseURL>/verify-email", link !== null && `${link.origin}${link.pathname}` === `${BASE_URL}/verify-email`, message.url);
    check("outbox verification (signUp): url ?token= is the message token", link?.searchParams.get("token") === message.token, message.url);
    check(`outbox verification (signUp): url ?callbackURL=${callbackURL}`, link?.searchParams.get("callbackURL") === callbackURL, message.url);
    const claims = decodeJwtPayload(message.token);
    check("outbox verification (signUp): token is a JWT for the address and user", claims?.email === email && claims?.userId === userId && Number.isInteger(claims?.exp), claims);
  });

  await step("signIn.email before verification", async () => {
    const { data, error } = await A.client.signIn.email({ email, password });
    check("signIn.email before verification: data is null", data === null, data);
    check("signIn.email before verification: error.status 403", error?.status === 403, error);
    check("signIn.email before verification: error.code EMAIL_NOT_VERIFIED", error?.code === "EMAIL_NOT_VERIFIED", error);
    check("signIn.email before verification: error.message", error?.message === "Email not verified", error);
    check("signIn.email before verification: no session cookie stored", A.jar.size === 0, A.jar.observed);
  });

  await step("sendVerificationEmail (signed out)", async () => {
    const before = messagesFor("verification", email).length;
    const { data, error } = await A.client.sendVerificationEmail({ email, callbackURL });
    check("sendVerificationEmail (signed out): no error", error === null, error);
    check("sendVerificationEmail (signed out): data.status true", data?.status === true, data);
    const resent = checkMessage("outbox verification (resent)", await newestMessage("verification", email, before), "verification");
    if (resent) {
      check(`outbox verification (resent): url keeps callbackURL=${callbackURL}`, new URL(resent.url).searchParams.get("callbackURL") === callbackURL, resent.url);
      message = resent;
    }
  });

  await step("verifyEmail with a forged token", async () => {
    const { data, error } = await A.client.verifyEmail({ query: { token: "not-a-jwt" } });
    check("verifyEmail with a forged token: data is null", data === null, data);
    check("verifyEmail with a forged token: error.status 401", error?.status === 401, error);
    check("verifyEmail with a forged token: error.code INVALID_TOKEN", error?.code === "INVALID_TOKEN", error);
    check("verifyEmail with a forged token: error.message", error?.message === "Invalid token", error);
  });

  await step("follow verification link", async () => {
    if (!message) throw new Error("no verification message to follow");
    const { status, location, target, body } = await followLink(A, message.url);
    check("follow verification link: 302", status === 302, { status, location, body });
    check(`follow verification link: Location is the callbackURL ${callbackURL}`, target?.origin === ORIGIN && target?.pathname === callbackURL && target?.search === "", location);
  });

  await step("signIn.email after verification", async () => {
    const { data, error } = await A.client.signIn.email({ email, password });
    check("signIn.email after verification: no error", error === null, error);
    check("signIn.email after verification: same user id", data?.user?.id === userId, data?.user);
    check("signIn.email after verification: data.user.emailVerified true", data?.user?.emailVerified === true, data?.user);
    check("signIn.email after verification: data.token is a string", typeof data?.token === "string" && data.token.length > 0, data);
  });
  await step("getSession after verification", async () => {
    const data = await expectSession("getSession after verification", A, name);
    check("getSession after verification: user.emailVerified === true", data?.user?.emailVerified === true, data?.user);
  });

  // Links work once here (Better Auth's can be followed again until they expire).
  await step("verifyEmail again (link already followed)", async () => {
    if (!message) throw new Error("no verification message");
    const { data, error } = await A.client.verifyEmail({ query: { token: message.token } });
    check("verifyEmail again: data is null", data === null, data);
    check("verifyEmail again: error.status 401", error?.status === 401, error);
    check("verifyEmail again: error.code INVALID_TOKEN", error?.code === "INVALID_TOKEN", error);
  });
  await step("sendVerificationEmail when verified (signed in)", async () => {
    const { data, error } = await A.client.sendVerificationEmail({ email, callbackURL });
    check("sendVerificationEmail when verified: data is null", data === null, data);
    check("sendVerificationEmail when verified: error.status 400", error?.status === 400, error);
    check("sendVerificationEmail when verified: error.code EMAIL_ALREADY_VERIFIED", error?.code === "EMAIL_ALREADY_VERIFIED", error);
    // Better Auth's BASE_ERROR_CODES message (what an app shows the user).
    check("sendVerificationEmail when verified: error.message", error?.message === "Email is already verified", error);
  });

  checkOrigins();
}

function summariseCookies() {
  if (TRANSPORT !== "cookie") return undefined;
  const byName = {};
  for (const jar of [A.jar, B.jar]) {
    for (const o of jar.observed) {
      const prev = byName[o.name] || { secure: o.secure, httpOnly: o.httpOnly, sameSite: o.sameSite, path: o.path, set: 0, deleted: 0 };
      if (o.deleted) prev.deleted += 1;
      else prev.set += 1;
      prev.secure = prev.secure || o.secure;
      byName[o.name] = prev;
    }
  }
  return byName;
}

let exitCode = 1;
try {
  await ({ "password-reset": runPasswordReset, "verify-email": runVerifyEmail }[mode] ?? runCore)();
} catch (err) {
  failures.push(`harness: ${describeError(err)}`);
}
const result = {
  mode,
  passed,
  failed: failures.length,
  failures,
  baseURL: BASE_URL,
  email,
  requests: exchanges.length,
};
if (EMAIL_MODES.includes(mode)) result.outbox = OUTBOX;
const cookies = summariseCookies();
if (cookies) result.cookies = cookies;
exitCode = failures.length === 0 ? 0 : 1;
process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(exitCode));
