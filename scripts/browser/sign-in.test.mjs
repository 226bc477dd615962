// Signs a user in through Sigil's hosted pages in headless Chromium, as a
// relying party would send them: the authorization code flow with PKCE,
// the sign-in form filled from the keyboard (a wrong password first), the
// consent page, the code back at the RP's loopback redirect URI, the token
// exchange and /userinfo, the account page, and RP-initiated logout (with an
// id_token_hint, then the confirmation page without one). Checks the pages'
// Content-Security-Policy and that Chromium logged no error on them.
//
// Usage: SCREENSHOTS=DIR node sign-in.test.mjs BASE_URL CLIENT_ID
// The client must be public, with the scopes "openid profile email", the
// redirect URI http://127.0.0.1/cb and the post-logout redirect URI
// http://127.0.0.1/bye; the user alice / "correct horse battery" must exist.
import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [base, clientId] = process.argv.slice(2);
const shots = process.env.SCREENSHOTS ?? "target/browser-test/screenshots";
mkdirSync(shots, { recursive: true });
const USERNAME = "alice";
const PASSWORD = "correct horse battery";

const failures = [];
const check = (ok, what) => { console.log(`${ok ? "ok  " : "FAIL"} ${what}`); if (!ok) failures.push(what); };
const b64url = (bytes) => Buffer.from(bytes).toString("base64url");
const random = () => b64url(randomBytes(32));

// The relying party: records what reaches its redirect URIs.
const arrivals = [];
const rp = createServer((req, res) => {
  const url = new URL(req.url, "http://127.0.0.1");
  arrivals.push({ path: url.pathname, query: Object.fromEntries(url.searchParams) });
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  res.end(`<!doctype html><title>RP</title><p id="rp">${url.pathname}</p>`);
});
await new Promise((resolve) => rp.listen(0, "127.0.0.1", resolve));
const rpBase = `http://127.0.0.1:${rp.address().port}`;
const redirectUri = `${rpBase}/cb`;

// An authorization request, built by hand.
const authorization = () => {
  const state = random();
  const nonce = random();
  const verifier = random();
  const challenge = b64url(createHash("sha256").update(verifier).digest());
  const url = new URL(`${base}/authorize`);
  for (const [k, v] of Object.entries({
    response_type: "code", client_id: clientId, redirect_uri: redirectUri,
    scope: "openid profile email", state, nonce,
    code_challenge: challenge, code_challenge_method: "S256",
  })) url.searchParams.set(k, v);
  return { url: url.href, state, nonce, verifier };
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let page;
try {
  page = await browser.newPage();
  const consoleErrors = [];
  // Chromium asks every origin for /favicon.ico on its own: Sigil answers
  // it (the logo, or 204), so even that request logs no error.
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    consoleErrors.push(`${page.url()}: ${m.text()} (${m.location()?.url ?? ""})`);
  });
  page.on("pageerror", (e) => consoleErrors.push(`${page.url()}: ${e.message}`));
  const shot = async (name) => {
    await page.screenshot({ path: join(shots, name), fullPage: true });
    console.log(`     screenshot ${join(shots, name)}`);
  };
  const activeId = () => page.evaluate(() => document.activeElement?.id ?? "");
  // Presses Tab from the page's start until `id` has the focus.
  const tabTo = async (id) => {
    await page.evaluate(() => document.activeElement?.blur());
    for (let i = 0; i < 10; i++) {
      await page.keyboard.press("Tab");
      if ((await activeId()) === id) return true;
    }
    return false;
  };
  // Fills the sign-in form from the keyboard only, and submits it with Enter.
  const signIn = async (password) => {
    check(await tabTo("username"), "Tab from the page's start reaches #username");
    await page.keyboard.press("ControlOrMeta+a");
    await page.keyboard.type(USERNAME);
    await page.keyboard.press("Tab");
    check((await activeId()) === "password", "Tab goes on from #username to #password");
    await page.keyboard.type(password);
    check(await page.inputValue("#username") === USERNAME && await page.inputValue("#password") === password,
      "the fields hold what was typed");
    await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
  };

  // 1. The authorization request without a session: the sign-in page.
  const first = authorization();
  const response = await page.goto(first.url);
  check(response.status() === 200, `GET /authorize answers 200 (got ${response.status()})`);
  const csp = response.headers()["content-security-policy"] ?? "";
  check(csp.includes("frame-ancestors 'none'"), `the sign-in page's CSP has frame-ancestors 'none' (${csp})`);
  check(csp.includes("default-src 'none'"), "the sign-in page's CSP has default-src 'none'");
  check(await page.locator("#sign-in-form").isVisible(), "the sign-in form is shown");
  for (const id of ["username", "password"]) {
    const label = page.locator(`label[for="${id}"]`);
    check(await label.count() === 1 && await label.isVisible() && (await label.innerText()).trim() !== "",
      `#${id} has a visible <label for>`);
  }
  await shot("01-sign-in.png");

  // 2. A wrong password: the same form again, with the one message.
  await signIn("wrong horse battery");
  const error = page.locator("#error");
  check(await error.isVisible() && (await error.innerText()).trim() === "The username or password is incorrect.",
    "a wrong password shows #error \"The username or password is incorrect.\"");
  check(await page.locator("#sign-in-form").isVisible(), "the sign-in form is shown again");
  await shot("02-wrong-password.png");

  // 3. The right password: the consent page.
  await signIn(PASSWORD);
  check(await page.locator("#consent-form").isVisible(), "signing in leads to the consent form");
  const scopes = await page.$$eval("#scopes li .scope", (els) => els.map((e) => e.textContent.trim()));
  for (const s of ["openid", "profile", "email"]) check(scopes.includes(s), `#scopes lists ${s}`);
  check(await page.locator("#allow").isVisible() && await page.locator("#deny").isVisible(),
    "the consent form has #allow and #deny");
  await shot("03-consent.png");

  // 4. Allow: the browser lands on the RP's redirect URI.
  await Promise.all([page.waitForURL((u) => u.href.startsWith(redirectUri)), page.click("#allow")]);
  const cb = arrivals.filter((a) => a.path === "/cb").at(-1)?.query ?? {};
  check(typeof cb.code === "string" && cb.code.length > 0, "the RP receives a code");
  check(cb.state === first.state, "the RP receives the state it sent");
  check(cb.iss === base, `the RP receives iss = the issuer (${cb.iss})`);
  check(!("error" in cb), `no error reaches the RP (${cb.error ?? ""})`);

  // 5. The RP exchanges the code and calls /userinfo.
  const tokenResponse = await fetch(`${base}/oauth/token`, {
    method: "POST",
    body: new URLSearchParams({
      grant_type: "authorization_code", code: cb.code ?? "", redirect_uri: redirectUri,
      code_verifier: first.verifier, client_id: clientId,
    }),
  });
  const tokens = await tokenResponse.json().catch(() => ({}));
  check(tokenResponse.status === 200, `the token endpoint answers 200 (got ${tokenResponse.status}${
    tokenResponse.status === 200 ? "" : `: ${JSON.stringify(tokens)}`})`);
  check(typeof tokens.access_token === "string", "the token response has an access_token");
  check(typeof tokens.id_token === "string", "the token response has an id_token");
  const idClaims = (() => {
    try { return JSON.parse(Buffer.from(tokens.id_token.split(".")[1], "base64url")); } catch { return {}; }
  })();
  check(idClaims.nonce === first.nonce, "the id_token carries the nonce sent");
  check(idClaims.iss === base && idClaims.aud === clientId, "the id_token names the issuer and the client");
  const userinfoResponse = await fetch(`${base}/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  const userinfo = await userinfoResponse.json().catch(() => ({}));
  check(userinfoResponse.status === 200, `/userinfo answers 200 (got ${userinfoResponse.status})`);
  check(userinfo.preferred_username === USERNAME, `/userinfo has preferred_username ${USERNAME} (${JSON.stringify(userinfo)})`);
  check(userinfo.sub === idClaims.sub, "/userinfo's sub is the id_token's");

  // 6. The account page lists this browser's session and the consent.
  await page.goto(`${base}/account`);
  check(page.url() === `${base}/account`, `/account is shown while signed in (at ${page.url()})`);
  check((await page.locator("#account-username").innerText().catch(() => "")) === USERNAME, "the account page names alice");
  const sessions = await page.locator("#sessions li").allInnerTexts();
  check(sessions.length === 1 && sessions[0].includes("this browser"), `the account page lists this browser's session (${JSON.stringify(sessions)})`);
  const consents = await page.locator("#consents li").allInnerTexts();
  check(consents.some((c) => c.includes(clientId)), `the account page lists the consent to ${clientId}`);
  await shot("04-account.png");

  // 7. RP-initiated logout with the id_token_hint, back to the RP: the
  // registered loopback URI http://127.0.0.1/bye matches the RP's port too
  // (RFC 8252 §7.3, as for redirect URIs).
  const logout = `${base}/logout?${new URLSearchParams({
    id_token_hint: tokens.id_token ?? "", post_logout_redirect_uri: `${rpBase}/bye`, state: "s1" })}`;
  await Promise.all([page.waitForURL((u) => u.href.startsWith(`${rpBase}/bye`)), page.goto(logout)]);
  const bye = arrivals.filter((a) => a.path === "/bye").at(-1)?.query ?? {};
  check(bye.state === "s1", `logout sends the browser to the post-logout redirect URI with state=s1 (${JSON.stringify(bye)})`);

  // 8. Signed out: the authorization request shows the sign-in form again.
  const second = authorization();
  await page.goto(second.url);
  check(await page.locator("#sign-in-form").isVisible(), "after logout the authorization request shows the sign-in form");
  await shot("05-signed-out-sign-in.png");

  // 9. Signing in again goes straight back to the RP (consent remembered).
  await Promise.all([page.waitForURL((u) => u.href.startsWith(redirectUri)), signIn(PASSWORD)]);
  const cb2 = arrivals.filter((a) => a.path === "/cb").at(-1)?.query ?? {};
  check(typeof cb2.code === "string" && cb2.state === second.state && cb2.code !== cb.code,
    "signing in again returns a new code to the RP with no consent page");

  // 10. Logout without a hint: the confirmation page, then the signed-out page.
  const confirm = await page.goto(`${base}/logout`);
  check(confirm.status() === 200 && await page.locator("#sign-out-form").isVisible(), "GET /logout without a hint shows #sign-out-form");
  const confirmCsp = confirm.headers()["content-security-policy"] ?? "";
  check(confirmCsp.includes("frame-ancestors 'none'") && confirmCsp.includes("default-src 'none'"),
    "the sign-out page's CSP has frame-ancestors 'none' and default-src 'none'");
  await shot("06-sign-out-confirm.png");
  await Promise.all([page.waitForNavigation(), page.click("#sign-out")]);
  check(await page.locator("#signed-out").isVisible(), "confirming shows the signed-out page");
  await shot("07-signed-out.png");
  await page.goto(`${base}/account`);
  check(new URL(page.url()).pathname === "/login" && await page.locator("#sign-in-form").isVisible(),
    `after confirming, /account sends the browser to the sign-in form (at ${page.url()})`);

  check(consoleErrors.length === 0, `Chromium logged no console error or CSP violation (${consoleErrors.join(" | ")})`);
} catch (e) {
  check(false, `the test ran to its end (${e.stack ?? e})`);
} finally {
  if (failures.length && page) await page.screenshot({ path: join(shots, "failure.png"), fullPage: true }).catch(() => {});
  await browser.close();
  rp.close();
}
console.log(`${failures.length ? 0 : 1} passed, ${failures.length ? 1 : 0} failed`);
process.exit(failures.length ? 1 : 0);
