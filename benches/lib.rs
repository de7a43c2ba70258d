//! Helpers shared by Palisade's criterion benches; the benches themselves live in `benches/`,
//! and `README.md` beside this file records how to run them and the numbers measured.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use std::convert::Infallible;

use tower::service_fn;
use tower_service::Service;

/// One `poll_ready`, `call` and poll of a response that completes at once. Polling by hand
/// keeps executor costs out of the numbers; enter a Tokio runtime first if the service builds
/// timers.
///
/// # Panics
///
/// If the service is not ready at once, fails, or its response is pending: the benches use
/// always-ready services.
pub fn call_ready<S, R>(service: &mut S, request: R)
where
    S: Service<R>,
    S::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(service.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    let mut response = pin!(service.call(request));
    match response.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(response)) => {
            black_box(response);
        }
        Poll::Ready(Err(err)) => panic!("the service failed: {err:?}"),
        Poll::Pending => panic!("an always-ready service answers at once"),
    }
}

/// One `poll_ready`, `call` and poll of a response that fails at once: the rejection path of
/// a layer (an open breaker, say), polled by hand like [`call_ready`].
///
/// # Panics
///
/// If the service is not ready at once, or the call does not fail at once.
pub fn call_rejected<S, R>(service: &mut S, request: R)
where
    S: Service<R>,
{
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(service.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    let mut response = pin!(service.call(request));
    match response.as_mut().poll(&mut cx) {
        Poll::Ready(Err(err)) => {
            black_box(err);
        }
        Poll::Ready(Ok(_)) => panic!("the call went through"),
        Poll::Pending => panic!("a rejection answers at once"),
    }
}

/// The inner service of every group: answers `Res::default()` at once, whatever the request.
pub fn always_ready<Req, Res: Default>() -> impl Service<
    Req,
    Response = Res,
    Error = Infallible,
    Future = std::future::Ready<Result<Res, Infallible>>,
> + Clone {
    service_fn(|_request: Req| std::future::ready(Ok(Res::default())))
}

/// The settings every service of [`for_each_service!`] is built with.
pub mod layers {
    use std::time::Duration;

    use palisade::apikey::{ApiKeyLayer, KeyDigest, KeyEntry, KeySet, KeyStore};
    use palisade::jwt::{Alg, JwtKey, JwtKeySet, JwtLayer, Rules};
    use palisade::ratelimit::Quota;
    use palisade::retry::Backoff;

    /// One API key with a scope.
    ///
    /// # Panics
    ///
    /// Never: the key is well-formed.
    pub fn api_keys() -> ApiKeyLayer {
        let entry = KeyEntry::new(
            KeyDigest::of("pal_live_2Oa6KmWtP4kcChKu1OwMScNvaRtSsij9_1CnNwM"),
            "billing",
        )
        .unwrap()
        .with_scopes(["orders:read"])
        .unwrap();
        ApiKeyLayer::new(KeyStore::new(KeySet::from_entries([entry]).unwrap()))
    }

    /// JWTs signed with one HMAC key, for one issuer and audience.
    ///
    /// # Panics
    ///
    /// Never: the key and rules are valid.
    pub fn jwt() -> JwtLayer {
        let key = JwtKey::hmac(Alg::HS256, b"a 32-byte secret for HS256 tests")
            .unwrap()
            .with_kid("hs");
        JwtLayer::builder()
            .keys(
                JwtKeySet::new([key]),
                Rules::new()
                    .with_issuer("https://login.example.com")
                    .with_audiences(["https://api.example.com"]),
            )
            .build()
            .unwrap()
    }

    /// An exponential backoff from 50 ms.
    ///
    /// # Panics
    ///
    /// Never: the schedule is valid.
    pub fn backoff() -> Backoff {
        Backoff::exponential(Duration::from_millis(50))
            .build()
            .unwrap()
    }

    /// 100 a second.
    pub fn quota() -> Quota {
        Quota::new(100, Duration::from_secs(1))
    }
}

/// Calls `$visit!(name, service)` for every Palisade service, each built around `$inner`
/// (a `Clone` value): the clone bench times their clones, and `tests/clone_cost.rs` checks
/// that none allocates.
#[macro_export]
macro_rules! for_each_service {
    ($inner:expr, $visit:ident) => {{
        use std::time::Duration;

        use palisade::breaker::{
            Breaker, BreakerLayer, BreakerRegistry, HttpBreakerLayer, KeyedBreakerLayer,
        };
        use palisade::ratelimit::{ClientRateLimitLayer, KeyBy, RateLimitLayer, Tier};
        use palisade::retry::{GrpcRetryLayer, HttpRetryLayer, RetryLayer};
        use palisade::timeout::{
            DeadlineHeader, HttpTimeoutLayer, PropagateDeadlineLayer, TimeoutLayer,
        };
        use palisade::trace::{PropagateTraceLayer, TraceContextLayer};
        use palisade::{AnyCredentialLayer, ClientIpLayer, TrustedProxies, require_scopes};
        use tower::Layer as _;
        use $crate::layers::{api_keys, backoff, jwt, quota};

        let inner = $inner;
        // The server layers, outermost first as the gateway stacks them.
        $visit!(
            "TraceContext",
            TraceContextLayer::new().layer(inner.clone())
        );
        $visit!(
            "ClientIp",
            ClientIpLayer::new(TrustedProxies::new(["10.0.0.0/8"]).unwrap()).layer(inner.clone())
        );
        $visit!(
            "HttpTimeout",
            HttpTimeoutLayer::new(Duration::from_secs(30)).layer(inner.clone())
        );
        // Three tiers: a clone must not grow with them.
        $visit!(
            "RateLimit(3 tiers)",
            RateLimitLayer::builder()
                .tier(Tier::new("ip", quota(), KeyBy::client_ip()))
                .tier(Tier::new("caller", quota(), KeyBy::identity()))
                .tier(Tier::new("global", quota(), KeyBy::global()))
                .build()
                .unwrap()
                .layer(inner.clone())
        );
        $visit!("ApiKey", api_keys().layer(inner.clone()));
        $visit!("Jwt", jwt().layer(inner.clone()));
        $visit!(
            "AnyCredential",
            AnyCredentialLayer::new(api_keys(), jwt()).layer(inner.clone())
        );
        $visit!(
            "RequireScopes",
            require_scopes(["orders:read", "orders:write"]).layer(inner.clone())
        );
        $visit!(
            "Json",
            palisade::json::JsonLayer::new().layer(inner.clone())
        );
        // The client layers.
        $visit!(
            "HttpRetry",
            HttpRetryLayer::new(backoff()).layer(inner.clone())
        );
        $visit!(
            "GrpcRetry",
            GrpcRetryLayer::new(backoff()).layer(inner.clone())
        );
        $visit!("Retry", RetryLayer::new(backoff()).layer(inner.clone()));
        $visit!(
            "HttpBreaker",
            HttpBreakerLayer::new(Breaker::builder().build().unwrap()).layer(inner.clone())
        );
        $visit!(
            "BreakerService",
            BreakerLayer::new(Breaker::builder().build().unwrap()).layer(inner.clone())
        );
        $visit!(
            "KeyedBreaker",
            KeyedBreakerLayer::by_authority(
                BreakerRegistry::new(Breaker::builder(), 1000).unwrap()
            )
            .layer(inner.clone())
        );
        $visit!(
            "Timeout",
            TimeoutLayer::new(Duration::from_secs(1)).layer(inner.clone())
        );
        $visit!(
            "PropagateDeadline",
            PropagateDeadlineLayer::new(DeadlineHeader::grpc_timeout()).layer(inner.clone())
        );
        $visit!(
            "PropagateTrace",
            PropagateTraceLayer::new().layer(inner.clone())
        );
        $visit!(
            "ClientRateLimit",
            ClientRateLimitLayer::new(quota())
                .build()
                .unwrap()
                .layer(inner.clone())
        );
    }};
}
