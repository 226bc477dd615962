//! Start-up on bad footing (issue #9): a database schema older or newer
//! than the binary, a half-applied migration, a missing, wrong or malformed
//! key-encryption key, an unreadable keys folder. Each stops the real
//! binary with one line on standard error saying what to do, and changes
//! nothing: every table's row count, the migration record, the SQLite
//! file's bytes and the keys folder are the same afterwards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use secrecy::ExposeSecret;
use sigil::Sigil;
use sigil::clock::SystemClock;

use crate::helpers::{Backend, TestDatabase, execute_sql, row_counts, scalar, test_config};
use crate::on_both_backends;

/// The newest migration this build knows, read from the migrations folder
/// (so that a new migration needs no change here).
fn latest_migration() -> i64 {
    std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/store/migrations/sqlite"
    ))
    .unwrap()
    .filter_map(|e| {
        let name = e.ok()?.file_name().into_string().ok()?;
        name.split('_').next()?.parse::<i64>().ok()
    })
    .max()
    .unwrap()
}

/// A database with the full schema and keys, made by starting Sigil once,
/// then closed, so that nothing is pending in a write-ahead log.
struct Prepared {
    dir: tempfile::TempDir,
    url: String,
    /// `SIGIL_KEK`, on Postgres (SQLite uses the KEK file).
    kek: Option<String>,
    _db: Option<TestDatabase>,
}

impl Prepared {
    async fn sqlite() -> Prepared {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("sigil.db").display());
        Self::start_once(dir, url, None, None).await
    }

    async fn postgres() -> Option<Prepared> {
        let db = TestDatabase::create().await?;
        let (_, kek) = sigil::keys::Kek::generate().unwrap();
        let kek = kek.expose_secret().to_string();
        let url = db.url.clone();
        Some(Self::start_once(tempfile::tempdir().unwrap(), url, Some(kek), Some(db)).await)
    }

    async fn start_once(
        dir: tempfile::TempDir,
        url: String,
        kek: Option<String>,
        db: Option<TestDatabase>,
    ) -> Prepared {
        let mut config = test_config(&url, dir.path());
        config.kek = kek.clone().map(Into::into);
        let sigil = Sigil::open(config.validated().unwrap(), Arc::new(SystemClock))
            .await
            .expect("first start");
        sigil.store.close().await;
        Prepared {
            dir,
            url,
            kek,
            _db: db,
        }
    }

    fn keys_dir(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    /// `sigil <args>` on this database, with `env` on top.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sigil"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("SIGIL_LISTEN", "127.0.0.1:0")
            .env("SIGIL_DATABASE_URL", &self.url)
            .env("SIGIL_KEYS_DIR", self.keys_dir())
            .env("SIGIL_ARGON2__MEMORY_KIB", "256")
            .env("SIGIL_ARGON2__ITERATIONS", "1");
        if let Some(kek) = &self.kek {
            command.env("SIGIL_KEK", kek);
        }
        // Output goes to files and the wait is bounded: a binary that
        // starts serving instead of refusing fails the test, never hangs it.
        let out_dir = tempfile::tempdir().unwrap();
        let (stdout, stderr) = (out_dir.path().join("out"), out_dir.path().join("err"));
        let mut child = command
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("sigil runs");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "sigil {args:?} kept running: {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        Output {
            status,
            stdout: std::fs::read(&stdout).unwrap(),
            stderr: std::fs::read(&stderr).unwrap(),
        }
    }

    /// Everything that must not change.
    async fn snapshot(&self) -> Snapshot {
        let migrations = scalar(
            &self.url,
            "SELECT CAST(COALESCE(SUM(CASE WHEN success THEN version ELSE -version END), 0) AS BIGINT) \
             FROM _sqlx_migrations",
        )
        .await;
        let file = match self.url.strip_prefix("sqlite://") {
            Some(path) => {
                // Fold the WAL into the file first, on a connection closed
                // before the file is read: otherwise a checkpoint made by
                // some connection's close (this process's or sigil's) may
                // land between two reads and change the bytes, not the data.
                use sqlx::Connection;
                let mut db = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&mut db)
                    .await
                    .unwrap();
                db.close().await.unwrap();
                Some(std::fs::read(path).unwrap())
            }
            None => None,
        };
        Snapshot {
            rows: row_counts(&self.url).await,
            migrations,
            file,
            keys: folder(self.dir.path()),
        }
    }

    /// `sigil serve` (and whatever `also` runs) must fail with one line
    /// containing every one of `says`, and change nothing.
    async fn refuses(&self, args: &[&str], env: &[(&str, &str)], says: &[&str]) {
        let before = self.snapshot().await;
        let out = self.run(args, env);
        assert!(!out.status.success(), "{args:?} {env:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = one_error_line(&stderr);
        for needle in says {
            assert!(
                line.contains(needle),
                "{args:?} {env:?}: {line:?} lacks {needle:?}"
            );
        }
        let after = self.snapshot().await;
        assert!(
            before == after,
            "{args:?} {env:?} changed something: rows {:?} -> {:?}, migrations {} -> {}, \
             file {} -> {} bytes (same: {}), keys {:?} -> {:?}",
            before.rows,
            after.rows,
            before.migrations,
            after.migrations,
            before.file.as_ref().map_or(0, Vec::len),
            after.file.as_ref().map_or(0, Vec::len),
            before.file == after.file,
            before.keys.keys().collect::<Vec<_>>(),
            after.keys.keys().collect::<Vec<_>>(),
        );
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    rows: BTreeMap<String, i64>,
    migrations: i64,
    file: Option<Vec<u8>>,
    keys: BTreeMap<PathBuf, Vec<u8>>,
}

/// Every regular file under `dir` (outside the SQLite files), with its bytes.
fn folder(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.map(Result::unwrap) {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("sigil.db") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// The error of a failed run: the last line of standard error, starting
/// `error: `, with no chain or backtrace printed on other lines.
fn one_error_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = lines.last().copied().unwrap_or_default();
    assert!(last.starts_with("error: "), "no error line in {stderr:?}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("error")).count(),
        1,
        "{stderr:?}"
    );
    for bad in ["Caused by", "backtrace", "panicked"] {
        assert!(!stderr.contains(bad), "{stderr:?}");
    }
    last.to_string()
}

/// Makes the schema look one migration older: the newest migration's
/// record and what it created are gone.
async fn one_migration_older(url: &str) {
    let latest = latest_migration();
    execute_sql(
        url,
        &format!("DELETE FROM _sqlx_migrations WHERE version = {latest}"),
    )
    .await;
    // Undo what it created: the newest migrations add columns, tables and
    // indexes, which this reverses (tables last created, first dropped); a
    // migration of another kind needs its own undo here.
    let backend = if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    };
    let dir = format!("{}/store/migrations/{backend}", env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{latest:04}_")))
        })
        .expect("the newest migration's file");
    let sql: String = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut undo = Vec::new();
    for code in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let words: Vec<&str> = code.split_whitespace().collect();
        match words.as_slice() {
            ["ALTER", "TABLE", table, "ADD", "COLUMN", column, ..] => {
                undo.push(format!("ALTER TABLE {table} DROP COLUMN {column}"))
            }
            ["CREATE", "TABLE", table, ..] => undo.push(format!("DROP TABLE {table}")),
            ["CREATE", "INDEX", index, ..] => undo.push(format!("DROP INDEX {index}")),
            _ => panic!("extend one_migration_older to undo: {code}"),
        }
    }
    undo.reverse();
    execute_sql(url, &undo.join("; ")).await;
}

async fn one_migration_newer(url: &str) {
    execute_sql(
        url,
        &format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ({}, 'from a newer sigil', TRUE, {}, 1)",
            latest_migration() + 1,
            if url.starts_with("sqlite:") { "x'00'" } else { "'\\x00'::bytea" }
        ),
    )
    .await;
}

async fn newest_migration_failed(url: &str) {
    execute_sql(
        url,
        &format!(
            "UPDATE _sqlx_migrations SET success = FALSE WHERE version = {}",
            latest_migration()
        ),
    )
    .await;
}

async fn a_schema_older_newer_or_half_migrated_stops_start_up(prepared: Prepared) {
    let latest = latest_migration();
    let url = prepared.url.clone();

    newest_migration_failed(&url).await;
    for args in [&["serve"][..], &["migrate"]] {
        prepared
            .refuses(
                args,
                &[],
                &[
                    &format!("migration {latest} is recorded as failed"),
                    "restore the backup",
                ],
            )
            .await;
    }
    execute_sql(&url, "UPDATE _sqlx_migrations SET success = TRUE").await;

    // A migration whose recorded checksum is not this build's SQL.
    execute_sql(
        &url,
        "CREATE TABLE saved_migrations AS SELECT version, checksum FROM _sqlx_migrations; \
         UPDATE _sqlx_migrations SET checksum = (SELECT checksum FROM _sqlx_migrations WHERE version = 2) \
         WHERE version = 1",
    )
    .await;
    prepared
        .refuses(
            &["serve"],
            &[],
            &["migration 1 in the database differs from this sigil's"],
        )
        .await;
    execute_sql(
        &url,
        "UPDATE _sqlx_migrations SET checksum = (SELECT s.checksum FROM saved_migrations s \
         WHERE s.version = _sqlx_migrations.version); DROP TABLE saved_migrations",
    )
    .await;

    one_migration_newer(&url).await;
    for args in [&["serve"][..], &["migrate"], &["users", "enable", "x"]] {
        prepared
            .refuses(
                args,
                &[],
                &[
                    &format!("at migration {}, newer than this sigil knows", latest + 1),
                    "run the newer sigil",
                ],
            )
            .await;
    }
    execute_sql(
        &url,
        &format!("DELETE FROM _sqlx_migrations WHERE version > {latest}"),
    )
    .await;

    one_migration_older(&url).await;
    prepared
        .refuses(
            &["serve"],
            &[],
            &[
                &format!(
                    "the database schema is at migration {} and this sigil needs {latest}",
                    latest - 1
                ),
                "back the database up, then run `sigil migrate`",
            ],
        )
        .await;
    // `sigil migrate` is the way up, and then the node starts.
    let out = prepared.run(&["migrate"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("from migration {} to {latest}", latest - 1)),
        "{out:?}"
    );
    let mut config = test_config(&url, prepared.dir.path());
    config.kek = prepared.kek.clone().map(Into::into);
    let sigil = Sigil::open(config.validated().unwrap(), Arc::new(SystemClock))
        .await
        .expect("starts once migrated");
    assert!(sigil.store.schema_is_current().await.unwrap());
    sigil.store.close().await;
}

/// A database with the schema and keys of a first start, on `backend`.
async fn prepared(backend: Backend) -> Option<Prepared> {
    match backend {
        Backend::Sqlite => Some(Prepared::sqlite().await),
        Backend::Postgres => Prepared::postgres().await,
    }
}

on_both_backends!(spawn = super::prepared; a_schema_older_newer_or_half_migrated_stops_start_up);

#[tokio::test]
async fn a_bad_kek_or_keys_folder_stops_start_up_with_one_line_and_changes_nothing() {
    let prepared = Prepared::sqlite().await;
    let kek_file = prepared.keys_dir().join("kek");
    let kek = std::fs::read_to_string(&kek_file).unwrap();
    let (_, other) = sigil::keys::Kek::generate().unwrap();

    // The wrong KEK (another valid one).
    prepared
        .refuses(
            &["serve"],
            &[("SIGIL_KEK", other.expose_secret())],
            &[
                "cannot be decrypted",
                "start with the KEK the keys were stored under",
            ],
        )
        .await;
    // A malformed KEK, given or in the file.
    prepared
        .refuses(
            &["serve"],
            &[("SIGIL_KEK", "c2hvcnQ")],
            &[
                "key-encryption key in SIGIL_KEK",
                "malformed",
                "restore the original",
            ],
        )
        .await;
    std::fs::write(&kek_file, "not a key at all!\n").unwrap();
    prepared
        .refuses(
            &["serve"],
            &[],
            &[
                &format!("key-encryption key in {}", kek_file.display()),
                "malformed",
            ],
        )
        .await;
    // No KEK while the database holds keys: none is made up.
    std::fs::remove_file(&kek_file).unwrap();
    prepared
        .refuses(
            &["serve"],
            &[],
            &[
                "key-encryption key is missing",
                "restore the original KEK file",
            ],
        )
        .await;
    assert!(!kek_file.exists());
    std::fs::write(&kek_file, &kek).unwrap();

    // A keys folder that cannot be read: a regular file in its place, or
    // under a regular file.
    let not_a_folder = prepared.dir.path().join("not-a-folder");
    std::fs::write(&not_a_folder, "a file").unwrap();
    for keys_dir in [not_a_folder.clone(), not_a_folder.join("keys")] {
        let keys_dir = keys_dir.display().to_string();
        prepared
            .refuses(
                &["serve"],
                &[("SIGIL_KEYS_DIR", &keys_dir)],
                &[
                    &format!("cannot read the key-encryption key at {keys_dir}/kek"),
                    "make keys_dir a folder sigil can read",
                ],
            )
            .await;
    }

    // With its own KEK back, the node starts.
    let config = test_config(&prepared.url, prepared.dir.path());
    let sigil = Sigil::open(config.validated().unwrap(), Arc::new(SystemClock))
        .await
        .expect("starts with its KEK");
    sigil.store.close().await;
}

#[tokio::test]
async fn a_missing_or_wrong_kek_on_postgres_stops_start_up_and_changes_nothing() {
    let Some(prepared) = Prepared::postgres().await else {
        return;
    };
    let (_, other) = sigil::keys::Kek::generate().unwrap();
    prepared
        .refuses(
            &["serve"],
            &[("SIGIL_KEK", other.expose_secret())],
            &["cannot be decrypted"],
        )
        .await;
    // Without SIGIL_KEK (and no file) while the database holds keys: the
    // advice is to restore it, not to make a new one.
    let without = Prepared {
        dir: tempfile::tempdir().unwrap(),
        url: prepared.url.clone(),
        kek: None,
        _db: None,
    };
    without
        .refuses(
            &["serve"],
            &[],
            &["key-encryption key is missing", "restore"],
        )
        .await;
}
