//! The Palisade demo gateway.
//!
//! ```text
//! cargo run --release --example gateway            # 127.0.0.1:8080, embedded defaults
//! cargo run --release --example gateway -- --addr 127.0.0.1:9000 --timeout 500ms
//! cargo run --release --example gateway -- --help  # every flag, with its environment variable
//! ```

use std::io::IsTerminal;
use std::process::ExitCode;

use palisade_examples::gateway::flags::{EXIT_CONFIG, Flags};
use palisade_examples::gateway::{self, DEMO_KEY, apikey};

fn main() -> ExitCode {
    // A command line that does not parse exits here with status 2 and clap's message.
    let flags = Flags::parse_args(std::env::args_os()).unwrap_or_else(|err| err.exit());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Inside the runtime: the OTLP exporter (feature `otel`) needs it.
    let telemetry = match runtime
        .block_on(async { gateway::logging::init(&flags, std::io::stdout().is_terminal()) })
    {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // A panic is logged escaped, through `tracing`; the request gets a 500 problem.
    gateway::panics::install_hook();
    let code = runtime.block_on(run(&flags));
    // The spans still queued are exported before the process ends.
    runtime.block_on(async { telemetry.shutdown() });
    code
}

async fn run(flags: &Flags) -> ExitCode {
    // The recorder first: the layers (and the key store, as it loads) register their metrics
    // with the recorder installed when they first count.
    let metrics = match flags.metrics_addr.0 {
        Some(addr) => match gateway::metrics::install() {
            Ok(handle) => Some((addr, handle)),
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let settings = match flags.settings() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // The demo's upstream, on its own loopback port, behind the outbound breaker.
    let mut settings = settings;
    match gateway::upstream::spawn(settings.upstream).await {
        Ok(addr) => {
            tracing::info!(
                upstream = %addr,
                error_rate = settings.upstream.error_rate,
                delay = ?settings.upstream.delay,
                "demo upstream listening"
            );
            // `[client.retry]` and `[client.breaker]` of a --config file, else the demo's;
            // the file was checked whole when it was read.
            let retry = match &settings.retry {
                Some(config) => config.build(),
                None => Ok(gateway::outbound::Outbound::demo_retry()),
            };
            let breaker = match &settings.breaker {
                Some(config) => config.builder().name("upstream").build(),
                None => Ok(gateway::outbound::Outbound::demo_breaker(
                    settings.breaker_wait,
                )),
            };
            let (retry, breaker) = match (retry, breaker) {
                (Ok(retry), Ok(breaker)) => (retry, breaker),
                (Err(err), _) | (_, Err(err)) => {
                    eprintln!("error: invalid --config: {err}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            settings.config.outbound = Some(gateway::outbound::Outbound {
                base_url: format!("http://{addr}"),
                attempt_timeout: settings.upstream_timeout,
                breaker,
                retry,
            });
        }
        Err(err) => {
            eprintln!("error: cannot start the demo upstream: {err}");
            return ExitCode::FAILURE;
        }
    }
    // JWTs beside API keys: keys from --oidc-issuer, or in demo mode from the demo's own issuer.
    let demo_idp = match gateway::jwt::configure(&settings).await {
        Ok((layer, demo_idp)) => {
            settings.config.jwt = layer;
            demo_idp
        }
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Some(idp) = &demo_idp {
        match idp.token(
            "demo",
            &["hello:read", "echo:write"],
            std::time::Duration::from_secs(24 * 3600),
        ) {
            Ok(token) => tracing::warn!(
                issuer = idp.issuer(),
                "demo mode: the demo issuer runs; a demo token (24 h): {token}"
            ),
            Err(err) => tracing::error!(%err, "cannot sign the demo token"),
        }
    }
    // The per-caller limits in Redis, when asked: shared by every gateway instance.
    let redis = if let Some(url) = &settings.redis {
        Some(palisade::ratelimit::redis::RedisStore::connect(url).await)
    } else if !settings.redis_cluster.is_empty() {
        let nodes: Vec<&str> = settings.redis_cluster.iter().map(String::as_str).collect();
        Some(palisade::ratelimit::redis::RedisStore::connect_cluster(&nodes).await)
    } else {
        None
    };
    match redis {
        Some(Ok(store)) => {
            tracing::info!("per-caller rate limits shared in Redis");
            settings.config.limits.redis = Some(store);
        }
        Some(Err(err)) => {
            eprintln!("error: cannot reach Redis for the rate limits: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
        None => {}
    }
    let app = match gateway::app(&settings.config) {
        Ok(app) => app,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match (&settings.key_file, &settings.config.keys) {
        (Some(path), Some(keys)) => {
            tracing::info!(
                path = %path.display(),
                keys = keys.load().len(),
                "API keys loaded; SIGHUP reloads them"
            );
            apikey::reload_on_sighup(keys.clone(), path.clone());
        }
        (None, Some(_)) => tracing::warn!(
            "demo mode (no --api-keys, no --oidc-issuer): accepting the public demo key {DEMO_KEY}"
        ),
        _ => tracing::info!("no API keys configured: /v1 takes JWTs only"),
    }
    if let Some((addr, handle)) = metrics {
        match gateway::metrics::serve(addr, handle).await {
            Ok(bound) => tracing::info!(
                metrics = %bound,
                "metrics listening; try: curl 'http://{bound}/metrics'"
            ),
            Err(err) => {
                eprintln!("error: cannot listen on {addr} for metrics (--metrics-addr): {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    let listener = match tokio::net::TcpListener::bind(settings.addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("error: cannot listen on {}: {err}", settings.addr);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(settings.addr);
    tracing::info!(
        %addr,
        timeout = ?settings.config.timeout,
        header_timeout = ?settings.server.header_timeout,
        shutdown_grace = ?settings.server.shutdown_grace,
        "palisade gateway listening; try: curl 'http://{addr}/healthz'",
    );
    if let Err(err) = gateway::serve(listener, app, settings.server, shutdown_signal()).await {
        eprintln!("error: serving failed: {err}");
        return ExitCode::FAILURE;
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Completes on SIGINT or SIGTERM.
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
}
