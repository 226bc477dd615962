//! `sigil users …`: create, set-password, disable, enable, revoke-sessions,
//! consents, revoke-consent.
//! Each goes through the same service function as the admin API and is
//! audited with the actor `cli`.

use anyhow::{Context, bail};
use clap::Subcommand;
use secrecy::SecretString;

use super::{Offline, read_stdin_secret};
use crate::config::ValidConfig;
use crate::passwords::Passwords;
use crate::service;
use crate::store::StoreError;
use crate::users::{self, RegisterError, Registration};

#[derive(Subcommand)]
pub enum UsersCommand {
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
    /// List the clients a user has granted consent to, with the scopes.
    Consents { username: String },
    /// Forget a user's consent to a client: the next sign-in to it asks again.
    RevokeConsent {
        username: String,
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

pub async fn run(config: ValidConfig, command: UsersCommand) -> anyhow::Result<()> {
    // Read before connecting: a command without its secret changes nothing.
    let password = match &command {
        UsersCommand::Create { .. } | UsersCommand::SetPassword { .. } => {
            Some(read_stdin_secret("password")?)
        }
        _ => None,
    };
    let offline = Offline::open(config).await?;
    let done = act(&offline, command, password).await;
    offline.finish().await;
    done
}

async fn act(
    offline: &Offline,
    command: UsersCommand,
    password: Option<SecretString>,
) -> anyhow::Result<()> {
    let ops = offline.ops();
    let hasher = || -> anyhow::Result<(Passwords, SecretString)> {
        let passwords = Passwords::new(&offline.config.argon2, &offline.config.password)?;
        Ok((passwords, password.clone().context("no password read")?))
    };
    match command {
        UsersCommand::Create {
            username, email, ..
        } => {
            let (passwords, password) = hasher()?;
            let registration = Registration {
                username,
                email,
                password,
            };
            match service::users::create(&ops, &passwords, registration).await {
                Ok(user) => {
                    println!("created user {} ({})", user.username, user.id);
                    Ok(())
                }
                Err(RegisterError::Invalid(errors)) => {
                    let lines: Vec<String> =
                        errors.iter().map(|(f, m)| format!("  {f}: {m}")).collect();
                    bail!("invalid user:\n{}", lines.join("\n"))
                }
                Err(e) => Err(e.into()),
            }
        }
        UsersCommand::SetPassword { username, .. } => {
            let (passwords, password) = hasher()?;
            service::users::set_password(&ops, &passwords, &username, password)
                .await
                .map_err(user_error)?;
            println!("password changed; every session of {username} is revoked");
            Ok(())
        }
        UsersCommand::Disable { username } => {
            service::users::set_disabled(&ops, &username, true)
                .await
                .map_err(|e| user_error(e.into()))?;
            println!("disabled {username}; every session and token is revoked");
            Ok(())
        }
        UsersCommand::Enable { username } => {
            service::users::set_disabled(&ops, &username, false)
                .await
                .map_err(|e| user_error(e.into()))?;
            println!("enabled {username}");
            Ok(())
        }
        UsersCommand::RevokeSessions { username } => {
            let user = users::find(ops.store, &username)
                .await
                .map_err(|e| user_error(e.into()))?;
            let revoked = service::users::revoke_sessions(&ops, &user).await?;
            println!(
                "revoked {revoked} session(s) of {username} and every access token issued to them"
            );
            Ok(())
        }
        UsersCommand::Consents { username } => {
            let user = users::find(ops.store, &username)
                .await
                .map_err(|e| user_error(e.into()))?;
            for consent in ops.store.list_consents(&user.id).await? {
                println!("{}\t{}", consent.client_id, consent.scope);
            }
            Ok(())
        }
        UsersCommand::RevokeConsent {
            username,
            client_id,
        } => {
            let user = users::find(ops.store, &username)
                .await
                .map_err(|e| user_error(e.into()))?;
            if !service::browser::revoke_consent(&ops, &user, &client_id).await? {
                bail!("{username} has not granted consent to {client_id:?}");
            }
            println!("revoked {username}'s consent to {client_id}");
            Ok(())
        }
    }
}

fn user_error(e: RegisterError) -> anyhow::Error {
    match e {
        RegisterError::Store(StoreError::NotFound) => anyhow::anyhow!("no such user"),
        RegisterError::Invalid(errors) => {
            let lines: Vec<String> = errors.iter().map(|(f, m)| format!("  {f}: {m}")).collect();
            anyhow::anyhow!("invalid input:\n{}", lines.join("\n"))
        }
        other => other.into(),
    }
}
