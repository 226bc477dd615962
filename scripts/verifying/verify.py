"""Verify a Sigil access token with PyJWT (see requirements.txt).

Usage: python verify.py ISSUER AUDIENCE TOKEN
Prints the claims and exits 0 if the token is valid, else prints why and exits 1.
"""

import json
import sys

import jwt  # PyJWT

ALGORITHMS = ["RS256", "EdDSA"]  # never HS256 or none
LEEWAY = 30  # seconds of clock skew allowed on exp, nbf and iat


class SigilVerifier:
    def __init__(self, issuer, audience):
        self.issuer = issuer
        self.audience = audience
        # Create one client per process and keep it: it holds the JWKS cache.
        self.jwks = jwt.PyJWKClient(
            f"{issuer}/.well-known/jwks.json",
            # PyJWKClient ignores Cache-Control: keep this at or below
            # Sigil's jwks_max_age (default 900 s).
            lifespan=300,
            # An unknown kid refetches the JWKS at most once per 30 s
            # (PyJWT >= 2.14; older versions refetch on every unknown kid).
            cooldown_duration=30,
            timeout=5,
        )

    def verify(self, token):
        """Return the claims of a valid token; raise jwt.PyJWTError if not."""
        key = self.jwks.get_signing_key_from_jwt(token)
        decoded = jwt.decode_complete(
            token,
            key,
            algorithms=ALGORITHMS,
            issuer=self.issuer,
            audience=self.audience,
            leeway=LEEWAY,
            options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
        )
        # RFC 9068: an access token says so in its header. PyJWT does not check it.
        typ = decoded["header"].get("typ")
        if not isinstance(typ, str) or typ.lower() not in ("at+jwt", "application/at+jwt"):
            raise jwt.InvalidTokenError(f"typ is {typ!r}, not at+jwt")
        return decoded["payload"]


if __name__ == "__main__":
    issuer, audience, token = sys.argv[1:4]
    try:
        claims = SigilVerifier(issuer, audience).verify(token)
    except jwt.PyJWTError as e:
        print(f"rejected: {type(e).__name__}: {e}")
        sys.exit(1)
    print(json.dumps(claims))
