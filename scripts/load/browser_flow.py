"""Browser sign-in load driver for scripts/load/run.sh (wrk cannot follow a
multi-step flow: it would have to parse the sign-in page and carry its
cookies from one request to the next).

  browser_flow.py full     --base URL [options]   whole sign-ins, one after another
  browser_flow.py exchange --base URL [options]   the code exchange alone
  browser_flow.py session  --base URL [options]   one sign-in; prints its Cookie header

Each virtual user is one browser: its own cookies (a small jar fed from
Set-Cookie, since aiohttp's own jar ignores cookies from an IP address
such as 127.0.0.1), one flow at a time, a fresh PKCE verifier, state and
nonce on every authorization request.

full: each loop is GET /authorize (no session: the sign-in page) -> POST
/login with the page's csrf and request fields (303 to the redirect URI
with code and state) -> POST /oauth/token (200 with access, ID and refresh
tokens). The latency is the whole loop's; the cookies the login set (the
session) are dropped before the next loop, so every loop is a sign-in and
not single sign-on, while the CSRF cookie stays as a returning browser's
would.

exchange: each virtual user signs in once, then repeats rounds: mint
--batch codes through GET /authorize with its session cookie (untimed),
then, once every user has minted, all of them exchange their codes
(timed). The rate is exchanges over the wall time of the exchange phases
only, so the authorization requests neither share the server with the
timed exchanges nor count in their time; each round stays well inside the
codes' 60 s lifetime.

done: one line "RESULT {json}" with the keys sigil.lua's done() prints
(requests, seconds, rps, p50_ms ... max_ms, non2xx, socket_errors,
timeouts, ok, broken, reused, minted), where a request is a completed
sign-in (full) or exchange (exchange), non2xx counts every failed flow
whatever the step (also in `errors`, by kind), and `method` says how it
was measured. The first few failures are described on stderr.
"""

import argparse
import asyncio
import base64
import hashlib
import html.parser
import json
import os
import sys
import time
import urllib.parse
from http.cookies import SimpleCookie

import aiohttp


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def pkce():
    verifier = b64url(os.urandom(32))
    return verifier, b64url(hashlib.sha256(verifier.encode()).digest())


class FlowError(Exception):
    """A step that did not answer as a browser sign-in must: `kind` is what
    the report counts it under, `detail` what stderr shows."""

    def __init__(self, kind, detail=""):
        super().__init__(kind)
        self.kind = kind
        self.detail = detail


class SignInForm(html.parser.HTMLParser):
    """The fields of <form id="sign-in-form"> (the parser unescapes the
    values: &amp; &#x27; &quot; ...)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found = False
        self.inside = False
        self.action = None
        self.fields = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("id") == "sign-in-form":
            self.found = self.inside = True
            self.action = attrs.get("action")
        elif tag == "input" and self.inside and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False


class Jar:
    """One browser's cookies: name -> value, as Set-Cookie said (Max-Age=0
    deletes). Path and domain are not checked: every request goes to the
    one server, under Path=/."""

    def __init__(self):
        self.cookies = {}

    def take(self, response):
        names = []
        for header in response.headers.getall("Set-Cookie", []):
            parsed = SimpleCookie()
            parsed.load(header)
            for name, morsel in parsed.items():
                names.append(name)
                if morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return names

    def header(self):
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())


class Browser:
    def __init__(self, args, http, username):
        self.args = args
        self.http = http
        self.username = username
        self.jar = Jar()

    def _headers(self, extra=None):
        headers = {"User-Agent": "sigil-load/browser_flow"}
        if self.jar.cookies:
            headers["Cookie"] = self.jar.header()
        headers.update(extra or {})
        return headers

    def authorize_url(self):
        verifier, challenge = pkce()
        state = b64url(os.urandom(12))
        query = urllib.parse.urlencode({
            "response_type": "code",
            "client_id": self.args.client,
            "redirect_uri": self.args.redirect_uri,
            "scope": self.args.scope,
            "state": state,
            "nonce": b64url(os.urandom(12)),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }, quote_via=urllib.parse.quote)
        return f"{self.args.base}/authorize?{query}", verifier, state

    def code_from(self, status, location, state, step):
        """The code of a 303 to the redirect URI, after checking its state."""
        if status != 303:
            raise FlowError(f"{step}_status_{status}")
        if not location.startswith(self.args.redirect_uri + "?"):
            raise FlowError(f"{step}_redirect_elsewhere", location[:200])
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
        if "error" in query:
            raise FlowError(f"{step}_error_{query['error'][0]}", location[:300])
        if query.get("state") != [state]:
            raise FlowError(f"{step}_wrong_state", location[:300])
        code = query.get("code", [""])[0]
        if not code:
            raise FlowError(f"{step}_no_code", location[:300])
        return code

    async def sign_in(self):
        """GET /authorize without a session, then POST /login: the code and
        its verifier, and the names of the cookies the login set."""
        url, verifier, state = self.authorize_url()
        async with self.http.get(url, headers=self._headers(), allow_redirects=False) as r:
            self.jar.take(r)
            body = await r.text()
            if r.status != 200:
                raise FlowError(f"authorize_status_{r.status}", body[:200])
        form = SignInForm()
        form.feed(body)
        if not form.found or "csrf" not in form.fields or "request" not in form.fields:
            raise FlowError("authorize_no_sign_in_form", body[:200])
        fields = {
            "csrf": form.fields["csrf"],
            "request": form.fields["request"],
            "username": self.username,
            "password": self.args.password,
        }
        action = urllib.parse.urljoin(self.args.base + "/", form.action or "/login")
        async with self.http.post(action, data=fields, headers=self._headers(),
                                  allow_redirects=False) as r:
            session_cookies = self.jar.take(r)
            body = await r.text()
            if r.status != 303:
                raise FlowError(f"login_status_{r.status}", body[:200])
            code = self.code_from(r.status, r.headers.get("Location", ""), state, "login")
        if not session_cookies:
            raise FlowError("login_no_session_cookie")
        return code, verifier, session_cookies

    async def sso_code(self):
        """GET /authorize with the session: a 303 with a fresh code."""
        url, verifier, state = self.authorize_url()
        async with self.http.get(url, headers=self._headers(), allow_redirects=False) as r:
            self.jar.take(r)
            await r.read()
            if r.status == 200:
                raise FlowError("sso_sign_in_page_again", "the session was not accepted")
            code = self.code_from(r.status, r.headers.get("Location", ""), state, "sso")
        return code, verifier

    async def exchange(self, code, verifier):
        fields = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.args.redirect_uri,
            "code_verifier": verifier,
            "client_id": self.args.client,
        }
        headers = {"Accept": "application/json", "User-Agent": "sigil-load/browser_flow"}
        async with self.http.post(f"{self.args.base}/oauth/token", data=fields, headers=headers) as r:
            body = await r.text()
            if r.status != 200:
                raise FlowError(f"token_status_{r.status}", body[:300])
        try:
            grant = json.loads(body)
        except ValueError:
            raise FlowError("token_not_json", body[:200]) from None
        for field in ("access_token", "id_token", "refresh_token"):
            if not grant.get(field):
                raise FlowError(f"token_no_{field}", body[:300])


class Tally:
    def __init__(self):
        self.latencies = []
        self.errors = {}
        self.socket_errors = 0
        self.timeouts = 0
        self.http_requests = 0

    async def run(self, step):
        """Awaits `step`: (its value, its latency in s), or None after a
        failure (counted, by kind)."""
        started = time.perf_counter()
        try:
            value = await step
        except FlowError as e:
            self.fail(e.kind, e.detail)
            return None
        except asyncio.TimeoutError:
            self.timeouts += 1
            self.fail("timeout")
            return None
        except aiohttp.ClientError as e:
            self.socket_errors += 1
            self.fail("socket_" + type(e).__name__, str(e))
            return None
        return value, time.perf_counter() - started

    def fail(self, kind, detail=""):
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if sum(self.errors.values()) <= 3:
            print(f"browser_flow: {kind} {detail}".rstrip(), file=sys.stderr)

    def result(self, name, seconds, method, extra=None):
        lat = sorted(self.latencies)

        def pct(p):  # nearest rank, in ms
            if not lat:
                return 0.0
            return lat[min(len(lat) - 1, max(0, int(round(p / 100 * len(lat))) - 1))] * 1000

        r = {
            "name": name,
            "requests": len(lat),
            "seconds": round(seconds, 3),
            "rps": round(len(lat) / seconds, 1) if seconds > 0 else 0.0,
            "p50_ms": round(pct(50), 3), "p90_ms": round(pct(90), 3), "p99_ms": round(pct(99), 3),
            "max_ms": round(lat[-1] * 1000, 3) if lat else 0.0,
            "non2xx": sum(self.errors.values()),
            "socket_errors": self.socket_errors, "timeouts": self.timeouts,
            "ok": len(lat), "broken": 0, "reused": 0, "minted": 0,
            "errors": self.errors, "method": method,
        }
        r.update(extra or {})
        return r


def username(args, i):
    return f"{args.user_prefix}{(i % args.users) + 1}"


async def full(args, http):
    tally = Tally()
    deadline = time.perf_counter() + args.duration

    async def one_flow(browser):
        code, verifier, session_cookies = await browser.sign_in()
        # Signed out for the next loop: it must be a sign-in again.
        for name in session_cookies:
            browser.jar.cookies.pop(name, None)
        await browser.exchange(code, verifier)

    async def user(i):
        browser = Browser(args, http, username(args, i))
        while time.perf_counter() < deadline:
            outcome = await tally.run(one_flow(browser))
            if outcome is None:
                await asyncio.sleep(0.01)  # a failing server: do not spin
            else:
                tally.latencies.append(outcome[1])

    started = time.perf_counter()
    await asyncio.gather(*(user(i) for i in range(args.connections)))
    method = ("whole sign-ins: GET /authorize (sign-in page), POST /login, POST /oauth/token; "
              f"{args.connections} virtual users, one flow at a time each; "
              "latency = the whole flow; requests = completed sign-ins")
    return tally.result(args.name, time.perf_counter() - started, method)


async def exchange(args, http):
    tally = Tally()
    browsers = [Browser(args, http, username(args, i)) for i in range(args.connections)]

    async def sign_in(browser):  # once per virtual user, untimed
        code, verifier, _ = await browser.sign_in()
        await browser.exchange(code, verifier)

    setup = Tally()
    outcomes = await asyncio.gather(*(setup.run(sign_in(b)) for b in browsers))
    signed_in = [b for b, outcome in zip(browsers, outcomes) if outcome is not None]
    # A user who could not sign in is left out, and its failure counted.
    for kind, count in setup.errors.items():
        tally.errors["setup_" + kind] = count
    tally.socket_errors += setup.socket_errors
    tally.timeouts += setup.timeouts

    exchange_seconds = 0.0
    minted = 0
    rounds = 0
    run_started = time.perf_counter()
    while exchange_seconds < args.duration and signed_in:
        codes = {b: [] for b in signed_in}

        async def mint(b):
            for _ in range(args.batch):
                outcome = await tally.run(b.sso_code())
                if outcome is not None:
                    codes[b].append(outcome[0])

        await asyncio.gather(*(mint(b) for b in signed_in))
        minted += sum(len(c) for c in codes.values())

        async def spend(b):
            for code, verifier in codes[b]:
                outcome = await tally.run(b.exchange(code, verifier))
                if outcome is not None:
                    tally.latencies.append(outcome[1])

        phase = time.perf_counter()
        await asyncio.gather(*(spend(b) for b in signed_in))
        exchange_seconds += time.perf_counter() - phase
        rounds += 1
        if not any(codes.values()):
            break  # nothing could be minted: the errors say why
    method = (f"code exchange alone: {len(signed_in)} virtual users signed in once, then {rounds} rounds "
              f"of {args.batch} codes each minted by GET /authorize with the session (untimed), then "
              "exchanged by all users at once; rps = exchanges / wall time of the exchange phases; "
              "latency = each POST /oauth/token")
    return tally.result(args.name, exchange_seconds, method,
                        {"minted": minted, "rounds": rounds,
                         "wall_seconds": round(time.perf_counter() - run_started, 3)})


async def session(args, http):
    browser = Browser(args, http, username(args, 0))
    await browser.sign_in()
    # The Cookie header a browser would send from now on (the session and
    # the CSRF cookie), checked once: with it /authorize answers a code.
    await browser.sso_code()
    print(browser.jar.header())
    return None


async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["full", "exchange", "session"])
    p.add_argument("--base", required=True, help="the server, e.g. http://127.0.0.1:8080")
    p.add_argument("--name", help="scenario name in the RESULT line (default: the mode)")
    p.add_argument("--duration", type=float, default=20, help="seconds (exchange: of exchange phases)")
    p.add_argument("--connections", type=int, default=32, help="virtual users")
    p.add_argument("--batch", type=int, default=20, help="exchange: codes per user per round")
    p.add_argument("--client", default="web-bench")
    p.add_argument("--redirect-uri", default="http://127.0.0.1/cb")
    p.add_argument("--scope", default="openid profile")
    p.add_argument("--user-prefix", default="loaduser", help="users are PREFIX1 .. PREFIXn")
    p.add_argument("--users", type=int, default=4, help="n, above; user i is PREFIX((i %% n) + 1)")
    p.add_argument("--password", default=os.environ.get("LOAD_PASSWORD", ""),
                   help="the users' password (default: $LOAD_PASSWORD)")
    p.add_argument("--timeout", type=float, default=10, help="per request, as wrk's --timeout")
    args = p.parse_args()
    args.base = args.base.rstrip("/")
    args.name = args.name or args.mode

    connector = aiohttp.TCPConnector(limit=args.connections + 4, force_close=False)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     cookie_jar=aiohttp.DummyCookieJar()) as http:
        if args.mode == "session":
            try:
                await session(args, http)
            except FlowError as e:
                print(f"browser_flow: sign-in failed: {e.kind} {e.detail}", file=sys.stderr)
                return 1
            return 0
        result = await (full(args, http) if args.mode == "full" else exchange(args, http))
    print("RESULT " + json.dumps(result, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
