//! Every command-line flag and environment variable of the gateway, in one place, and how they
//! become its configuration.
//!
//! Exit statuses: `0` after a clean shutdown, `1` when serving fails (the address cannot be
//! bound), `2` for a command line that does not parse, [`EXIT_CONFIG`] (`78`) for a
//! configuration that parses but is wrong (a bad network, an unreadable key file, a zero
//! timeout).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use palisade::TrustedProxies;
use palisade::apikey::KeyStore;

use super::{Config, ServerConfig, apikey, upstream};

/// The exit status for a configuration error (`EX_CONFIG` of sysexits.h).
pub const EXIT_CONFIG: u8 = 78;

/// The Palisade demo gateway.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "gateway",
    version,
    about,
    after_help = "Exit status: 0 after a clean shutdown, 1 when serving fails, 2 for a bad \
                  command line, 78 for a bad configuration."
)]
pub struct Flags {
    /// A configuration file (TOML) over the embedded defaults; flags and environment
    /// variables given as well win. Keys: `[server] timeout`, `trusted_proxies`,
    /// `[server.rate_limit.ip|caller|echo] quota`, `[server.api_keys] key_file`,
    /// `[server.jwt] issuer`, `audiences`, `[client] attempt_timeout`, `[client.retry]`,
    /// `[client.breaker]`.
    #[arg(long, env = "PALISADE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The flags given on the command line or in the environment (the rest are defaults).
    #[arg(skip)]
    pub explicit: std::collections::BTreeSet<String>,
    /// The address to listen on.
    #[arg(long, env = "PALISADE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Where `/metrics` (Prometheus text) is served, on a listener of its own; `off` disables
    /// it.
    #[arg(long, env = "PALISADE_METRICS_ADDR", default_value = "127.0.0.1:9464", value_parser = super::metrics::MetricsAddr::parse)]
    pub metrics_addr: super::metrics::MetricsAddr,
    /// An OTLP/gRPC collector (`http://127.0.0.1:4317`) to export request spans to, joined to
    /// the caller's trace (built with `--features otel`).
    #[cfg(feature = "otel")]
    #[arg(long, env = "PALISADE_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// The timeout of every request, e.g. "2s" or "500ms".
    #[arg(long, env = "PALISADE_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Proxies (addresses or CIDR networks, comma-separated) whose X-Forwarded-For is believed.
    /// Empty: none.
    #[arg(long, env = "PALISADE_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// A key file (lines from `palisade apikey new`), reloaded on SIGHUP. With it (or with
    /// --oidc-issuer), no demo credential is accepted.
    #[arg(long, env = "PALISADE_API_KEYS")]
    pub api_keys: Option<PathBuf>,
    /// Accept the demo credentials (the public demo key, the demo issuer's tokens): the
    /// default while neither --api-keys nor --oidc-issuer is given, and refused beside them.
    #[arg(long, env = "PALISADE_DEMO")]
    pub demo: bool,
    /// Accept a key file with no usable key, at start and on reload (it refuses every client).
    #[arg(long, env = "PALISADE_ALLOW_EMPTY_KEY_FILE")]
    pub allow_empty_key_file: bool,
    /// How long a client may take to send a request's headers; slower connections are closed.
    #[arg(long, env = "PALISADE_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,
    /// On SIGINT or SIGTERM, how long in-flight requests may finish before their connections
    /// are closed.
    #[arg(long, env = "PALISADE_SHUTDOWN_GRACE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// The fraction of the demo upstream's answers that fail (0 to 1).
    #[arg(long, env = "PALISADE_UPSTREAM_ERROR_RATE", default_value_t = 0.0)]
    pub upstream_error_rate: f64,
    /// The first calls the demo upstream fails whatever the rate (to show a retry).
    #[arg(long, env = "PALISADE_UPSTREAM_FAIL_FIRST", default_value_t = 0)]
    pub upstream_fail_first: u32,
    /// How long the demo upstream takes to answer.
    #[arg(long, env = "PALISADE_UPSTREAM_DELAY", default_value = "20ms", value_parser = humantime::parse_duration)]
    pub upstream_delay: Duration,
    /// The most one call to the upstream may take.
    #[arg(long, env = "PALISADE_UPSTREAM_TIMEOUT", default_value = "1s", value_parser = humantime::parse_duration)]
    pub upstream_timeout: Duration,
    /// An OIDC issuer whose access tokens (`at+jwt`) `/v1` accepts, its keys found by
    /// discovery. Without it (and without --api-keys), the demo's own issuer runs on a loopback
    /// port and a demo token is printed at start-up.
    #[arg(long, env = "PALISADE_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// The audience tokens must name.
    #[arg(long, env = "PALISADE_JWT_AUDIENCE", default_value = super::idp::DEMO_AUDIENCE)]
    pub jwt_audience: String,
    /// The per-client-address limit before authentication, e.g. "20/s burst 40".
    #[arg(long, env = "PALISADE_RATE_LIMIT_IP", default_value = "20/s burst 40")]
    pub rate_limit_ip: palisade::ratelimit::Quota,
    /// The per-caller limit after authentication.
    #[arg(
        long,
        env = "PALISADE_RATE_LIMIT_CALLER",
        default_value = "600/min burst 100"
    )]
    pub rate_limit_caller: palisade::ratelimit::Quota,
    /// The per-caller limit on `POST /v1/echo`.
    #[arg(
        long,
        env = "PALISADE_RATE_LIMIT_ECHO",
        default_value = "30/min burst 10"
    )]
    pub rate_limit_echo: palisade::ratelimit::Quota,
    /// A Redis URL (`redis://127.0.0.1:6379`): the per-caller limits are shared there by every
    /// gateway instance. Without it (and without --redis-cluster) they are in-process.
    #[arg(long, env = "PALISADE_REDIS_URL", conflicts_with = "redis_cluster")]
    pub redis: Option<String>,
    /// Redis Cluster node URLs, comma-separated, for the per-caller limits.
    #[arg(long, env = "PALISADE_REDIS_CLUSTER", value_delimiter = ',')]
    pub redis_cluster: Vec<String>,
    /// The largest request body, in bytes; larger is `413`.
    #[arg(long, env = "PALISADE_MAX_BODY", default_value_t = super::MAX_BODY_BYTES)]
    pub max_body: usize,
    /// The deepest nesting of arrays and objects a JSON body may have; deeper is `400`.
    #[arg(long, env = "PALISADE_MAX_JSON_DEPTH", default_value_t = super::MAX_JSON_DEPTH)]
    pub max_json_depth: u32,
    /// How long the upstream's circuit breaker stays open after it trips (doubling on repeated
    /// trips, up to a minute).
    #[arg(long, env = "PALISADE_BREAKER_WAIT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub breaker_wait: Duration,
}

/// The gateway's configuration, read from [`Flags`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The routes' and layers' configuration.
    pub config: Config,
    /// The server's configuration.
    pub server: ServerConfig,
    /// The key file to reload on SIGHUP, if one was given.
    pub key_file: Option<PathBuf>,
    /// How the demo upstream behaves.
    pub upstream: upstream::Behaviour,
    /// The OIDC issuer of accepted JWTs (none: the demo issuer in demo mode, else no JWTs).
    pub oidc_issuer: Option<String>,
    /// Whether the demo credentials are accepted: only while nothing real is configured.
    pub demo: bool,
    /// The Redis URL for the per-caller limits.
    pub redis: Option<String>,
    /// The Redis Cluster nodes for the per-caller limits.
    pub redis_cluster: Vec<String>,
    /// The audience of accepted JWTs.
    pub jwt_audience: String,
    /// The most one call to the upstream may take.
    pub upstream_timeout: Duration,
    /// How long the upstream's breaker stays open.
    pub breaker_wait: Duration,
    /// The outbound retries, from `[client.retry]` (none: the demo's).
    pub retry: Option<palisade::retry::RetryConfig>,
    /// The outbound breaker, from `[client.breaker]` (none: the demo's).
    pub breaker: Option<palisade::breaker::BreakerConfig>,
}

/// A configuration that parses but cannot be used; its message names the flag.
#[derive(Debug)]
pub struct ConfigError(String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// An error with this message (it names the flag or the file's key).
    pub(super) fn new(message: String) -> Self {
        Self(message)
    }
}

impl Flags {
    /// Parses `args` (the program's name first), noting which flags were given (on the command
    /// line or in the environment) so that a `--config` file does not override them.
    ///
    /// # Errors
    ///
    /// clap's error for a command line that does not parse.
    pub fn parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::parser::ValueSource;
        use clap::{CommandFactory, FromArgMatches};
        let matches = Self::command().try_get_matches_from(args)?;
        let mut flags = Self::from_arg_matches(&matches)?;
        flags.explicit = matches
            .ids()
            .filter(|id| {
                matches!(
                    matches.value_source(id.as_str()),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                )
            })
            .map(|id| id.as_str().to_owned())
            .collect();
        Ok(flags)
    }

    /// Checks the flags (over the `--config` file, if any) and loads what they name (the key
    /// file).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the flag, or the file's key and line, that is wrong and why.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let mut flags = self.clone();
        let file = match &self.config {
            Some(path) => Some(super::config_file::apply(&mut flags, path)?),
            None => None,
        };
        flags.checked_settings(file.unwrap_or_default())
    }

    fn checked_settings(
        &self,
        file: super::config_file::FromFile,
    ) -> Result<Settings, ConfigError> {
        let networks = self
            .trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|network| !network.is_empty());
        let trusted_proxies = match file.trusted_proxies {
            Some(from_file) => from_file,
            None => TrustedProxies::new(networks)
                .map_err(|err| ConfigError(format!("invalid --trusted-proxies: {err}")))?,
        };
        if self.timeout.is_zero() {
            return Err(ConfigError(
                "invalid --timeout: it must be more than zero".into(),
            ));
        }
        if self.header_timeout.is_zero() {
            return Err(ConfigError(
                "invalid --header-timeout: it must be more than zero".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.upstream_error_rate) {
            return Err(ConfigError(format!(
                "invalid --upstream-error-rate: a fraction from 0 to 1, not {}",
                self.upstream_error_rate
            )));
        }
        if self.upstream_timeout.is_zero() {
            return Err(ConfigError(
                "invalid --upstream-timeout: it must be more than zero".into(),
            ));
        }
        if self.breaker_wait.is_zero() || self.breaker_wait > std::time::Duration::from_secs(3600) {
            return Err(ConfigError(
                "invalid --breaker-wait: from 1 ms to 1 h".into(),
            ));
        }
        if self.max_body == 0 {
            return Err(ConfigError("invalid --max-body: at least 1 byte".into()));
        }
        if !(1..=1024).contains(&self.max_json_depth) {
            return Err(ConfigError(
                "invalid --max-json-depth: from 1 to 1024".into(),
            ));
        }
        if self.jwt_audience.trim().is_empty() {
            return Err(ConfigError("invalid --jwt-audience: empty".into()));
        }
        if let Some(issuer) = &self.oidc_issuer {
            super::jwt::layer(issuer, &self.jwt_audience)
                .map_err(|err| ConfigError(format!("invalid --oidc-issuer: {err}")))?;
        }
        let real = self.api_keys.is_some() || self.oidc_issuer.is_some();
        if self.demo && real {
            return Err(ConfigError(
                "invalid --demo: demo credentials are never accepted beside --api-keys or \
                 --oidc-issuer"
                    .into(),
            ));
        }
        let demo = !real;
        let keys: Option<KeyStore> =
            match &self.api_keys {
                Some(path) => Some(apikey::load(path, self.allow_empty_key_file).map_err(
                    |err| ConfigError(format!("invalid --api-keys {}: {err}", path.display())),
                )?),
                None if demo => Some(apikey::demo_store()),
                None => None,
            };
        Ok(Settings {
            addr: self.addr,
            config: Config {
                timeout: self.timeout,
                trusted_proxies,
                keys,
                outbound: None,
                max_body: self.max_body,
                max_json_depth: self.max_json_depth,
                jwt: None,
                limits: super::ratelimit::Limits {
                    per_ip: self.rate_limit_ip,
                    per_caller: self.rate_limit_caller,
                    echo: self.rate_limit_echo,
                    redis: None,
                },
            },
            server: ServerConfig {
                header_timeout: self.header_timeout,
                shutdown_grace: self.shutdown_grace,
            },
            key_file: self.api_keys.clone(),
            upstream: upstream::Behaviour {
                error_rate: self.upstream_error_rate,
                delay: self.upstream_delay,
                fail_first: self.upstream_fail_first,
            },
            upstream_timeout: self.upstream_timeout,
            breaker_wait: self.breaker_wait,
            retry: file.retry,
            breaker: file.breaker,
            oidc_issuer: self.oidc_issuer.clone(),
            demo,
            jwt_audience: self.jwt_audience.clone(),
            redis: self.redis.clone(),
            redis_cluster: self.redis_cluster.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Result<Settings, String> {
        let flags = Flags::parse_args(std::iter::once("gateway").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        flags.settings().map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_embedded() {
        let settings = settings(&[]).unwrap();
        assert_eq!(settings.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(settings.config.timeout, Duration::from_secs(2));
        assert!(settings.config.trusted_proxies.networks().is_empty());
        assert_eq!(settings.server.header_timeout, Duration::from_secs(10));
        assert_eq!(settings.server.shutdown_grace, Duration::from_secs(30));
        assert_eq!(
            settings.config.keys.unwrap().load().len(),
            1,
            "the demo key"
        );
        assert!(settings.demo);
    }

    /// Issue 16, item 4: the demo issuer ran, and its published key was trusted, whatever was
    /// configured. Demo credentials now exist only while nothing real is configured.
    #[test]
    fn demo_credentials_only_while_nothing_real_is_configured() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys.txt");
        std::fs::write(
            &file,
            super::super::DEMO_KEYS.replace("principal=demo", "principal=ops"),
        )
        .unwrap();
        let file = file.to_str().unwrap();
        let with_keys = settings(&["--api-keys", file]).unwrap();
        assert!(!with_keys.demo);
        assert!(with_keys.config.keys.is_some());
        let with_issuer = settings(&["--oidc-issuer", "https://login.example.com"]).unwrap();
        assert!(!with_issuer.demo);
        assert!(
            with_issuer.config.keys.is_none(),
            "no demo key beside a real issuer"
        );
        assert!(settings(&["--demo"]).unwrap().demo);
        for args in [
            &["--demo", "--api-keys", file][..],
            &["--demo", "--oidc-issuer", "https://login.example.com"][..],
        ] {
            let err = settings(args).unwrap_err();
            assert!(err.contains("invalid --demo"), "{args:?}: {err}");
        }
    }

    #[test]
    fn an_empty_proxy_list_means_no_trusted_proxies() {
        for value in ["", " ", ",", " , "] {
            let settings = settings(&["--trusted-proxies", value]).unwrap();
            assert!(
                settings.config.trusted_proxies.networks().is_empty(),
                "{value:?}"
            );
        }
        let two = settings(&["--trusted-proxies", "10.0.0.0/8, 192.0.2.7"]).unwrap();
        assert_eq!(two.config.trusted_proxies.networks().len(), 2);
    }

    #[test]
    fn metrics_addr_is_an_address_or_off() {
        use crate::gateway::metrics::MetricsAddr;
        let parse = |args: &[&str]| {
            Flags::parse_args(std::iter::once("gateway").chain(args.iter().copied()))
                .map(|flags| flags.metrics_addr)
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            parse(&[]).unwrap(),
            MetricsAddr(Some("127.0.0.1:9464".parse().unwrap()))
        );
        assert_eq!(
            parse(&["--metrics-addr", "off"]).unwrap(),
            MetricsAddr(None)
        );
        assert_eq!(
            parse(&["--metrics-addr", "127.0.0.1:0"]).unwrap(),
            MetricsAddr(Some("127.0.0.1:0".parse().unwrap()))
        );
        let err = parse(&["--metrics-addr", "9464"]).unwrap_err();
        assert!(err.contains("or `off`"), "{err}");
    }

    #[test]
    fn configuration_errors_name_the_flag_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("keys.txt");
        std::fs::write(&empty, "").unwrap();
        let empty = empty.to_str().unwrap();
        for (args, expected) in [
            (
                &["--trusted-proxies", "10.0.0.0/40"][..],
                "invalid --trusted-proxies:",
            ),
            (&["--timeout", "0s"][..], "invalid --timeout"),
            (&["--header-timeout", "0s"][..], "invalid --header-timeout"),
            (
                &["--upstream-error-rate", "1.5"][..],
                "invalid --upstream-error-rate",
            ),
            (
                &["--upstream-timeout", "0s"][..],
                "invalid --upstream-timeout",
            ),
            (&["--breaker-wait", "0s"][..], "invalid --breaker-wait"),
            (
                &["--api-keys", "/nonexistent/keys.txt"][..],
                "invalid --api-keys /nonexistent/keys.txt: cannot read",
            ),
            (&["--api-keys", empty][..], "holds no key"),
        ] {
            let err = settings(args).unwrap_err();
            assert!(err.contains(expected), "{args:?}: {err}");
            assert!(!err.contains("Error {") && !err.contains("kind:"), "{err}");
        }
        let allowed = settings(&["--api-keys", empty, "--allow-empty-key-file"]).unwrap();
        assert!(allowed.config.keys.unwrap().load().is_empty());
    }
}
