//! `palisade jwt …`
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::io::{self, BufRead, Read, Write};
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Args, Subcommand};
use palisade_jwt::{Alg, JwkOptions, JwksSource, JwtKeySet, Rules, Verifier};

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print a token's header and claims, without verifying anything.
    Inspect {
        /// The token; read from standard input when absent.
        token: Option<String>,
    },
    /// Verify tokens against a JWKS or JWK: one line per token, `valid` or
    /// `invalid: <reason>`. Exits 0 when every token is valid, 1 when any is not, 2 when the
    /// keys cannot be loaded.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The keys: a file or an http(s) URL holding a JWK set or a single JWK (public or
    /// private: a private key's public part is used; an `oct` key is an HMAC secret).
    #[arg(long)]
    jwks: String,
    /// The issuer `iss` must be.
    #[arg(long)]
    iss: Option<String>,
    /// An audience `aud` must name (repeatable; without one, a token with `aud` is refused).
    #[arg(long)]
    aud: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, e.g. "30s".
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    leeway: Duration,
    /// Check only the structure, header rules and signature (for test vectors whose payload
    /// is not a claims set).
    #[arg(long)]
    skip_claims: bool,
    /// The algorithm of RSA keys that do not name one (default RS256).
    #[arg(long, value_parser = parse_alg)]
    rsa_alg: Option<Alg>,
    /// Tokens; read one per line from standard input when none is given.
    tokens: Vec<String>,
}

fn parse_alg(name: &str) -> Result<Alg, String> {
    name.parse()
        .map_err(|_| format!("{name:?} is not a supported algorithm (RS256, PS256, ...)"))
}

/// The most a token line read from standard input may hold.
const MAX_LINE: usize = 64 * 1024;

pub(crate) fn run(command: Command) -> Result<bool, String> {
    match command {
        Command::Inspect { token } => inspect(token),
        Command::Verify(args) => verify(&args),
    }
}

fn inspect(token: Option<String>) -> Result<bool, String> {
    let token = if let Some(token) = token {
        token
    } else {
        let mut line = String::new();
        io::stdin()
            .lock()
            .take(MAX_LINE as u64)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        line
    };
    let token = token.trim();
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a JWS compact token (three parts separated by dots)".to_owned());
    };
    let out = io::stdout();
    let mut out = out.lock();
    for (label, part) in [("header", header), ("claims", payload)] {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| format!("the {label} is not unpadded base64url"))?;
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| format!("the {label} is not JSON"))?;
        let pretty = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
        writeln!(out, "{label} (unverified):\n{pretty}").map_err(|e| e.to_string())?;
    }
    Ok(true)
}

fn verify(args: &VerifyArgs) -> Result<bool, String> {
    let options = JwkOptions {
        rsa_alg: args.rsa_alg.unwrap_or(Alg::RS256),
        allow_symmetric: true,
    };
    let keys = load_keys(&args.jwks, &options)?;
    let mut rules = Rules::new()
        .with_leeway(args.leeway)
        .with_audiences(&args.aud);
    if let Some(iss) = &args.iss {
        rules = rules.with_issuer(iss.clone());
    }
    let verifier = Verifier::new(keys, rules);
    let check = |token: &str| -> String {
        let outcome = if args.skip_claims {
            verifier.verify_signature_only(token).map(|_| ())
        } else {
            verifier.verify(token).map(|_| ())
        };
        match outcome {
            Ok(()) => "valid".to_owned(),
            Err(error) => format!("invalid: {error}"),
        }
    };
    let out = io::stdout();
    let mut out = out.lock();
    let mut all_valid = true;
    let mut report = |token: &str| -> Result<(), String> {
        let line = check(token.trim());
        all_valid &= line == "valid";
        writeln!(out, "{line}").map_err(|e| e.to_string())
    };
    if args.tokens.is_empty() {
        let stdin = io::stdin();
        let mut input = stdin.lock();
        let mut line = Vec::new();
        // Each line read up to MAX_LINE bytes: a longer line, or one that is not UTF-8, is one
        // invalid token; memory stays bounded whatever comes in.
        while let Some(fits) =
            read_bounded_line(&mut input, MAX_LINE, &mut line).map_err(|e| e.to_string())?
        {
            match std::str::from_utf8(&line) {
                Ok(token) if fits => report(token)?,
                _ => report("")?,
            }
        }
    } else {
        for token in &args.tokens {
            report(token)?;
        }
    }
    Ok(all_valid)
}

fn load_keys(source: &str, options: &JwkOptions) -> Result<JwtKeySet, String> {
    if source.starts_with("https://") || source.starts_with("http://") {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        return runtime.block_on(async {
            let jwks = JwksSource::builder(source)
                .jwk_options(options)
                .build()
                .map_err(|e| format!("--jwks {source}: {e}"))?;
            jwks.load()
                .await
                .map_err(|e| format!("--jwks {source}: {e}"))?;
            jwks.keys()
                .map(|keys| (*keys).clone())
                .ok_or_else(|| format!("--jwks {source}: no usable keys"))
        });
    }
    let bytes = std::fs::read(Path::new(source)).map_err(|e| format!("--jwks {source}: {e}"))?;
    JwtKeySet::from_jwk_or_jwks(&bytes, options).map_err(|e| format!("--jwks {source}: {e}"))
}

/// Reads one line (without its `\n`) into `line`, keeping at most `max` bytes of it: `None` at
/// the end of the input, else whether the whole line fitted. The rest of a longer line is read
/// and dropped a buffer at a time.
fn read_bounded_line(
    input: &mut impl BufRead,
    max: usize,
    line: &mut Vec<u8>,
) -> io::Result<Option<bool>> {
    line.clear();
    let mut fits = true;
    let mut read_any = false;
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            return Ok(read_any.then_some(fits));
        }
        read_any = true;
        let (chunk, newline) = match buffer.iter().position(|b| *b == b'\n') {
            Some(at) => (buffer.get(..at).unwrap_or_default(), true),
            None => (buffer, false),
        };
        let room = max.saturating_sub(line.len());
        if chunk.len() > room {
            fits = false;
        }
        line.extend_from_slice(chunk.get(..chunk.len().min(room)).unwrap_or_default());
        let used = chunk.len() + usize::from(newline);
        input.consume(used);
        if newline {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(fits));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 16, item 11: `jwt verify` read whole lines from standard input, however long.
    #[test]
    fn lines_are_read_within_the_bound() {
        let mut input = std::io::Cursor::new(
            [
                b"short\n".as_slice(),
                &[b'x'; 100],
                b"\nlast\r\n",
                b"\xff\xfe\n",
                b"no newline",
            ]
            .concat(),
        );
        let mut line = Vec::new();
        let mut seen = Vec::new();
        while let Some(fits) = read_bounded_line(&mut input, 10, &mut line).unwrap() {
            seen.push((String::from_utf8_lossy(&line).into_owned(), fits));
        }
        assert_eq!(
            seen,
            [
                ("short".to_owned(), true),
                ("x".repeat(10), false),
                ("last".to_owned(), true),
                ("\u{fffd}\u{fffd}".to_owned(), true),
                ("no newline".to_owned(), true),
            ]
        );
    }
}
