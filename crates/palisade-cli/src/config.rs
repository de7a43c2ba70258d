//! `palisade config …`

use std::io::{self, Write};
use std::path::PathBuf;

use clap::Subcommand;
use palisade::config::Config;

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check configuration files the way `palisade::config` reads them, building both stacks
    /// (the key file is read; nothing is fetched over the network).
    ///
    /// Prints one line per file: `FILE: ok (...)` with what the server stack holds, or
    /// `FILE: invalid: <key> (line N): <reason>`. A relative key file is read from the
    /// configuration's directory. Exits 0 when every file is valid, 1 when any is invalid, 2
    /// when a file cannot be read.
    Check {
        /// Files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub(crate) fn run(command: Command) -> Result<bool, String> {
    let Command::Check { files } = command;
    let mut all_ok = true;
    let mut unreadable = false;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    for file in &files {
        let name = file.display();
        // Told apart from an invalid file: the exit status differs.
        if let Err(error) = std::fs::metadata(file).and_then(|meta| {
            if meta.is_file() {
                // A file that exists but cannot be read is unreadable, not invalid.
                std::fs::File::open(file).map(drop)
            } else {
                Err(io::Error::other("not a file"))
            }
        }) {
            unreadable = true;
            eprintln!("error: {name}: {error}");
            continue;
        }
        let line = match Config::from_file(file).and_then(|config| {
            config.check()?;
            Ok(config)
        }) {
            Ok(config) => format!("{name}: ok ({})", summary(&config)),
            Err(error) => {
                all_ok = false;
                format!("{name}: invalid: {error}")
            }
        };
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
    }
    if unreadable {
        return Err("some files could not be read".to_owned());
    }
    Ok(all_ok)
}

/// What the server stack holds, in a few words.
fn summary(config: &Config) -> String {
    let server = &config.server;
    let mut parts = vec![format!(
        "timeout {}",
        humantime::format_duration(server.timeout)
    )];
    if !server.rate_limit.is_empty() {
        let tiers: Vec<&str> = server.rate_limit.keys().map(String::as_str).collect();
        parts.push(format!("rate limits {}", tiers.join(", ")));
    }
    match (&server.api_keys, &server.jwt) {
        (Some(_), Some(_)) => parts.push("an API key or a JWT".to_owned()),
        (Some(_), None) => parts.push("API keys".to_owned()),
        (None, Some(_)) => parts.push("JWTs".to_owned()),
        (None, None) => {}
    }
    parts.join("; ")
}
