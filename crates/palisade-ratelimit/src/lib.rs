//! Rate limits for tower services.

mod client;
pub mod headers;
mod key;
mod layer;
mod limiter;
mod quota;
#[cfg(feature = "redis")]
pub mod redis;
mod store;

pub use crate::client::{
    ClientError, ClientRateLimit, ClientRateLimitBuilder, ClientRateLimitLayer, RateLimited,
};
pub use crate::key::{Key, RequestView};
pub use crate::layer::{
    RATELIMIT, RATELIMIT_POLICY, RateLimit, RateLimitBuilder, RateLimitLayer, ResponseFuture, Tier,
};
pub use crate::limiter::{Decision, FakeClock};
pub use crate::quota::{Quota, QuotaParseError};
pub use crate::store::WhenFull;
