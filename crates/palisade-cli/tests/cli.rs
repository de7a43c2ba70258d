//! The `palisade` binary, run as a user would.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use palisade_apikey::{KeyDigest, KeySet};

fn palisade(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run palisade");
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        // The tool may stop reading early (over-long input) and exit: a broken pipe is fine.
        let _ = pipe.write_all(input.as_bytes());
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn new_prints_the_key_once_and_its_digest_line() {
    let out = palisade(
        &[
            "apikey",
            "new",
            "--principal",
            "billing",
            "--scopes",
            "orders:read,orders:write",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let (key, line) = (lines[0], lines[1]);
    assert!(key.starts_with("pal_live_"), "{key}");
    assert_eq!(
        line,
        format!(
            "{} principal=billing scopes=orders:read,orders:write",
            KeyDigest::of(key)
        )
    );
    assert!(!line.contains(key), "the line holds only the digest");
    assert!(text(&out.stderr).contains("shown only this once"));

    let set = KeySet::parse(line).unwrap();
    assert!(set.find(&KeyDigest::of(key)).is_some());
}

#[test]
fn new_takes_a_prefix_and_an_expiry() {
    let out = palisade(
        &[
            "apikey",
            "new",
            "--prefix",
            "acme_test",
            "--not-after",
            "2027-01-31T00:00:00Z",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    assert!(lines.next().unwrap().starts_with("acme_test_"));
    assert!(
        lines
            .next()
            .unwrap()
            .ends_with("principal=unnamed not_after=2027-01-31T00:00:00Z")
    );
}

#[test]
fn hash_reads_the_key_on_stdin() {
    let key = palisade_apikey::format::generate("pal_live").unwrap();
    let out = palisade(
        &["apikey", "hash", "--principal", "ops"],
        Some(&format!("{key}\n")),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("{} principal=ops\n", KeyDigest::of(&key))
    );
    assert!(
        text(&out.stderr).is_empty(),
        "no warning for a Palisade key"
    );

    let legacy = palisade(&["apikey", "hash"], Some("opaque-legacy-key"));
    assert!(legacy.status.success());
    assert!(
        text(&legacy.stderr).contains("legacy keys"),
        "{}",
        text(&legacy.stderr)
    );
}

#[test]
fn bad_input_is_refused_with_a_message() {
    let cases: [(&[&str], Option<&str>, &str); 6] = [
        (&["apikey", "hash"], Some(""), "no key on standard input"),
        (&["apikey", "hash"], Some("two words"), "one token"),
        (
            &["apikey", "new", "--prefix", "Bad-Prefix"],
            None,
            "invalid key prefix",
        ),
        (
            &["apikey", "new", "--principal", "has space"],
            None,
            "invalid principal",
        ),
        (
            &["apikey", "new", "--scopes", "a,,b"],
            None,
            "invalid scope",
        ),
        (
            &["apikey", "new", "--not-after", "tomorrow"],
            None,
            "RFC 3339",
        ),
    ];
    for (args, stdin, expected) in cases {
        let out = palisade(args, stdin);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            text(&out.stderr).contains(expected),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    }
    let long = "k".repeat(300);
    let out = palisade(&["apikey", "hash"], Some(&long));
    assert!(text(&out.stderr).contains("longer than 256"));
}

/// Issue 10: `apikey hash` read only the first 4096 bytes, so a key followed by whitespace and
/// more text was hashed as if the rest were not there.
#[test]
fn hash_reads_all_of_stdin_and_refuses_what_follows_the_key() {
    let key = "pal_live_2Oa6KmWtP4kcChKu1OwMScNvaRtSsij9_1CnNwM";
    let trailing = format!("{key}{}second-token\n", " ".repeat(5000));
    let out = palisade(&["apikey", "hash"], Some(&trailing));
    assert!(!out.status.success(), "text after the key is refused");
    assert!(out.stdout.is_empty(), "no key-file line is printed");
    let short = format!("{key} second-token\n");
    let out = palisade(&["apikey", "hash"], Some(&short));
    assert!(
        text(&out.stderr).contains("one token"),
        "{}",
        text(&out.stderr)
    );

    let huge = format!("{key}\n{}", " ".repeat(200_000));
    let out = palisade(&["apikey", "hash"], Some(&huge));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("more than 65536 bytes"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());

    let with_newline = palisade(&["apikey", "hash"], Some(&format!("{key}\r\n")));
    assert!(
        with_newline.status.success(),
        "{}",
        text(&with_newline.stderr)
    );
}

/// Writes `files` (name, bytes) into a fresh directory.
fn json_files(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

#[test]
fn json_check_prints_one_line_per_file_and_exits_1_on_a_rejection() {
    let dir = json_files(&[
        ("good.json", br#"{"a": [1, 2.5, "x"]}"#),
        ("dup.json", br#"{"a": {"b": 1, "\u0062": 2}}"#),
        ("trailing.json", b"{} {}"),
    ]);
    let path = |name: &str| dir.path().join(name).display().to_string();
    let (good, dup, trailing) = (path("good.json"), path("dup.json"), path("trailing.json"));
    let out = palisade(&["json", "check", &good, &dup, &trailing], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "{good}: ok\n\
             {dup}: reject: a key appears twice in one object at \"/a/b\" (byte 15)\n\
             {trailing}: reject: there is data after the JSON value at \"\" (byte 3)\n"
        )
    );
    let out = palisade(&["json", "check", &good], None);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), format!("{good}: ok\n"));
}

#[test]
fn json_check_limits_are_the_layers_unless_given() {
    let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
    let dir = json_files(&[("deep.json", deep.as_bytes()), ("big.json", b"[1e400]")]);
    let deep = dir.path().join("deep.json").display().to_string();
    let big = dir.path().join("big.json").display().to_string();
    let out = palisade(&["json", "check", &deep, &big], None);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("(byte 64)"), "{stdout}");
    assert!(stdout.contains("/0/0/0"), "{stdout}");
    assert!(stdout.contains(&format!("{big}: reject: ")), "{stdout}");

    let out = palisade(
        &[
            "json",
            "check",
            "--max-depth",
            "65",
            "--allow-lossy-numbers",
            &deep,
            &big,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    let out = palisade(&["json", "check", "--max-bytes", "4", &big], None);
    assert_eq!(
        text(&out.stdout),
        format!("{big}: reject: the file is larger than 4 bytes\n")
    );
    let out = palisade(&["json", "check", "--max-depth", "0", &big], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("max_depth"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn json_check_reads_stdin_and_reports_unreadable_files() {
    let out = palisade(&["json", "check", "-"], Some(r#"{"ok": true}"#));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "-: ok\n");

    let out = palisade(&["json", "check", "/nonexistent/palisade.json"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/palisade.json"));
    assert!(text(&out.stdout).is_empty());
}

#[test]
fn config_check_builds_both_stacks_and_names_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let key = palisade_apikey::format::generate("pal_live").unwrap();
    std::fs::write(
        dir.path().join("keys.txt"),
        format!("{} principal=billing\n", KeyDigest::of(&key)),
    )
    .unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let good = write(
        "good.toml",
        "[server]\ntimeout = \"2s\"\n\n[server.rate_limit.ip]\nquota = \"20/s burst 40\"\n\n\
         [server.api_keys]\nkey_file = \"keys.txt\"\n\n[client.retry]\nmax_attempts = 3\n",
    );
    // Checked from another working directory: the key file is found beside the configuration.
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["config", "check", &good])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("{good}: ok (timeout 2s; rate limits ip; API keys)\n")
    );

    let quota = write("quota.toml", "[server.rate_limit.ip]\nquota = \"lots\"\n");
    let open = write("open.toml", "[server]\ntimeout = \"2s\"\n");
    let retry = write(
        "retry.toml",
        "[server.api_keys]\nkey_file = \"keys.txt\"\n[client.retry]\nmax_attempts = 0\n",
    );
    let empty_keys = write("empty.toml", "[server.api_keys]\nkey_file = \"none.txt\"\n");
    let out = palisade(
        &["config", "check", &good, &quota, &open, &retry, &empty_keys],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert!(lines[0].ends_with(": ok (timeout 2s; rate limits ip; API keys)"));
    assert!(
        lines[1].contains(": invalid: `server.rate_limit.ip.quota` (line 2): "),
        "{stdout}"
    );
    assert!(
        lines[2].contains(": invalid: `server`: no credential"),
        "{stdout}"
    );
    assert!(lines[3].contains(": invalid: `client.retry"), "{stdout}");
    assert!(lines[4].contains(": invalid: `server.api_keys"), "{stdout}");

    let out = palisade(&["config", "check", "/nonexistent/palisade.toml"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/palisade.toml"));
    assert!(text(&out.stdout).is_empty());
}

#[test]
fn json_check_agrees_with_json_test_suite() {
    let suite = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/JSONTestSuite/test_parsing");
    for (name, code) in [
        ("y_object_simple.json", 0),
        ("n_structure_unclosed_array.json", 1),
        ("n_string_unescaped_tab.json", 1),
    ] {
        let file = suite.join(name).display().to_string();
        let out = palisade(&["json", "check", &file], None);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{name}: {}",
            text(&out.stdout)
        );
    }
}

mod jwt {
    use jsonwebtoken::Algorithm;
    use palisade_test_support::jwt::{JwksServer, TestKey, claims, now};

    use super::{palisade, text};

    fn jwks_file(dir: &tempfile::TempDir, keys: &[&TestKey]) -> String {
        let path = dir.path().join("jwks.json");
        let jwks = serde_json::json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() });
        std::fs::write(&path, jwks.to_string()).unwrap();
        path.display().to_string()
    }

    #[test]
    fn inspect_prints_header_and_claims_labelled_unverified() {
        let key = TestKey::ec256("k1");
        let token = key.sign(&claims("https://issuer.example", "api", "ada"));
        let out = palisade(&["jwt", "inspect", &token], None);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(stdout.starts_with("header (unverified):\n{"), "{stdout}");
        assert!(stdout.contains("\"kid\": \"k1\""), "{stdout}");
        assert!(stdout.contains("claims (unverified):"), "{stdout}");
        assert!(stdout.contains("\"sub\": \"ada\""), "{stdout}");
        let out = palisade(&["jwt", "inspect"], Some(&format!("{token}\n")));
        assert!(out.status.success());
        let out = palisade(&["jwt", "inspect", "not-a-token"], None);
        assert_eq!(out.status.code(), Some(2));
    }

    /// Issue 16, items 1 and 11: a `cty` whose 12th byte fell inside a character panicked
    /// (exit 101 mid-batch), and standard input was read a whole line at a time, however long.
    #[test]
    fn verify_goes_on_past_hostile_lines() {
        let dir = tempfile::tempdir().unwrap();
        let key = TestKey::rsa_a("k1", Algorithm::RS256);
        let jwks = jwks_file(&dir, &[&key]);
        let iss = "https://issuer.example";
        let good = key.sign(&claims(iss, "api", "ada"));
        let header = r#"{"alg":"RS256","kid":"k1","cty":"xxxxxxxxxxxé"}"#;
        let claims_json = serde_json::to_vec(&claims(iss, "api", "ada")).unwrap();
        let crafted = key.sign_raw(header.as_bytes(), &claims_json);
        let long = "a".repeat(200 * 1024);
        let stdin = format!("{crafted}\n{long}\n{good}\n");
        let args = [
            "jwt", "verify", "--jwks", &jwks, "--iss", iss, "--aud", "api",
        ];
        let out = palisade(&args, Some(&stdin));
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0], "valid", "a non-ASCII cty is not a nested token");
        assert!(lines[1].starts_with("invalid"), "{}", lines[1]);
        assert_eq!(lines[2], "valid");
    }

    #[test]
    fn verify_prints_one_line_per_token_and_exits_1_if_any_is_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let key = TestKey::rsa_a("k1", Algorithm::RS256);
        let jwks = jwks_file(&dir, &[&key]);
        let iss = "https://issuer.example";
        let good = key.sign(&claims(iss, "api", "ada"));
        let expired = key.sign(&serde_json::json!({"iss": iss, "aud": "api", "exp": now() - 3600}));
        let stranger = TestKey::ec256("k2").sign(&claims(iss, "api", "eve"));
        let args = [
            "jwt", "verify", "--jwks", &jwks, "--iss", iss, "--aud", "api",
        ];
        let out = palisade(&[&args[..], &[good.as_str()]].concat(), None);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "valid\n");
        let stdin = format!("{good}\n{expired}\n{stranger}\nnot.a.token\n");
        let out = palisade(&args, Some(&stdin));
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            text(&out.stdout),
            "valid\n\
             invalid: the token has expired (`exp`)\n\
             invalid: the token's signing key is not known\n\
             invalid: the token is not a well-formed JWS compact serialization\n"
        );
        let out = palisade(
            &["jwt", "verify", "--jwks", "/nonexistent.json", &good],
            None,
        );
        assert_eq!(out.status.code(), Some(2));
    }

    #[test]
    fn verify_fetches_a_jwks_url() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let key = TestKey::ed25519("k1");
        let server = runtime.block_on(JwksServer::spawn(&[&key]));
        let token = key.sign(&claims(&server.issuer(), "api", "ada"));
        let out = palisade(
            &[
                "jwt",
                "verify",
                "--jwks",
                &server.jwks_url(),
                "--aud",
                "api",
                &token,
            ],
            None,
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "valid\n");
        drop(server);
    }

    #[test]
    fn verify_checks_rfc_7520_vectors_with_skip_claims() {
        let cookbook = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/testdata/jose-cookbook/jws");
        let dir = tempfile::tempdir().unwrap();
        for (file, extra) in [
            ("4_1.rsa_v15_signature.json", None),
            ("4_2.rsa-pss_signature.json", Some("PS384")),
            ("4_4.hmac-sha2_integrity_protection.json", None),
        ] {
            let example: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(cookbook.join(file)).unwrap())
                    .unwrap();
            let key = dir.path().join(format!("{file}.jwk"));
            std::fs::write(&key, example["input"]["key"].to_string()).unwrap();
            let key = key.display().to_string();
            let token = example["output"]["compact"].as_str().unwrap();
            let mut args = vec!["jwt", "verify", "--jwks", &key, "--skip-claims"];
            if let Some(alg) = extra {
                args.extend(["--rsa-alg", alg]);
            }
            args.push(token);
            let out = palisade(&args, None);
            assert_eq!(
                text(&out.stdout),
                "valid\n",
                "{file}: {}",
                text(&out.stderr)
            );
            // Without --skip-claims the prose payload is not a claims set.
            args.retain(|a| *a != "--skip-claims");
            let out = palisade(&args, None);
            assert_eq!(out.status.code(), Some(1), "{file}");
        }
    }
}
