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
