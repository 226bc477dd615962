// Drives Sigil's /docs page in headless Chromium, as a person would:
// the page loads with no request leaving the host, lists the endpoints,
// and registering, getting a token and calling /users/me work from it.
// Usage: node docs.test.mjs BASE_URL PUBLIC_CLIENT_ID
import { chromium } from "playwright-core";

const [base, clientId] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const failures = [];
const check = (ok, what) => { console.log(`${ok ? "ok  " : "FAIL"} ${what}`); if (!ok) failures.push(what); };
try {
  const page = await browser.newPage();
  const foreign = [];
  const cspErrors = [];
  page.on("request", (r) => { if (!r.url().startsWith(base)) foreign.push(r.url()); });
  page.on("console", (m) => { if (m.type() === "error" && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text()); });

  await page.goto(`${base}/docs`);
  await page.waitForSelector(".opblock-summary-path", { timeout: 30000 });
  const paths = await page.$$eval(".opblock-summary-path", (els) => els.map((e) => e.getAttribute("data-path") ?? e.textContent.trim()));
  for (const p of ["/oauth/token", "/users", "/users/me", "/.well-known/jwks.json"]) {
    check(paths.some((x) => x.replace(/\u200b/g, "") === p), `the page lists ${p}`);
  }

  // Expands an operation and returns its block.
  const open = async (id) => {
    const block = page.locator(`#${id}`);
    await block.locator(".opblock-summary").first().click();
    const tryIt = block.locator("button.try-out__btn");
    if (await tryIt.count() && (await tryIt.first().innerText()).includes("Try it out")) await tryIt.first().click();
    return block;
  };
  const execute = async (block) => {
    await block.locator("button.execute").click();
    const status = block.locator(".live-responses-table tr.response .response-col_status").first();
    await status.waitFor({ timeout: 15000 });
    return (await status.innerText()).trim();
  };

  // 1. Register.
  const register = await open("operations-users-register");
  await register.locator("textarea.body-param__text").fill(JSON.stringify({
    username: "browser-user", email: "browser@example.com", password: "correct horse battery",
  }));
  const registered = await execute(register);
  check(registered === "201", `registering from the page answers 201 (got ${registered})`);

  // 2. Get a token with the password grant (form fields).
  const token = await open("operations-oauth-token");
  const field = (name) => token.locator(`tr[data-param-name="${name}"] input, input[placeholder^="${name}"]`).first();
  await field("grant_type").fill("password");
  await field("username").fill("browser-user");
  await field("password").fill("correct horse battery");
  await field("client_id").fill(clientId);
  if (process.env.DEBUG_SHOT) await token.screenshot({ path: process.env.DEBUG_SHOT });
  const tokenStatus = await execute(token);
  check(tokenStatus === "200", `the token endpoint answers 200 from the page (got ${tokenStatus})`);
  const body = await token.locator(".live-responses-table .response-col_description pre").first().innerText();
  const accessToken = JSON.parse(body).access_token;
  check(typeof accessToken === "string" && accessToken.split(".").length === 3, "the page shows an access token");

  // 3. Authorize with it and call /users/me.
  await page.locator("button.authorize").first().click();
  const dialog = page.locator(".modal-ux");
  const bearer = dialog.locator(".auth-container").filter({ hasText: "bearer" }).first();
  await bearer.locator("input").first().fill(accessToken);
  await bearer.locator("button.authorize").click();
  await bearer.locator("button.btn-done").click();
  const me = await open("operations-users-me");
  check((await execute(me)) === "200", "GET /users/me answers 200 with the token from the page");
  const profile = await me.locator(".live-responses-table .response-col_description pre").first().innerText();
  check(JSON.parse(profile).username === "browser-user", "/users/me returns the registered user");

  check(foreign.length === 0, `no request leaves the host (${foreign.join(", ")})`);
  check(cspErrors.length === 0, `no Content-Security-Policy violation (${cspErrors.join(" | ")})`);
  if (failures.length) await page.screenshot({ path: process.env.SCREENSHOT ?? "/tmp/sigil-docs-failure.png", fullPage: true });
} finally {
  await browser.close();
}
console.log(`${failures.length ? 0 : 1} passed, ${failures.length ? 1 : 0} failed`);
process.exit(failures.length ? 1 : 0);
