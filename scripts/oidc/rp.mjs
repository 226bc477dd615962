// Interop: openid-client 6 (panva's certified RP library) as a public client
// (a SPA or native app: no secret, PKCE, a loopback redirect URI) runs the
// whole flow against a live Sigil: discovery, the authorization request,
// Sigil's sign-in and consent forms over plain HTTP, the code exchange with
// its checks (state, iss of RFC 9207, nonce, at_hash, the ID token's
// signature against the JWKS), /userinfo, a refresh, RP-initiated logout and
// prompt=none afterwards. The access token is verified with `jose` from the
// JWKS URL alone, as a resource service would.
//
// Usage: node rp.mjs ISSUER CLIENT_ID USERNAME PASSWORD
// The client must be public with the scopes "openid profile email", the
// redirect URI http://127.0.0.1/cb and the post-logout redirect URI
// http://127.0.0.1/bye. Exits non-zero, with the step, on the first failure.
import * as client from "openid-client";
import { createRemoteJWKSet, jwtVerify } from "jose";

const [issuer, clientId, username, password] = process.argv.slice(2);
const redirectUri = "http://127.0.0.1:9876/cb"; // loopback: any port matches
const postLogoutRedirectUri = "http://127.0.0.1:9876/bye";
let step = "start";

const check = (ok, what) => {
  if (!ok) throw new Error(what);
};

// The browser: a cookie jar and redirects followed by hand, so that the one
// to the redirect URI is seen, not fetched.
const jar = new Map();
const browse = async (url, init = {}) => {
  const headers = new Headers(init.headers);
  if (jar.size) headers.set("cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
  const res = await fetch(url, { ...init, headers, redirect: "manual" });
  for (const c of res.headers.getSetCookie()) {
    const [pair, ...attrs] = c.split(";");
    const [name, value] = [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)];
    const gone = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === "";
    if (gone) jar.delete(name.trim());
    else jar.set(name.trim(), value);
  }
  return res;
};
// HTML character references, as a browser decodes attribute values.
const named = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
const unescape = (s) => s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (ref, body) =>
  body[0] !== "#" ? named[body.toLowerCase()] ?? ref
    : String.fromCodePoint(parseInt(body.slice(body[1] === "x" || body[1] === "X" ? 2 : 1),
      body[1] === "x" || body[1] === "X" ? 16 : 10)));
// The named form of a page: its action and hidden fields.
const form = (page, id) => {
  const m = page.match(new RegExp(`<form[^>]*id="${id}"[^>]*>([\\s\\S]*?)</form>`));
  check(m, `no form #${id} in the page: ${page.slice(0, 1500)}`);
  const action = m[0].match(/action="([^"]*)"/)?.[1];
  const fields = {};
  for (const input of m[1].matchAll(/<input[^>]*type="hidden"[^>]*>/g)) {
    const name = input[0].match(/name="([^"]*)"/)?.[1];
    const value = input[0].match(/value="([^"]*)"/)?.[1] ?? "";
    if (name) fields[name] = unescape(value);
  }
  return { action: new URL(unescape(action), issuer).href, fields };
};
const post = (url, fields) => browse(url, {
  method: "POST",
  body: new URLSearchParams(fields),
});
const location = (res) => res.headers.get("location") ?? "";

// Signs in through the form (and consents when asked); returns the
// callback URL the browser was sent to.
const signIn = async (authorizationUrl) => {
  let res = await browse(authorizationUrl);
  check(res.status === 200, `GET /authorize: ${res.status} ${location(res)}`);
  const signInForm = form(await res.text(), "sign-in-form");
  res = await post(signInForm.action, { ...signInForm.fields, username, password });
  if (res.status === 200) {
    step = "consent form";
    const consent = form(await res.text(), "consent-form");
    res = await post(consent.action, { ...consent.fields, decision: "allow" });
  }
  check([302, 303].includes(res.status), `expected a redirect, got ${res.status}: ${(await res.text()).slice(0, 500)}`);
  return location(res);
};

try {
  step = "discovery";
  // Plain http is the test's loopback Sigil; a deployment's issuer is https.
  const config = await client.discovery(new URL(issuer), clientId, undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });
  // The ID token's signature is checked against the JWKS too, not only its claims.
  client.enableNonRepudiationChecks(config);
  const meta = config.serverMetadata();
  check(meta.issuer === issuer, `issuer ${meta.issuer} != ${issuer}`);
  check(meta.authorization_response_iss_parameter_supported === true, "iss parameter not advertised");
  check(meta.code_challenge_methods_supported?.includes("S256"), "S256 not advertised");

  step = "authorization request";
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: "openid profile email",
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    nonce,
    state,
  });

  step = "sign-in form";
  const callback = await signIn(authorizationUrl);
  check(callback.startsWith(`${redirectUri}?`), `redirected to ${callback}, not ${redirectUri}`);

  step = "code exchange";
  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedNonce: nonce,
    expectedState: state,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  check(claims?.sub && claims.aud === clientId && claims.iss === issuer, `ID token claims ${JSON.stringify(claims)}`);
  check(typeof claims.auth_time === "number" && typeof claims.sid === "string", "auth_time and sid in the ID token");
  check(tokens.refresh_token, "no refresh token for a client that may refresh");

  step = "access token via the JWKS";
  const jwks = createRemoteJWKSet(new URL(meta.jwks_uri));
  const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, {
    issuer,
    typ: "at+jwt",
  });
  check(payload.sub === claims.sub, `access token sub ${payload.sub} != ${claims.sub}`);
  // The ID token is not an access token: a resource service requiring at+jwt refuses it.
  const idAsAccess = await jwtVerify(tokens.id_token, jwks, { issuer, typ: "at+jwt" }).then(() => true, () => false);
  check(!idAsAccess, "the ID token passed as an at+jwt access token");

  step = "userinfo";
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  check(info.preferred_username === username, `preferred_username ${JSON.stringify(info)}`);
  check(info.email === `${username}@example.com`, `email ${JSON.stringify(info)}`);

  step = "refresh";
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  check(refreshed.access_token && refreshed.access_token !== tokens.access_token, "refresh gave no new access token");
  check(refreshed.refresh_token && refreshed.refresh_token !== tokens.refresh_token, "the refresh token did not rotate");

  step = "single sign-on";
  const again = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri, scope: "openid", state: "sso",
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
  });
  const sso = await browse(again);
  check([302, 303].includes(sso.status) && location(sso).startsWith(`${redirectUri}?code=`),
    `with a live session /authorize redirects at once (${sso.status} ${location(sso)})`);

  step = "logout";
  const endSession = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: postLogoutRedirectUri,
    state: "bye",
  });
  const out = await browse(endSession);
  check([302, 303].includes(out.status) && location(out) === `${postLogoutRedirectUri}?state=bye`,
    `logout redirects to the post-logout URI with state (${out.status} ${location(out)})`);

  step = "prompt=none after logout";
  const none = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri, scope: "openid", state: "none", prompt: "none",
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
  });
  const res = await browse(none);
  const back = new URL(location(res));
  check(back.searchParams.get("error") === "login_required" && back.searchParams.get("state") === "none",
    `prompt=none without a session: ${location(res)}`);
  // openid-client reads the error the way an RP would.
  const refused = await client.authorizationCodeGrant(config, back, {
    pkceCodeVerifier: verifier, expectedState: "none",
  }).then(() => null, (e) => e);
  check(refused?.error === "login_required", `openid-client reports ${refused?.error ?? refused}`);

  console.log(`PASS openid-client (Node): public client ${clientId}, sub ${claims.sub}, ` +
    `access token ${protectedHeader.alg}, preferred_username ${info.preferred_username}`);
} catch (e) {
  console.error(`FAIL openid-client (Node) at ${step}: ${e?.stack ?? e}`);
  if (e?.cause) console.error("cause:", e.cause);
  process.exit(1);
}
