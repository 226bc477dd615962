//! The `sigil` command line: serve, migrate, and operator tasks on users,
//! clients and keys (`keys.rs`). Secrets are read from standard input, never from
//! arguments (which other users can see in the process list).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use crate::clients::{self, GrantType, Lifetimes, NewClient};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::keys::Alg;
use crate::passwords::Passwords;
use crate::scope::Scopes;
use crate::store;
use crate::users::{self, RegisterError, Registration};

mod client_ops;
mod keys;
mod serve;

#[derive(Parser)]
#[command(name = "sigil", version, about = "A standalone identity provider")]
pub struct Cli {
    /// Configuration file (TOML). Environment variables SIGIL_* override it.
    #[arg(long, env = "SIGIL_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (creating the database and keys on first start).
    Serve,
    /// Bring the database schema up to date and exit (back it up first).
    Migrate,
    /// Delete now what the background pruning deletes every prune_interval:
    /// expired revocations, dead refresh sessions, old throttle counters,
    /// audit events past audit_retention.
    Prune {
        /// Print the counts as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Signing keys: list, rotate, retire, import, rewrap.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Show the newest audit events, oldest first.
    Tail {
        /// How many of the newest events.
        #[arg(long, short = 'n', default_value_t = 50)]
        limit: i64,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
        /// Keep printing new events as they are stored (polls every second).
        #[arg(long, short = 'f')]
        follow: bool,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create a user; the password is read from standard input.
    Create {
        username: String,
        #[arg(long)]
        email: String,
        /// Read the password from standard input (required).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Set a user's password (read from standard input); revokes their sessions.
    SetPassword {
        username: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Disable a user: no more logins, every session and token revoked.
    Disable { username: String },
    /// Re-enable a disabled user.
    Enable { username: String },
    /// Log a user out everywhere: revoke every session and access token.
    RevokeSessions { username: String },
}

#[derive(Subcommand)]
enum ClientsCommand {
    /// Register a client. A confidential client's secret is printed once.
    Create(CreateClient),
    /// List registered clients.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Give a confidential client a new secret (printed once, or read with
    /// --secret-stdin); the old one keeps working for --overlap.
    RotateSecret {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        /// How long the old secret still works, e.g. 24h (0s: not at all).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        overlap: std::time::Duration,
        #[arg(long)]
        secret_stdin: bool,
        /// Rotate even while the previous rotation's overlap lasts (the
        /// secret it replaced stops working at once).
        #[arg(long)]
        force: bool,
    },
    /// Refuse the client's authentication from now on (its access tokens
    /// already issued run until they expire; its refresh tokens stop working).
    Disable {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Allow a disabled client again.
    Enable {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

#[derive(Args)]
struct CreateClient {
    /// Letters, digits, '.', '_', '~' or '-' (so it may start with '-').
    #[arg(allow_hyphen_values = true)]
    client_id: String,
    /// A public client (no secret; e.g. a mobile or browser app).
    #[arg(long)]
    public: bool,
    /// Grant types the client may use.
    #[arg(long, value_delimiter = ',', default_value = "password,refresh_token")]
    grant_types: Vec<String>,
    /// Space-separated scopes the client may request.
    #[arg(long, default_value = "")]
    scopes: String,
    /// Signing algorithm for this client's tokens (default: the server's).
    #[arg(long)]
    alg: Option<String>,
    /// `aud` of this client's tokens (default: the server's).
    #[arg(long)]
    audience: Option<String>,
    /// Read the client secret from standard input instead of generating one.
    #[arg(long)]
    secret_stdin: bool,
    /// This client's access-token lifetime, e.g. 5m (default and maximum:
    /// the server's access_token_ttl).
    #[arg(long, value_parser = humantime::parse_duration)]
    access_token_ttl: Option<std::time::Duration>,
    /// How long this client's logins last before its refresh tokens stop
    /// working, e.g. 8h (default and maximum: refresh_absolute_ttl).
    #[arg(long, value_parser = humantime::parse_duration)]
    refresh_token_ttl: Option<std::time::Duration>,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => serve::serve(config).await,
        Command::Migrate => {
            match store::migrate(&config.database_url).await? {
                store::SchemaState::Older { at, needs } => {
                    println!(
                        "migrated the database from migration {at} to {needs}; database is up to date"
                    )
                }
                store::SchemaState::Empty => println!("created the schema; database is up to date"),
                _ => println!("database is up to date"),
            }
            Ok(())
        }
        Command::Prune { json } => {
            let now = SystemClock.now();
            let store =
                store::connect(&config.database_url, &store::PoolSettings::cli(&config)).await?;
            let cut = crate::prune::Cutoffs::at(&config, now);
            let report = crate::prune::prune_store(store.as_ref(), cut).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "pruned {} revocations, {} refresh tokens, {} refresh families, {} throttle counters, {} audit events",
                    report.revocations,
                    report.refresh_tokens,
                    report.refresh_families,
                    report.throttle,
                    report.audit
                );
            }
            Ok(())
        }
        Command::Users(UsersCommand::Create {
            username,
            email,
            password_stdin: _,
        }) => create_user(config, username, email).await,
        Command::Users(UsersCommand::SetPassword { username, .. }) => {
            let password = read_stdin_secret("password")?;
            let store =
                store::connect(&config.database_url, &store::PoolSettings::cli(&config)).await?;
            let passwords = Passwords::new(&config.argon2, &config.password)?;
            users::set_password(
                store.as_ref(),
                &passwords,
                &config.password,
                &username,
                password,
                config.revocation_window(),
                SystemClock.now(),
            )
            .await
            .map_err(user_error)?;
            println!("password changed; every session of {username} is revoked");
            Ok(())
        }
        Command::Users(UsersCommand::Disable { username }) => {
            let store =
                store::connect(&config.database_url, &store::PoolSettings::cli(&config)).await?;
            users::set_disabled(
                store.as_ref(),
                &username,
                true,
                config.revocation_window(),
                SystemClock.now(),
            )
            .await
            .map_err(|e| user_error(e.into()))?;
            println!("disabled {username}; every session and token is revoked");
            Ok(())
        }
        Command::Users(UsersCommand::Enable { username }) => {
            let store =
                store::connect(&config.database_url, &store::PoolSettings::cli(&config)).await?;
            users::set_disabled(
                store.as_ref(),
                &username,
                false,
                config.revocation_window(),
                SystemClock.now(),
            )
            .await
            .map_err(|e| user_error(e.into()))?;
            println!("enabled {username}");
            Ok(())
        }
        Command::Users(UsersCommand::RevokeSessions { username }) => {
            let store =
                store::connect(&config.database_url, &store::PoolSettings::cli(&config)).await?;
            let user = users::find(store.as_ref(), &username)
                .await
                .map_err(|e| user_error(e.into()))?;
            let now = SystemClock.now();
            let revoked = crate::revocation::revoke_user_sessions(
                store.as_ref(),
                &user.id,
                config.revocation_window(),
                now,
            )
            .await?;
            println!(
                "revoked {revoked} session(s) of {username} and every access token issued to them"
            );
            Ok(())
        }
        Command::Clients(ClientsCommand::Create(args)) => create_client(config, args).await,
        Command::Clients(ClientsCommand::List { json }) => list_clients(config, json).await,
        Command::Clients(ClientsCommand::RotateSecret {
            client_id,
            overlap,
            secret_stdin,
            force,
        }) => {
            let given = secret_stdin
                .then(|| read_stdin_secret("client secret"))
                .transpose()?;
            client_ops::rotate_secret(config, &client_id, overlap, given, force).await
        }
        Command::Clients(ClientsCommand::Disable { client_id }) => {
            client_ops::set_disabled(config, &client_id, true).await
        }
        Command::Clients(ClientsCommand::Enable { client_id }) => {
            client_ops::set_disabled(config, &client_id, false).await
        }
        Command::Keys(command) => keys::run(config, command).await,
        Command::Audit(AuditCommand::Tail {
            limit,
            json,
            follow,
        }) => audit_tail(config, limit, json, follow).await,
    }
}

fn read_stdin_secret(what: &str) -> anyhow::Result<SecretString> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read the {what} from standard input"))?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.is_empty() {
        bail!("no {what} on standard input");
    }
    Ok(SecretString::from(text.to_string()))
}

async fn create_user(config: Config, username: String, email: String) -> anyhow::Result<()> {
    let password = read_stdin_secret("password")?;
    let store = store::connect(&config.database_url, &store::PoolSettings::cli(&config)).await?;
    let passwords = Passwords::new(&config.argon2, &config.password)?;
    let registration = Registration {
        username,
        email,
        password,
    };
    let now = SystemClock.now();
    let user = users::create(
        store.as_ref(),
        &passwords,
        &config.password,
        registration,
        now,
    )
    .await;
    match user {
        Ok(user) => {
            let detail = serde_json::json!({ "username": user.username }).to_string();
            store
                .insert_audit(now, "cli", "user.created", Some(&user.id), &detail)
                .await?;
            println!("created user {} ({})", user.username, user.id);
            Ok(())
        }
        Err(RegisterError::Invalid(errors)) => {
            let lines: Vec<String> = errors.iter().map(|(f, m)| format!("  {f}: {m}")).collect();
            bail!("invalid user:\n{}", lines.join("\n"))
        }
        Err(e) => Err(e.into()),
    }
}

fn user_error(e: RegisterError) -> anyhow::Error {
    match e {
        RegisterError::Store(store::StoreError::NotFound) => anyhow::anyhow!("no such user"),
        RegisterError::Invalid(errors) => {
            let lines: Vec<String> = errors.iter().map(|(f, m)| format!("  {f}: {m}")).collect();
            anyhow::anyhow!("invalid input:\n{}", lines.join("\n"))
        }
        other => other.into(),
    }
}

async fn create_client(config: Config, args: CreateClient) -> anyhow::Result<()> {
    let grant_types = args
        .grant_types
        .iter()
        .map(|g| g.trim().parse::<GrantType>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let scopes = Scopes::parse(&args.scopes)?;
    let alg = args
        .alg
        .as_deref()
        .map(str::parse::<Alg>)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let secret = if args.secret_stdin {
        Some(read_stdin_secret("client secret")?)
    } else {
        None
    };
    let generated = secret.is_none();
    let store = store::connect(&config.database_url, &store::PoolSettings::cli(&config)).await?;
    let new = NewClient {
        id: args.client_id,
        public: args.public,
        grant_types,
        scopes,
        alg,
        audience: args.audience,
        secret,
        lifetimes: Lifetimes {
            access_token: args.access_token_ttl,
            refresh_token: args.refresh_token_ttl,
        },
    };
    let now = SystemClock.now();
    let (client, secret) = clients::create_client(store.as_ref(), &config, new, now).await?;
    let mut detail = client.summary();
    if let Some(fields) = detail.as_object_mut() {
        fields.remove("client_id");
    }
    store
        .insert_audit(
            now,
            "cli",
            "client.created",
            Some(&client.id),
            &detail.to_string(),
        )
        .await?;
    println!("client_id: {}", client.id);
    match secret {
        Some(secret) if generated => {
            println!("client_secret: {}", secret.expose_secret());
            eprintln!("Store the secret now: Sigil keeps only its hash and cannot show it again.");
        }
        Some(_) => println!("client_secret: (as given on standard input)"),
        None => println!("public client: authenticates with client_id alone"),
    }
    Ok(())
}

async fn list_clients(config: Config, json: bool) -> anyhow::Result<()> {
    let store = store::connect(&config.database_url, &store::PoolSettings::cli(&config)).await?;
    let clients = clients::list_clients(store.as_ref()).await?;
    if json {
        let rows: Vec<_> = clients.iter().map(clients::Client::summary).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<24} {:<12} {:<40} {:<8} {:<10} {:<10} SCOPES",
        "CLIENT_ID", "TYPE", "GRANTS", "ALG", "ACCESS", "REFRESH"
    );
    let lifetime = |own: Option<std::time::Duration>| {
        own.map_or("default".to_string(), |d| {
            humantime::format_duration(d).to_string()
        })
    };
    for c in clients {
        let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
        println!(
            "{:<24} {:<12} {:<40} {:<8} {:<10} {:<10} {}",
            c.id,
            if c.is_public() {
                "public"
            } else {
                "confidential"
            },
            grants.join(","),
            c.alg.map_or("default", |a| a.as_str()),
            lifetime(c.lifetimes.access_token),
            lifetime(c.lifetimes.refresh_token),
            c.scopes
        );
    }
    Ok(())
}

async fn audit_tail(config: Config, limit: i64, json: bool, follow: bool) -> anyhow::Result<()> {
    let store = store::connect(&config.database_url, &store::PoolSettings::cli(&config)).await?;
    let mut last = 0;
    for e in store.recent_audit(limit.clamp(1, 10_000)).await? {
        last = e.id;
        print_audit(e, json);
    }
    if !follow {
        return Ok(());
    }
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        // Events are numbered in insertion order; read the newest page and
        // print what is past the last one shown.
        for e in store.recent_audit(1_000).await? {
            if e.id > last {
                last = e.id;
                print_audit(e, json);
            }
        }
    }
}

fn print_audit(e: store::AuditRecord, json: bool) {
    if json {
        let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
        let line = serde_json::json!({
            "id": e.id, "at": e.at, "actor": e.actor, "action": e.action, "target": e.target, "detail": detail,
        });
        println!("{line}");
    } else {
        println!(
            "{}  {:<24} {:<28} {:<44} {}",
            keys::time(e.at),
            e.actor,
            e.action,
            e.target.unwrap_or_default(),
            e.detail
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_id_starting_with_a_hyphen_is_a_client_id_not_a_flag() {
        // Client ids may contain '-' anywhere, the first character included.
        let parse = |args: &[&str]| Cli::try_parse_from(args).expect("parsed").command;
        let Command::Clients(ClientsCommand::Create(create)) =
            parse(&["sigil", "clients", "create", "-svc", "--public"])
        else {
            panic!("not create");
        };
        assert_eq!((create.client_id.as_str(), create.public), ("-svc", true));
        let Command::Clients(ClientsCommand::Disable { client_id }) =
            parse(&["sigil", "clients", "disable", "-svc"])
        else {
            panic!("not disable");
        };
        assert_eq!(client_id, "-svc");
        let Command::Clients(ClientsCommand::RotateSecret {
            client_id, force, ..
        }) = parse(&["sigil", "clients", "rotate-secret", "--force", "-svc"])
        else {
            panic!("not rotate-secret");
        };
        assert_eq!((client_id.as_str(), force), ("-svc", true));
    }
}
