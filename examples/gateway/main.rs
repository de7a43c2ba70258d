//! The Palisade demo gateway.
//!
//! ```text
//! cargo run --release --example gateway            # 127.0.0.1:8080, embedded defaults
//! cargo run --release --example gateway -- --addr 127.0.0.1:9000 --timeout 500ms
//! ```

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use palisade::TrustedProxies;
use palisade::apikey::KeyStore;
use palisade_examples::gateway::{self, Config, DEMO_KEY};
use tracing_subscriber::EnvFilter;

/// The Palisade demo gateway.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The address to listen on.
    #[arg(long, env = "PALISADE_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The timeout of every request, e.g. "2s" or "500ms".
    #[arg(long, env = "PALISADE_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Proxies (addresses or CIDR networks, comma-separated) whose X-Forwarded-For is believed.
    #[arg(long, env = "PALISADE_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<String>,
    /// A key file (lines from `palisade apikey new`), reloaded on SIGHUP. Without it, the
    /// embedded demo key is accepted.
    #[arg(long, env = "PALISADE_API_KEYS")]
    api_keys: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_ansi(std::io::stdout().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,tower_http=debug,palisade=debug")),
        )
        .init();
    let args = Args::parse();
    let keys = if let Some(path) = &args.api_keys {
        let store = KeyStore::from_file(path)?;
        tracing::info!(
            path = %path.display(),
            keys = store.load().len(),
            "API keys loaded; SIGHUP reloads them"
        );
        reload_on_sighup(store.clone(), path.clone());
        store
    } else {
        tracing::warn!("no --api-keys file: accepting the public demo key {DEMO_KEY}");
        Config::default().keys
    };
    let config = Config {
        timeout: args.timeout,
        trusted_proxies: TrustedProxies::new(&args.trusted_proxies)?,
        keys,
    };
    let app = gateway::app(&config)?;
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        timeout = ?config.timeout,
        "palisade gateway listening; try: curl -H 'x-api-key: {DEMO_KEY}' 'http://{}/v1/slow?ms=5000'",
        listener.local_addr()?
    );
    gateway::serve(listener, app, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Reloads the key file on each SIGHUP; a bad file leaves the current keys in force.
fn reload_on_sighup(store: KeyStore, path: PathBuf) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::error!("cannot listen for SIGHUP: keys will not reload");
            return;
        };
        while hangups.recv().await.is_some() {
            // Errors are logged by the store; the current keys stay in force.
            if let Ok(count) = store.reload_from_file(&path) {
                tracing::info!(keys = count, "API keys reloaded");
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (store, path);
}

/// Completes on SIGINT or SIGTERM; in-flight requests then finish before the server stops.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
