//! `palisade apikey …`

use std::io::{Read, Write};
use std::time::SystemTime;

use clap::{Args, Subcommand};
use palisade_apikey::format::{self, DEFAULT_PREFIX, KeyFormat};
use palisade_apikey::{KeyDigest, KeyEntry, MAX_KEY_LEN};

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Generate a new key. Prints the key (shown this once) on the first line and its key-file
    /// line on the second.
    New {
        /// The readable prefix: lowercase letters, digits and single underscores.
        #[arg(long, default_value = DEFAULT_PREFIX)]
        prefix: String,
        #[command(flatten)]
        entry: EntryArgs,
    },
    /// Read a key on standard input and print its key-file line.
    Hash {
        #[command(flatten)]
        entry: EntryArgs,
    },
}

#[derive(Debug, Args)]
pub(crate) struct EntryArgs {
    /// Who the key belongs to.
    #[arg(long, default_value = "unnamed")]
    principal: String,
    /// Scopes the key grants, comma-separated.
    #[arg(long, value_delimiter = ',')]
    scopes: Vec<String>,
    /// When the key stops working, in RFC 3339 UTC (e.g. 2027-01-31T00:00:00Z).
    #[arg(long, value_parser = parse_time)]
    not_after: Option<SystemTime>,
}

fn parse_time(text: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339(text)
        .map_err(|_| format!("{text:?} is not an RFC 3339 UTC time like 2027-01-31T00:00:00Z"))
}

impl EntryArgs {
    fn line(&self, key: &str) -> Result<String, String> {
        let mut entry = KeyEntry::new(KeyDigest::of(key), &self.principal)
            .map_err(|e| e.to_string())?
            .with_scopes(&self.scopes)
            .map_err(|e| e.to_string())?;
        if let Some(not_after) = self.not_after {
            entry = entry.with_not_after(not_after);
        }
        Ok(entry.to_line())
    }
}

/// The most `apikey hash` reads from standard input: a key and the whitespace around it. More
/// is an error, never silently cut: what follows a key must not be ignored.
pub(crate) const MAX_INPUT: usize = 64 * 1024;

/// Reads all of `input` (a key, perhaps with a trailing newline), refusing more than
/// [`MAX_INPUT`] bytes and anything that is not UTF-8.
fn read_key_input(input: impl Read) -> Result<String, String> {
    let mut bytes = Vec::new();
    input
        .take(MAX_INPUT as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the key from standard input: {e}"))?;
    if bytes.len() > MAX_INPUT {
        return Err(format!(
            "standard input holds more than {MAX_INPUT} bytes; it should hold one key"
        ));
    }
    String::from_utf8(bytes).map_err(|_| "standard input is not UTF-8 text".to_owned())
}

pub(crate) fn run(command: Command) -> Result<(), String> {
    match command {
        Command::New { prefix, entry } => {
            let key = format::generate(&prefix).map_err(|e| e.to_string())?;
            let line = entry.line(&key)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{key}\n{line}").map_err(|e| e.to_string())?;
            eprintln!(
                "The key (first line) is shown only this once: give it to its owner through a \
                 secret manager.\nAdd the second line to the service's key file; it holds only \
                 the key's SHA-256 digest."
            );
            Ok(())
        }
        Command::Hash { entry } => {
            let input = read_key_input(std::io::stdin().lock())?;
            let key = input.trim();
            if key.is_empty() {
                return Err("no key on standard input".to_owned());
            }
            if key.len() > MAX_KEY_LEN {
                return Err(format!("the key is longer than {MAX_KEY_LEN} bytes"));
            }
            if !key.bytes().all(|b| b.is_ascii_graphic()) {
                return Err("a key is one token of visible ASCII characters".to_owned());
            }
            if let Err(err) = KeyFormat::default().check(key) {
                eprintln!("warning: {err}; services accept it only with legacy keys enabled");
            }
            println!("{}", entry.line(key)?);
            Ok(())
        }
    }
}
