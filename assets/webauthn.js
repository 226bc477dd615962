// Sigil's one script: the WebAuthn calls for passkeys on the hosted pages
// (sign in, conditional UI on the username field, add a passkey, sign up
// with one). Every page works without it for passwords; with it, buttons
// marked `hidden` are shown where the browser can use passkeys. Served
// from Sigil under the pages' CSP (script-src 'self', nothing inline); the
// page hands over its CSRF token and where to go on to in data-*
// attributes of #passkey.
(() => {
  'use strict';
  const root = document.getElementById('passkey');
  if (!root || !window.PublicKeyCredential || !navigator.credentials) return;
  const data = root.dataset;

  const toBytes = (text) => {
    const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
    const raw = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  };
  const toText = (buffer) => {
    const bytes = new Uint8Array(buffer);
    let raw = '';
    for (const b of bytes) raw += String.fromCharCode(b);
    return btoa(raw).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  };

  const post = async (url, body) => {
    const response = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-csrf-token': data.csrf },
      body: JSON.stringify(body),
    });
    let answer = {};
    try { answer = await response.json(); } catch (_) { /* not JSON */ }
    if (!response.ok) throw new Error(answer.error_description || 'The passkey could not be used.');
    return answer;
  };

  const creationOptions = (options) => {
    const o = options.publicKey;
    o.challenge = toBytes(o.challenge);
    o.user.id = toBytes(o.user.id);
    (o.excludeCredentials || []).forEach((c) => { c.id = toBytes(c.id); });
    // A discoverable credential, so that it signs in without a username.
    o.authenticatorSelection = Object.assign({}, o.authenticatorSelection,
      { residentKey: 'required', requireResidentKey: true });
    return o;
  };
  const requestOptions = (options) => {
    const o = options.publicKey;
    o.challenge = toBytes(o.challenge);
    (o.allowCredentials || []).forEach((c) => { c.id = toBytes(c.id); });
    return o;
  };
  const attestation = (cred) => ({
    id: cred.id,
    rawId: toText(cred.rawId),
    type: cred.type,
    response: {
      attestationObject: toText(cred.response.attestationObject),
      clientDataJSON: toText(cred.response.clientDataJSON),
      transports: cred.response.getTransports ? cred.response.getTransports() : undefined,
    },
    extensions: cred.getClientExtensionResults(),
  });
  const assertion = (cred) => ({
    id: cred.id,
    rawId: toText(cred.rawId),
    type: cred.type,
    response: {
      authenticatorData: toText(cred.response.authenticatorData),
      clientDataJSON: toText(cred.response.clientDataJSON),
      signature: toText(cred.response.signature),
      userHandle: cred.response.userHandle ? toText(cred.response.userHandle) : null,
    },
    extensions: cred.getClientExtensionResults(),
  });

  const errorBox = document.getElementById('passkey-error');
  const show = (message) => {
    if (!errorBox) return;
    errorBox.textContent = message;
    errorBox.hidden = false;
  };
  const cancelled = (e) => e && (e.name === 'AbortError' || e.name === 'NotAllowedError');
  const onwards = { request: data.request || '', device: data.device || '' };

  const signIn = async (mediation, signal) => {
    const start = await post('/passkeys/sign-in/start', {});
    const credential = await navigator.credentials.get({
      publicKey: requestOptions(start.options), mediation, signal,
    });
    const done = await post('/passkeys/sign-in/finish',
      Object.assign({ ceremony: start.ceremony, credential: assertion(credential) }, onwards));
    window.location.assign(done.location);
  };

  const register = async (name) => {
    const start = await post('/account/passkeys/register/start', {});
    const credential = await navigator.credentials.create({ publicKey: creationOptions(start.options) });
    const done = await post('/account/passkeys/register/finish',
      { ceremony: start.ceremony, credential: attestation(credential), name });
    window.location.assign(done.location);
  };

  const signUp = async (username, email) => {
    const start = await post('/signup/passkey/start', { username, email });
    const credential = await navigator.credentials.create({ publicKey: creationOptions(start.options) });
    const done = await post('/signup/passkey/finish',
      Object.assign({ ceremony: start.ceremony, credential: attestation(credential) }, onwards));
    window.location.assign(done.location);
  };

  const reveal = (id, handler) => {
    const button = document.getElementById(id);
    if (!button) return;
    button.hidden = false;
    button.addEventListener('click', async () => {
      button.disabled = true;
      if (errorBox) errorBox.hidden = true;
      try {
        await handler();
      } catch (e) {
        show(cancelled(e) ? 'The passkey request was cancelled.' : e.message);
      } finally {
        button.disabled = false;
      }
    });
  };

  if (data.mode === 'sign-in') {
    // Conditional UI: passkeys offered in the username field's autofill.
    let conditional = null;
    if (data.conditional && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then((available) => {
        if (!available) return;
        conditional = new AbortController();
        signIn('conditional', conditional.signal).catch((e) => {
          if (!cancelled(e)) show(e.message);
        });
      });
    }
    reveal('use-passkey', () => {
      if (conditional) conditional.abort();
      return signIn('optional');
    });
  } else if (data.mode === 'register') {
    reveal('add-passkey', () => {
      const field = document.getElementById('passkey-name');
      return register(field && field.value ? field.value : 'Passkey');
    });
    const nameRow = document.getElementById('passkey-name-row');
    if (nameRow) nameRow.hidden = false;
  } else if (data.mode === 'sign-up') {
    reveal('sign-up-passkey', () => signUp(
      document.getElementById('username').value,
      document.getElementById('email').value,
    ));
  }
})();
