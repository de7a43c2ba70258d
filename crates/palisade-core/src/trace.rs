//! W3C Trace Context (`traceparent`, `tracestate`): a request's place in a distributed trace,
//! read on the way in and sent along on outbound calls.
//!
//! [`TraceContextLayer`] (server side) reads a caller's `traceparent` into the request's
//! extensions as a [`TraceContext`] whose span id is this service's own (a new one), or starts
//! a new trace when the caller sent none or a malformed one (as the W3C recommendation says:
//! an invalid `traceparent` is ignored, with its `tracestate`). [`PropagateTraceLayer`] (client
//! side) writes the outbound request's `TraceContext` as `traceparent` and `tracestate`, so the
//! upstream's spans join the caller's trace. A handler hands the context on by copying the
//! extension onto its outbound request, as it does a [`Deadline`](crate::Deadline).
//!
//! ```
//! use http::Request;
//! use palisade::trace::TraceContext;
//!
//! let mut inbound = Request::new(());
//! inbound.headers_mut().insert(
//!     "traceparent",
//!     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap(),
//! );
//! let caller = TraceContext::from_headers(inbound.headers()).unwrap();
//! assert_eq!(caller.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
//! assert!(caller.sampled());
//!
//! // This service's span in the same trace: the id outbound calls name as their parent.
//! let ours = caller.child();
//! assert_eq!(ours.trace_id(), caller.trace_id());
//! assert_ne!(ours.span_id(), caller.span_id());
//! ```
//!
//! With OpenTelemetry, set the extension from the current span's context instead, so the
//! upstream's parent is a span your exporter knows; the demo gateway's `otel` feature does.
//!
//! Parsing reads at most the 55 characters of a version-00 value (linear, bounded), accepts
//! only lowercase hex as the recommendation requires, refuses the all-zero ids and version
//! `ff`, and treats two `traceparent` headers as none. Only the `sampled` and `random` flags
//! are passed on. `tracestate` (several headers joined with `,`) is passed on when it follows
//! the recommendation's grammar: at most 512 bytes and 32 `key=value` members, no key twice;
//! it is dropped whole otherwise.

#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use tower_layer::Layer;
use tower_service::Service;

use crate::TrustedProxies;
use crate::jitter::JitterRng;

/// `traceparent`.
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `tracestate`.
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The longest `tracestate` passed on, in bytes (the recommendation's minimum to propagate).
pub const MAX_TRACESTATE: usize = 512;

/// A position in a W3C trace: the trace, the span outbound calls descend from, whether the
/// trace is sampled, and the vendors' `tracestate`.
#[derive(Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
    state: Option<HeaderValue>,
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The ids and flags as the header writes them.
        f.debug_struct("TraceContext")
            .field("traceparent", &self.traceparent())
            .field("tracestate", &self.state)
            .finish_non_exhaustive()
    }
}

thread_local! {
    static IDS: RefCell<JitterRng> = RefCell::new(JitterRng::from_entropy());
}

/// A random id of `N` bytes, never all zero.
fn random_id<const N: usize>() -> [u8; N] {
    IDS.with(|rng| {
        let mut rng = rng.borrow_mut();
        loop {
            let mut id = [0u8; N];
            for chunk in id.chunks_mut(8) {
                let bytes = rng.next_u64().to_be_bytes();
                for (to, from) in chunk.iter_mut().zip(bytes) {
                    *to = from;
                }
            }
            if id.iter().any(|b| *b != 0) {
                return id;
            }
        }
    })
}

impl TraceContext {
    /// A new trace with a new span (`sampled`: the flag asking downstream services to record).
    pub fn new_root(sampled: bool) -> Self {
        Self {
            trace_id: random_id(),
            span_id: random_id(),
            flags: u8::from(sampled),
            state: None,
        }
    }

    /// A context from its parts (an OpenTelemetry span context, say); `None` when an id is
    /// all zero, which the recommendation makes invalid.
    pub fn from_parts(trace_id: [u8; 16], span_id: [u8; 8], sampled: bool) -> Option<Self> {
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            flags: u8::from(sampled),
            state: None,
        })
    }

    /// The caller's context from `traceparent` (and `tracestate`); `None` when there is no
    /// `traceparent`, more than one, or one that is not valid.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let mut values = headers.get_all(&TRACEPARENT).iter();
        let value = values.next()?;
        if values.next().is_some() {
            return None;
        }
        let mut context = parse_traceparent(value.as_bytes())?;
        context.state = tracestate(headers);
        Some(context)
    }

    /// A span of this service in the same trace: the same trace id, flags and `tracestate`, a
    /// new span id.
    #[must_use]
    pub fn child(&self) -> Self {
        Self {
            span_id: random_id(),
            ..self.clone()
        }
    }

    /// The same context with `tracestate` replaced.
    #[must_use]
    pub fn with_state(mut self, state: Option<HeaderValue>) -> Self {
        self.state = state.filter(|value| valid_state(value.as_bytes()));
        self
    }

    /// The trace id.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The span id: the parent of what is called with this context.
    pub fn span_id(&self) -> [u8; 8] {
        self.span_id
    }

    /// Whether the trace is sampled (flag `01`).
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The `tracestate` passed on, if any.
    pub fn state(&self) -> Option<&HeaderValue> {
        self.state.as_ref()
    }

    /// The trace id in lowercase hex (32 digits), as logs and trace viewers show it.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The span id in lowercase hex (16 digits).
    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }

    /// The `traceparent` value (version `00`).
    pub fn traceparent(&self) -> HeaderValue {
        let text = format!(
            "00-{}-{}-{:02x}",
            self.trace_id_hex(),
            self.span_id_hex(),
            self.flags
        );
        // Hex digits and dashes: always a valid header value.
        HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static(""))
    }

    /// Writes `traceparent` and `tracestate` (or removes a `tracestate` this context lacks).
    pub fn write(&self, headers: &mut HeaderMap) {
        headers.insert(TRACEPARENT.clone(), self.traceparent());
        match &self.state {
            Some(state) => {
                headers.insert(TRACESTATE.clone(), state.clone());
            }
            None => {
                headers.remove(&TRACESTATE);
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        for nibble in [byte >> 4, byte & 0x0f] {
            text.extend(char::from_digit(u32::from(nibble), 16));
        }
    }
    text
}

/// One lowercase hex digit.
fn digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

/// `N` bytes from `2N` lowercase hex digits.
fn from_hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != N * 2 {
        return None;
    }
    let mut bytes = [0u8; N];
    for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
        let (high, low) = (digit(*pair.first()?)?, digit(*pair.get(1)?)?);
        *byte = high << 4 | low;
    }
    Some(bytes)
}

/// A `traceparent` value: `version-traceid-parentid-flags`, version `00` exactly 55
/// characters; a later version at least that, its 55 first read as version `00` and
/// anything after a `-`.
fn parse_traceparent(value: &[u8]) -> Option<TraceContext> {
    let version: [u8; 1] = from_hex(value.get(..2)?)?;
    if version == [0xff] {
        return None;
    }
    match (version, value.len()) {
        ([0], 55) => {}
        ([0], _) => return None,
        (_, 55) => {}
        (_, len) if len > 55 && value.get(55) == Some(&b'-') => {}
        _ => return None,
    }
    let head = value.get(..55)?;
    if head.get(2) != Some(&b'-') || head.get(35) != Some(&b'-') || head.get(52) != Some(&b'-') {
        return None;
    }
    let trace_id: [u8; 16] = from_hex(head.get(3..35)?)?;
    let span_id: [u8; 8] = from_hex(head.get(36..52)?)?;
    let [flags]: [u8; 1] = from_hex(head.get(53..55)?)?;
    // Only `sampled` (and Level 2's `random`) are defined; a vendor sets the others to zero.
    let flags = flags & KNOWN_FLAGS;
    let mut context = TraceContext::from_parts(trace_id, span_id, false)?;
    context.flags = flags;
    Some(context)
}

/// The trace flags passed on: `sampled` (`01`) and Level 2's `random` (`02`).
const KNOWN_FLAGS: u8 = 0x03;

/// The most list members a `tracestate` may have.
pub const MAX_TRACESTATE_MEMBERS: usize = 32;

/// A `tracestate` list as the recommendation writes it, at most [`MAX_TRACESTATE`] bytes:
/// up to 32 `key=value` members separated by `,` (empty members and spaces around them
/// allowed), each key `[a-z][a-z0-9_-*/]{0,255}` or `tenant@system`
/// (`[a-z0-9][a-z0-9_-*/]{0,240}@[a-z][a-z0-9_-*/]{0,13}`), each value up to 256 visible ASCII
/// characters (spaces inside) but `,` and `=`, and no key twice. One pass over the bytes, and
/// the duplicate check compares at most 32 keys.
fn valid_state(value: &[u8]) -> bool {
    if value.is_empty() || value.len() > MAX_TRACESTATE {
        return false;
    }
    let mut keys: [&[u8]; MAX_TRACESTATE_MEMBERS] = [&[]; MAX_TRACESTATE_MEMBERS];
    let mut count = 0;
    for member in value.split(|b| *b == b',') {
        let member = member.trim_ascii();
        if member.is_empty() {
            continue;
        }
        let Some(equals) = member.iter().position(|b| *b == b'=') else {
            return false;
        };
        let (key, value) = member.split_at(equals);
        let value = value.get(1..).unwrap_or_default();
        if !valid_state_key(key) || !valid_state_value(value) {
            return false;
        }
        if keys.iter().take(count).any(|seen| *seen == key) {
            return false;
        }
        let Some(slot) = keys.get_mut(count) else {
            return false;
        };
        *slot = key;
        count += 1;
    }
    count > 0
}

fn state_key_char(byte: u8) -> bool {
    matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/')
}

fn valid_state_key(key: &[u8]) -> bool {
    match key.iter().position(|b| *b == b'@') {
        None => {
            key.first().is_some_and(u8::is_ascii_lowercase)
                && key.len() <= 256
                && key.iter().all(|b| state_key_char(*b))
        }
        Some(at) => {
            let (tenant, system) = key.split_at(at);
            let system = system.get(1..).unwrap_or_default();
            tenant
                .first()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && tenant.len() <= 241
                && tenant.iter().all(|b| state_key_char(*b))
                && system.first().is_some_and(u8::is_ascii_lowercase)
                && system.len() <= 14
                && system.iter().all(|b| state_key_char(*b))
        }
    }
}

fn valid_state_value(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= 256
        && value.last() != Some(&b' ')
        && value
            .iter()
            .all(|b| (0x20..0x7f).contains(b) && *b != b',' && *b != b'=')
}

/// The `tracestate` headers joined with `,`, if they pass [`valid_state`].
fn tracestate(headers: &HeaderMap) -> Option<HeaderValue> {
    let mut joined: Vec<u8> = Vec::new();
    for value in headers.get_all(&TRACESTATE) {
        let bytes = value.as_bytes();
        if bytes.is_empty() {
            continue;
        }
        if !joined.is_empty() {
            joined.push(b',');
        }
        if joined.len() + bytes.len() > MAX_TRACESTATE {
            return None;
        }
        joined.extend_from_slice(bytes);
    }
    if !valid_state(&joined) {
        return None;
    }
    HeaderValue::from_bytes(&joined).ok()
}

/// Puts the request's [`TraceContext`] in its extensions: the caller's trace with a new span id
/// for this service, or a new trace. Never refuses a request.
///
/// A caller's `traceparent` chooses the trace id and whether the trace is sampled (exported).
/// Behind a public edge, [`continue_from`](Self::continue_from) keeps that choice to your own
/// services: anyone else's requests start a new trace.
#[derive(Clone, Debug, Default)]
pub struct TraceContextLayer {
    sample_new: bool,
    from: ContinueFrom,
}

/// Whose trace [`TraceContextLayer`] continues.
#[derive(Clone, Debug, Default)]
pub enum ContinueFrom {
    /// Every caller's (the default; W3C Trace Context's propagation).
    #[default]
    Anyone,
    /// Only callers whose address is in these networks: the request's
    /// [`ClientIp`](crate::ClientIp) when [`ClientIpLayer`](crate::ClientIpLayer) ran before
    /// this layer (so a public client behind your load balancer is that client, not the
    /// balancer), else the connection's peer (axum's `ConnectInfo`, tonic's `TcpConnectInfo`,
    /// a `SocketAddr`); a request with neither starts a new trace. Name your own services
    /// here, not the proxies in front of the public.
    Peers(TrustedProxies),
    /// Nobody's: every request starts a new trace (a public edge).
    Nobody,
}

impl TraceContextLayer {
    /// Continues the caller's trace, or starts an unsampled one.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether traces this layer starts are sampled (default `false`; a caller's choice is
    /// kept where its trace is continued).
    #[must_use]
    pub fn sample_new_traces(mut self, sampled: bool) -> Self {
        self.sample_new = sampled;
        self
    }

    /// Whose traces are continued (default [`ContinueFrom::Anyone`]); others' requests start a
    /// new trace, their `traceparent` and `tracestate` unused.
    #[must_use]
    pub fn continue_from(mut self, from: ContinueFrom) -> Self {
        self.from = from;
        self
    }
}

impl<S> Layer<S> for TraceContextLayer {
    type Service = TraceContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceContextService {
            inner,
            sample_new: self.sample_new,
            from: match &self.from {
                ContinueFrom::Anyone => Continuing::Anyone,
                ContinueFrom::Peers(peers) => Continuing::Peers(Arc::new(peers.clone())),
                ContinueFrom::Nobody => Continuing::Nobody,
            },
        }
    }
}

/// [`ContinueFrom`] as a service holds it: a clone is one reference count at most.
#[derive(Clone, Debug)]
enum Continuing {
    Anyone,
    Peers(Arc<TrustedProxies>),
    Nobody,
}

/// The service of [`TraceContextLayer`].
#[derive(Clone, Debug)]
pub struct TraceContextService<S> {
    inner: S,
    sample_new: bool,
    from: Continuing,
}

impl<S, B> Service<Request<B>> for TraceContextService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let continued = match &self.from {
            Continuing::Anyone => true,
            Continuing::Peers(peers) => request
                .extensions()
                .get::<crate::ClientIp>()
                .map(|client| client.ip())
                .or_else(|| crate::client_ip::default_peer(request.extensions()))
                .is_some_and(|caller| peers.is_trusted(caller)),
            Continuing::Nobody => false,
        };
        let caller = if continued {
            TraceContext::from_headers(request.headers())
        } else {
            None
        };
        let context = match caller {
            Some(caller) => caller.child(),
            None => TraceContext::new_root(self.sample_new),
        };
        request.extensions_mut().insert(context);
        self.inner.call(request)
    }
}

/// Writes the outbound request's [`TraceContext`] as `traceparent` and `tracestate`; a
/// request without one starts a new trace (or, with [`only_continue`](Self::only_continue),
/// is sent with the trace headers it has).
#[derive(Clone, Copy, Debug, Default)]
pub struct PropagateTraceLayer {
    only_continue: bool,
}

impl PropagateTraceLayer {
    /// Propagates the request's context, or starts an unsampled trace.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves a request without a [`TraceContext`] as it is.
    #[must_use]
    pub fn only_continue(mut self) -> Self {
        self.only_continue = true;
        self
    }
}

impl<S> Layer<S> for PropagateTraceLayer {
    type Service = PropagateTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PropagateTrace {
            inner,
            only_continue: self.only_continue,
        }
    }
}

/// The service of [`PropagateTraceLayer`].
#[derive(Clone, Debug)]
pub struct PropagateTrace<S> {
    inner: S,
    only_continue: bool,
}

impl<S, B> Service<Request<B>> for PropagateTrace<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let (parts, body) = request.into_parts();
        let mut parts = parts;
        match parts.extensions.get::<TraceContext>() {
            Some(context) => context.write(&mut parts.headers),
            None if self.only_continue => {}
            None => TraceContext::new_root(false).write(&mut parts.headers),
        }
        request = Request::from_parts(parts, body);
        self.inner.call(request)
    }
}

/// Fuzz harness: parses `data` as a `traceparent` value (and as `tracestate`), checking that a
/// context parsed from it writes a version-00 value that parses back to itself.
#[doc(hidden)]
pub fn fuzz_traceparent(data: &[u8]) {
    let mut headers = HeaderMap::new();
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    headers.insert(TRACEPARENT.clone(), value.clone());
    headers.insert(TRACESTATE.clone(), value);
    if let Some(context) = TraceContext::from_headers(&headers) {
        let written = context.traceparent();
        assert_eq!(written.len(), 55);
        let again = parse_traceparent(written.as_bytes()).expect("a written value parses");
        assert_eq!(again.trace_id, context.trace_id);
        assert_eq!(again.span_id, context.span_id);
        assert_eq!(again.sampled(), context.sampled());
        if let Some(state) = context.state() {
            assert!(state.len() <= MAX_TRACESTATE);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn the_recommendations_examples_and_its_invalid_forms() {
        let parsed = |value: &str| TraceContext::from_headers(&headers(&[("traceparent", value)]));
        let context = parsed(EXAMPLE).unwrap();
        assert_eq!(context.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.span_id_hex(), "00f067aa0ba902b7");
        assert!(context.sampled());
        assert_eq!(context.traceparent(), EXAMPLE);
        assert!(
            !parsed("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
                .unwrap()
                .sampled()
        );
        // A later version: its first 55 characters, then anything after a dash.
        let future =
            parsed("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-next").unwrap();
        assert_eq!(future.traceparent(), EXAMPLE, "unknown flags are dropped");
        // Version 00 too: only sampled and random are passed on (review of issue 17).
        let all = parsed("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff").unwrap();
        assert_eq!(
            all.traceparent(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03"
        );
        for invalid in [
            "",
            "00",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parsed(invalid), None, "{invalid:?}");
        }
        // Two traceparent headers are ambiguous: none.
        assert_eq!(
            TraceContext::from_headers(&headers(&[
                ("traceparent", EXAMPLE),
                ("traceparent", EXAMPLE)
            ])),
            None
        );
    }

    #[test]
    fn tracestate_is_joined_bounded_and_dropped_with_a_bad_traceparent() {
        let context = TraceContext::from_headers(&headers(&[
            ("traceparent", EXAMPLE),
            ("tracestate", "congo=t61rcWkgMzE"),
            ("tracestate", "rojo=00f067aa0ba902b7"),
        ]))
        .unwrap();
        assert_eq!(
            context.state().unwrap(),
            "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
        );
        let long = "a=".to_owned() + &"b".repeat(MAX_TRACESTATE);
        let context = TraceContext::from_headers(&headers(&[
            ("traceparent", EXAMPLE),
            ("tracestate", &long),
        ]))
        .unwrap();
        assert_eq!(
            context.state(),
            None,
            "longer than {MAX_TRACESTATE} bytes: dropped"
        );
        // Review of issue 17: each member is checked, not only the size.
        for invalid in [
            ",,=,a=b=c",
            "Upper=1",
            "1a=x",
            "a=",
            "a=x\ty",
            "a=1,a=2",
            "novalue",
            "t@=x",
            "@s=x",
            "t@S=x",
        ] {
            let context = TraceContext::from_headers(&headers(&[
                ("traceparent", EXAMPLE),
                ("tracestate", invalid),
            ]))
            .unwrap();
            assert_eq!(context.state(), None, "{invalid:?}");
        }
        let many: Vec<String> = (0..=MAX_TRACESTATE_MEMBERS)
            .map(|i| format!("k{i}=v"))
            .collect();
        for (members, kept) in [
            (MAX_TRACESTATE_MEMBERS, true),
            (MAX_TRACESTATE_MEMBERS + 1, false),
        ] {
            let joined = many.get(..members).unwrap().join(",");
            let context = TraceContext::from_headers(&headers(&[
                ("traceparent", EXAMPLE),
                ("tracestate", joined.as_str()),
            ]))
            .unwrap();
            assert_eq!(context.state().is_some(), kept, "{members} members");
        }
        for valid in [" a=1 , ,b@c=x y,fw529a3039@dt=-x", "a-b_c*/d=!~"] {
            let context = TraceContext::from_headers(&headers(&[
                ("traceparent", EXAMPLE),
                ("tracestate", valid),
            ]))
            .unwrap();
            assert_eq!(
                context.state().map(|v| v.to_str().unwrap()),
                Some(valid),
                "{valid:?}"
            );
        }
        let mut written = headers(&[("tracestate", "stale=1")]);
        context.write(&mut written);
        assert_eq!(written.get(&TRACEPARENT).unwrap(), EXAMPLE);
        assert!(
            written.get(&TRACESTATE).is_none(),
            "a state not carried is not sent"
        );
    }

    #[test]
    fn the_server_layer_continues_or_starts_and_the_client_layer_writes() {
        use std::convert::Infallible;
        let mut service =
            TraceContextLayer::new().layer(tower::service_fn(|request: Request<()>| {
                let context = request.extensions().get::<TraceContext>().cloned();
                async move { Ok::<_, Infallible>(context) }
            }));
        let mut request = Request::new(());
        request
            .headers_mut()
            .insert(&TRACEPARENT, HeaderValue::from_static(EXAMPLE));
        let context = now(service.call(request)).unwrap();
        assert_eq!(context.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(
            context.span_id_hex(),
            "00f067aa0ba902b7",
            "this service's own span"
        );
        assert!(context.sampled(), "the caller's choice is kept");
        let fresh = now(service.call(Request::new(()))).unwrap();
        assert_ne!(fresh.trace_id(), context.trace_id());
        assert!(!fresh.sampled());

        let mut client =
            PropagateTraceLayer::new().layer(tower::service_fn(|request: Request<()>| {
                let header = request.headers().get(&TRACEPARENT).cloned();
                async move { Ok::<_, Infallible>(header) }
            }));
        let mut outbound = Request::new(());
        outbound.extensions_mut().insert(context.clone());
        let sent = now(client.call(outbound)).unwrap();
        assert_eq!(sent, context.traceparent());
        let started = now(client.call(Request::new(()))).unwrap();
        assert!(parse_traceparent(started.as_bytes()).is_some());
    }

    /// Review of issue 17: at a public edge a caller's `traceparent` must not choose the trace
    /// or force sampling; only the peers named are continued.
    #[test]
    fn only_the_peers_named_are_continued() {
        use std::convert::Infallible;
        use std::net::SocketAddr;
        let layer = |from| {
            TraceContextLayer::new()
                .continue_from(from)
                .layer(tower::service_fn(|request: Request<()>| {
                    let context = request.extensions().get::<TraceContext>().cloned();
                    async move { Ok::<_, Infallible>(context.unwrap()) }
                }))
        };
        let request = |peer: Option<&str>| {
            let mut request = Request::new(());
            request
                .headers_mut()
                .insert(&TRACEPARENT, HeaderValue::from_static(EXAMPLE));
            if let Some(peer) = peer {
                request
                    .extensions_mut()
                    .insert(peer.parse::<SocketAddr>().unwrap());
            }
            request
        };
        let caller = "4bf92f3577b34da6a3ce929d0e0e4736";
        let mut peers = layer(ContinueFrom::Peers(
            TrustedProxies::new(["10.0.0.0/8"]).unwrap(),
        ));
        let inside = now(peers.call(request(Some("10.1.2.3:4000"))));
        assert_eq!(inside.trace_id_hex(), caller);
        for outside in [Some("203.0.113.9:4000"), None] {
            let started = now(peers.call(request(outside)));
            assert_ne!(started.trace_id_hex(), caller, "{outside:?}");
            assert!(
                !started.sampled(),
                "{outside:?}: sampling is not the caller's choice"
            );
        }
        // Behind a trusted load balancer, the resolved client decides, not the balancer.
        let mut via_balancer = request(Some("10.1.2.3:4000"));
        via_balancer
            .extensions_mut()
            .insert(crate::ClientIp("203.0.113.9".parse().unwrap()));
        assert_ne!(now(peers.call(via_balancer)).trace_id_hex(), caller);
        let mut nobody = layer(ContinueFrom::Nobody);
        let started = now(nobody.call(request(Some("10.1.2.3:4000"))));
        assert_ne!(started.trace_id_hex(), caller);
    }

    /// The output of a service future that is ready at once.
    fn now<T>(future: impl std::future::Future<Output = Result<T, std::convert::Infallible>>) -> T {
        let mut future = std::pin::pin!(future);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(std::task::Waker::noop()))
        {
            Poll::Ready(Ok(output)) => output,
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => panic!("not ready"),
        }
    }

    proptest! {
        #[test]
        fn written_contexts_parse_back(trace in any::<[u8; 16]>(), span in any::<[u8; 8]>(), sampled: bool) {
            if let Some(context) = TraceContext::from_parts(trace, span, sampled) {
                let parsed = parse_traceparent(context.traceparent().as_bytes()).unwrap();
                prop_assert_eq!(parsed, context);
            }
        }

        #[test]
        fn any_value_is_parsed_without_panic(value in "[ -~]{0,80}") {
            fuzz_traceparent(value.as_bytes());
        }
    }
}
