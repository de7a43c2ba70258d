use http::{HeaderMap, Response};

use crate::grpc::{GRPC_STATUS, GrpcCode};
use crate::refused_locally;

/// How a call went, from the point of view of the circuit breaker, retries and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The call succeeded (or failed in a way that says nothing about the callee's health).
    Success,
    /// The call failed in a way that counts against the callee.
    Failure,
    /// The call is not counted at all (for example, cancelled by the caller).
    Ignored,
    /// Not known yet: the outcome is in the trailers at the end of the response body (a
    /// streamed gRPC response). Judge them with [`Classify::classify_trailers`] when the body
    /// ends; a body dropped before its end counts as [`Ignored`](Self::Ignored).
    Deferred,
}

/// Judges the result of a call as an [`Outcome`].
///
/// Implemented for closures `Fn(Result<&Res, &E>) -> Outcome`, so a custom policy is one line.
///
/// ```
/// use http::{Response, StatusCode};
/// use palisade::{Classify, HttpClassifier, Outcome};
///
/// let ok = Response::builder().status(StatusCode::NOT_FOUND).body(()).unwrap();
/// let bad = Response::builder().status(StatusCode::BAD_GATEWAY).body(()).unwrap();
/// let classifier = HttpClassifier::default();
/// assert_eq!(classifier.classify(Ok::<_, &std::io::Error>(&ok)), Outcome::Success);
/// assert_eq!(classifier.classify(Ok::<_, &std::io::Error>(&bad)), Outcome::Failure);
///
/// // Count 429 against the callee too.
/// let strict = |result: Result<&Response<()>, &std::io::Error>| match result {
///     Ok(r) if r.status() == StatusCode::TOO_MANY_REQUESTS => Outcome::Failure,
///     other => HttpClassifier::default().classify(other),
/// };
/// let limited = Response::builder().status(429).body(()).unwrap();
/// assert_eq!(strict.classify(Ok(&limited)), Outcome::Failure);
/// ```
pub trait Classify<Res, E> {
    /// Judges one result.
    fn classify(&self, result: Result<&Res, &E>) -> Outcome;

    /// Judges the trailers that ended a response [`classify`](Self::classify) called
    /// [`Outcome::Deferred`] (`None` when the body ended without trailers). The default, for
    /// classifiers that never defer, is [`Outcome::Success`].
    fn classify_trailers(&self, trailers: Option<&HeaderMap>) -> Outcome {
        let _ = trailers;
        Outcome::Success
    }
}

impl<F, Res, E> Classify<Res, E> for F
where
    F: Fn(Result<&Res, &E>) -> Outcome,
{
    fn classify(&self, result: Result<&Res, &E>) -> Outcome {
        self(result)
    }
}

/// The default for any service: an error is a failure, any response a success (a call a
/// Palisade layer refused before sending it, [`RefusedLocally`](crate::RefusedLocally), is
/// ignored).
///
/// ```
/// use palisade::{Classify, ErrorClassifier, Outcome};
///
/// assert_eq!(ErrorClassifier.classify(Ok::<_, &std::io::Error>(&"ok")), Outcome::Success);
/// let err = std::io::Error::other("refused");
/// assert_eq!(ErrorClassifier.classify(Err::<&&str, _>(&err)), Outcome::Failure);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorClassifier;

impl<Res, E: 'static> Classify<Res, E> for ErrorClassifier {
    fn classify(&self, result: Result<&Res, &E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(error) if refused_locally(error) => Outcome::Ignored,
            Err(_) => Outcome::Failure,
        }
    }
}

/// The HTTP default: a 5xx response or any error (transport, timeout) is a failure; every other
/// response, 4xx included, is a success, because a client error says nothing about the callee's
/// health. A call a Palisade layer refused before sending it
/// ([`RefusedLocally`](crate::RefusedLocally)) is ignored. A gRPC response (its
/// `content-type` is `application/grpc...`) is judged by its `grpc-status`, as
/// [`GrpcClassifier`] judges it, so the same default serves a tonic channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpClassifier {
    _private: (),
}

impl<B, E: 'static> Classify<Response<B>, E> for HttpClassifier {
    fn classify(&self, result: Result<&Response<B>, &E>) -> Outcome {
        match result {
            Ok(response) if crate::Protocol::of(response.headers()) == crate::Protocol::Grpc => {
                GrpcClassifier::default().classify(Ok::<_, &E>(response))
            }
            Ok(response) if response.status().is_server_error() => Outcome::Failure,
            Ok(_) => Outcome::Success,
            Err(error) if refused_locally(error) => Outcome::Ignored,
            Err(_) => Outcome::Failure,
        }
    }

    /// Only a gRPC response defers its outcome to trailers.
    fn classify_trailers(&self, trailers: Option<&HeaderMap>) -> Outcome {
        Classify::<Response<B>, E>::classify_trailers(&GrpcClassifier::default(), trailers)
    }
}

/// The gRPC default: judges the `grpc-status` of a response, from its headers when it is
/// trailers-only, else from the trailers at the end of its body ([`Outcome::Deferred`] until
/// then), as tower-http's `GrpcErrorsAsFailures` does.
///
/// By default the codes that say something about the callee's health fail: `UNKNOWN`,
/// `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED`, `INTERNAL`, `UNAVAILABLE` and `DATA_LOSS`;
/// `CANCELLED` is [`Ignored`](Outcome::Ignored) (the caller gave up); every other code
/// (`INVALID_ARGUMENT`, `NOT_FOUND`, `PERMISSION_DENIED`, ...) is the caller's problem and a
/// success. A response that is not gRPC at all (a proxy's `503`) is judged by the code gRPC
/// clients derive from its HTTP status; a gRPC response without any `grpc-status` fails; an
/// error (transport, timeout) fails.
///
/// ```
/// use http::{HeaderMap, Response};
/// use palisade::{Classify, GrpcClassifier, Outcome};
/// use palisade::grpc::GrpcCode;
///
/// let classifier = GrpcClassifier::default();
/// let trailers_only = Response::builder()
///     .header("content-type", "application/grpc")
///     .header("grpc-status", "14")
///     .body(())
///     .unwrap();
/// assert_eq!(classifier.classify(Ok::<_, &std::io::Error>(&trailers_only)), Outcome::Failure);
///
/// let streamed = Response::builder().header("content-type", "application/grpc").body(()).unwrap();
/// assert_eq!(classifier.classify(Ok::<_, &std::io::Error>(&streamed)), Outcome::Deferred);
/// let mut trailers = HeaderMap::new();
/// trailers.insert("grpc-status", "5".parse().unwrap()); // NOT_FOUND
/// assert_eq!(
///     Classify::<Response<()>, std::io::Error>::classify_trailers(&classifier, Some(&trailers)),
///     Outcome::Success
/// );
///
/// // NOT_FOUND counts against the callee here.
/// let strict = GrpcClassifier::default().with_failure(GrpcCode::NotFound);
/// assert_eq!(strict.outcome_of(GrpcCode::NotFound), Outcome::Failure);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrpcClassifier {
    /// Bit `n` set: code `n` fails.
    failures: u32,
    /// Bit `n` set: code `n` is ignored.
    ignored: u32,
}

const fn bit(code: GrpcCode) -> u32 {
    1 << code as u32
}

impl Default for GrpcClassifier {
    fn default() -> Self {
        Self {
            failures: bit(GrpcCode::Unknown)
                | bit(GrpcCode::DeadlineExceeded)
                | bit(GrpcCode::ResourceExhausted)
                | bit(GrpcCode::Internal)
                | bit(GrpcCode::Unavailable)
                | bit(GrpcCode::DataLoss),
            ignored: bit(GrpcCode::Cancelled),
        }
    }
}

impl GrpcClassifier {
    /// Counts `code` as a failure too.
    #[must_use]
    pub fn with_failure(mut self, code: GrpcCode) -> Self {
        self.failures |= bit(code);
        self.ignored &= !bit(code);
        self
    }

    /// Counts `code` as a success (it no longer fails, and is no longer ignored).
    #[must_use]
    pub fn with_success(mut self, code: GrpcCode) -> Self {
        self.failures &= !bit(code);
        self.ignored &= !bit(code);
        self
    }

    /// What a call that ended with `code` counts as.
    pub fn outcome_of(&self, code: GrpcCode) -> Outcome {
        if self.failures & bit(code) != 0 {
            Outcome::Failure
        } else if self.ignored & bit(code) != 0 {
            Outcome::Ignored
        } else {
            Outcome::Success
        }
    }

    fn status_in(self, headers: &HeaderMap) -> Option<Outcome> {
        let value = headers.get(&GRPC_STATUS)?;
        Some(
            GrpcCode::parse(value.as_bytes())
                .map_or(Outcome::Failure, |code| self.outcome_of(code)),
        )
    }
}

impl<B, E: 'static> Classify<Response<B>, E> for GrpcClassifier {
    fn classify(&self, result: Result<&Response<B>, &E>) -> Outcome {
        let response = match result {
            Ok(response) => response,
            Err(error) if refused_locally(error) => return Outcome::Ignored,
            Err(_) => return Outcome::Failure,
        };
        if response.status() != http::StatusCode::OK {
            return self.outcome_of(GrpcCode::from_http_status(response.status()));
        }
        self.status_in(response.headers())
            .unwrap_or(Outcome::Deferred)
    }

    fn classify_trailers(&self, trailers: Option<&HeaderMap>) -> Outcome {
        trailers
            .and_then(|trailers| self.status_in(trailers))
            .unwrap_or(Outcome::Failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The HTTP default reads a gRPC response's status (issue 17: every gRPC failure was a
    /// success to it, an HTTP 200), so one default serves a tonic channel too.
    #[test]
    fn the_http_default_reads_grpc_statuses() {
        let grpc = |code: &str| {
            Response::builder()
                .header("content-type", "application/grpc")
                .header("grpc-status", code)
                .body(())
                .unwrap()
        };
        let judge = |response: &Response<()>| {
            Classify::<_, std::io::Error>::classify(&HttpClassifier::default(), Ok(response))
        };
        assert_eq!(judge(&grpc("14")), Outcome::Failure, "UNAVAILABLE");
        assert_eq!(judge(&grpc("3")), Outcome::Success, "INVALID_ARGUMENT");
        assert_eq!(judge(&grpc("1")), Outcome::Ignored, "CANCELLED");
        let streamed = Response::builder()
            .header("content-type", "application/grpc+proto")
            .body(())
            .unwrap();
        assert_eq!(judge(&streamed), Outcome::Deferred);
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "13".parse().unwrap());
        assert_eq!(
            Classify::<Response<()>, std::io::Error>::classify_trailers(
                &HttpClassifier::default(),
                Some(&trailers)
            ),
            Outcome::Failure
        );
        let plain = Response::builder().status(503).body(()).unwrap();
        assert_eq!(judge(&plain), Outcome::Failure);
        let plain = Response::builder().status(404).body(()).unwrap();
        assert_eq!(judge(&plain), Outcome::Success);
    }

    #[test]
    fn grpc_default_table() {
        use GrpcCode as C;
        let classifier = GrpcClassifier::default();
        let cases = [
            (C::Ok, Outcome::Success),
            (C::Cancelled, Outcome::Ignored),
            (C::Unknown, Outcome::Failure),
            (C::InvalidArgument, Outcome::Success),
            (C::DeadlineExceeded, Outcome::Failure),
            (C::NotFound, Outcome::Success),
            (C::AlreadyExists, Outcome::Success),
            (C::PermissionDenied, Outcome::Success),
            (C::ResourceExhausted, Outcome::Failure),
            (C::FailedPrecondition, Outcome::Success),
            (C::Aborted, Outcome::Success),
            (C::OutOfRange, Outcome::Success),
            (C::Unimplemented, Outcome::Success),
            (C::Internal, Outcome::Failure),
            (C::Unavailable, Outcome::Failure),
            (C::DataLoss, Outcome::Failure),
            (C::Unauthenticated, Outcome::Success),
        ];
        for (code, expected) in cases {
            // Trailers-only: the status is in the headers.
            let response = Response::builder()
                .header("content-type", "application/grpc")
                .header("grpc-status", code.header_value())
                .body(())
                .unwrap();
            assert_eq!(
                classifier.classify(Ok::<_, &()>(&response)),
                expected,
                "trailers-only {code}"
            );
            // Streamed: deferred, then judged from the trailers.
            let streamed = Response::builder()
                .header("content-type", "application/grpc")
                .body(())
                .unwrap();
            assert_eq!(
                classifier.classify(Ok::<_, &()>(&streamed)),
                Outcome::Deferred
            );
            let mut trailers = HeaderMap::new();
            trailers.insert(GRPC_STATUS.clone(), code.header_value());
            assert_eq!(
                Classify::<Response<()>, ()>::classify_trailers(&classifier, Some(&trailers)),
                expected,
                "trailers {code}"
            );
        }
    }

    #[test]
    fn grpc_edge_cases() {
        let classifier = GrpcClassifier::default();
        let trailers = |value: &'static str| {
            let mut map = HeaderMap::new();
            map.insert(GRPC_STATUS.clone(), http::HeaderValue::from_static(value));
            map
        };
        let judge =
            |t: Option<&HeaderMap>| Classify::<Response<()>, ()>::classify_trailers(&classifier, t);
        assert_eq!(judge(None), Outcome::Failure, "no trailers at all");
        assert_eq!(
            judge(Some(&HeaderMap::new())),
            Outcome::Failure,
            "no status"
        );
        assert_eq!(
            judge(Some(&trailers("99"))),
            Outcome::Failure,
            "unknown code"
        );
        assert_eq!(judge(Some(&trailers("x"))), Outcome::Failure, "garbage");
        assert_eq!(
            classifier.classify(Err::<&Response<()>, _>(&())),
            Outcome::Failure
        );
        // A proxy's plain HTTP answer, judged by the code a gRPC client derives from it.
        for (status, expected) in [
            (503, Outcome::Failure),
            (502, Outcome::Failure),
            (429, Outcome::Failure),
            (404, Outcome::Success),
            (401, Outcome::Success),
            (500, Outcome::Failure),
        ] {
            let response = Response::builder().status(status).body(()).unwrap();
            assert_eq!(
                classifier.classify(Ok::<_, &()>(&response)),
                expected,
                "HTTP {status}"
            );
        }
        let custom = GrpcClassifier::default()
            .with_failure(GrpcCode::NotFound)
            .with_success(GrpcCode::Unavailable)
            .with_failure(GrpcCode::Cancelled);
        assert_eq!(custom.outcome_of(GrpcCode::NotFound), Outcome::Failure);
        assert_eq!(custom.outcome_of(GrpcCode::Unavailable), Outcome::Success);
        assert_eq!(custom.outcome_of(GrpcCode::Cancelled), Outcome::Failure);
    }

    #[test]
    fn http_default_table() {
        let cases = [
            (200, Outcome::Success),
            (204, Outcome::Success),
            (301, Outcome::Success),
            (400, Outcome::Success),
            (429, Outcome::Success),
            (499, Outcome::Success),
            (500, Outcome::Failure),
            (503, Outcome::Failure),
            (599, Outcome::Failure),
        ];
        for (status, expected) in cases {
            let response = Response::builder().status(status).body(()).unwrap();
            let got = HttpClassifier::default().classify(Ok::<_, &()>(&response));
            assert_eq!(got, expected, "status {status}");
        }
        assert_eq!(
            HttpClassifier::default().classify(Err::<&Response<()>, _>(&())),
            Outcome::Failure
        );
    }
}
