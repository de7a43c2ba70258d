//! `palisade jwt …`
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::io::{self, BufRead, Read, Write};
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Args, Subcommand};
use palisade_jwt::{Alg, JwkOptions, JwksSource, KeySet, Rules, Verifier};

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
        for line in stdin.lock().lines() {
            let line = line.map_err(|e| e.to_string())?;
            if line.len() > MAX_LINE {
                report("")?;
                continue;
            }
            report(&line)?;
        }
    } else {
        for token in &args.tokens {
            report(token)?;
        }
    }
    Ok(all_valid)
}

fn load_keys(source: &str, options: &JwkOptions) -> Result<KeySet, String> {
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
    KeySet::from_jwk_or_jwks(&bytes, options).map_err(|e| format!("--jwks {source}: {e}"))
}
