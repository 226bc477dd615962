//! The key-encryption key (KEK): AES-256-GCM over every private signing key
//! stored in the database, with the key's `kid` bound as associated data so a
//! ciphertext cannot be swapped onto another key's row.
//!
//! The KEK comes from config (`kek`, e.g. `SIGIL_KEK`) or from the file
//! `<keys_dir>/kek`, which the embedded default creates (mode 0600) on first start.

use std::fs;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

const KEK_LEN: usize = 32;

pub struct Kek {
    key: LessSafeKey,
    /// Keys derived from the KEK for other purposes, by label.
    refresh_mac: ring::hmac::Key,
    /// Binds the hosted pages' CSRF tokens to their cookie (same on every
    /// node, since all share the KEK).
    csrf_mac: ring::hmac::Key,
    /// Signs the cookie that carries a sign-in between its password and
    /// its second factor.
    pending_mac: ring::hmac::Key,
    /// Makes DPoP server nonces (the same on every node).
    dpop_nonce_mac: ring::hmac::Key,
}

#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error(
        "the key-encryption key is missing ({0}) but the database already holds encrypted signing keys; \
         restore the original KEK file or set SIGIL_KEK"
    )]
    Missing(String),
    /// The payload names where the key came from and what is wrong.
    #[error(
        "the key-encryption key {0}: it must be {KEK_LEN} bytes, base64url-encoded, as `sigil keys new-kek` \
         prints; restore the original"
    )]
    Malformed(String),
    /// The KEK file could not be read (other than not existing).
    #[error(
        "cannot read the key-encryption key at {0}: make keys_dir a folder sigil can read that \
         holds the file `kek` (or set SIGIL_KEK)"
    )]
    Unreadable(String),
    #[error("cannot read or create the key-encryption key: {0}")]
    Io(String),
    #[error(
        "signing key {0} cannot be decrypted: the key-encryption key is wrong, or the stored key was \
         altered; start with the KEK the keys were stored under (the file `kek` in keys_dir, or SIGIL_KEK)"
    )]
    WrongKek(String),
}

impl Kek {
    /// Reads the KEK from `configured` or the file at `path`. When neither
    /// exists and `may_create` (no encrypted keys stored yet), a new one is
    /// generated and written to `path` with mode 0600.
    pub fn load(
        configured: Option<&SecretString>,
        path: &Path,
        may_create: bool,
    ) -> Result<Kek, KekError> {
        if let Some(secret) = configured {
            return Kek::parse(secret.expose_secret(), "in SIGIL_KEK (the `kek` setting)");
        }
        match fs::read_to_string(path) {
            Ok(text) => Kek::parse(&text, &format!("in {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !may_create {
                    return Err(KekError::Missing(format!("no file at {}", path.display())));
                }
                Kek::create(path)
            }
            Err(e) => Err(KekError::Unreadable(format!("{} ({e})", path.display()))),
        }
    }

    /// Parses an encoded KEK; `source` ("in <where>") names it in errors.
    pub fn parse(encoded: &str, source: &str) -> Result<Kek, KekError> {
        Kek::from_encoded(encoded.trim())
            .map_err(|why| KekError::Malformed(format!("{source} is malformed ({why})")))
    }

    /// Checks that the KEK opens every stored private key (a removed key
    /// has none); `Err(WrongKek(kid))` names the first that it does not.
    pub fn opens_all(&self, records: &[crate::store::KeyRecord]) -> Result<(), KekError> {
        for record in records {
            if let Some(sealed) = &record.private_key {
                self.open(&record.kid, sealed)?;
            }
        }
        Ok(())
    }

    /// The reason is never a byte of the key.
    fn from_encoded(encoded: &str) -> Result<Kek, &'static str> {
        // The decoder's error would quote a byte of the key: say nothing of it.
        let bytes = Zeroizing::new(
            B64.decode(encoded.trim_end_matches('='))
                .map_err(|_| "not base64url")?,
        );
        if bytes.len() != KEK_LEN {
            return Err("not 32 bytes long");
        }
        Kek::from_bytes(&bytes).map_err(|_| "rejected")
    }

    fn from_bytes(bytes: &[u8]) -> Result<Kek, KekError> {
        if bytes.len() != KEK_LEN {
            return Err(KekError::Malformed(format!("has {} bytes", bytes.len())));
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| KekError::Malformed("is rejected".into()))?;
        // A separate key for deriving refresh-token successors: HMAC of a
        // fixed label under the KEK, so each purpose has its own key.
        let kek_mac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes);
        let derive = |label: &[u8]| {
            let derived = ring::hmac::sign(&kek_mac, label);
            ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref())
        };
        Ok(Kek {
            key: LessSafeKey::new(key),
            refresh_mac: derive(b"sigil/refresh-successor/v1"),
            csrf_mac: derive(b"sigil/csrf/v1"),
            pending_mac: derive(b"sigil/pending-sign-in/v1"),
            dpop_nonce_mac: derive(b"sigil/dpop-nonce/v1"),
        })
    }

    /// Generates a fresh KEK without storing it (for `sigil keys rewrap`).
    pub fn generate() -> Result<(Kek, SecretString), KekError> {
        let mut bytes = Zeroizing::new([0u8; KEK_LEN]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| KekError::Io("no randomness available".into()))?;
        let encoded = SecretString::from(B64.encode(bytes.as_ref()));
        Ok((Kek::from_bytes(bytes.as_ref())?, encoded))
    }

    /// Generates a new KEK and stages it at `<path>.new` (mode 0600, synced)
    /// for a rewrap; see [`Kek::promote_staged`].
    pub fn stage_new(path: &Path) -> Result<Kek, KekError> {
        let staged = staged_path(path);
        let _ = fs::remove_file(&staged);
        Kek::create(&staged)
    }

    /// Replaces the KEK file with the staged one.
    pub fn promote_staged(path: &Path) -> Result<(), KekError> {
        let io = |e: std::io::Error| KekError::Io(format!("{}: {e}", path.display()));
        fs::rename(staged_path(path), path).map_err(io)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        Ok(())
    }

    /// The staged KEK of an interrupted rewrap, if there is one.
    pub fn load_staged(path: &Path) -> Option<Kek> {
        let text = fs::read_to_string(staged_path(path)).ok()?;
        Kek::from_encoded(text.trim()).ok()
    }

    /// Writes a new KEK atomically: a crash leaves either no file or a
    /// complete one, never an empty file that would block every later start.
    fn create(path: &Path) -> Result<Kek, KekError> {
        let io = |e: std::io::Error| KekError::Io(format!("{}: {e}", path.display()));
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(io)?;
        let (kek, encoded) = Kek::generate()?;
        let temporary = path.with_extension("tmp");
        let _ = fs::remove_file(&temporary);
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temporary).map_err(io)?;
        file.write_all(encoded.expose_secret().as_bytes())
            .map_err(io)?;
        file.write_all(b"\n").map_err(io)?;
        file.sync_all().map_err(io)?;
        fs::rename(&temporary, path).map_err(io)?;
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        tracing::info!(path = %path.display(), "created a new key-encryption key");
        Ok(kek)
    }

    /// The key refresh-token successors are derived with.
    pub fn refresh_mac(&self) -> &ring::hmac::Key {
        &self.refresh_mac
    }

    /// The key CSRF tokens are derived with.
    pub fn csrf_mac(&self) -> &ring::hmac::Key {
        &self.csrf_mac
    }

    /// The key a sign-in awaiting its second factor is signed with.
    pub fn pending_mac(&self) -> &ring::hmac::Key {
        &self.pending_mac
    }

    /// The key DPoP server nonces are made with.
    pub fn dpop_nonce_mac(&self) -> &ring::hmac::Key {
        &self.dpop_nonce_mac
    }

    /// Encrypts `plaintext` for the key `kid`: `nonce || ciphertext || tag`.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, KekError> {
        self.seal_with(aad(kid), plaintext)
    }

    /// Decrypts what [`Kek::seal`] produced for the same `kid`.
    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KekError> {
        self.open_with(aad(kid), sealed, kid)
    }

    /// Encrypts a user's TOTP secret, bound to the user: a sealed secret
    /// moved onto another user's row does not open.
    pub fn seal_totp(&self, user_id: &str, secret: &[u8]) -> Result<Vec<u8>, KekError> {
        self.seal_with(totp_aad(user_id), secret)
    }

    /// Decrypts what [`Kek::seal_totp`] produced for the same user.
    pub fn open_totp(&self, user_id: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KekError> {
        self.open_with(totp_aad(user_id), sealed, user_id)
    }

    fn seal_with(&self, aad: KeyAad, plaintext: &[u8]) -> Result<Vec<u8>, KekError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KekError::Io("no randomness available".into()))?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + plaintext.len() + AES_256_GCM.tag_len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plaintext);
        let mut body = sealed.split_off(NONCE_LEN);
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), aad.as_aad(), &mut body)
            .map_err(|_| KekError::Io("encryption failed".into()))?;
        sealed.extend_from_slice(&body);
        Ok(sealed)
    }

    /// `name` is what a failure names (a kid, a user id).
    fn open_with(
        &self,
        aad: KeyAad,
        sealed: &[u8],
        name: &str,
    ) -> Result<Zeroizing<Vec<u8>>, KekError> {
        let kid = name;
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(KekError::WrongKek(kid.to_string()));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| KekError::WrongKek(kid.to_string()))?;
        let mut buffer = Zeroizing::new(body.to_vec());
        let plaintext_len = self
            .key
            .open_in_place(nonce, aad.as_aad(), &mut buffer)
            .map_err(|_| KekError::WrongKek(kid.to_string()))?
            .len();
        buffer.truncate(plaintext_len);
        Ok(buffer)
    }
}

fn staged_path(path: &Path) -> std::path::PathBuf {
    path.with_extension("new")
}

struct KeyAad(Vec<u8>);

impl KeyAad {
    fn as_aad(&self) -> Aad<&[u8]> {
        Aad::from(self.0.as_slice())
    }
}

fn aad(kid: &str) -> KeyAad {
    KeyAad(format!("sigil-signing-key:{kid}").into_bytes())
}

fn totp_aad(user_id: &str) -> KeyAad {
    KeyAad(format!("sigil-totp:{user_id}").into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_kek_and_kid() {
        let (kek, _) = Kek::generate().unwrap();
        let sealed = kek.seal("kid-1", b"private key bytes").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"private"));
        assert_eq!(
            kek.open("kid-1", &sealed).unwrap().as_slice(),
            b"private key bytes"
        );
        assert!(matches!(
            kek.open("kid-2", &sealed),
            Err(KekError::WrongKek(_))
        ));
        let (other, _) = Kek::generate().unwrap();
        assert!(matches!(
            other.open("kid-1", &sealed),
            Err(KekError::WrongKek(_))
        ));
    }

    #[test]
    fn a_new_kek_file_is_private_to_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/kek");
        Kek::load(None, &path, true).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Reading it back works; a missing file is refused when keys exist.
        Kek::load(None, &path, false).unwrap();
        let missing = dir.path().join("elsewhere/kek");
        assert!(matches!(
            Kek::load(None, &missing, false),
            Err(KekError::Missing(_))
        ));
        assert!(!missing.exists());
    }
}
