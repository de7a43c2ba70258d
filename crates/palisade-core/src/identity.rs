use std::fmt;
use std::sync::Arc;

/// Who the caller is, as established by an authentication layer.
///
/// The API-key and JWT layers insert an `Identity` into the request extensions; rate limiting,
/// metrics and handlers read it from there. It is cheap to clone.
///
/// A subject names a caller only together with where it came from: the API key whose principal
/// is `demo` and a JWT whose `sub` is `demo` are different callers, and so are two issuers'
/// `sub: demo`. [`same_caller`](Self::same_caller) compares them that way, and keys built from
/// an identity (rate limits) include the [`source`](Self::source) and the
/// [`issuer`](Self::issuer).
///
/// ```
/// use palisade::{Identity, IdentitySource};
///
/// let identity = Identity::new("billing-service", IdentitySource::ApiKey)
///     .with_scopes(["orders:read", "orders:write"]);
/// assert!(identity.has_scope("orders:write"));
/// assert!(identity.has_all_scopes(["orders:read", "orders:write"]));
/// assert!(!identity.has_scope("admin"));
///
/// // The same subject from another source, or another issuer, is another caller.
/// let token = Identity::new("billing-service", IdentitySource::Jwt).with_issuer("https://idp");
/// assert!(!token.same_caller(&identity));
/// assert!(!token.same_caller(&token.clone().with_issuer("https://other-idp")));
/// assert!(token.same_caller(&token.clone().with_scopes(["orders:read"])));
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
    issuer: Option<Box<str>>,
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

impl IdentitySource {
    /// A short `snake_case` name for logs, metrics and keys (`api_key`, `jwt`).
    pub fn label(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::Jwt => "jwt",
        }
    }
}

impl Identity {
    /// An identity for `subject` (a principal name or a token's `sub`) with no scopes.
    pub fn new(subject: impl Into<Box<str>>, source: IdentitySource) -> Self {
        Self {
            inner: Arc::new(Inner {
                subject: subject.into(),
                scopes: Box::new([]),
                source,
                issuer: None,
                key_id: None,
            }),
        }
    }

    /// An identity with everything at once (one allocation, for authentication layers on the
    /// hot path): the subject, its scopes, the source, the issuer that vouches for the subject
    /// (a JWT's `iss`), and the identifier of the credential.
    pub fn from_parts<I, S>(
        subject: impl Into<Box<str>>,
        scopes: I,
        source: IdentitySource,
        issuer: Option<Box<str>>,
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
                issuer,
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

    /// Sets the issuer that vouches for the subject (a JWT's `iss`).
    #[must_use]
    pub fn with_issuer(self, issuer: impl Into<Box<str>>) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.issuer = Some(issuer.into());
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

    /// The issuer that vouches for the subject (a JWT's `iss`), if any.
    pub fn issuer(&self) -> Option<&str> {
        self.inner.issuer.as_deref()
    }

    /// Whether `other` is the same caller: the same subject from the same source and issuer
    /// (scopes and the credential used may differ).
    pub fn same_caller(&self, other: &Self) -> bool {
        self.inner.source == other.inner.source
            && self.inner.issuer == other.inner.issuer
            && self.inner.subject == other.inner.subject
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
            .field("issuer", &self.inner.issuer)
            .field("key_id", &self.inner.key_id)
            .finish()
    }
}
