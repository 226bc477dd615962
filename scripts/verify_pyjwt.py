"""Verify Sigil access tokens with PyJWT, knowing nothing but the JWKS URL.

Usage: python3 verify_pyjwt.py ISSUER TOKEN [TOKEN ...]
Exits non-zero if any token fails to verify.
"""

import sys

import jwt  # PyJWT

issuer, tokens = sys.argv[1], sys.argv[2:]
jwks = jwt.PyJWKClient(f"{issuer}/.well-known/jwks.json")
for token in tokens:
    key = jwks.get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key,
        # Pin the algorithms: never let the token header choose freely.
        algorithms=["RS256", "EdDSA"],
        audience=issuer,
        issuer=issuer,
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
    )
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt", header
    print(f"PyJWT verified {header['alg']} token for sub={claims['sub']} scope={claims['scope']!r}")
