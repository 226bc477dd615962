//! The hardware ceiling of each primitive that bounds a Sigil endpoint,
//! measured on one core and on every core at once: argon2id hashes at the
//! configured default parameters; RSA-2048 (RS256) and Ed25519 signatures
//! with `ring`; their verification with `jsonwebtoken` (the code Sigil
//! verifies with); and `fdatasync` of a small write in `--dir`, which bounds
//! a durable database commit (SQLite `synchronous=FULL`, Postgres commit).
//!
//! A criterion benchmark measures one core; the targets of the load
//! harness are for the whole machine, where two hashes may contend for
//! memory bandwidth. So this runs `threads` workers for a fixed time and
//! counts completed operations. scripts/load/run.sh runs it before the load
//! scenarios and divides each endpoint's throughput by the matching figure.
//!
//! Run: cargo bench -p sigil --bench ceilings [-- --secs S --threads N --dir D]
//! Prints one `key=value` line per measurement (and a human summary on
//! standard error).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use sigil::config::Argon2Config;
use sigil::keys::{Alg, generate};

/// Runs `op` on `threads` threads for `secs`; operations per second.
fn throughput(threads: usize, secs: f64, op: Arc<dyn Fn() + Send + Sync>) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, done, op) = (Arc::clone(&stop), Arc::clone(&done), Arc::clone(&op));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    op();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.join();
    }
    // Operations finishing after the stop still ran inside the elapsed time.
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let secs: f64 = arg("--secs").and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads: usize = arg("--threads")
        .and_then(|s| s.parse().ok())
        .unwrap_or(cores);

    let defaults = Argon2Config::default();
    let params = argon2::Params::new(
        defaults.memory_kib,
        defaults.iterations,
        defaults.parallelism,
        Some(32),
    )
    .expect("argon2 params");
    let argon2: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params.clone(),
        );
        let mut out = [0u8; 32];
        argon
            .hash_password_into(b"correct horse battery staple", &[42u8; 16], &mut out)
            .expect("argon2");
    });

    let input = vec![b'x'; 420]; // about the size of an access token's header.payload
    let rsa_key = generate(Alg::RS256, 2048).expect("rsa key");
    let rsa = Arc::new(RsaKeyPair::from_pkcs8(&rsa_key.pkcs8).expect("rsa"));
    let rsa_input = input.clone();
    let rs256: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        let rng = SystemRandom::new();
        let mut signature = vec![0u8; rsa.public().modulus_len()];
        rsa.sign(&RSA_PKCS1_SHA256, &rng, &rsa_input, &mut signature)
            .expect("sign");
    });
    let ed_key = generate(Alg::EdDSA, 2048).expect("ed25519 key");
    let ed = Arc::new(Ed25519KeyPair::from_pkcs8_maybe_unchecked(&ed_key.pkcs8).expect("ed25519"));
    let eddsa: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        std::hint::black_box(ed.sign(&input));
    });

    // Verification of a real token shape: header.payload.signature.
    let token_for = |alg: Alg, sign: &dyn Fn(&[u8]) -> Vec<u8>| {
        let header = B64.encode(format!(r#"{{"alg":"{alg}","typ":"at+jwt"}}"#));
        let payload = B64.encode(
            r#"{"iss":"i","sub":"s","aud":"a","exp":4102444800,"iat":0,"nbf":0,"jti":"j","client_id":"c"}"#,
        );
        let input = format!("{header}.{payload}");
        format!("{input}.{}", B64.encode(sign(input.as_bytes())))
    };
    let decoding_for = |jwk: &serde_json::Value, alg: Alg| {
        let field = |name: &str| jwk[name].as_str().expect("jwk member").to_string();
        match alg {
            Alg::RS256 => DecodingKey::from_rsa_components(&field("n"), &field("e")).expect("rsa"),
            Alg::EdDSA => DecodingKey::from_ed_components(&field("x")).expect("ed25519"),
        }
    };
    let verify_op = |alg: Alg, token: String, key: DecodingKey| -> Arc<dyn Fn() + Send + Sync> {
        let mut validation = Validation::new(match alg {
            Alg::RS256 => Algorithm::RS256,
            Alg::EdDSA => Algorithm::EdDSA,
        });
        validation.validate_aud = false;
        Arc::new(move || {
            jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).expect("verify");
        })
    };
    let rsa_for_token = RsaKeyPair::from_pkcs8(&rsa_key.pkcs8).expect("rsa");
    let rs256_token = token_for(Alg::RS256, &|input| {
        let mut signature = vec![0u8; rsa_for_token.public().modulus_len()];
        rsa_for_token
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input,
                &mut signature,
            )
            .expect("sign");
        signature
    });
    let ed_for_token = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&ed_key.pkcs8).expect("ed25519");
    let eddsa_token = token_for(Alg::EdDSA, &|input| {
        ed_for_token.sign(input).as_ref().to_vec()
    });
    let rs256_verify = verify_op(
        Alg::RS256,
        rs256_token,
        decoding_for(&rsa_key.public_jwk, Alg::RS256),
    );
    let eddsa_verify = verify_op(
        Alg::EdDSA,
        eddsa_token,
        decoding_for(&ed_key.public_jwk, Alg::EdDSA),
    );

    // A durable commit: append a small record and fdatasync, each thread to
    // its own file. A database's WAL is one file, so the 1-thread figure is
    // what bounds SQLite's commits.
    let dir = arg("--dir").map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    let next_file = Arc::new(AtomicU64::new(0));
    let fsync: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        thread_local! {
            static FILE: std::cell::RefCell<Option<std::fs::File>> =
                const { std::cell::RefCell::new(None) };
        }
        FILE.with(|file| {
            let mut file = file.borrow_mut();
            let file = file.get_or_insert_with(|| {
                let n = next_file.fetch_add(1, Ordering::Relaxed);
                let path = dir.join(format!("sigil-ceiling-fsync-{}-{n}", std::process::id()));
                let f = std::fs::File::create(&path).expect("fsync probe file");
                let _ = std::fs::remove_file(&path);
                f
            });
            file.write_all(&[0u8; 512]).expect("write");
            file.sync_data().expect("fdatasync");
        });
    });

    let label = format!(
        "argon2id_m{}_t{}_p{}",
        defaults.memory_kib, defaults.iterations, defaults.parallelism
    );
    for (name, op) in [
        (label.as_str(), argon2),
        ("rs256_sign", rs256),
        ("eddsa_sign", eddsa),
        ("rs256_verify", rs256_verify),
        ("eddsa_verify", eddsa_verify),
        ("fdatasync", fsync),
    ] {
        let one = throughput(1, secs, Arc::clone(&op));
        let all = throughput(threads, secs, op);
        println!("{name}_per_s_1thread={one:.1}");
        println!("{name}_per_s_{threads}threads={all:.1}");
        eprintln!(
            "{name:<28} 1 thread {one:>10.1}/s   {threads} threads {all:>10.1}/s   ({:.2}x)",
            all / one
        );
    }
    println!("threads={threads}");
}
