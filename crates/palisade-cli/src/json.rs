//! `palisade json …`
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use palisade_json::{DEFAULT_MAX_BODY, DuplicateKeys, Limits, LossyNumbers, validate};

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check JSON files the way `JsonLayer` checks request bodies, with the same defaults.
    ///
    /// Prints one line per file: `FILE: ok`, or `FILE: reject: <reason> at "<pointer>" (byte N)`.
    /// Exits 0 when every file is accepted, 1 when any is rejected, 2 when a file cannot be
    /// read.
    Check {
        #[command(flatten)]
        limits: LimitArgs,
        /// Files to check; `-` reads standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Each limit defaults to the layer's.
#[derive(Debug, Args)]
pub(crate) struct LimitArgs {
    /// The largest file, in bytes [default: 2 MiB].
    #[arg(long, value_name = "BYTES")]
    max_bytes: Option<usize>,
    /// The deepest nesting of arrays and objects [default: 64].
    #[arg(long, value_name = "N")]
    max_depth: Option<u32>,
    /// The most members of one object [default: 1000].
    #[arg(long, value_name = "N")]
    max_keys: Option<u32>,
    /// The most elements of one array [default: 100000].
    #[arg(long, value_name = "N")]
    max_array_len: Option<u32>,
    /// The longest string value, in bytes as written [default: 1 MiB].
    #[arg(long, value_name = "BYTES")]
    max_string_bytes: Option<u32>,
    /// The longest object key, in bytes as written [default: 256].
    #[arg(long, value_name = "BYTES")]
    max_key_bytes: Option<u32>,
    /// The longest number, in characters [default: 128].
    #[arg(long, value_name = "N")]
    max_number_len: Option<u32>,
    /// Accept numbers that lose precision as 64-bit values.
    #[arg(long)]
    allow_lossy_numbers: bool,
    /// Accept objects that name a key twice.
    #[arg(long)]
    allow_duplicate_keys: bool,
}

impl LimitArgs {
    fn limits(&self) -> Result<Limits, String> {
        let mut limits = Limits::default();
        if let Some(n) = self.max_depth {
            limits = limits.max_depth(n);
        }
        if let Some(n) = self.max_keys {
            limits = limits.max_keys(n);
        }
        if let Some(n) = self.max_array_len {
            limits = limits.max_array_len(n);
        }
        if let Some(n) = self.max_string_bytes {
            limits = limits.max_string_bytes(n);
        }
        if let Some(n) = self.max_key_bytes {
            limits = limits.max_key_bytes(n);
        }
        if let Some(n) = self.max_number_len {
            limits = limits.max_number_len(n);
        }
        if self.allow_lossy_numbers {
            limits = limits.lossy_numbers(LossyNumbers::Allow);
        }
        if self.allow_duplicate_keys {
            limits = limits.duplicate_keys(DuplicateKeys::Allow);
        }
        limits.check().map_err(|e| e.to_string())?;
        Ok(limits)
    }
}

/// What checking one file found.
enum Outcome {
    Ok,
    Rejected(String),
    Unreadable(String),
}

pub(crate) fn run(command: Command) -> Result<bool, String> {
    let Command::Check { limits, files } = command;
    let max_bytes = limits.max_bytes.unwrap_or(DEFAULT_MAX_BODY);
    if max_bytes == 0 {
        return Err("--max-bytes must be at least 1".to_owned());
    }
    let limits = limits.limits()?;
    let mut all_ok = true;
    let mut unreadable = false;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    for file in &files {
        let outcome = check(file, max_bytes, &limits);
        let name = file.display();
        let line = match &outcome {
            Outcome::Ok => format!("{name}: ok"),
            Outcome::Rejected(why) => {
                all_ok = false;
                format!("{name}: reject: {why}")
            }
            Outcome::Unreadable(why) => {
                unreadable = true;
                eprintln!("error: {name}: {why}");
                continue;
            }
        };
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
    }
    if unreadable {
        return Err("some files could not be read".to_owned());
    }
    Ok(all_ok)
}

fn check(file: &PathBuf, max_bytes: usize, limits: &Limits) -> Outcome {
    let mut bytes = Vec::new();
    // One byte past the limit tells "at the limit" from "over it" without reading the rest.
    let cap = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let read = if file.as_os_str() == "-" {
        io::stdin().lock().take(cap).read_to_end(&mut bytes)
    } else {
        File::open(file).and_then(|f| f.take(cap).read_to_end(&mut bytes))
    };
    if let Err(error) = read {
        return Outcome::Unreadable(error.kind().to_string());
    }
    if bytes.len() > max_bytes {
        return Outcome::Rejected(format!("the file is larger than {max_bytes} bytes"));
    }
    match validate(&bytes, limits) {
        Ok(_) => Outcome::Ok,
        Err(rejected) => Outcome::Rejected(format!(
            "{} at {:?} (byte {})",
            rejected.reason().describe(),
            rejected.pointer(),
            rejected.offset()
        )),
    }
}
