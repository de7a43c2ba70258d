#![cfg_attr(not(test), deny(clippy::indexing_slicing))]
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::{KeySet, KeySetError};

/// The live key set of one or more [`ApiKeyLayer`](crate::ApiKeyLayer)s, replaceable at run
/// time.
///
/// Replacing is atomic: a request that started with the old set finishes with it, every request
/// after the swap sees the new one, and no request waits or fails because of a swap. Cloning a
/// store shares it.
///
/// A key file with no usable key (empty, or every key disabled or expired) would lock every
/// client out, so [`from_file`](Self::from_file) and [`reload_from_file`](Self::reload_from_file)
/// refuse it unless [`allow_empty`](Self::allow_empty) says otherwise; a refused reload leaves
/// the current keys in force.
///
/// ```
/// use palisade::apikey::{KeyDigest, KeyEntry, KeySet, KeyStore};
///
/// let store = KeyStore::new(KeySet::new());
/// assert!(store.load().is_empty());
///
/// let entry = KeyEntry::new(KeyDigest::of("new-key"), "billing").unwrap();
/// store.replace(KeySet::from_entries([entry]).unwrap());
/// assert_eq!(store.load().len(), 1);
/// ```
#[derive(Clone)]
pub struct KeyStore {
    keys: Arc<ArcSwap<KeySet>>,
    allow_empty: Arc<AtomicBool>,
}

/// A key file that cannot be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file cannot be read.
    Io(std::io::Error),
    /// The file has an invalid line.
    Parse(KeySetError),
    /// The file holds no usable key (none at all, or every one disabled or expired), and the
    /// store does not [allow an empty key set](KeyStore::allow_empty).
    NoUsableKey {
        /// How many keys the file holds.
        keys: usize,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(err) => write!(f, "cannot read the key file: {err}"),
            Self::Parse(err) => write!(f, "invalid key file: {err}"),
            Self::NoUsableKey { keys: 0 } => write!(
                f,
                "the key file holds no key, which would refuse every client (allow an empty key \
                 set explicitly if that is meant)"
            ),
            Self::NoUsableKey { keys } => write!(
                f,
                "the key file holds no usable key ({keys} keys, each disabled or expired), which \
                 would refuse every client (allow an empty key set explicitly if that is meant)"
            ),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(err) => Some(err),
            Self::Parse(err) => Some(err),
            Self::NoUsableKey { .. } => None,
        }
    }
}

impl KeyStore {
    /// A store holding `keys`.
    pub fn new(keys: KeySet) -> Self {
        set_gauge(&keys);
        Self {
            keys: Arc::new(ArcSwap::from_pointee(keys)),
            allow_empty: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A store holding the keys of the file at `path`.
    ///
    /// # Errors
    ///
    /// [`LoadError`] when the file cannot be read, has an invalid line, or holds no usable key.
    /// To start from a file with no usable key, build an empty store, call
    /// [`allow_empty`](Self::allow_empty), then [`reload_from_file`](Self::reload_from_file).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let keys = read(path.as_ref())?;
        check_usable(&keys)?;
        Ok(Self::new(keys))
    }

    /// Whether [`reload_from_file`](Self::reload_from_file) may install a key set with no
    /// usable key (default `false`). Shared by every clone of the store.
    #[must_use]
    pub fn allow_empty(self, allow: bool) -> Self {
        self.allow_empty.store(allow, Ordering::Relaxed);
        self
    }

    /// The current key set.
    pub fn load(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.keys.load()
    }

    /// Replaces the key set; in-flight requests finish with the one they started with.
    pub fn replace(&self, keys: KeySet) {
        let count = keys.len();
        set_gauge(&keys);
        self.keys.store(Arc::new(keys));
        tracing::warn!(keys = count, "API key set replaced");
    }

    /// Reloads the key file at `path` and returns how many keys it holds. On error the current
    /// set stays in force.
    ///
    /// # Errors
    ///
    /// [`LoadError`] when the file cannot be read, has an invalid line, or holds no usable key
    /// and the store does not [allow](Self::allow_empty) that. Each refusal is logged at
    /// `error` and, with the `metrics` feature, counted in
    /// `palisade_apikey_reloads_total{outcome}`.
    pub fn reload_from_file(&self, path: impl AsRef<Path>) -> Result<usize, LoadError> {
        let result = read(path.as_ref()).and_then(|keys| {
            if !self.allow_empty.load(Ordering::Relaxed) {
                check_usable(&keys)?;
            }
            Ok(keys)
        });
        match result {
            Ok(keys) => {
                let count = keys.len();
                self.replace(keys);
                count_reload("reloaded");
                Ok(count)
            }
            Err(err) => {
                tracing::error!(%err, "API key file not reloaded; the current keys stay in force");
                count_reload(match err {
                    LoadError::NoUsableKey { .. } => "refused_no_usable_key",
                    LoadError::Io(_) | LoadError::Parse(_) => "failed",
                });
                Err(err)
            }
        }
    }
}

fn read(path: &Path) -> Result<KeySet, LoadError> {
    let text = std::fs::read_to_string(path).map_err(LoadError::Io)?;
    KeySet::parse(&text).map_err(LoadError::Parse)
}

fn check_usable(keys: &KeySet) -> Result<(), LoadError> {
    let now = SystemTime::now();
    if keys.entries().any(|entry| entry.usable(|| now).is_ok()) {
        Ok(())
    } else {
        Err(LoadError::NoUsableKey { keys: keys.len() })
    }
}

/// `palisade_apikey_keys`: the keys of the set in force.
fn set_gauge(keys: &KeySet) {
    #[cfg(feature = "metrics")]
    #[allow(clippy::cast_precision_loss, reason = "a gauge")]
    metrics::gauge!("palisade_apikey_keys").set(keys.len() as f64);
    #[cfg(not(feature = "metrics"))]
    let _ = keys;
}

fn count_reload(outcome: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("palisade_apikey_reloads_total", "outcome" => outcome).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = outcome;
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("keys", &self.keys.load().len())
            .field("allow_empty", &self.allow_empty.load(Ordering::Relaxed))
            .finish()
    }
}
