// Social sign-in driven by the OFFICIAL Better Auth client (`better-auth/client`):
// authClient.signIn.social, then the provider's pages (a browser-like fetch with its own cookie
// jar, redirects followed by hand), the callback, getSession, listAccounts and linkSocial.
//
// Usage: node oauth_client.mjs <our origin> <email>
// Prints one JSON line {"passed":N,"failed":M,"failures":[...]} and exits 1 if a check failed.
import { createAuthClient } from "better-auth/client";

const [origin, email] = process.argv.slice(2);
const failures = [];
let passed = 0;
const check = (name, ok, detail) => (ok ? (passed += 1) : failures.push(`${name}: ${JSON.stringify(detail)}`));

// A cookie jar per site: name -> value (attributes are not needed on loopback).
function jarFetch(jar, extraHeaders = {}) {
  return async (input, init = {}) => {
    const headers = new Headers(init.headers || {});
    for (const [k, v] of Object.entries(extraHeaders)) headers.set(k, v);
    if (jar.size) headers.set("cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
    const response = await fetch(input, { ...init, headers, redirect: "manual" });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";");
      const at = pair.indexOf("=");
      const [name, value] = [pair.slice(0, at).trim(), pair.slice(at + 1)];
      if (/max-age=0/i.test(attrs.join(";")) || value === "") jar.delete(name);
      else jar.set(name, value);
    }
    return response;
  };
}

const ours = new Map();
const provider = new Map();
const ourFetch = jarFetch(ours, { origin });
const providerFetch = jarFetch(provider);
const client = createAuthClient({ baseURL: `${origin}/api/auth`, fetchOptions: { customFetchImpl: ourFetch } });

// The provider's pages: authorize -> interaction -> (auto-login or consent) -> back to us.
async function throughProvider(url) {
  let response = await providerFetch(url);
  let next = new URL(response.headers.get("location"), url).href;
  response = await providerFetch(next);
  if (response.status === 200) {
    response = await providerFetch(`${next}/login`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ login: email, password: "x" }),
    });
  }
  next = new URL(response.headers.get("location"), next).href;
  response = await providerFetch(next);
  return new URL(response.headers.get("location"), next).href;
}

try {
  const started = await client.signIn.social({
    provider: "local-oidc",
    callbackURL: "/dashboard",
    newUserCallbackURL: "/welcome",
    loginHint: email,
    disableRedirect: true,
  });
  check("signIn.social answers a url", started.data && typeof started.data.url === "string", started);
  check("redirect false with disableRedirect", started.data && started.data.redirect === false, started.data);
  const back = await throughProvider(started.data.url);
  const landed = await ourFetch(back);
  check("callback redirects to the new-user URL", landed.status === 302 && landed.headers.get("location") === "/welcome", landed.status);
  const session = await client.getSession();
  check("signed in as the provider's user", session.data && session.data.user.email === email, session.data);
  const linking = await client.linkSocial({ provider: "local-oidc-basic", callbackURL: "/settings" });
  check("linkSocial answers a url", linking.data && typeof linking.data.url === "string", linking);
  const linked = await ourFetch(await throughProvider(linking.data.url));
  check("link callback redirects to callbackURL", linked.headers.get("location") === "/settings", linked.headers.get("location"));
  const accounts = await client.listAccounts();
  const ids = (accounts.data || []).map((a) => a.providerId).sort();
  check("listAccounts lists both providers", JSON.stringify(ids) === JSON.stringify(["local-oidc", "local-oidc-basic"]), accounts);
} catch (err) {
  failures.push(`exception: ${err && err.stack ? err.stack : err}`);
}
console.log(JSON.stringify({ passed, failed: failures.length, failures }));
process.exit(failures.length ? 1 : 0);
