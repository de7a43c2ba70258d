//! The registered claims (RFC 7519, section 4.1) and the typed claims a request carries.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::any::{Any, TypeId};
use std::ops::Deref;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::{TokenError, TokenReason};

/// A claims set as JSON: the default claims type.
pub type ClaimsMap = Map<String, Value>;

/// The registered claims of a verified token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registered {
    /// `iss`.
    pub iss: Option<String>,
    /// `sub`.
    pub sub: Option<String>,
    /// `aud`, a string or an array of strings, as a list.
    pub aud: Vec<String>,
    /// `exp`, in seconds since the Unix epoch (a fraction is rounded down).
    pub exp: Option<i64>,
    /// `nbf`, in seconds since the Unix epoch.
    pub nbf: Option<i64>,
    /// `iat`, in seconds since the Unix epoch.
    pub iat: Option<i64>,
    /// `jti`.
    pub jti: Option<String>,
}

impl Registered {
    /// Reads the registered claims of a claims set, refusing one of the wrong type.
    ///
    /// # Errors
    ///
    /// [`TokenReason::InvalidClaim`] naming the claim.
    pub fn from_claims(claims: &Map<String, Value>) -> Result<Self, TokenError> {
        let text = |name: &'static str| -> Result<Option<String>, TokenError> {
            match claims.get(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(TokenError::claim(TokenReason::InvalidClaim, name)),
            }
        };
        let date = |name: &'static str| -> Result<Option<i64>, TokenError> {
            match claims.get(name) {
                None => Ok(None),
                Some(Value::Number(n)) => numeric_date(n)
                    .map(Some)
                    .ok_or_else(|| TokenError::claim(TokenReason::InvalidClaim, name)),
                Some(_) => Err(TokenError::claim(TokenReason::InvalidClaim, name)),
            }
        };
        let aud = match claims.get("aud") {
            None => Vec::new(),
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(many)) => many
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| TokenError::claim(TokenReason::InvalidClaim, "aud"))?,
            Some(_) => return Err(TokenError::claim(TokenReason::InvalidClaim, "aud")),
        };
        Ok(Self {
            iss: text("iss")?,
            sub: text("sub")?,
            aud,
            exp: date("exp")?,
            nbf: date("nbf")?,
            iat: date("iat")?,
            jti: text("jti")?,
        })
    }
}

/// A `NumericDate`: seconds since the epoch, possibly with a fraction (rounded down). Values
/// beyond ±2^53 or not finite are refused.
fn numeric_date(n: &serde_json::Number) -> Option<i64> {
    const LIMIT: f64 = 9_007_199_254_740_992.0;
    if let Some(i) = n.as_i64() {
        return (i.unsigned_abs() <= 1 << 53).then_some(i);
    }
    let f = n.as_f64()?;
    // Bounded above, so the cast cannot saturate.
    #[allow(clippy::cast_possible_truncation)]
    (f.is_finite() && f.abs() <= LIMIT).then(|| f.floor() as i64)
}

/// The claims of a verified token: the registered ones, the whole claims set, and the
/// application's typed view `T` (by default the claims set itself). The JWT layer puts one into
/// each accepted request's extensions; it is cheap to clone.
#[derive(Debug)]
pub struct Claims<T = Map<String, Value>> {
    inner: Arc<Inner<T>>,
}

#[derive(Debug)]
struct Inner<T> {
    registered: Registered,
    all: Map<String, Value>,
    /// `None` when `T` is [`ClaimsMap`]: `all` is then the typed view, not a copy of it.
    typed: Option<T>,
}

impl<T> Clone for Claims<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T: 'static> Claims<T> {
    /// Claims whose typed view is read from `all` (without a copy when `T` is the map).
    ///
    /// # Errors
    ///
    /// When `all` does not deserialize into `T`.
    pub(crate) fn new(
        registered: Registered,
        all: Map<String, Value>,
    ) -> Result<Self, serde_json::Error>
    where
        T: serde::de::DeserializeOwned,
    {
        let typed = if TypeId::of::<T>() == TypeId::of::<ClaimsMap>() {
            None
        } else {
            Some(T::deserialize(&all)?)
        };
        Ok(Self {
            inner: Arc::new(Inner {
                registered,
                all,
                typed,
            }),
        })
    }
}

impl<T> Claims<T> {
    /// The registered claims.
    pub fn registered(&self) -> &Registered {
        &self.inner.registered
    }

    /// The whole claims set, as sent.
    pub fn all(&self) -> &Map<String, Value> {
        &self.inner.all
    }

    /// A claim by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.inner.all.get(name)
    }
}

impl<T: 'static> Deref for Claims<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &self.inner.typed {
            Some(typed) => typed,
            None => (&self.inner.all as &dyn Any)
                .downcast_ref::<T>()
                .expect("the typed view is kept apart unless T is the claims map"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(json: &str) -> Result<Registered, TokenError> {
        let Value::Object(map) = serde_json::from_str(json).unwrap() else {
            panic!("not an object")
        };
        Registered::from_claims(&map)
    }

    #[test]
    fn registered_claims_are_typed_strictly() {
        let r = registered(
            r#"{"iss":"i","sub":"s","aud":["a","b"],"exp":10.9,"nbf":5,"iat":-1,"jti":"j"}"#,
        )
        .unwrap();
        assert_eq!(r.aud, ["a", "b"]);
        assert_eq!((r.exp, r.nbf, r.iat), (Some(10), Some(5), Some(-1)));
        assert_eq!(registered(r#"{"aud":"a"}"#).unwrap().aud, ["a"]);
        for (json, claim) in [
            (r#"{"exp":"10"}"#, "exp"),
            (r#"{"exp":1e300}"#, "exp"),
            (r#"{"nbf":true}"#, "nbf"),
            (r#"{"iss":1}"#, "iss"),
            (r#"{"sub":null}"#, "sub"),
            (r#"{"aud":[1]}"#, "aud"),
            (r#"{"aud":{}}"#, "aud"),
            (r#"{"iat":9007199254740993}"#, "iat"),
        ] {
            let error = registered(json).unwrap_err();
            assert_eq!(error.reason(), TokenReason::InvalidClaim, "{json}");
            assert_eq!(error.claim_name(), Some(claim), "{json}");
        }
    }
}
