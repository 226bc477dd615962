"""Interop: an independent DPoP and private_key_jwt client, made with joserfc
(Python), against a live Sigil. Nothing here comes from Sigil's code: the
keys, the DPoP proofs (RFC 9449), the client assertions (RFC 7523) and the
RFC 7638 thumbprints are all joserfc's; the access tokens Sigil issues are
verified with joserfc from Sigil's JWKS.

Usage:
  interop.py main  BASE SIGIL CLIENT_ID USERNAME PASSWORD
  interop.py nonce BASE SIGIL CLIENT_ID USERNAME PASSWORD

BASE is the issuer of a running Sigil. SIGIL is its binary: the clients that
authenticate with keys are registered with `SIGIL clients create` run in the
current directory, which (with SIGIL_DATABASE_URL) must be the server's.
CLIENT_ID is a public client with the grant types password,refresh_token and
the scopes "openid profile"; USERNAME and PASSWORD a user's.

main:  DPoP-bound tokens with ES256 and EdDSA proofs (and one PS256): the
       token endpoint, /users/me and /userinfo, the refusals, the refresh
       bound to the key, introspection; private_key_jwt with an inline JWKS
       (PS256 and ES256) at the token, revocation and introspection
       endpoints, and with a jwks_uri served from here and then rotated.
nonce: against a Sigil with SIGIL_DPOP__REQUIRE_NONCE=true: use_dpop_nonce
       and DPoP-Nonce at the token endpoint and at a resource, and a client
       that retries with the nonce, as real DPoP clients do.

One line a check; the last line reads "dpop-interop: N passed, N failed".
Exits non-zero on any failure.
DPOP_INTEROP_VERBOSE=1 shows the response behind each passing check too.
"""

import base64
import hashlib
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode, urlsplit

import requests
from joserfc import jwk, jwt
from joserfc.errors import JoseError

# joserfc calls EdDSA deprecated (RFC 9864 prefers "Ed25519"); RFC 9449
# clients and Sigil's dpop_signing_alg_values_supported still use EdDSA.
warnings.filterwarnings("ignore", message=".*EdDSA.*")

# The JWS alg each key type signs with here; RSA keys use PS256 (and RS256
# in one proof). joserfc signs EdDSA and PS256 only when told to
# (algorithms=[...]): it calls them "not recommended".
ALG = {"EC": "ES256", "OKP": "EdDSA", "RSA": "PS256"}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TIMEOUT = 10
# DPOP_INTEROP_VERBOSE=1: the detail (the response) of passing checks too,
# to see that each refusal is for the reason meant.
VERBOSE = os.environ.get("DPOP_INTEROP_VERBOSE") == "1"

passed = 0
failed = 0


class Fatal(Exception):
    """A failure the following checks cannot go on without."""


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"  ok    {what}" + (f"\n        {detail}" if VERBOSE and detail else ""))
    else:
        failed += 1
        print(f"  FAIL  {what}" + (f"\n        {detail}" if detail else ""))
    return bool(ok)


def require(ok, what, detail=""):
    if not check(ok, what, detail):
        raise Fatal(what)


def section(title):
    print(f"- {title}")


def desc(r):
    auth = r.headers.get("www-authenticate")
    return f"HTTP {r.status_code}" + (f" [{auth}]" if auth else "") + f" {r.text[:300]}"


def error_of(r):
    try:
        return r.json().get("error")
    except ValueError:
        return None


def oauth_error(r, status, code):
    """An RFC 6749 §5.2 error: this status and this `error`."""
    return r.status_code == status and error_of(r) == code


def dpop_challenge(r, code):
    """RFC 9449 §7.1: 401 with a DPoP challenge naming `code`."""
    auth = r.headers.get("www-authenticate", "")
    return (r.status_code == 401 and auth.startswith("DPoP ") and 'algs="' in auth
            and f'error="{code}"' in auth)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public(key):
    return key.as_dict(private=False)


def thumbprint(key):
    return jwk.thumbprint(public(key))


def new_key(kty, kid=None):
    params = {"kid": kid, "use": "sig", "alg": ALG[kty]} if kid else None
    if kty == "EC":
        return jwk.ECKey.generate_key("P-256", parameters=params)
    if kty == "OKP":
        return jwk.OKPKey.generate_key("Ed25519", parameters=params)
    return jwk.RSAKey.generate_key(2048, parameters=params)


def proof(key, method, url, token=None, nonce=None, *, alg=None, iat=None, jti=None,
          typ="dpop+jwt", header_jwk=None):
    """A DPoP proof (RFC 9449 §4.2) by joserfc; the keyword arguments make
    the broken ones."""
    alg = alg or ALG[key.key_type]
    header = {"typ": typ, "alg": alg, "jwk": header_jwk or public(key)}
    claims = {"jti": jti or str(uuid.uuid4()), "htm": method, "htu": url,
              "iat": int(time.time()) if iat is None else iat}
    if token is not None:
        claims["ath"] = b64url(hashlib.sha256(token.encode()).digest())
    if nonce is not None:
        claims["nonce"] = nonce
    return jwt.encode(header, claims, key, algorithms=[alg])


def unsigned_proof(key, method, url):
    """alg none: what no server may take."""
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": public(key)}
    claims = {"jti": str(uuid.uuid4()), "htm": method, "htu": url, "iat": int(time.time())}
    part = lambda v: b64url(json.dumps(v).encode())  # noqa: E731
    return f"{part(header)}.{part(claims)}."


def assertion(key, client_id, aud, *, jti=None, exp=None, sub=None, kid=True):
    """A private_key_jwt client assertion (RFC 7523 §3) by joserfc."""
    alg = ALG[key.key_type]
    header = {"alg": alg, "typ": "JWT"}
    if kid and key.kid:
        header["kid"] = key.kid
    now = int(time.time())
    claims = {"iss": client_id, "sub": sub or client_id, "aud": aud,
              "jti": jti or str(uuid.uuid4()), "iat": now,
              "exp": now + 120 if exp is None else exp}
    return jwt.encode(header, claims, key, algorithms=[alg])


class RawResponse:
    """The parts of a requests.Response the checks read."""

    def __init__(self, resp):
        self.status_code = resp.status
        self.headers = {k.lower(): v for k, v in resp.getheaders()}
        self.text = resp.read().decode()

    def json(self):
        return json.loads(self.text)


def post_with_headers(url, form, headers):
    """A form POST with `headers` as given (a list of pairs: a header may
    come twice, which requests cannot send)."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT)
    try:
        body = urlencode(form).encode()
        conn.putrequest("POST", u.path)
        for name, value in headers + [("Content-Type", "application/x-www-form-urlencoded"),
                                      ("Content-Length", str(len(body)))]:
            conn.putheader(name, value)
        conn.endheaders(body)
        return RawResponse(conn.getresponse())
    finally:
        conn.close()


class Sigil:
    """The server under test: its metadata, keys and endpoints."""

    def __init__(self, base, binary):
        self.base = base
        self.binary = binary
        r = requests.get(f"{base}/.well-known/openid-configuration", timeout=TIMEOUT)
        require(r.status_code == 200, "discovery document", desc(r))
        self.meta = r.json()
        require(self.meta.get("issuer") == base, f"issuer is {base}", self.meta.get("issuer"))
        self.token_url = self.meta["token_endpoint"]
        self.userinfo_url = self.meta["userinfo_endpoint"]
        self.introspect_url = self.meta["introspection_endpoint"]
        self.revoke_url = self.meta["revocation_endpoint"]
        self.me_url = f"{base}/users/me"
        r = requests.get(self.meta["jwks_uri"], timeout=TIMEOUT)
        require(r.status_code == 200, "Sigil's JWKS", desc(r))
        self.keys = jwk.KeySet.import_key_set(r.json())

    def register(self, client_id, *flags):
        """`sigil clients create` for a client authenticating with keys."""
        cmd = [self.binary, "clients", "create", client_id,
               "--grant-types", "client_credentials", *flags]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        require(r.returncode == 0 and "private_key_jwt" in r.stdout,
                f"sigil clients create {client_id} {' '.join(flags)}",
                (r.stdout + r.stderr).strip())

    def verify(self, token):
        """An access token's claims, verified by joserfc with Sigil's JWKS."""
        try:
            alg = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["alg"]
            claims = jwt.decode(token, self.keys, algorithms=[alg]).claims
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.base}, exp={"essential": True},
            ).validate(claims)
            return claims
        except (JoseError, ValueError, KeyError) as e:
            check(False, "the access token verifies with joserfc", f"{type(e).__name__}: {e}")
            return {}

    def token(self, data, dpop=None):
        headers = {"DPoP": dpop} if dpop else {}
        return requests.post(self.token_url, data=data, headers=headers, timeout=TIMEOUT)

    def resource(self, method, url, token, dpop=None, scheme="DPoP", **kw):
        headers = {"Authorization": f"{scheme} {token}"}
        if dpop:
            headers["DPoP"] = dpop
        return requests.request(method, url, headers=headers, timeout=TIMEOUT, **kw)


class KeyClient:
    """A private_key_jwt client: its id and a key it signs assertions with."""

    def __init__(self, sigil, client_id, key):
        self.sigil, self.id, self.key = sigil, client_id, key

    def auth(self, aud=None, key=None, **kw):
        return {"client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion(key or self.key, self.id,
                                              aud or self.sigil.base, **kw)}

    def credentials(self, dpop=None, **kw):
        return self.sigil.token({"grant_type": "client_credentials", **self.auth(**kw)}, dpop)

    def post(self, url, data, **kw):
        return requests.post(url, data={**data, **self.auth(aud=url, **kw)}, timeout=TIMEOUT)

    def still_works(self):
        """A good request after a refusal: each refusal spends nothing, and
        a success clears Sigil's per-client failure counter (which would
        otherwise slow the next refusals down)."""
        r = self.credentials()
        if r.status_code != 200:
            check(False, f"{self.id} authenticates again after a refusal", desc(r))


class JwksServer:
    """A client's jwks_uri on 127.0.0.1: serves `jwks`, notes each fetch."""

    def __init__(self, jwks):
        self.jwks = jwks
        self.fetches = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path != "/jwks.json":
                    self.send_error(404)
                    return
                server.fetches.append(time.time())
                body = json.dumps(server.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "max-age=300")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def jwks_of(*keys):
    return {"keys": [public(k) for k in keys]}


# --- main ---------------------------------------------------------------


def discovery_checks(sigil):
    meta = sigil.meta
    for alg in ("ES256", "EdDSA", "PS256"):
        check(alg in meta.get("dpop_signing_alg_values_supported", []),
              f"dpop_signing_alg_values_supported has {alg}")
    for name in ("token", "revocation", "introspection"):
        check("private_key_jwt" in meta.get(f"{name}_endpoint_auth_methods_supported", []),
              f"{name}_endpoint_auth_methods_supported has private_key_jwt")
    algs = meta.get("token_endpoint_auth_signing_alg_values_supported", [])
    check({"PS256", "ES256", "EdDSA"} <= set(algs),
          "token_endpoint_auth_signing_alg_values_supported has PS256, ES256, EdDSA", algs)


def jwks_uri_start(sigil):
    """private_key_jwt with keys at a jwks_uri, up to the rotation; the
    rest waits for Sigil's 10 s refetch cool-down (jwks_uri_finish)."""
    section("private_key_jwt, keys at a jwks_uri (served from here)")
    first, second = new_key("EC", "uri-1"), new_key("OKP", "uri-2")
    server = JwksServer(jwks_of(first))
    sigil.register("svc-uri", "--jwks-uri", server.url)
    client = KeyClient(sigil, "svc-uri", first)
    r = client.credentials()
    require(r.status_code == 200, "client_credentials, ES256 assertion, kid uri-1 → 200", desc(r))
    check(len(server.fetches) == 1, "Sigil fetched the jwks_uri once", server.fetches)
    r = client.credentials()
    check(r.status_code == 200 and len(server.fetches) == 1,
          "a second assertion → 200 from the cached set (no fetch)", desc(r))
    # The client rotates: the set now holds only the new key, a new kid.
    server.jwks = jwks_of(second)
    r = client.credentials(key=second)
    check(oauth_error(r, 401, "invalid_client") and len(server.fetches) == 1,
          "rotated, kid uri-2 at once → 401 invalid_client, no refetch within 10 s",
          desc(r) + f" fetches={len(server.fetches)}")
    client.still_works()  # uri-1, still in the cached set
    return server, client, second


def jwks_uri_finish(sigil, server, client, second):
    section("private_key_jwt, the jwks_uri rotated")
    wait = server.fetches[0] + 10.5 - time.time()
    if wait > 0:
        print(f"  (waiting {wait:.1f} s for the refetch cool-down)")
        time.sleep(wait)
    old = client.key
    client.key = second
    r = client.credentials()
    check(r.status_code == 200 and len(server.fetches) == 2,
          "EdDSA assertion with the new kid uri-2 → 200 after a refetch",
          desc(r) + f" fetches={len(server.fetches)}")
    r = client.credentials(key=old)
    check(oauth_error(r, 401, "invalid_client"),
          "the old key uri-1, gone from the set → 401 invalid_client", desc(r))
    server.close()


def jwks_uri_with_other_keys(sigil):
    """A client's published set may hold keys Sigil has no use for, e.g. an
    X25519 key for ID token encryption (OIDC Core §10.2)."""
    section("private_key_jwt, a jwks_uri that also holds a key of another kind")
    key = new_key("EC", "sig-1")
    enc = jwk.OKPKey.generate_key("X25519", parameters={"kid": "enc-1", "use": "enc",
                                                        "alg": "ECDH-ES"})
    server = JwksServer(jwks_of(key, enc))
    sigil.register("svc-mixed", "--jwks-uri", server.url)
    r = KeyClient(sigil, "svc-mixed", key).credentials()
    check(r.status_code == 200,
          "jwks_uri holding an ES256 signing key and an X25519 encryption key: an assertion "
          "by the ES256 key → 200 (RFC 7517 §5: keys not understood are ignored)",
          desc(r))
    server.close()


def inline_jwks(sigil):
    """private_key_jwt with a JWKS registered from a file."""
    section("private_key_jwt, an inline JWKS (--jwks-file)")
    rsa, ec = new_key("RSA", "ps-1"), new_key("EC", "es-1")
    with open("client-jwks.json", "w") as f:
        json.dump(jwks_of(rsa, ec), f)
    sigil.register("svc-file", "--jwks-file", "client-jwks.json")
    client = KeyClient(sigil, "svc-file", rsa)

    r = client.credentials()
    require(r.status_code == 200, "client_credentials, PS256 assertion, aud the issuer → 200",
            desc(r))
    body = r.json()
    claims = sigil.verify(body["access_token"])
    check(body.get("token_type") == "Bearer" and claims.get("sub") == "svc-file"
          and claims.get("client_id") == "svc-file" and "cnf" not in claims,
          "a Bearer token for svc-file (sub, client_id; no cnf)", body)
    r = client.credentials(key=ec, aud=sigil.token_url)
    check(r.status_code == 200, "ES256 assertion (the JWKS's second key), aud the token endpoint "
          "→ 200", desc(r))
    r = sigil.token({"grant_type": "client_credentials", "client_id": "svc-file", **client.auth()})
    check(r.status_code == 200, "with a matching client_id in the form → 200", desc(r))

    refusals = []
    used = client.auth()
    r = sigil.token({"grant_type": "client_credentials", **used})
    check(r.status_code == 200, "a fresh assertion → 200", desc(r))
    r = sigil.token({"grant_type": "client_credentials", **used})
    refusals.append((r, "the same assertion again (jti reused)"))
    client.still_works()
    r = client.credentials(aud="https://other-server.example/oauth/token")
    refusals.append((r, "aud another server's token endpoint"))
    client.still_works()
    r = client.credentials(key=new_key("RSA", "ps-1"))
    refusals.append((r, "signed by a key not in the JWKS (claiming kid ps-1)"))
    client.still_works()
    r = client.credentials(key=new_key("EC"), kid=False)
    refusals.append((r, "signed by a key not in the JWKS (no kid)"))
    client.still_works()
    r = client.credentials(exp=int(time.time()) + 900)
    refusals.append((r, "exp 15 minutes ahead (more than 5)"))
    client.still_works()
    r = client.credentials(exp=int(time.time()) - 300)
    refusals.append((r, "expired 5 minutes ago"))
    client.still_works()
    r = client.credentials(sub="someone-else")
    refusals.append((r, "sub not the client id"))
    client.still_works()
    r = sigil.token({"grant_type": "client_credentials", "client_id": "svc-uri", **client.auth()})
    refusals.append((r, "client_id in the form another client's"))
    client.still_works()
    for r, what in refusals:
        check(oauth_error(r, 401, "invalid_client"), f"{what} → 401 invalid_client", desc(r))

    # RFC 7009 and RFC 7662 with an assertion, aud each endpoint's URL.
    token = client.credentials().json()["access_token"]
    r = client.post(sigil.introspect_url, {"token": token})
    check(r.status_code == 200 and r.json().get("active") is True
          and r.json().get("client_id") == "svc-file",
          "introspection authenticated by an assertion (aud the endpoint) → active", desc(r))
    r = client.post(sigil.revoke_url, {"token": token})
    check(r.status_code == 200, "revocation authenticated by an assertion → 200", desc(r))
    r = client.post(sigil.introspect_url, {"token": token}, key=ec)
    check(r.status_code == 200 and r.json() == {"active": False},
          "the revoked token introspects as inactive (ES256 assertion)", desc(r))
    r = requests.post(sigil.revoke_url, timeout=TIMEOUT, data={
        "token": token, **client.auth(aud=sigil.introspect_url)})
    check(oauth_error(r, 401, "invalid_client"),
          "at the revocation endpoint, an assertion for the introspection endpoint → 401",
          desc(r))
    client.still_works()
    r = requests.post(sigil.introspect_url, timeout=TIMEOUT, data={"token": token, **used})
    check(oauth_error(r, 401, "invalid_client"),
          "at the introspection endpoint, an assertion spent at the token endpoint → 401",
          desc(r))
    client.still_works()
    r = client.credentials(exp=time.time() + 60.5)
    check(r.status_code == 200,
          "an assertion whose exp has a fraction (an RFC 7519 NumericDate) → 200", desc(r))
    client.still_works()

    # --require-dpop (RFC 9449 §5.2 dpop_bound_access_tokens).
    sigil.register("svc-dpop", "--jwks-file", "client-jwks.json", "--require-dpop")
    bound = KeyClient(sigil, "svc-dpop", ec)
    r = bound.credentials()
    check(oauth_error(r, 400, "invalid_dpop_proof"),
          "a --require-dpop client without a proof → 400 invalid_dpop_proof", desc(r))
    r = bound.credentials(dpop=proof(ec, "POST", sigil.token_url))
    check(r.status_code == 200 and r.json().get("token_type") == "DPoP",
          "with a proof → 200, token_type DPoP", desc(r))
    return client


def dpop_flow(sigil, app, user, pw, key, svc):
    """A DPoP-bound user token with `key`: issued, used, refused, refreshed."""
    alg = ALG[key.key_type]
    section(f"DPoP, {alg} proofs ({key.key_type} key)")
    jkt = thumbprint(key)
    other = new_key("EC")
    login = {"grant_type": "password", "client_id": app, "username": user, "password": pw}

    first = proof(key, "POST", sigil.token_url)
    r = sigil.token(login, first)
    require(r.status_code == 200, "password grant with a DPoP proof → 200", desc(r))
    body = r.json()
    check(body.get("token_type") == "DPoP", "token_type DPoP", body.get("token_type"))
    at, rt = body["access_token"], body.get("refresh_token")
    claims = sigil.verify(at)
    check(claims.get("cnf", {}).get("jkt") == jkt,
          "the access token's cnf.jkt is joserfc's RFC 7638 thumbprint",
          f"{claims.get('cnf')} != {jkt}")
    require(rt, "a refresh token", body)

    # At the resources (RFC 9449 §7).
    p = proof(key, "GET", sigil.me_url, at)
    r = sigil.resource("GET", sigil.me_url, at, p)
    check(r.status_code == 200 and r.json().get("username") == user,
          "GET /users/me, Authorization: DPoP + a proof with ath → 200", desc(r))
    r = sigil.resource("GET", sigil.me_url, at, p)
    check(dpop_challenge(r, "invalid_dpop_proof") and error_of(r) == "invalid_dpop_proof",
          "the same proof replayed → 401 invalid_dpop_proof (DPoP challenge)", desc(r))
    r = sigil.resource("GET", sigil.userinfo_url, at, proof(key, "GET", sigil.userinfo_url, at))
    check(r.status_code == 200 and r.json().get("sub") == claims.get("sub"),
          "GET /userinfo with DPoP → 200, the token's sub", desc(r))
    r = sigil.resource("POST", sigil.userinfo_url, at,
                       proof(key, "POST", sigil.userinfo_url, at))
    check(r.status_code == 200, "POST /userinfo with DPoP (htm POST) → 200", desc(r))
    r = sigil.resource("GET", sigil.userinfo_url + "?x=1", at,
                       proof(key, "GET", sigil.userinfo_url, at))
    check(r.status_code == 200, "GET /userinfo?x=1, htu without the query (§4.3) → 200", desc(r))
    r = sigil.resource("GET", sigil.me_url, at, scheme="Bearer")
    check(r.status_code == 401 and error_of(r) == "invalid_token",
          "the bound token as a Bearer token → 401 invalid_token", desc(r))
    r = sigil.resource("GET", sigil.me_url, at, proof(key, "GET", sigil.me_url, at),
                       scheme="Bearer")
    check(r.status_code == 401, "as Bearer even with a proof → 401", desc(r))
    r = sigil.resource("GET", sigil.me_url, at)
    check(dpop_challenge(r, "invalid_dpop_proof"), "the DPoP scheme without a proof → 401",
          desc(r))
    stale = int(time.time()) - 300
    cases = [
        (proof(other, "GET", sigil.me_url, at), "a proof by another key"),
        (proof(key, "GET", sigil.userinfo_url, at), "htu another endpoint's"),
        (proof(key, "GET", "https://other-server.example/users/me", at), "htu another server's"),
        (proof(key, "POST", sigil.me_url, at), "htm POST for a GET"),
        (proof(key, "GET", sigil.me_url), "no ath"),
        (proof(key, "GET", sigil.me_url, rt), "ath of another token"),
        (proof(key, "GET", sigil.me_url, at, iat=stale), "iat 5 minutes old"),
        (proof(key, "GET", sigil.me_url, at, iat=int(time.time()) + 300),
         "iat 5 minutes ahead"),
    ]
    for p, what in cases:
        r = sigil.resource("GET", sigil.me_url, at, p)
        check(dpop_challenge(r, "invalid_dpop_proof"), f"/users/me, {what} → 401", desc(r))

    # Broken proofs at the token endpoint (RFC 9449 §4.3, §5): 400.
    cases = [
        (first, "the first proof replayed"),
        (proof(key, "POST", sigil.token_url, typ="JWT"), "typ JWT"),
        (unsigned_proof(key, "POST", sigil.token_url), "alg none"),
        (proof(key, "POST", sigil.token_url, header_jwk=key.as_dict(private=True)),
         "the private key in the header's jwk"),
        (proof(key, "POST", sigil.token_url, header_jwk=public(new_key(key.key_type))),
         "signed by a key other than the header's jwk"),
        (proof(other, "POST", sigil.token_url, header_jwk=public(new_key("OKP"))),
         "ES256 with an Ed25519 jwk"),
        (proof(key, "POST", "https://other-server.example/oauth/token"), "htu another server's"),
        (proof(key, "GET", sigil.token_url), "htm GET"),
        (proof(key, "POST", sigil.token_url, iat=stale), "iat 5 minutes old"),
    ]
    for p, what in cases:
        r = sigil.token(login, p)
        check(oauth_error(r, 400, "invalid_dpop_proof"),
              f"token endpoint, {what} → 400 invalid_dpop_proof", desc(r))
    r = post_with_headers(sigil.token_url, login, [
        ("DPoP", proof(key, "POST", sigil.token_url)),
        ("DPoP", proof(key, "POST", sigil.token_url))])
    check(oauth_error(r, 400, "invalid_dpop_proof"),
          "token endpoint, two DPoP headers → 400 invalid_dpop_proof", desc(r))

    # The refresh token is bound to the key (§5).
    refresh = {"grant_type": "refresh_token", "client_id": app, "refresh_token": rt}
    r = sigil.token(refresh, proof(other, "POST", sigil.token_url))
    check(oauth_error(r, 400, "invalid_grant"), "refresh with a proof by another key → 400 "
          "invalid_grant", desc(r))
    r = sigil.token(refresh)
    check(oauth_error(r, 400, "invalid_dpop_proof"),
          "refresh without a proof → 400 invalid_dpop_proof", desc(r))
    r = sigil.token(refresh, proof(key, "POST", sigil.token_url))
    require(r.status_code == 200, "refresh with a proof by the same key → 200 (the refusals "
            "spent nothing)", desc(r))
    body = r.json()
    at2 = body["access_token"]
    check(body.get("token_type") == "DPoP" and at2 != at
          and sigil.verify(at2).get("cnf", {}).get("jkt") == jkt
          and body.get("refresh_token") not in (None, rt),
          "a new DPoP token bound to the same key, the refresh token rotated", body)
    r = sigil.resource("GET", sigil.me_url, at2, proof(key, "GET", sigil.me_url, at2))
    check(r.status_code == 200, "the refreshed token at /users/me → 200", desc(r))

    # Introspection (RFC 7662, RFC 9449 §6.2) by the private_key_jwt client.
    r = svc.post(sigil.introspect_url, {"token": at2})
    info = r.json() if r.status_code == 200 else {}
    check(info.get("active") is True and info.get("token_type") == "DPoP"
          and info.get("cnf", {}).get("jkt") == jkt,
          "introspection: active, token_type DPoP, cnf.jkt the thumbprint", desc(r))


def unbound_and_rsa(sigil, app, user, pw):
    section("no proof, and a PS256 proof")
    login = {"grant_type": "password", "client_id": app, "username": user, "password": pw}
    r = sigil.token(login)
    require(r.status_code == 200, "password grant without a proof → 200", desc(r))
    at = r.json()["access_token"]
    check(r.json().get("token_type") == "Bearer" and "cnf" not in sigil.verify(at),
          "token_type Bearer, no cnf", r.json())
    r = sigil.resource("GET", sigil.me_url, at, scheme="Bearer")
    check(r.status_code == 200, "the unbound token as Bearer → 200", desc(r))
    key = new_key("RSA")
    r = sigil.resource("GET", sigil.me_url, at, proof(key, "GET", sigil.me_url, at))
    check(r.status_code == 401, "the unbound token with the DPoP scheme → 401", desc(r))
    r = sigil.token(login, proof(key, "POST", sigil.token_url))
    require(r.status_code == 200 and r.json().get("token_type") == "DPoP",
            "password grant with a PS256 proof (RSA key) → DPoP token", desc(r))
    at = r.json()["access_token"]
    check(sigil.verify(at).get("cnf", {}).get("jkt") == thumbprint(key),
          "cnf.jkt is the RSA key's thumbprint")
    r = sigil.resource("GET", sigil.me_url, at, proof(key, "GET", sigil.me_url, at))
    check(r.status_code == 200, "/users/me with a PS256 proof → 200", desc(r))
    r = sigil.resource("GET", sigil.me_url, at, proof(key, "GET", sigil.me_url, at, alg="RS256"))
    check(r.status_code == 200, "/users/me with an RS256 proof by the same key → 200", desc(r))
    # RFC 7519 §2: a NumericDate may have a fraction (time.time()).
    r = sigil.token(login, proof(key, "POST", sigil.token_url, iat=time.time()))
    check(r.status_code == 200,
          "token endpoint, a proof whose iat has a fraction (an RFC 7519 NumericDate) → 200",
          desc(r))
    # RFC 9449 §4.3: htu compared after RFC 3986 normalisation; typ is a
    # media type, case-insensitive.
    encoded = sigil.token_url.replace("/token", "/%74oken")
    r = sigil.token(login, proof(key, "POST", encoded))
    check(r.status_code == 200, "token endpoint, htu …/oauth/%74oken → 200", desc(r))
    r = sigil.token(login, proof(key, "POST", sigil.token_url, typ="DPoP+JWT"))
    check(r.status_code == 200, "token endpoint, typ DPoP+JWT → 200", desc(r))


def dpop_private_key_jwt(sigil, svc):
    section("DPoP and private_key_jwt together")
    key = new_key("OKP")
    r = svc.credentials(dpop=proof(key, "POST", sigil.token_url))
    check(r.status_code == 200 and r.json().get("token_type") == "DPoP"
          and sigil.verify(r.json()["access_token"]).get("cnf", {}).get("jkt")
          == thumbprint(key),
          "client_credentials, PS256 assertion + EdDSA proof → DPoP token, cnf.jkt", desc(r))


def main_run(base, binary, app, user, pw):
    section("discovery")
    sigil = Sigil(base, binary)
    discovery_checks(sigil)
    # The jwks_uri rotation waits out a 10 s cool-down: start it first.
    uri = jwks_uri_start(sigil)
    svc = inline_jwks(sigil)
    jwks_uri_with_other_keys(sigil)
    for kty in ("EC", "OKP"):
        dpop_flow(sigil, app, user, pw, new_key(kty), svc)
    unbound_and_rsa(sigil, app, user, pw)
    dpop_private_key_jwt(sigil, svc)
    jwks_uri_finish(sigil, *uri)


# --- nonce --------------------------------------------------------------


class DpopClient:
    """What a real DPoP client does (RFC 9449 §8, §9): keep the server's
    latest DPoP-Nonce, put it in each proof, and on use_dpop_nonce retry
    once with the new one."""

    def __init__(self, sigil, key):
        self.sigil, self.key, self.nonce, self.retries = sigil, key, None, 0

    def _send(self, method, url, token, data, auth):
        p = proof(self.key, method, url, token, self.nonce)
        data = {**data, **(auth() if auth else {})} if data is not None else None
        if token is None:
            r = requests.request(method, url, data=data, headers={"DPoP": p}, timeout=TIMEOUT)
        else:
            r = self.sigil.resource(method, url, token, p, data=data)
        self.nonce = r.headers.get("dpop-nonce", self.nonce)
        return r

    def request(self, method, url, token=None, data=None, auth=None):
        """`auth` makes the client authentication anew for each attempt (a
        client assertion is single-use)."""
        r = self._send(method, url, token, data, auth)
        asked = (error_of(r) == "use_dpop_nonce" if token is None
                 else dpop_challenge(r, "use_dpop_nonce"))
        if asked:
            self.retries += 1
            r = self._send(method, url, token, data, auth)
        return r


def nonce_run(base, binary, app, user, pw):
    section("DPoP with server nonces (SIGIL_DPOP__REQUIRE_NONCE=true)")
    sigil = Sigil(base, binary)
    key = new_key("EC")
    login = {"grant_type": "password", "client_id": app, "username": user, "password": pw}
    r = sigil.token(login, proof(key, "POST", sigil.token_url))
    nonce = r.headers.get("dpop-nonce")
    check(oauth_error(r, 400, "use_dpop_nonce") and nonce,
          "a proof without a nonce → 400 use_dpop_nonce with a DPoP-Nonce header", desc(r))
    r = sigil.token(login, proof(key, "POST", sigil.token_url, nonce="bm90LWEtbm9uY2U"))
    check(oauth_error(r, 400, "use_dpop_nonce") and r.headers.get("dpop-nonce"),
          "a proof with a made-up nonce → 400 use_dpop_nonce", desc(r))
    r = sigil.token(login, proof(key, "POST", sigil.token_url, nonce=nonce))
    require(r.status_code == 200 and r.json().get("token_type") == "DPoP",
            "the retry with the nonce → 200, token_type DPoP", desc(r))
    check(r.headers.get("dpop-nonce"), "the token response carries DPoP-Nonce too", r.headers)
    at, rt = r.json()["access_token"], r.json()["refresh_token"]
    check(sigil.verify(at).get("cnf", {}).get("jkt") == thumbprint(key),
          "cnf.jkt is joserfc's thumbprint")

    r = sigil.resource("GET", sigil.me_url, at, proof(key, "GET", sigil.me_url, at))
    check(dpop_challenge(r, "use_dpop_nonce") and error_of(r) == "use_dpop_nonce"
          and r.headers.get("dpop-nonce"),
          "/users/me, a proof without a nonce → 401 use_dpop_nonce (DPoP challenge) with "
          "DPoP-Nonce", desc(r))
    r = sigil.resource("GET", sigil.me_url, at,
                       proof(key, "GET", sigil.me_url, at, r.headers.get("dpop-nonce")))
    check(r.status_code == 200 and r.json().get("username") == user,
          "/users/me, the retry with the nonce → 200", desc(r))

    # A client that handles nonces by itself.
    client = DpopClient(sigil, key)
    r = client.request("POST", sigil.token_url,
                       data={"grant_type": "refresh_token", "client_id": app, "refresh_token": rt})
    check(r.status_code == 200 and r.json().get("token_type") == "DPoP" and client.retries == 1,
          "a nonce-handling client refreshes with the same key: use_dpop_nonce (the refresh "
          "token not spent), then 200 DPoP", desc(r) + f" retries={client.retries}")
    at = r.json().get("access_token", at)
    r = client.request("GET", sigil.userinfo_url, token=at)
    check(r.status_code == 200 and client.retries == 1,
          "the same client at /userinfo → 200 at once (the token endpoint's nonce holds there)",
          desc(r) + f" retries={client.retries}")

    # private_key_jwt with DPoP and nonces: a fresh assertion on the retry.
    rsa = new_key("RSA", "n-1")
    with open("client-jwks.json", "w") as f:
        json.dump(jwks_of(rsa), f)
    sigil.register("svc-nonce", "--jwks-file", "client-jwks.json")
    svc = KeyClient(sigil, "svc-nonce", rsa)
    fresh = DpopClient(sigil, new_key("OKP"))
    r = fresh.request("POST", sigil.token_url, data={"grant_type": "client_credentials"},
                      auth=lambda: svc.auth(aud=sigil.token_url))
    check(r.status_code == 200 and r.json().get("token_type") == "DPoP" and fresh.retries == 1,
          "client_credentials by private_key_jwt + EdDSA proof: use_dpop_nonce, then 200 DPoP",
          desc(r) + f" retries={fresh.retries}")
    # A client whose retry changes only the DPoP header, as a generic DPoP
    # HTTP layer would: the body, with its assertion, sent again.
    form = {"grant_type": "client_credentials", **svc.auth()}
    key = new_key("EC")
    r = sigil.token(form, proof(key, "POST", sigil.token_url))
    check(oauth_error(r, 400, "use_dpop_nonce"), "private_key_jwt + a proof without a nonce "
          "→ 400 use_dpop_nonce", desc(r))
    r = sigil.token(form, proof(key, "POST", sigil.token_url, nonce=r.headers.get("dpop-nonce")))
    check(r.status_code == 200,
          "the retry with the nonce and the same assertion → 200 (the refusal did not spend "
          "the assertion)", desc(r))


def main():
    mode, base, binary, app, user, pw = sys.argv[1:7]
    run = {"main": main_run, "nonce": nonce_run}[mode]
    try:
        run(base, binary, app, user, pw)
    except Fatal as e:
        print(f"  stopped: {e} failed, and what follows needs it")
    except Exception as e:  # noqa: BLE001 - any failure is reported, with its cause
        check(False, "no unexpected error", f"{type(e).__name__}: {e}")
    print(f"dpop-interop: {passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)


if __name__ == "__main__":
    main()
