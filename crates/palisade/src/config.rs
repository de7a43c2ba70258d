//! One configuration file for a whole stack (feature `config`): a server stack and a client
//! stack, each built from one TOML document in one call.
//!
//! ```
//! use palisade::config::Config;
//!
//! # fn main() -> Result<(), palisade::config::ConfigError> {
//! let config = Config::from_toml(r#"
//! [server]
//! timeout = "2s"
//! trusted_proxies = ["10.0.0.0/8"]
//!
//! [server.rate_limit.ip]           # before authentication, per client address
//! quota = "20/s burst 40"
//!
//! [server.rate_limit.caller]       # after it, per caller
//! quota = "600/min burst 100"
//!
//! [server.jwt]
//! issuer = "https://login.example.com/tenant"
//! audiences = ["https://api.example.com"]
//! types = ["at+jwt"]
//!
//! [client]
//! attempt_timeout = "500ms"
//!
//! [client.retry]
//! max_attempts = 3
//!
//! [client.breaker]
//! wait = "10s"
//! "#)?;
//! let server = config.server.stack()?; // a tower::ServiceBuilder: .service(your_app)
//! let client = config.client.stack()?; // .service(your_http_client)
//! # let _ = (server, client);
//! # Ok(()) }
//! ```
//!
//! The server stack is, outermost first: the client address ([`ClientIpLayer`] through
//! `trusted_proxies`), the caller's W3C trace ([`TraceContextLayer`]), the total timeout (which honours a shorter `grpc-timeout`), the rate
//! limits that do not need the caller (`[server.rate_limit.<name>]`), authentication (an API
//! key file, a JWT issuer, or either), then the limits per caller. The client stack: retries
//! (`[client.retry]`), a breaker (`[client.breaker]`), a timeout per attempt, and the time
//! left before the request's [`Deadline`](crate::Deadline), if it has one, sent along as
//! `grpc-timeout`, and its [`TraceContext`](crate::TraceContext) as `traceparent`.
//!
//! A tier with a `route` template (`/users/{id}`) counts only where axum's matched route is
//! known: apply the server stack inside the router (`Router::layer`), not around it
//! (`.service(router)`), or give exact paths.
//!
//! Every setting has a default but authentication: a server stack needs `[server.api_keys]`
//! or `[server.jwt]` (or both), so no configuration leaves a service open by omission. A
//! key that is not known, or a value that does not parse, is a [`ConfigError`] naming the key
//! and its line; a setting that parses but cannot be used (a zero timeout, an unknown key
//! type) names the key.
//!
//! | key | default | what |
//! |---|---|---|
//! | `server.timeout` | `"2s"` | each request's total timeout, and the most a `grpc-timeout` may ask |
//! | `server.trusted_proxies` | none | addresses and networks whose `X-Forwarded-For` is believed |
//! | `server.continue_traces` | `"anyone"` | whose `traceparent` is continued: `anyone`, `trusted_proxies` (callers whose resolved address is in them: your own services, not the public behind your proxies), `nobody` (a public edge) |
//! | `server.rate_limit.<name>` | none | a tier: `quota`, `key` (`ip` and `caller` by their names), `route`, `method`, `cost`, `shadow`, `keyless` ([`TierConfig`]) |
//! | `server.api_keys` | none | [`ApiKeyConfig`]: `key_file`, `header`, ... |
//! | `server.jwt` | none | [`JwtConfig`]: `issuer` or `jwks_url`, `audiences`, `types`, ... |
//! | `client.attempt_timeout` | `"1s"` | the most one attempt may take |
//! | `client.retry` | 3 attempts, exponential from 100 ms | [`RetryConfig`]: `max_attempts`, `backoff`, `budget`, ... |
//! | `client.breaker` | half of 100 calls, once 20 were made | [`BreakerConfig`] |

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use palisade_core::trace::ContinueFrom;
use palisade_core::{
    BuildError, ClientIpLayer, PropagateTraceLayer, ResponseBody, TraceContextLayer, TrustedProxies,
};
use pin_project_lite::pin_project;
use serde::Deserialize;
use tower::ServiceBuilder;
use tower_layer::{Identity, Layer, Stack};
use tower_service::Service;

use crate::apikey::{ApiKey, ApiKeyConfig, ApiKeyLayer};
use crate::breaker::{BreakerConfig, BreakerLayer};
use crate::jwt::{Jwt, JwtConfig, JwtLayer};
use crate::ratelimit::{RateLimitLayer, TierConfig};
use crate::retry::{HttpRetryLayer, RetryConfig};
use crate::timeout::{DeadlineHeader, HttpTimeoutLayer, PropagateDeadlineLayer, TimeoutLayer};
use crate::{AnyCredential, AnyCredentialLayer};

/// A whole configuration: a `[server]` stack and a `[client]` stack.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The server stack's settings.
    #[serde(default)]
    pub server: ServerConfig,
    /// The client stack's settings.
    #[serde(default)]
    pub client: ClientConfig,
}

/// The server stack's settings; see the [module documentation](self).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Each request's total timeout (default 2 s).
    #[serde(default = "two_seconds", with = "palisade_core::serde_duration")]
    pub timeout: Duration,
    /// Proxies whose forwarding headers are believed (default: none).
    #[serde(default)]
    pub trusted_proxies: TrustedProxies,
    /// Rate-limit tiers by name.
    #[serde(default)]
    pub rate_limit: BTreeMap<String, TierConfig>,
    /// API keys.
    #[serde(default)]
    pub api_keys: Option<ApiKeyConfig>,
    /// JWTs.
    #[serde(default)]
    pub jwt: Option<JwtConfig>,
    /// Whose W3C trace is continued (default `anyone`).
    #[serde(default)]
    pub continue_traces: ContinueTraces,
}

/// `server.continue_traces`: whose `traceparent` a request's trace continues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContinueTraces {
    /// Every caller's (W3C Trace Context's propagation).
    #[default]
    Anyone,
    /// Only callers whose address, resolved through `trusted_proxies`, is itself in
    /// `trusted_proxies`: your own services calling directly. A public client behind your load
    /// balancer resolves to its own address and starts a new trace.
    TrustedProxies,
    /// Nobody's: every request starts a new trace (a public edge, where a caller would
    /// otherwise choose the trace id and force sampling).
    Nobody,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            timeout: two_seconds(),
            trusted_proxies: TrustedProxies::none(),
            rate_limit: BTreeMap::new(),
            api_keys: None,
            jwt: None,
            continue_traces: ContinueTraces::Anyone,
        }
    }
}

/// The client stack's settings; see the [module documentation](self).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The most one attempt may take (default 1 s).
    #[serde(default = "one_second", with = "palisade_core::serde_duration")]
    pub attempt_timeout: Duration,
    /// Retries (every default: exponential backoff from 100 ms, 3 attempts, a budget).
    #[serde(default)]
    pub retry: RetryConfig,
    /// The breaker (every default).
    #[serde(default)]
    pub breaker: BreakerConfig,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            attempt_timeout: one_second(),
            retry: RetryConfig::default(),
            breaker: BreakerConfig::default(),
        }
    }
}

fn two_seconds() -> Duration {
    Duration::from_secs(2)
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}

/// A configuration that cannot be used: the key it concerns (`server.rate_limit.ip.quota`),
/// the line when it is known, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    key: String,
    line: Option<usize>,
    message: String,
}

impl ConfigError {
    /// The key, as a dotted path (empty for the document as a whole).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The line of the document, from 1, when it is known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// Why.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn built(section: &str, error: &BuildError) -> Self {
        Self {
            key: format!("{section}.{}", error.field()),
            line: None,
            message: error.reason().to_owned(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.key.is_empty(), self.line) {
            (true, Some(line)) => write!(f, "line {line}: {}", self.message),
            (true, None) => f.write_str(&self.message),
            (false, Some(line)) => write!(f, "`{}` (line {line}): {}", self.key, self.message),
            (false, None) => write!(f, "`{}`: {}", self.key, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads a TOML document. Unknown keys are errors.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the key and line of the first problem.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let deserializer = toml::Deserializer::parse(text).map_err(|error| ConfigError {
            key: String::new(),
            line: error.span().map(|span| line_of(text, span.start)),
            message: error.message().to_owned(),
        })?;
        serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let key = error.path().to_string();
            let inner = error.into_inner();
            ConfigError {
                key: if key == "." { String::new() } else { key },
                line: inner.span().map(|span| line_of(text, span.start)),
                message: inner.message().to_owned(),
            }
        })
    }

    /// Reads the TOML file at `path`. A relative `server.api_keys.key_file` is taken from the
    /// file's directory, so the configuration means the same from any working directory.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for a file that cannot be read, or as [`from_toml`](Self::from_toml).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
            key: String::new(),
            line: None,
            message: format!("cannot read {}: {}", path.display(), error.kind()),
        })?;
        let mut config = Self::from_toml(&text)?;
        if let (Some(keys), Some(dir)) = (&mut config.server.api_keys, path.parent())
            && keys.key_file.is_relative()
        {
            keys.key_file = dir.join(&keys.key_file);
        }
        Ok(config)
    }

    /// Builds both stacks, to check a configuration as a whole (nothing is fetched).
    ///
    /// # Errors
    ///
    /// The first [`ConfigError`] of either stack.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.server.stack()?;
        self.client.stack()?;
        Ok(())
    }
}

/// The line (from 1) of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.bytes().take(offset).filter(|b| *b == b'\n').count() + 1
}

/// The server stack: client address, W3C trace context, timeout, limits before
/// authentication, authentication, limits per caller. Apply it with
/// [`ServiceBuilder::service`].
pub type ServerStack = ServiceBuilder<
    Stack<
        RateLimitLayer,
        Stack<
            Credentials,
            Stack<
                RateLimitLayer,
                Stack<HttpTimeoutLayer, Stack<TraceContextLayer, Stack<ClientIpLayer, Identity>>>,
            >,
        >,
    >,
>;

/// The client stack: retries, breaker, attempt timeout, deadline and trace propagation. Apply
/// it with [`ServiceBuilder::service`] to an HTTP client.
pub type ClientStack = ServiceBuilder<
    Stack<
        PropagateTraceLayer,
        Stack<
            PropagateDeadlineLayer,
            Stack<TimeoutLayer, Stack<BreakerLayer, Stack<HttpRetryLayer, Identity>>>,
        >,
    >,
>;

impl ServerConfig {
    /// The server stack.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the setting (under `server.`) that cannot be used.
    pub fn stack(&self) -> Result<ServerStack, ConfigError> {
        let timeout = HttpTimeoutLayer::builder(self.timeout)
            .inbound_deadline(DeadlineHeader::grpc_timeout(), self.timeout)
            .build()
            .map_err(|e| ConfigError::built("server", &e))?;
        let (callers, others): (Vec<_>, Vec<_>) = self
            .rate_limit
            .iter()
            .partition(|(name, tier)| tier.needs_identity(name));
        let before =
            TierConfig::layer(others).map_err(|e| ConfigError::built("server.rate_limit", &e))?;
        let after =
            TierConfig::layer(callers).map_err(|e| ConfigError::built("server.rate_limit", &e))?;
        let api_keys = self
            .api_keys
            .as_ref()
            .map(ApiKeyConfig::build)
            .transpose()
            .map_err(|e| ConfigError::built("server.api_keys", &e))?;
        let jwt = self
            .jwt
            .as_ref()
            .map(JwtConfig::build)
            .transpose()
            .map_err(|e| ConfigError::built("server.jwt", &e))?;
        let credentials = match (api_keys, jwt) {
            (Some(keys), Some(jwt)) => Credentials::Either(AnyCredentialLayer::new(keys, jwt)),
            (Some(keys), None) => Credentials::ApiKey(keys),
            (None, Some(jwt)) => Credentials::Jwt(jwt),
            (None, None) => {
                return Err(ConfigError {
                    key: "server".to_owned(),
                    line: None,
                    message: "no credential: set [server.api_keys] or [server.jwt] (or both)"
                        .to_owned(),
                });
            }
        };
        Ok(ServiceBuilder::new()
            .layer(ClientIpLayer::new(self.trusted_proxies.clone()))
            .layer(
                TraceContextLayer::new().continue_from(match self.continue_traces {
                    ContinueTraces::Anyone => ContinueFrom::Anyone,
                    ContinueTraces::TrustedProxies => {
                        ContinueFrom::Peers(self.trusted_proxies.clone())
                    }
                    ContinueTraces::Nobody => ContinueFrom::Nobody,
                }),
            )
            .layer(timeout)
            .layer(before)
            .layer(credentials)
            .layer(after))
    }
}

impl ClientConfig {
    /// The client stack.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the setting (under `client.`) that cannot be used.
    pub fn stack(&self) -> Result<ClientStack, ConfigError> {
        if self.attempt_timeout.is_zero() {
            return Err(ConfigError {
                key: "client.attempt_timeout".to_owned(),
                line: None,
                message: "must be more than zero".to_owned(),
            });
        }
        let retry = self
            .retry
            .build()
            .map_err(|e| ConfigError::built("client.retry", &e))?;
        let breaker = self
            .breaker
            .builder()
            .build()
            .map_err(|e| ConfigError::built("client.breaker", &e))?;
        Ok(ServiceBuilder::new()
            .layer(retry)
            .layer(BreakerLayer::new(breaker))
            .layer(TimeoutLayer::new(self.attempt_timeout))
            .layer(PropagateDeadlineLayer::new(DeadlineHeader::grpc_timeout()))
            .layer(PropagateTraceLayer::new()))
    }
}

/// Authentication as configured: API keys, JWTs, or either on the same requests.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// API keys only.
    ApiKey(ApiKeyLayer),
    /// JWTs only.
    Jwt(JwtLayer),
    /// An API key or a JWT.
    Either(AnyCredentialLayer),
}

impl<S: Clone> Layer<S> for Credentials {
    type Service = CredentialsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        match self {
            Self::ApiKey(layer) => CredentialsService::ApiKey(layer.layer(inner)),
            Self::Jwt(layer) => CredentialsService::Jwt(layer.layer(inner)),
            Self::Either(layer) => CredentialsService::Either(layer.layer(inner)),
        }
    }
}

/// The service of [`Credentials`].
#[derive(Clone, Debug)]
pub enum CredentialsService<S> {
    /// API keys only.
    ApiKey(ApiKey<S>),
    /// JWTs only.
    Jwt(Jwt<S>),
    /// An API key or a JWT.
    Either(AnyCredential<S>),
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CredentialsService<S>
where
    ApiKey<S>: Service<Request<ReqBody>, Response = Response<ResponseBody<ResBody>>>,
    Jwt<S>: Service<
            Request<ReqBody>,
            Response = Response<ResponseBody<ResBody>>,
            Error = <ApiKey<S> as Service<Request<ReqBody>>>::Error,
        >,
    AnyCredential<S>: Service<
            Request<ReqBody>,
            Response = Response<ResponseBody<ResBody>>,
            Error = <ApiKey<S> as Service<Request<ReqBody>>>::Error,
        >,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = <ApiKey<S> as Service<Request<ReqBody>>>::Error;
    type Future = CredentialsFuture<
        <ApiKey<S> as Service<Request<ReqBody>>>::Future,
        <Jwt<S> as Service<Request<ReqBody>>>::Future,
        <AnyCredential<S> as Service<Request<ReqBody>>>::Future,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self {
            Self::ApiKey(service) => service.poll_ready(cx),
            Self::Jwt(service) => service.poll_ready(cx),
            Self::Either(service) => service.poll_ready(cx),
        }
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        CredentialsFuture {
            inner: match self {
                Self::ApiKey(service) => Which::ApiKey {
                    future: service.call(request),
                },
                Self::Jwt(service) => Which::Jwt {
                    future: service.call(request),
                },
                Self::Either(service) => Which::Either {
                    future: service.call(request),
                },
            },
        }
    }
}

pin_project! {
    /// The response future of [`CredentialsService`].
    pub struct CredentialsFuture<A, J, E> {
        #[pin]
        inner: Which<A, J, E>,
    }
}

pin_project! {
    #[project = WhichProj]
    enum Which<A, J, E> {
        ApiKey { #[pin] future: A },
        Jwt { #[pin] future: J },
        Either { #[pin] future: E },
    }
}

impl<A, J, E> fmt::Debug for CredentialsFuture<A, J, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsFuture").finish_non_exhaustive()
    }
}

impl<A, J, E, T> Future for CredentialsFuture<A, J, E>
where
    A: Future<Output = T>,
    J: Future<Output = T>,
    E: Future<Output = T>,
{
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.project().inner.project() {
            WhichProj::ApiKey { future } => future.poll(cx),
            WhichProj::Jwt { future } => future.poll(cx),
            WhichProj::Either { future } => future.poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key_and_the_line() {
        let cases = [
            (
                "[server]\ntimeout = \"2s\"\ntimeoutt = \"3s\"\n",
                "server.timeoutt",
                Some(3),
                "unknown field",
            ),
            (
                "[server.rate_limit.ip]\nquota = \"20 per second\"\n",
                "server.rate_limit.ip.quota",
                Some(2),
                "no `/`",
            ),
            (
                "[client]\nattempt_timeout = \"soon\"\n",
                "client.attempt_timeout",
                Some(2),
                "",
            ),
            (
                "[client.retry]\nmax_attempts = -1\n",
                "client.retry.max_attempts",
                Some(2),
                "",
            ),
            ("[server\n", "", Some(1), ""),
        ];
        for (text, key, line, words) in cases {
            let error = Config::from_toml(text).unwrap_err();
            assert_eq!(error.key(), key, "{text:?}: {error}");
            assert_eq!(error.line(), line, "{text:?}: {error}");
            assert!(error.message().contains(words), "{text:?}: {error}");
        }
    }

    #[test]
    fn settings_that_parse_but_cannot_be_used_name_the_key() {
        let config = Config::from_toml("[server.rate_limit.exports]\nquota = \"5/min\"\n").unwrap();
        let error = config.server.stack().unwrap_err();
        assert_eq!(error.key(), "server.rate_limit.exports.key", "{error}");
        let error = Config::default().server.stack().unwrap_err();
        assert_eq!(error.key(), "server", "no credential: {error}");
        let config = Config::from_toml("[client]\nattempt_timeout = \"0s\"\n").unwrap();
        assert_eq!(
            config.client.stack().unwrap_err().key(),
            "client.attempt_timeout"
        );
        // Review of issue 17: the key file's error names `key_file`, an empty prefix list is
        // refused, a key set without an issuer is refused.
        let config =
            Config::from_toml("[server.api_keys]\nkey_file = \"/nonexistent/palisade-keys.txt\"\n")
                .unwrap();
        assert_eq!(
            config.server.stack().unwrap_err().key(),
            "server.api_keys.key_file"
        );
        let config =
            Config::from_toml("[server.jwt]\njwks_url = \"https://keys.example.com/jwks\"\n")
                .unwrap();
        assert_eq!(
            config.server.stack().unwrap_err().key(),
            "server.jwt.issuer"
        );
    }

    /// TOML has no `null`: `budget = false` turns the retry budget off, a table sets it.
    #[test]
    fn the_retry_budget_is_switched_off_with_false() {
        let off = Config::from_toml("[client.retry]\nbudget = false\n").unwrap();
        assert!(off.client.retry.budget.is_none());
        let on = Config::from_toml("[client.retry]\nbudget = true\n").unwrap();
        assert!(on.client.retry.budget.is_some());
        let set = Config::from_toml(
            "[client.retry.budget]\nratio = 0.1\nfloor_per_second = 5\nburst = 50\n",
        )
        .unwrap();
        assert_eq!(set.client.retry.budget.unwrap().burst, 50);
        assert!(Config::default().client.retry.budget.is_some());
        let error = Config::from_toml("[client.retry]\nbudget = \"none\"\n").unwrap_err();
        assert_eq!(error.key(), "client.retry.budget", "{error}");
    }
}
