//! `device-login`: signs in to Sigil with the device authorization grant
//! and says who signed in and how. See README.md.

use std::process::ExitCode;

use clap::Parser;
use device_login::{Prompt, Settings, sign_in};

/// Sign in to Sigil from this terminal, approving the sign-in in a browser.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Sigil's issuer URL.
    #[arg(long, env = "DEVICE_ISSUER", default_value = "http://127.0.0.1:8080")]
    issuer: String,
    /// A public client allowed the device grant.
    #[arg(long, env = "DEVICE_CLIENT_ID", default_value = "my-cli")]
    client_id: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let settings = Settings {
        issuer: args.issuer,
        client_id: args.client_id,
    };
    let show = |prompt: &Prompt| {
        println!(
            "Open {} and enter {}",
            prompt.verification_uri, prompt.user_code
        );
        if let Some(complete) = &prompt.verification_uri_complete {
            println!("(or open {complete}, which has the code filled in)");
        }
        let minutes = prompt.expires_in.as_secs() / 60;
        println!("Waiting for you to approve it (the code is good for {minutes} minutes)...");
    };
    let user = match sign_in(&settings, show).await {
        Ok(user) => user,
        Err(e) => {
            eprintln!("device-login: {e}");
            return ExitCode::FAILURE;
        }
    };

    let name = user.username.as_deref().unwrap_or("(no username)");
    println!("Signed in as {name} (subject {})", user.subject);
    let how = if user.amr.is_empty() {
        "an unstated method".to_string()
    } else {
        user.amr.join(" + ")
    };
    let level = user.acr.as_deref().unwrap_or("none stated");
    println!("Authenticated with {how}, level {level}.");
    let refresh = if user.refresh_token.is_some() {
        " and a refresh token"
    } else {
        ""
    };
    println!("Got an access token{refresh}.");
    ExitCode::SUCCESS
}
