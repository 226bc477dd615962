// Verify a Sigil access token with jose (see package.json).
//
// Usage: node verify.mjs ISSUER AUDIENCE TOKEN
// Prints the claims and exits 0 if the token is valid, else prints why and exits 1.
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { createRemoteJWKSet, errors, jwtVerify } from 'jose';

// Create one verifier per process and keep it: it holds the JWKS cache.
export function sigilVerifier(issuer, audience) {
  const jwks = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`), {
    // jose ignores Cache-Control: keep this at or below Sigil's jwks_max_age (default 900 s).
    cacheMaxAge: 300_000,
    // An unknown kid refetches the JWKS at most once per 30 s.
    cooldownDuration: 30_000,
    timeoutDuration: 5_000,
  });
  return async function verify(token) {
    const { payload } = await jwtVerify(token, jwks, {
      algorithms: ['RS256', 'EdDSA'], // never HS256 or none
      typ: 'at+jwt', // RFC 9068; also accepts application/at+jwt
      issuer,
      audience,
      clockTolerance: 30, // seconds of clock skew allowed on exp and nbf
      // jose checks exp and nbf only when present: require them.
      requiredClaims: ['exp', 'iat', 'nbf', 'sub', 'jti'],
    });
    return payload;
  };
}

// Run as a script (not imported): compare real paths, as Node resolves symlinks.
if (import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  const [issuer, audience, token] = process.argv.slice(2);
  try {
    const claims = await sigilVerifier(issuer, audience)(token);
    console.log(JSON.stringify(claims));
  } catch (e) {
    if (!(e instanceof errors.JOSEError)) throw e;
    console.log(`rejected: ${e.code}${e.claim ? ` (${e.claim})` : ''}: ${e.message}`);
    process.exitCode = 1;
  }
}
