//! `palisade`: the command-line companion of Palisade's layers.
//!
//! ```text
//! palisade apikey new --principal billing --scopes orders:read,orders:write
//! echo -n "$KEY" | palisade apikey hash --principal billing
//! palisade json check --max-depth 32 request.json
//! palisade jwt inspect "$TOKEN"
//! palisade jwt verify --jwks https://login.example.com/.well-known/jwks.json --aud api "$TOKEN"
//! palisade config check palisade.toml
//! ```

mod apikey;
mod config;
mod json;
mod jwt;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Palisade's command-line tool.
#[derive(Debug, Parser)]
#[command(name = "palisade", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate and hash API keys.
    #[command(subcommand)]
    Apikey(apikey::Command),
    /// Check JSON documents as strictly as the JSON layer.
    #[command(subcommand)]
    Json(json::Command),
    /// Inspect and verify JSON Web Tokens.
    #[command(subcommand)]
    Jwt(jwt::Command),
    /// Check configuration files (`palisade::config`).
    #[command(subcommand)]
    Config(config::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Apikey(command) => apikey::run(command).map(|()| true),
        Command::Json(command) => json::run(command),
        Command::Jwt(command) => jwt::run(command),
        Command::Config(command) => config::run(command),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        // A check that found something (a rejected document).
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}
