use std::fmt;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::{KeySet, KeySetError};

/// The live key set of one or more [`ApiKeyLayer`](crate::ApiKeyLayer)s, replaceable at run
/// time.
///
/// Replacing is atomic: a request that started with the old set finishes with it, every request
/// after the swap sees the new one, and no request waits or fails because of a swap. Cloning a
/// store shares it.
///
/// ```
/// use palisade_apikey::{KeyDigest, KeyEntry, KeySet, KeyStore};
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
}

/// A key file that cannot be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file cannot be read.
    Io(std::io::Error),
    /// The file has an invalid line.
    Parse(KeySetError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(err) => write!(f, "cannot read the key file: {err}"),
            Self::Parse(err) => write!(f, "invalid key file: {err}"),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(err) => Some(err),
            Self::Parse(err) => Some(err),
        }
    }
}

impl KeyStore {
    /// A store holding `keys`.
    pub fn new(keys: KeySet) -> Self {
        Self {
            keys: Arc::new(ArcSwap::from_pointee(keys)),
        }
    }

    /// A store holding the keys of the file at `path`.
    ///
    /// # Errors
    ///
    /// [`LoadError`] when the file cannot be read or has an invalid line.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        Ok(Self::new(read(path.as_ref())?))
    }

    /// The current key set.
    pub fn load(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.keys.load()
    }

    /// Replaces the key set; in-flight requests finish with the one they started with.
    pub fn replace(&self, keys: KeySet) {
        let count = keys.len();
        self.keys.store(Arc::new(keys));
        tracing::warn!(keys = count, "API key set replaced");
    }

    /// Reloads the key file at `path`. On error the current set stays in force.
    ///
    /// # Errors
    ///
    /// [`LoadError`] when the file cannot be read or has an invalid line.
    pub fn reload_from_file(&self, path: impl AsRef<Path>) -> Result<usize, LoadError> {
        let keys = read(path.as_ref()).inspect_err(|err| {
            tracing::error!(%err, "API key file not reloaded; the current keys stay in force");
        })?;
        let count = keys.len();
        self.replace(keys);
        Ok(count)
    }
}

fn read(path: &Path) -> Result<KeySet, LoadError> {
    let text = std::fs::read_to_string(path).map_err(LoadError::Io)?;
    KeySet::parse(&text).map_err(LoadError::Parse)
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("keys", &self.keys.load().len())
            .finish()
    }
}
