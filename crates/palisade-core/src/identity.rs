use std::fmt;
use std::sync::Arc;

/// Who the caller is, as established by an authentication layer.
///
/// The API-key and JWT layers insert an `Identity` into the request extensions; rate limiting,
/// metrics and handlers read it from there. It is cheap to clone.
///
/// ```
/// use palisade_core::{Identity, IdentitySource};
///
/// let identity = Identity::new("billing-service", IdentitySource::ApiKey)
///     .with_scopes(["orders:read", "orders:write"]);
/// assert!(identity.has_scope("orders:write"));
/// assert!(identity.has_all_scopes(["orders:read", "orders:write"]));
/// assert!(!identity.has_scope("admin"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    inner: Arc<Inner>,
}

#[derive(Clone, PartialEq, Eq)]
struct Inner {
    subject: Box<str>,
    scopes: Box<[Box<str>]>,
    source: IdentitySource,
    key_id: Option<Box<str>>,
}

/// How an [`Identity`] was established.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdentitySource {
    /// An API key.
    ApiKey,
    /// A JSON Web Token.
    Jwt,
}

impl Identity {
    /// An identity for `subject` (a principal name or a token's `sub`) with no scopes.
    pub fn new(subject: impl Into<Box<str>>, source: IdentitySource) -> Self {
        Self {
            inner: Arc::new(Inner {
                subject: subject.into(),
                scopes: Box::new([]),
                source,
                key_id: None,
            }),
        }
    }

    /// An identity with everything at once (one allocation, for authentication layers on the
    /// hot path).
    pub fn from_parts<I, S>(
        subject: impl Into<Box<str>>,
        scopes: I,
        source: IdentitySource,
        key_id: Option<Box<str>>,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Box<str>>,
    {
        Self {
            inner: Arc::new(Inner {
                subject: subject.into(),
                scopes: scopes.into_iter().map(Into::into).collect(),
                source,
                key_id,
            }),
        }
    }

    /// Sets the scopes the caller holds.
    #[must_use]
    pub fn with_scopes<I, S>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Box<str>>,
    {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.scopes = scopes.into_iter().map(Into::into).collect();
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Sets the identifier of the credential that was used (an API key's id or a JWT's `kid`),
    /// never the credential itself.
    #[must_use]
    pub fn with_key_id(self, key_id: impl Into<Box<str>>) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.key_id = Some(key_id.into());
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The subject: a principal name or a token's `sub`.
    pub fn subject(&self) -> &str {
        &self.inner.subject
    }

    /// The scopes the caller holds.
    pub fn scopes(&self) -> impl ExactSizeIterator<Item = &str> {
        self.inner.scopes.iter().map(AsRef::as_ref)
    }

    /// How the identity was established.
    pub fn source(&self) -> IdentitySource {
        self.inner.source
    }

    /// The identifier of the credential that was used, if known.
    pub fn key_id(&self) -> Option<&str> {
        self.inner.key_id.as_deref()
    }

    /// Whether the caller holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.inner.scopes.iter().any(|s| s.as_ref() == scope)
    }

    /// Whether the caller holds every scope in `scopes`.
    pub fn has_all_scopes<'a>(&self, scopes: impl IntoIterator<Item = &'a str>) -> bool {
        scopes.into_iter().all(|s| self.has_scope(s))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("subject", &self.inner.subject)
            .field("scopes", &self.inner.scopes)
            .field("source", &self.inner.source)
            .field("key_id", &self.inner.key_id)
            .finish()
    }
}
