//! `sigil clients …`: create, list, rotate-secret, disable, enable,
//! set-mfa. Each
//! action goes through the same service function as the admin API and is
//! audited with the actor `cli`.

use std::time::Duration;

use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use super::{Offline, read_stdin_secret};
use crate::clients::{self, ClientKeys, GrantType, Lifetimes, NewClient};
use crate::config::ValidConfig;
use crate::keys::Alg;
use crate::scope::Scopes;
use crate::service;
use crate::store::{self, StoreError};

#[derive(Subcommand)]
pub enum ClientsCommand {
    /// Register a client. A confidential client's secret is printed once.
    Create(Box<CreateClient>),
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
    /// Require a second factor of the client's users (`required`), or not
    /// (`optional`).
    SetMfa {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        #[arg(value_parser = ["required", "optional"])]
        mode: String,
    },
}

#[derive(Args)]
pub struct CreateClient {
    /// Letters, digits, '.', '_', '~' or '-' (so it may start with '-').
    #[arg(allow_hyphen_values = true)]
    client_id: String,
    /// A public client (no secret; e.g. a mobile or browser app).
    #[arg(long)]
    public: bool,
    /// Grant types the client may use (default: authorization_code,refresh_token,
    /// which needs --redirect-uri). The password grant only when listed:
    /// RFC 9700 §2.4 says it MUST NOT be used.
    #[arg(long, value_delimiter = ',')]
    grant_types: Option<Vec<String>>,
    /// A redirect URI for the authorization code flow (repeatable): https,
    /// or http on 127.0.0.1/[::1] (any port matches, RFC 8252 §7.3).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser back to (repeatable).
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// The operator's own app: its users are not asked for consent.
    #[arg(long)]
    first_party: bool,
    /// Its users must sign in with a second factor (a passkey, or TOTP
    /// after the password); one without is asked to set one up.
    #[arg(long)]
    require_mfa: bool,
    /// Authenticate with private_key_jwt (RFC 7523) instead of a secret:
    /// the client's public keys, a JWKS in this file.
    #[arg(long, conflicts_with_all = ["jwks_uri", "public", "secret_stdin"])]
    jwks_file: Option<std::path::PathBuf>,
    /// Authenticate with private_key_jwt, the keys fetched from this URL.
    #[arg(long, conflicts_with_all = ["public", "secret_stdin"])]
    jwks_uri: Option<String>,
    /// Every token request must carry a DPoP proof (RFC 9449).
    #[arg(long)]
    require_dpop: bool,
    /// An audience the client may ask a token exchange for (repeatable;
    /// with the urn:ietf:params:oauth:grant-type:token-exchange grant).
    #[arg(long = "exchange-audience")]
    exchange_audiences: Vec<String>,
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

pub async fn run(config: ValidConfig, command: ClientsCommand) -> anyhow::Result<()> {
    match command {
        ClientsCommand::Create(args) => create(config, *args).await,
        ClientsCommand::List { json } => list(config, json).await,
        ClientsCommand::RotateSecret {
            client_id,
            overlap,
            secret_stdin,
            force,
        } => {
            let given = secret_stdin
                .then(|| read_stdin_secret("client secret"))
                .transpose()?;
            rotate_secret(config, &client_id, overlap, given, force).await
        }
        ClientsCommand::Disable { client_id } => set_disabled(config, &client_id, true).await,
        ClientsCommand::Enable { client_id } => set_disabled(config, &client_id, false).await,
        ClientsCommand::SetMfa { client_id, mode } => {
            set_require_mfa(config, &client_id, mode == "required").await
        }
    }
}

async fn create(config: ValidConfig, args: CreateClient) -> anyhow::Result<()> {
    let grant_types = match args.grant_types {
        None => GrantType::DEFAULT.to_vec(),
        Some(names) => names
            .iter()
            .map(|g| g.trim().parse::<GrantType>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?,
    };
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
    let keys = match (&args.jwks_file, &args.jwks_uri) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            Some(ClientKeys::Inline(
                clients::parse_jwks(&text).map_err(anyhow::Error::msg)?,
            ))
        }
        (None, Some(uri)) => Some(ClientKeys::Uri(uri.clone())),
        (None, None) => None,
    };
    let generated = secret.is_none() && keys.is_none();
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
        redirect_uris: args.redirect_uris,
        post_logout_redirect_uris: args.post_logout_redirect_uris,
        first_party: args.first_party,
        require_mfa: args.require_mfa,
        keys,
        require_dpop: args.require_dpop,
        exchange_audiences: args.exchange_audiences,
    };
    let offline = Offline::open(config).await?;
    let created = service::clients::create(&offline.ops(), new).await;
    offline.finish().await;
    let (client, secret) = created?;
    println!("client_id: {}", client.id);
    match secret {
        Some(secret) if generated => {
            println!("client_secret: {}", secret.expose_secret());
            eprintln!("Store the secret now: Sigil keeps only its hash and cannot show it again.");
        }
        Some(_) => println!("client_secret: (as given on standard input)"),
        None if client.is_public() => {
            println!("public client: authenticates with client_id alone")
        }
        None => println!("authenticates with private_key_jwt: no secret"),
    }
    Ok(())
}

async fn list(config: ValidConfig, json: bool) -> anyhow::Result<()> {
    let store = store::connect(&config.database_url, &config.cli_pool_settings()).await?;
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

async fn rotate_secret(
    config: ValidConfig,
    client_id: &str,
    overlap: Duration,
    given: Option<SecretString>,
    force: bool,
) -> anyhow::Result<()> {
    let offline = Offline::open(config).await?;
    let ops = offline.ops();
    let until = ops.now() + overlap.as_secs() as i64;
    let generated = given.is_none();
    let rotated = service::clients::rotate_secret(&ops, client_id, given, until, force).await;
    // The new secret is printed before anything else can fail: it is the
    // only copy.
    if let Ok(secret) = &rotated {
        if generated {
            println!("client_secret: {}", secret.expose_secret());
            eprintln!("Store the secret now: Sigil keeps only its hash and cannot show it again.");
        } else {
            println!("client_secret: (as given on standard input)");
        }
        println!(
            "the previous secret works until {} ({}s from now)",
            super::keys::time(until),
            overlap.as_secs()
        );
    }
    offline.finish().await;
    rotated?;
    Ok(())
}

async fn set_disabled(config: ValidConfig, client_id: &str, disabled: bool) -> anyhow::Result<()> {
    let offline = Offline::open(config).await?;
    let done = service::clients::set_disabled(&offline.ops(), client_id, disabled).await;
    offline.finish().await;
    match done {
        Err(StoreError::NotFound) => anyhow::bail!("no client {client_id:?}"),
        other => other?,
    }
    let word = if disabled { "disabled" } else { "enabled" };
    println!("{word} client {client_id}");
    Ok(())
}

async fn set_require_mfa(
    config: ValidConfig,
    client_id: &str,
    required: bool,
) -> anyhow::Result<()> {
    let offline = Offline::open(config).await?;
    let done = service::clients::set_require_mfa(&offline.ops(), client_id, required).await;
    offline.finish().await;
    match done {
        Err(StoreError::NotFound) => anyhow::bail!("no client {client_id:?}"),
        other => other?,
    }
    let word = if required {
        "requires"
    } else {
        "does not require"
    };
    println!("client {client_id} {word} a second factor");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::ClientsCommand;
    use crate::cli::{Cli, Command};

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
