//! `sigil users …`: create, set-password, disable, enable, revoke-sessions,
//! consents, revoke-consent, factors, rename-passkey, remove-passkey,
//! reset-factors.
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
    /// How a user signs in: password, authenticator app, recovery codes
    /// left, passkeys (with their ids).
    Factors {
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// Rename one of a user's passkeys.
    RenamePasskey {
        username: String,
        #[arg(allow_hyphen_values = true)]
        passkey_id: String,
        name: String,
    },
    /// Remove one of a user's passkeys.
    RemovePasskey {
        username: String,
        #[arg(allow_hyphen_values = true)]
        passkey_id: String,
    },
    /// Remove every second factor and passkey of a user (a lost phone):
    /// they sign in with their password alone until they set up new ones.
    ResetFactors { username: String },
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
        UsersCommand::Factors { username, json } => {
            let user = users::find(ops.store, &username)
                .await
                .map_err(|e| user_error(e.into()))?;
            let totp = ops.store.totp(&user.id).await?;
            let confirmed = totp.as_ref().is_some_and(|t| t.confirmed_at.is_some());
            let codes = ops.store.unused_recovery_codes(&user.id).await?;
            let passkeys = ops.store.passkeys(&user.id).await?;
            if json {
                let rows: Vec<_> = passkeys
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "id": p.id, "name": p.name, "backup_eligible": p.backup_eligible,
                            "created_at": p.created_at, "last_used_at": p.last_used_at,
                        })
                    })
                    .collect();
                let shown = serde_json::json!({
                    "username": user.username,
                    "password": !user.password_hash.is_empty(),
                    "totp": confirmed,
                    "recovery_codes_left": codes,
                    "passkeys": rows,
                });
                println!("{}", serde_json::to_string_pretty(&shown)?);
                return Ok(());
            }
            let yes = |b: bool| if b { "yes" } else { "no" };
            println!("password: {}", yes(!user.password_hash.is_empty()));
            println!("authenticator app: {}", yes(confirmed));
            println!("recovery codes left: {codes}");
            println!("passkeys: {}", passkeys.len());
            for p in passkeys {
                let synced = if p.backup_eligible { " (synced)" } else { "" };
                println!("  {}\t{}{synced}", p.id, p.name);
            }
            Ok(())
        }
        UsersCommand::RenamePasskey {
            username,
            passkey_id,
            name,
        } => {
            let user = users::find(ops.store, &username)
                .await
                .map_err(|e| user_error(e.into()))?;
            if !service::factors::rename_passkey(&ops, &user, &passkey_id, &name).await? {
                bail!("{username} has no passkey {passkey_id:?}");
            }
            println!("renamed passkey {passkey_id} of {username}");
            Ok(())
        }
        UsersCommand::RemovePasskey {
            username,
            passkey_id,
        } => {
            let user = users::find(ops.store, &username)
                .await
                .map_err(|e| user_error(e.into()))?;
            if !service::factors::remove_passkey(&ops, &user, &passkey_id).await? {
                bail!("{username} has no passkey {passkey_id:?}");
            }
            println!("removed passkey {passkey_id} of {username}");
            Ok(())
        }
        UsersCommand::ResetFactors { username } => {
            let user = users::find(ops.store, &username)
                .await
                .map_err(|e| user_error(e.into()))?;
            let removed = service::factors::reset(&ops, &user).await?;
            println!(
                "removed {username}'s authenticator app ({}), {} recovery code(s) and {} passkey(s)",
                if removed.totp > 0 {
                    "was set up"
                } else {
                    "none"
                },
                removed.recovery_codes,
                removed.passkeys
            );
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
