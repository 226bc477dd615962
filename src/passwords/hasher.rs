//! argon2id with reused memory.

use std::sync::{Arc, Mutex};

use argon2::password_hash::{
    Decimal, Ident, Output, ParamsString, PasswordHash, PasswordHasher, Salt, SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use super::PasswordError;

/// argon2id (the `argon2` crate's own code) with its memory taken from a
/// pool of buffers, one per hashing slot, kept for the life of the process.
/// Allocating and freeing the memory per hash (19 MiB at the default cost)
/// makes glibc raise its mmap threshold and then hold the freed blocks in
/// fragmented heaps: a login flood grew RSS past 500 MB (scripts/load).
#[derive(Clone)]
pub(super) struct Hasher {
    pub(super) params: Params,
    pub(super) memory: Arc<Mutex<Vec<Vec<Block>>>>,
    /// Buffers kept for reuse (one per slot that can hash at once).
    pub(super) kept: usize,
}

impl Hasher {
    fn with_memory<T>(&self, blocks: usize, job: impl FnOnce(&mut [Block]) -> T) -> T {
        let reused = self.memory.lock().ok().and_then(|mut pool| {
            let at = pool.iter().position(|b| b.len() >= blocks)?;
            Some(pool.swap_remove(at))
        });
        let mut buffer = reused.unwrap_or_else(|| vec![Block::default(); blocks]);
        let result = job(&mut buffer);
        if let Ok(mut pool) = self.memory.lock()
            && pool.len() < self.kept
        {
            pool.push(buffer);
        }
        result
    }
}

impl PasswordHasher for Hasher {
    type Params = Params;

    fn hash_password<'a>(
        &self,
        password: &[u8],
        salt: impl Into<Salt<'a>>,
    ) -> argon2::password_hash::Result<PasswordHash<'a>> {
        let (algorithm, version) = (Algorithm::Argon2id.ident(), Version::V0x13.into());
        let params = self.params.clone();
        self.hash_password_customized(password, Some(algorithm), Some(version), params, salt)
    }

    /// As `Argon2`'s own implementation (verification calls this with the
    /// stored hash's algorithm, version and parameters), but with pooled memory.
    fn hash_password_customized<'a>(
        &self,
        password: &[u8],
        algorithm: Option<Ident<'a>>,
        version: Option<Decimal>,
        params: Params,
        salt: impl Into<Salt<'a>>,
    ) -> argon2::password_hash::Result<PasswordHash<'a>> {
        let algorithm = algorithm
            .map(Algorithm::try_from)
            .transpose()?
            .unwrap_or_default();
        let version = version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let salt = salt.into();
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
        let argon = Argon2::new(algorithm, version, params.clone());
        let length = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let output = Output::init_with(length, |out| {
            self.with_memory(params.block_count(), |blocks| {
                argon.hash_password_into_with_memory(password, salt_bytes, out, blocks)
            })
            .map_err(Into::into)
        })?;
        Ok(PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt),
            hash: Some(output),
        })
    }
}

pub(super) fn hash_blocking(argon: &Hasher, password: &[u8]) -> Result<String, PasswordError> {
    let salt = SaltString::encode_b64(crate::tokens::random_b64::<16>().as_bytes())
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    argon
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

#[cfg(test)]
mod tests {
    use argon2::PasswordVerifier;

    use super::*;

    #[test]
    fn pooled_hashes_match_the_argon2_crate_both_ways() {
        let params = Params::new(64, 1, 1, None).unwrap();
        let pooled = Hasher {
            params: params.clone(),
            memory: Arc::new(Mutex::new(Vec::new())),
            kept: 1,
        };
        let plain = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::encode_b64(b"sixteen byte sal").unwrap();
        let ours = pooled.hash_password(b"pw", &salt).unwrap().to_string();
        let theirs = plain.hash_password(b"pw", &salt).unwrap().to_string();
        assert_eq!(ours, theirs);
        let parsed = PasswordHash::new(&theirs).unwrap();
        assert!(pooled.verify_password(b"pw", &parsed).is_ok());
        assert!(pooled.verify_password(b"other", &parsed).is_err());
        // A hash made with other parameters still verifies (they come from it).
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(128, 2, 1, None).unwrap(),
        );
        let older = other.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(
            pooled
                .verify_password(b"pw", &PasswordHash::new(&older).unwrap())
                .is_ok()
        );
        assert_eq!(pooled.memory.lock().unwrap().len(), 1, "one buffer kept");
    }
}
