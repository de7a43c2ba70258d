use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use http::header::{CONNECTION, HeaderValue};
use palisade_core::problem::types;
use palisade_core::{Problem, Rejection};
use tower_layer::Layer;

use super::HttpTimeout;
use crate::DeadlineHeader;
use palisade_core::BuildError;

/// Applies [`HttpTimeout`] to a service: the server-side timeout that answers with a problem
/// response. See the [module documentation](super).
#[derive(Debug, Clone)]
pub struct HttpTimeoutLayer {
    pub(super) config: Arc<Config>,
}

#[derive(Debug)]
pub(super) struct Config {
    pub(super) timeout: Duration,
    pub(super) inbound: Option<Inbound>,
    /// The answers, rendered once.
    pub(super) elapsed: Rejection,
    pub(super) invalid_deadline: Rejection,
    /// `palisade_timeout_requests_total{outcome}`: `answered`, `elapsed`, `invalid_deadline`.
    #[cfg(feature = "metrics")]
    pub(super) requests: palisade_core::__metrics::Outcomes<3>,
}

/// The outcomes counted, by index.
#[cfg(feature = "metrics")]
pub(super) const ANSWERED: usize = 0;
#[cfg(feature = "metrics")]
pub(super) const ELAPSED: usize = 1;
#[cfg(feature = "metrics")]
pub(super) const INVALID_DEADLINE: usize = 2;

#[derive(Debug)]
pub(super) struct Inbound {
    pub(super) header: DeadlineHeader,
    pub(super) cap: Duration,
}

impl HttpTimeoutLayer {
    /// Answers `504 Gateway Timeout` with a problem body when a request takes longer than
    /// `timeout`. A zero timeout answers every request whose response is not ready at once.
    pub fn new(timeout: Duration) -> Self {
        Self::from_parts(timeout, StatusCode::GATEWAY_TIMEOUT, None)
    }

    /// A builder for the other settings: the status, and an inbound deadline header.
    pub fn builder(timeout: Duration) -> HttpTimeoutBuilder {
        HttpTimeoutBuilder {
            timeout,
            status: StatusCode::GATEWAY_TIMEOUT,
            inbound: None,
        }
    }

    /// The timeout used when the request carries no deadline header.
    pub fn timeout(&self) -> Duration {
        self.config.timeout
    }

    fn from_parts(timeout: Duration, status: StatusCode, inbound: Option<Inbound>) -> Self {
        let mut elapsed = Rejection::new(
            &Problem::new(status)
                .with_type(types::TIMEOUT)
                .with_title("Request timed out")
                .with_detail("the request did not complete before its deadline"),
        );
        if status == StatusCode::REQUEST_TIMEOUT {
            // RFC 9110 section 15.5.9: a server sending 408 should close the connection.
            elapsed = elapsed.with_header(CONNECTION, HeaderValue::from_static("close"));
        }
        let invalid_deadline = Rejection::new(
            &Problem::new(StatusCode::BAD_REQUEST)
                .with_type(types::INVALID_DEADLINE)
                .with_title("Invalid deadline header")
                .with_detail(match &inbound {
                    Some(inbound) => format!(
                        "the `{}` header must appear at most once and hold a valid duration",
                        inbound.header.name()
                    ),
                    None => String::new(),
                }),
        );
        Self {
            config: Arc::new(Config {
                timeout,
                inbound,
                elapsed,
                invalid_deadline,
                #[cfg(feature = "metrics")]
                requests: palisade_core::__metrics::Outcomes::new(
                    "palisade_timeout_requests_total",
                    [],
                    ["answered", "elapsed", "invalid_deadline"],
                ),
            }),
        }
    }
}

impl<S> Layer<S> for HttpTimeoutLayer {
    type Service = HttpTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpTimeout {
            inner,
            config: self.config.clone(),
        }
    }
}

/// Builds an [`HttpTimeoutLayer`]; [`build`](Self::build) checks the settings once.
#[derive(Debug, Clone)]
#[must_use]
pub struct HttpTimeoutBuilder {
    timeout: Duration,
    status: StatusCode,
    inbound: Option<(DeadlineHeader, Duration)>,
}

impl HttpTimeoutBuilder {
    /// The status of the timeout response: `504 Gateway Timeout` (the default, for a service
    /// that waits on others), `503 Service Unavailable`, or `408 Request Timeout` (which also
    /// closes the connection).
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Honours the caller's budget in `header`, up to `cap`.
    ///
    /// With the header, a request's budget is the header's value, never more than `cap`; without
    /// it, the layer's timeout. A `cap` equal to the timeout lets callers only shorten it; a
    /// larger cap lets them ask for more time, as gRPC clients do. A malformed or repeated
    /// header is answered `400 Bad Request`.
    ///
    /// A caller's budget (one under the cap) is answered [`INBOUND_DEADLINE_MARGIN`] early. The
    /// budget was counted from before the request reached this layer, and timers started
    /// earlier for the same budget (the caller's own, and tonic's server, which enforces
    /// `grpc-timeout` outside every layer and answers `CANCELLED`) would otherwise fire in the
    /// same millisecond as this one and win the race with a vaguer answer.
    ///
    /// [`INBOUND_DEADLINE_MARGIN`]: crate::INBOUND_DEADLINE_MARGIN
    pub fn inbound_deadline(mut self, header: DeadlineHeader, cap: Duration) -> Self {
        self.inbound = Some((header, cap));
        self
    }

    /// Checks the settings and builds the layer.
    ///
    /// # Errors
    ///
    /// [`BuildError`] naming `timeout` when it is zero, `status` when it is not 408, 503 or 504,
    /// or `inbound_deadline.cap` when it is zero.
    pub fn build(self) -> Result<HttpTimeoutLayer, BuildError> {
        if self.timeout.is_zero() {
            return Err(BuildError::new("timeout", "must be greater than zero"));
        }
        if ![
            StatusCode::REQUEST_TIMEOUT,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::GATEWAY_TIMEOUT,
        ]
        .contains(&self.status)
        {
            return Err(BuildError::new(
                "status",
                format!("{} is not one of 408, 503, 504", self.status.as_u16()),
            ));
        }
        let inbound = match self.inbound {
            Some((_, cap)) if cap.is_zero() => {
                return Err(BuildError::new(
                    "inbound_deadline.cap",
                    "must be greater than zero",
                ));
            }
            Some((header, cap)) => Some(Inbound { header, cap }),
            None => None,
        };
        Ok(HttpTimeoutLayer::from_parts(
            self.timeout,
            self.status,
            inbound,
        ))
    }
}
