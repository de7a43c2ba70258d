//! `palisade-apikey` in the gateway: the key store, the embedded demo key, and the key file
//! reloaded on SIGHUP.

use std::path::{Path, PathBuf};

use palisade::apikey::{KeySet, KeyStore, LoadError};

/// The demo API key, accepted when no key file is given. It is public: never use it, or the
/// embedded key set below, outside the demo.
pub const DEMO_KEY: &str = "pal_demo_2Oa6KmWtP4kcChKu1OwMScNvaRtSsij9_1CnNwM";

/// The embedded key set: only the digest of [`DEMO_KEY`], as `palisade apikey new --prefix
/// pal_demo --principal demo --scopes hello:read,echo:write` printed it.
pub const DEMO_KEYS: &str = "\
# The demo key (printed at start-up). Replace with --api-keys FILE.
sha256:62ec36c714dc42161581dd5a82c698b6a7e7c14459cc95e5a24ea65cdd38228b principal=demo scopes=hello:read,echo:write
";

/// A store holding the embedded demo key set.
///
/// # Panics
///
/// Never: the embedded key set is checked by a test.
pub fn demo_store() -> KeyStore {
    KeyStore::new(KeySet::parse(DEMO_KEYS).expect("the embedded key set parses"))
}

/// Loads the key file at `path`. A file with no usable key is refused unless `allow_empty`.
///
/// # Errors
///
/// The file cannot be read, has an invalid line, or holds no usable key.
pub fn load(path: &Path, allow_empty: bool) -> Result<KeyStore, LoadError> {
    if !allow_empty {
        return KeyStore::from_file(path);
    }
    let store = KeyStore::new(KeySet::new()).allow_empty(true);
    store.reload_from_file(path)?;
    Ok(store)
}

/// Reloads the key file on each SIGHUP. A file that cannot be read, has a bad line or (unless
/// allowed) no usable key is refused: the store logs it and the current keys stay in force.
pub fn reload_on_sighup(store: KeyStore, path: PathBuf) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::error!("cannot listen for SIGHUP: keys will not reload");
            return;
        };
        while hangups.recv().await.is_some() {
            if let Ok(count) = store.reload_from_file(&path) {
                tracing::info!(keys = count, "API keys reloaded");
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (store, path);
}
