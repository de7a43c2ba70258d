use http::Response;

/// How a call went, from the point of view of the circuit breaker, retries and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The call succeeded (or failed in a way that says nothing about the callee's health).
    Success,
    /// The call failed in a way that counts against the callee.
    Failure,
    /// The call is not counted at all (for example, cancelled by the caller).
    Ignored,
}

/// Judges the result of a call as an [`Outcome`].
///
/// Implemented for closures `Fn(Result<&Res, &E>) -> Outcome`, so a custom policy is one line.
///
/// ```
/// use http::{Response, StatusCode};
/// use palisade_core::{Classify, HttpClassifier, Outcome};
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
}

impl<F, Res, E> Classify<Res, E> for F
where
    F: Fn(Result<&Res, &E>) -> Outcome,
{
    fn classify(&self, result: Result<&Res, &E>) -> Outcome {
        self(result)
    }
}

/// The HTTP default: a 5xx response or any error (transport, timeout) is a failure; every other
/// response, 4xx included, is a success, because a client error says nothing about the callee's
/// health.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpClassifier {
    _private: (),
}

impl<B, E> Classify<Response<B>, E> for HttpClassifier {
    fn classify(&self, result: Result<&Response<B>, &E>) -> Outcome {
        match result {
            Ok(response) if response.status().is_server_error() => Outcome::Failure,
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
