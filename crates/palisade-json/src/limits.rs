//! What a JSON document may hold: every limit is on by default, with values safe for a public
//! endpoint.

use palisade_core::BuildError;

/// What to do with a number that cannot be represented without loss: an integer outside the
/// 64-bit range, or a number whose magnitude overflows a 64-bit float or underflows it to zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum LossyNumbers {
    /// Reject the document (the default): a handler would see a different number.
    #[default]
    Reject,
    /// Accept it as written.
    Allow,
}

/// Whether an object may name the same key twice. RFC 8259 says names "SHOULD be unique" and
/// leaves duplicates to the parser: `serde_json` keeps the last, others the first, so a proxy
/// and a handler can read different documents from the same bytes. Rejecting them is the
/// default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum DuplicateKeys {
    /// Reject the document (the default).
    #[default]
    Reject,
    /// Accept it (the handler's parser then decides which value counts).
    Allow,
}

/// The limits a document is checked against.
///
/// ```
/// use palisade::json::Limits;
///
/// let limits = Limits::default().max_depth(16).max_string_bytes(4096);
/// assert_eq!(limits.depth(), 16);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Limits {
    /// The deepest nesting of arrays and objects (default 64).
    pub(crate) max_depth: u32,
    /// The most members of one object (default 1,000).
    pub(crate) max_keys: u32,
    /// The most elements of one array (default 100,000).
    pub(crate) max_array_len: u32,
    /// The longest string value, in bytes as written (default 1 MiB).
    pub(crate) max_string_bytes: u32,
    /// The longest object key, in bytes as written (default 256).
    pub(crate) max_key_bytes: u32,
    /// The longest number, in characters (default 128).
    pub(crate) max_number_len: u32,
    /// Numbers that cannot be represented without loss (default: rejected).
    pub(crate) lossy_numbers: LossyNumbers,
    /// Keys named twice in one object (default: rejected).
    pub(crate) duplicate_keys: DuplicateKeys,
}

/// The default largest body (2 MiB).
pub const DEFAULT_MAX_BODY: usize = 2 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 64,
            max_keys: 1_000,
            max_array_len: 100_000,
            max_string_bytes: 1024 * 1024,
            max_key_bytes: 256,
            max_number_len: 128,
            lossy_numbers: LossyNumbers::Reject,
            duplicate_keys: DuplicateKeys::Reject,
        }
    }
}

impl Limits {
    /// The deepest nesting of arrays and objects (at most 1,024).
    #[must_use]
    pub fn max_depth(mut self, depth: u32) -> Self {
        self.max_depth = depth;
        self
    }

    /// The most members of one object.
    #[must_use]
    pub fn max_keys(mut self, keys: u32) -> Self {
        self.max_keys = keys;
        self
    }

    /// The most elements of one array.
    #[must_use]
    pub fn max_array_len(mut self, len: u32) -> Self {
        self.max_array_len = len;
        self
    }

    /// The longest string value, in bytes as written.
    #[must_use]
    pub fn max_string_bytes(mut self, bytes: u32) -> Self {
        self.max_string_bytes = bytes;
        self
    }

    /// The longest object key, in bytes as written.
    #[must_use]
    pub fn max_key_bytes(mut self, bytes: u32) -> Self {
        self.max_key_bytes = bytes;
        self
    }

    /// The longest number, in characters.
    #[must_use]
    pub fn max_number_len(mut self, len: u32) -> Self {
        self.max_number_len = len;
        self
    }

    /// What to do with numbers that cannot be represented without loss.
    #[must_use]
    pub fn lossy_numbers(mut self, policy: LossyNumbers) -> Self {
        self.lossy_numbers = policy;
        self
    }

    /// What to do with a key named twice in one object.
    #[must_use]
    pub fn duplicate_keys(mut self, policy: DuplicateKeys) -> Self {
        self.duplicate_keys = policy;
        self
    }

    /// The deepest nesting allowed.
    pub fn depth(&self) -> u32 {
        self.max_depth
    }

    /// Checks the limits.
    ///
    /// # Errors
    ///
    /// [`BuildError`] naming the limit that is zero or too large.
    pub fn check(&self) -> Result<(), BuildError> {
        if self.max_depth == 0 || self.max_depth > 1024 {
            return Err(BuildError::new("max_depth", "from 1 to 1,024"));
        }
        for (field, value) in [
            ("max_keys", self.max_keys),
            ("max_array_len", self.max_array_len),
            ("max_string_bytes", self.max_string_bytes),
            ("max_key_bytes", self.max_key_bytes),
            ("max_number_len", self.max_number_len),
        ] {
            if value == 0 {
                return Err(BuildError::new(field, "must be at least 1"));
            }
        }
        Ok(())
    }
}
