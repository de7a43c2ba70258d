use std::borrow::Cow;
use std::fmt;

/// A layer setting that does not make sense, naming the setting: every Palisade builder
/// validates once, in `build`, and returns this.
///
/// ```
/// use palisade::BuildError;
///
/// let err = BuildError::new("status", "500 is not one of 408, 503, 504");
/// assert_eq!(err.field(), "status");
/// assert_eq!(err.to_string(), "invalid `status`: 500 is not one of 408, 503, 504");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    field: Cow<'static, str>,
    reason: Cow<'static, str>,
}

impl BuildError {
    /// The setting `field` is wrong, because of `reason`.
    pub fn new(field: &'static str, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            field: Cow::Borrowed(field),
            reason: reason.into(),
        }
    }

    /// The same error, its setting named under `section` (`rate_limit.ip` + `quota` is
    /// `rate_limit.ip.quota`), for settings read from a configuration file.
    #[must_use]
    pub fn within(self, section: &str) -> Self {
        Self {
            field: Cow::Owned(format!("{section}.{}", self.field)),
            reason: self.reason,
        }
    }

    /// The setting that is wrong.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Why.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Checks a `WWW-Authenticate` realm: not empty, plain visible ASCII (spaces allowed)
    /// without quotes or backslashes, so it can be written as a quoted string as is.
    ///
    /// # Errors
    ///
    /// A `BuildError` for the field `realm`.
    pub fn check_realm(realm: &str) -> Result<(), Self> {
        let plain = realm
            .bytes()
            .all(|b| (b.is_ascii_graphic() || b == b' ') && b != b'"' && b != b'\\');
        if realm.is_empty() || !plain {
            return Err(Self::new(
                "realm",
                "use plain visible ASCII without quotes or backslashes",
            ));
        }
        Ok(())
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid `{}`: {}", self.field, self.reason)
    }
}

impl std::error::Error for BuildError {}
