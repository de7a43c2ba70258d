//! The crypto backend, chosen by this crate's features and installed explicitly.
//!
//! `jsonwebtoken` picks its backend from its own features and panics at the first verification
//! when it has none, or two. Palisade installs one itself before any key is built: `aws-lc-rs`
//! (the default) when enabled, else `rust-crypto`. An application that installed a provider of
//! its own first keeps it.

#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
compile_error!(
    "palisade-jwt needs a crypto backend: enable the `aws-lc-rs` (default) or `rust-crypto` feature"
);

/// Installs this crate's backend as `jsonwebtoken`'s process-wide provider, once (a no-op
/// after the first call, and when the application installed one first). Palisade calls it
/// before building any key; call it yourself before signing with `jsonwebtoken` directly in a
/// process where both backends' features are enabled.
pub fn ensure() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(feature = "aws-lc-rs")]
        let provider = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
        #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
        let provider = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
        // Err: the application installed one already, which stays.
        let _ = provider.install_default();
    });
}

/// The backend in use, for logs and the bench.
pub fn name() -> &'static str {
    if cfg!(feature = "aws-lc-rs") {
        "aws-lc-rs"
    } else {
        "rust-crypto"
    }
}
