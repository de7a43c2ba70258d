//! `palisade::config`: any TOML document is a configuration or a `ConfigError` naming a key and
//! a line inside the document, never a panic; a configuration without a key file (no file is
//! read) builds both stacks or says which setting cannot be used.
#![no_main]

use palisade::config::Config;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml(text) {
        Ok(config) => {
            if config.server.api_keys.is_none() {
                if let Err(error) = config.check() {
                    assert!(!error.message().is_empty());
                }
            }
        }
        Err(error) => {
            let lines = text.lines().count().max(1);
            if let Some(line) = error.line() {
                assert!(line >= 1 && line <= lines + 1, "line {line} of {lines}");
            }
            assert!(!error.message().is_empty());
        }
    }
});
