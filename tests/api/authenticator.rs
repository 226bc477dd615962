//! A software WebAuthn authenticator for the API tests: ES256 keys (ring),
//! "none" attestation, discoverable credentials with user verification —
//! what a platform passkey answers a browser, built here from the
//! WebAuthn Level 3 and CTAP2 formats rather than with Sigil's code, so
//! that the server's checks are tested against an independent encoder.
//! (The real browser test drives Chromium's virtual authenticator.)

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

/// Authenticator data flags (WebAuthn §6.1).
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;
const AT: u8 = 0x40;

/// A minimal CBOR encoder (RFC 8949): what attestation objects and COSE
/// keys need.
enum Cbor {
    Int(i64),
    Bytes(Vec<u8>),
    Text(&'static str),
    Map(Vec<(Cbor, Cbor)>),
}

impl Cbor {
    fn encode(&self, out: &mut Vec<u8>) {
        let head = |out: &mut Vec<u8>, major: u8, n: u64| {
            let m = major << 5;
            if n < 24 {
                out.push(m | n as u8);
            } else if n < 256 {
                out.extend([m | 24, n as u8]);
            } else if n < 65536 {
                out.push(m | 25);
                out.extend((n as u16).to_be_bytes());
            } else {
                out.push(m | 26);
                out.extend((n as u32).to_be_bytes());
            }
        };
        match self {
            Cbor::Int(i) if *i >= 0 => head(out, 0, *i as u64),
            Cbor::Int(i) => head(out, 1, (-1 - *i) as u64),
            Cbor::Bytes(b) => {
                head(out, 2, b.len() as u64);
                out.extend(b);
            }
            Cbor::Text(t) => {
                head(out, 3, t.len() as u64);
                out.extend(t.as_bytes());
            }
            Cbor::Map(entries) => {
                head(out, 5, entries.len() as u64);
                for (k, v) in entries {
                    k.encode(out);
                    v.encode(out);
                }
            }
        }
    }

    fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// One credential the authenticator holds.
#[derive(Clone)]
pub struct Credential {
    pub id: Vec<u8>,
    pkcs8: Vec<u8>,
    /// The user handle the relying party gave at registration.
    pub user_handle: Vec<u8>,
    pub rp_id: String,
    pub counter: u32,
}

pub struct Authenticator {
    /// The origin the "browser" reports in the client data.
    pub origin: String,
    /// Whether credentials are synced (backup eligible and backed up).
    pub synced: bool,
    pub credentials: Vec<Credential>,
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

fn field<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, k| &v[*k])
}

impl Authenticator {
    pub fn new(origin: &str) -> Authenticator {
        Authenticator {
            origin: origin.to_string(),
            synced: false,
            credentials: Vec::new(),
        }
    }

    fn flags(&self) -> u8 {
        UP | UV | if self.synced { BE | BS } else { 0 }
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        }))
        .unwrap()
    }

    /// `navigator.credentials.create` for the `options` a start endpoint
    /// answered (`{publicKey: …}`): the JSON the page's script posts.
    pub fn create(&mut self, options: &Value) -> Value {
        let public_key = &options["publicKey"];
        let rp_id = field(public_key, &["rp", "id"]).as_str().expect("rp.id");
        let challenge = public_key["challenge"].as_str().expect("challenge");
        let user_handle = B64
            .decode(
                field(public_key, &["user", "id"])
                    .as_str()
                    .expect("user.id"),
            )
            .expect("user.id base64url");
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("key")
            .as_ref()
            .to_vec();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8, &rng)
            .expect("key pair");
        let point = pair.public_key().as_ref();
        let cose = Cbor::Map(vec![
            (Cbor::Int(1), Cbor::Int(2)),
            (Cbor::Int(3), Cbor::Int(-7)),
            (Cbor::Int(-1), Cbor::Int(1)),
            (Cbor::Int(-2), Cbor::Bytes(point[1..33].to_vec())),
            (Cbor::Int(-3), Cbor::Bytes(point[33..65].to_vec())),
        ]);
        let mut id = vec![0u8; 32];
        sigil::tokens::fill_random(&mut id);
        let mut auth_data = sha256(rp_id.as_bytes());
        auth_data.push(self.flags() | AT);
        auth_data.extend(0u32.to_be_bytes());
        auth_data.extend([0u8; 16]);
        auth_data.extend((id.len() as u16).to_be_bytes());
        auth_data.extend(&id);
        auth_data.extend(cose.to_vec());
        let attestation = Cbor::Map(vec![
            (Cbor::Text("fmt"), Cbor::Text("none")),
            (Cbor::Text("attStmt"), Cbor::Map(vec![])),
            (Cbor::Text("authData"), Cbor::Bytes(auth_data)),
        ]);
        let client_data = self.client_data("webauthn.create", challenge);
        self.credentials.push(Credential {
            id: id.clone(),
            pkcs8,
            user_handle,
            rp_id: rp_id.to_string(),
            counter: 0,
        });
        json!({
            "id": B64.encode(&id),
            "rawId": B64.encode(&id),
            "type": "public-key",
            "response": {
                "attestationObject": B64.encode(attestation.to_vec()),
                "clientDataJSON": B64.encode(client_data),
                "transports": ["internal"],
            },
            "extensions": {},
        })
    }

    /// `navigator.credentials.get` with credential `which` (an index into
    /// `credentials`) for the `options` a start endpoint answered.
    pub fn get(&mut self, options: &Value, which: usize) -> Value {
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .expect("challenge")
            .to_string();
        let flags = self.flags();
        let client_data = self.client_data("webauthn.get", &challenge);
        let credential = &mut self.credentials[which];
        credential.counter += 1;
        assertion(credential, flags, &client_data)
    }
}

/// An assertion by `credential` over `client_data`, as the authenticator
/// signs it: authenticator data, then the client data's hash.
pub fn assertion(credential: &Credential, flags: u8, client_data: &[u8]) -> Value {
    let rng = SystemRandom::new();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &credential.pkcs8, &rng)
        .expect("key pair");
    let mut auth_data = sha256(credential.rp_id.as_bytes());
    auth_data.push(flags);
    auth_data.extend(credential.counter.to_be_bytes());
    let mut signed = auth_data.clone();
    signed.extend(sha256(client_data));
    let signature = pair.sign(&rng, &signed).expect("signature");
    json!({
        "id": B64.encode(&credential.id),
        "rawId": B64.encode(&credential.id),
        "type": "public-key",
        "response": {
            "authenticatorData": B64.encode(&auth_data),
            "clientDataJSON": B64.encode(client_data),
            "signature": B64.encode(signature.as_ref()),
            "userHandle": B64.encode(&credential.user_handle),
        },
        "extensions": {},
    })
}
