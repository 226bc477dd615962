"""Interop: authlib as an OpenID Connect relying party (confidential client,
client_secret_basic) runs the authorization-code + PKCE flow against a live Sigil: both metadata
documents through authlib's validators, the ID token through its CodeIDToken
checks, /userinfo, a refresh, RP-initiated logout and prompt=none after it.

Usage: rp.py BASE CLIENT_ID CLIENT_SECRET USERNAME PASSWORD
The client needs the scopes "openid profile email", the redirect URI
http://127.0.0.1/cb and the post-logout redirect URI http://127.0.0.1/bye.

BASE is the issuer. The browser is a requests.Session that fills in Sigil's
sign-in (and, when shown, consent) form, never following redirects by itself.
Exits non-zero, with the reason, on the first failure.
"""

import html
import re
import sys
import time
import warnings
from urllib.parse import parse_qs, urljoin, urlsplit

import requests  # noqa: E402
from authlib import deprecate  # noqa: E402

# authlib.jose is deprecated in favour of joserfc; it still works and is what
# authlib's own OIDC client uses, so keep the output free of the notice
# (authlib adds an "always" filter of its own at import: this goes first).
warnings.filterwarnings("ignore", category=deprecate.AuthlibDeprecationWarning)

from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from authlib.jose import JsonWebKey, JsonWebToken  # noqa: E402
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata  # noqa: E402
from authlib.oidc import rpinitiated  # noqa: E402
from authlib.oidc.core import CodeIDToken  # noqa: E402
from authlib.oidc.discovery import OpenIDProviderMetadata  # noqa: E402

base, client_id, client_secret, username, password = sys.argv[1:6]
issuer = base
redirect_uri = "http://127.0.0.1:9999/cb"  # loopback: Sigil matches any port
scope = "openid profile email"
step = "start"


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def get_json(url, **kw):
    r = requests.get(url, timeout=10, **kw)
    check(r.status_code == 200, f"GET {url}: {r.status_code} {r.text[:300]}")
    return r.json()


def hidden(page, form_id, name):
    form = re.search(r'<form[^>]*id="%s"[^>]*>(.*?)</form>' % re.escape(form_id), page, re.S)
    check(form, f"no form #{form_id} in the page:\n{page[:2000]}")
    m = re.search(r'<input[^>]*name="%s"[^>]*value="([^"]*)"' % re.escape(name), form.group(1))
    check(m, f"form #{form_id} has no hidden {name!r}")
    return html.unescape(m.group(1)), form.group(0)


def form_action(form):
    m = re.match(r'<form[^>]*action="([^"]*)"', form)
    check(m, "form without action")
    return urljoin(base + "/", html.unescape(m.group(1)))


def main():
    global step
    # Discovery, both documents, validated by authlib as they are.
    step = "discovery"
    oidc_meta = OpenIDProviderMetadata(get_json(f"{base}/.well-known/openid-configuration"))
    # OIDC Discovery §3 and RP-Initiated Logout §2.1 (end_session_endpoint).
    oidc_meta.validate(metadata_classes=[rpinitiated.OpenIDProviderMetadata])
    check(oidc_meta["issuer"] == issuer, f"issuer {oidc_meta['issuer']!r} != {issuer!r}")
    as_meta = AuthorizationServerMetadata(
        get_json(f"{base}/.well-known/oauth-authorization-server"))
    as_meta.validate()
    check(as_meta["issuer"] == issuer, f"RFC 8414 issuer {as_meta['issuer']!r} != {issuer!r}")
    check("S256" in oidc_meta.get("code_challenge_methods_supported", []), "S256 not offered")
    check("client_secret_basic" in oidc_meta.token_endpoint_auth_methods_supported,
          "client_secret_basic not offered")

    # The authorization request, built by authlib.
    step = "authorization request"
    rp = OAuth2Session(client_id, client_secret, scope=scope, redirect_uri=redirect_uri,
                       code_challenge_method="S256",
                       token_endpoint_auth_method="client_secret_basic")
    code_verifier = generate_token(48)
    nonce = generate_token(20)
    auth_url, state = rp.create_authorization_url(
        oidc_meta["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce)

    # The browser: sign in (and consent when asked), stop at the redirect.
    browser = requests.Session()
    r = browser.get(auth_url, allow_redirects=False, timeout=10)
    check(r.status_code == 200, f"GET /authorize: {r.status_code} {r.headers.get('location')}")
    step = "sign-in form"
    csrf, form = hidden(r.text, "sign-in-form", "csrf")
    request, _ = hidden(r.text, "sign-in-form", "request")
    r = browser.post(form_action(form), allow_redirects=False, timeout=10, data={
        "csrf": csrf, "request": request, "username": username, "password": password})
    if r.status_code == 200:
        step = "consent form"
        csrf, form = hidden(r.text, "consent-form", "csrf")
        request, _ = hidden(r.text, "consent-form", "request")
        r = browser.post(form_action(form), allow_redirects=False, timeout=10,
                         data={"csrf": csrf, "request": request, "decision": "allow"})
    check(r.status_code in (302, 303), f"expected a redirect, got {r.status_code}: {r.text[:500]}")
    callback = r.headers["location"]
    step = "authorization response"
    got = urlsplit(callback)
    check(f"{got.scheme}://{got.netloc}{got.path}" == redirect_uri,
          f"redirected to {callback!r}, not {redirect_uri}")
    params = parse_qs(got.query)
    check("error" not in params, f"authorization error: {params}")
    # RFC 9207: Sigil says it sends iss; authlib does not check it, so check here.
    check(params.get("iss") == [issuer], f"iss in the authorization response: {params.get('iss')}")

    # The token request: authlib checks state, sends the verifier, authenticates
    # with HTTP Basic.
    step = "token request"
    token = rp.fetch_token(oidc_meta["token_endpoint"], authorization_response=callback,
                           state=state, code_verifier=code_verifier)
    check(token.get("token_type", "").lower() == "bearer", f"token_type {token.get('token_type')}")
    check("id_token" in token and "access_token" in token, f"token response keys {list(token)}")

    # The ID token, against the JWKS at jwks_uri.
    step = "ID token"
    jwks = JsonWebKey.import_key_set(get_json(oidc_meta["jwks_uri"]))
    jwt = JsonWebToken(oidc_meta["id_token_signing_alg_values_supported"])
    claims = jwt.decode(
        token["id_token"], jwks, claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": issuer},
                        "aud": {"essential": True, "value": client_id},
                        "sub": {"essential": True},
                        "nonce": {"essential": True}},
        claims_params={"nonce": nonce, "client_id": client_id,
                       "access_token": token["access_token"]})
    claims.validate(leeway=30)  # iss, aud, exp, iat, nonce, azp, at_hash
    check("at_hash" in claims, "ID token without at_hash")
    check(isinstance(claims.get("auth_time"), int) and claims["auth_time"] <= time.time() + 30,
          f"auth_time {claims.get('auth_time')!r}")
    check(claims.header.get("alg") in ("RS256", "EdDSA"), f"alg {claims.header.get('alg')}")

    # UserInfo with the access token, authlib's session adds the Bearer header.
    step = "userinfo"
    r = rp.get(oidc_meta["userinfo_endpoint"], timeout=10)
    check(r.status_code == 200, f"GET /userinfo: {r.status_code} {r.text[:300]}")
    info = r.json()
    check(info.get("sub") == claims["sub"], f"userinfo sub {info.get('sub')!r} != {claims['sub']!r}")
    check(info.get("preferred_username") == username, f"preferred_username {info!r}")
    check(info.get("email") == f"{username}@example.com", f"email {info!r}")

    # A refresh, also with client_secret_basic.
    step = "refresh"
    check("refresh_token" in token, "no refresh token for a client that may refresh")
    refreshed = rp.refresh_token(oidc_meta["token_endpoint"], refresh_token=token["refresh_token"])
    check(refreshed.get("access_token") and refreshed["access_token"] != token["access_token"],
          "refresh returned no new access token")
    check(refreshed.get("refresh_token") and refreshed["refresh_token"] != token["refresh_token"],
          "the refresh token did not rotate")

    # RP-initiated logout with the ID token as hint, back to the RP.
    step = "logout"
    bye = "http://127.0.0.1:9999/bye"
    r = browser.get(oidc_meta["end_session_endpoint"], allow_redirects=False, timeout=10, params={
        "id_token_hint": token["id_token"], "post_logout_redirect_uri": bye, "state": "s1"})
    check(r.status_code in (302, 303) and r.headers.get("location") == f"{bye}?state=s1",
          f"logout: {r.status_code} {r.headers.get('location')}")
    step = "prompt=none after logout"
    none_url, _ = rp.create_authorization_url(
        oidc_meta["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce,
        state="none", prompt="none")
    r = browser.get(none_url, allow_redirects=False, timeout=10)
    back = parse_qs(urlsplit(r.headers.get("location", "")).query)
    check(back.get("error") == ["login_required"] and back.get("state") == ["none"],
          f"prompt=none without a session: {r.status_code} {r.headers.get('location')}")

    print(f"PASS authlib (Python): confidential client {client_id}, sub {claims['sub']}, "
          f"alg {claims.header['alg']}, preferred_username {info['preferred_username']}")


try:
    main()
except Exception as e:  # noqa: BLE001 - report any failure with the step it happened in
    print(f"FAIL authlib (Python) at {step}: {type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(1)
