//! Parsers for the node values of `X-Forwarded-For` and `Forwarded` (RFC 7239).
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One hop of a forwarding chain: an address, or `None` when the hop is `unknown`, obfuscated
/// (`_hidden`) or malformed. A `None` ends the walk: nothing left of it can be trusted.
pub(super) type Hop = Option<IpAddr>;

/// Parses a node: `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:8080`, with RFC 7239 obfuscated ports (`_port`) accepted. Anything else,
/// `unknown` and obfuscated identifiers included, is `None`.
pub(super) fn parse_node(node: &str) -> Hop {
    let node = node.trim_matches(|c| c == ' ' || c == '\t');
    if let Some(rest) = node.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return addr.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Some(v4) = parse_ipv4(node.as_bytes()) {
        return Some(IpAddr::V4(v4));
    }
    if let Ok(addr) = node.parse::<IpAddr>() {
        return Some(addr);
    }
    // `192.0.2.1:8080`: exactly one colon, so this cannot be a bare IPv6 address.
    let (host, port) = node.split_once(':')?;
    if !is_port(port) {
        return None;
    }
    parse_ipv4(host.as_bytes()).map(IpAddr::V4)
}

/// Parses an `X-Forwarded-For` node: [`parse_node`], also accepting the node in double quotes,
/// which some proxies write. The list has no quoting: a comma always separates nodes.
pub(super) fn parse_xff_node(node: &[u8]) -> Hop {
    let node = std::str::from_utf8(node).ok()?;
    let trimmed = node.trim_matches(|c| c == ' ' || c == '\t');
    let unquoted = trimmed
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(trimmed);
    parse_node(unquoted)
}

/// Dotted-quad IPv4, exactly as `Ipv4Addr::from_str` accepts it (four decimal octets, no
/// leading zeros, at most 255), in about a fifth of its time: most hops are IPv4, and the walk
/// parses one per hop.
pub(super) fn parse_ipv4(text: &[u8]) -> Option<Ipv4Addr> {
    if text.len() < 7 || text.len() > 15 {
        return None;
    }
    let mut octets = [0u8; 4];
    let mut index = 0;
    let mut value: u16 = 0;
    let mut digits = 0;
    for &b in text {
        match b {
            b'0'..=b'9' => {
                // A leading zero is only allowed as the whole octet.
                if digits == 1 && value == 0 {
                    return None;
                }
                value = value * 10 + u16::from(b - b'0');
                digits += 1;
                if value > 255 {
                    return None;
                }
            }
            b'.' => {
                if digits == 0 || index == 3 {
                    return None;
                }
                *octets.get_mut(index)? = u8::try_from(value).ok()?;
                index += 1;
                value = 0;
                digits = 0;
            }
            _ => return None,
        }
    }
    if digits == 0 || index != 3 {
        return None;
    }
    octets[3] = u8::try_from(value).ok()?;
    Some(Ipv4Addr::from(octets))
}

fn is_port(port: &str) -> bool {
    let bytes = port.as_bytes();
    match bytes.split_first() {
        // RFC 7239 obfport = "_" 1*(ALPHA / DIGIT / "." / "_" / "-")
        Some((b'_', rest)) => {
            !rest.is_empty()
                && rest
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        }
        Some(_) => bytes.len() <= 5 && bytes.iter().all(u8::is_ascii_digit),
        None => false,
    }
}

/// Calls `each` with the `for=` hop of each element of a `Forwarded` header value, from right
/// to left, until it returns `false`; returns whether the walk may go on to the line before.
///
/// Elements are separated by commas outside quoted strings. An element that is malformed, has
/// no `for`, or has two, is a `None` hop. After a malformed element nothing further left is
/// read: its bytes give no safe place to resume.
///
/// Right to left is the direction of the trust walk, and the only one in which a client cannot
/// move the boundaries of the elements a proxy appends: a well-formed element is parsed from its
/// last byte back to the comma before it without reading further left, so whatever bytes a
/// client wrote before `, for=...` (a stray quote, a backslash, half an element), the proxy's
/// element parses as the proxy wrote it. Each byte is read a bounded number of times, so the
/// cost is linear in the length of the value, whatever it holds.
pub(super) fn forwarded_hops_rev(value: &[u8], mut each: impl FnMut(Hop) -> bool) -> bool {
    let mut end = value.len();
    loop {
        let Some((hop, next)) = parse_element_rev(value, end) else {
            each(None);
            return false;
        };
        if !each(hop) {
            return false;
        }
        match next {
            Some(comma) => end = comma,
            None => return true,
        }
    }
}

/// Parses the element that ends at `end` (exclusive), right to left. Returns its hop and the
/// position of the comma before it (`None` at the start of the value), or `None` when the
/// element is malformed.
fn parse_element_rev(value: &[u8], end: usize) -> Option<(Hop, Option<usize>)> {
    let mut hop: Option<Hop> = None;
    let mut repeated = false;
    let mut buf = [0u8; 64];
    let mut pos = end;
    // At the top of the loop `pos` is just right of a separator, or at the element's end.
    loop {
        pos = skip_ows_rev(value, pos);
        match before(value, pos) {
            None => return Some((finish(hop, repeated), None)),
            Some(b',') => return Some((finish(hop, repeated), Some(pos - 1))),
            Some(b';') => {
                pos -= 1;
                continue;
            }
            Some(_) => {}
        }
        // A pair, `name=token` or `name="quoted"`, read from its last byte.
        let node: Result<&[u8], ()> = if before(value, pos) == Some(b'"') {
            let close = pos - 1;
            let open = opening_quote(value, close)?;
            // Read forwards between the two quotes: the string must end exactly at `close`.
            match read_quoted(value, open + 1, &mut buf) {
                QuotedString::Done { len, next } if next == close + 1 => {
                    pos = open;
                    Ok(buf.get(..len)?)
                }
                QuotedString::TooLong { next } if next == close + 1 => {
                    pos = open;
                    Err(())
                }
                _ => return None,
            }
        } else {
            let token_end = pos;
            while before(value, pos).is_some_and(|b| in_table(&UNQUOTED_NODE, b)) {
                pos -= 1;
            }
            Ok(value.get(pos..token_end)?)
        };
        if before(value, pos) != Some(b'=') {
            return None;
        }
        pos -= 1;
        let name_end = pos;
        while before(value, pos).is_some_and(is_tchar) {
            pos -= 1;
        }
        let name = value.get(pos..name_end)?;
        if name.is_empty() {
            return None;
        }
        if name.eq_ignore_ascii_case(b"for") {
            repeated |= hop.is_some();
            hop = Some(
                node.ok()
                    .and_then(|n| std::str::from_utf8(n).ok())
                    .and_then(parse_node),
            );
        }
        // A pair is preceded by a separator or the start of the value, never by another byte.
        pos = skip_ows_rev(value, pos);
        if before(value, pos).is_some_and(|b| !matches!(b, b',' | b';')) {
            return None;
        }
    }
}

/// The opening quote of the quoted string whose closing quote is at `close`: the nearest quote
/// on its left that is not escaped, i.e. preceded by an even run of backslashes. Each byte is
/// looked at once: a backslash run is skipped as a whole after it was counted.
fn opening_quote(value: &[u8], close: usize) -> Option<usize> {
    let mut i = close;
    while i > 0 {
        i -= 1;
        if value.get(i) == Some(&b'"') {
            let mut run_start = i;
            while before(value, run_start) == Some(b'\\') {
                run_start -= 1;
            }
            if (i - run_start).is_multiple_of(2) {
                return Some(i);
            }
            i = run_start;
        }
    }
    None
}

fn finish(hop: Option<Hop>, repeated: bool) -> Hop {
    if repeated { None } else { hop.flatten() }
}

enum QuotedString {
    Done { len: usize, next: usize },
    TooLong { next: usize },
    Unterminated,
}

/// Reads a quoted string whose opening quote is just before `pos`, unescaping `\x`.
fn read_quoted(value: &[u8], mut pos: usize, buf: &mut [u8; 64]) -> QuotedString {
    let mut len = 0;
    let mut overflow = false;
    loop {
        let byte = match value.get(pos) {
            None => return QuotedString::Unterminated,
            Some(b'"') => {
                let next = pos + 1;
                return if overflow {
                    QuotedString::TooLong { next }
                } else {
                    QuotedString::Done { len, next }
                };
            }
            Some(b'\\') => {
                pos += 1;
                match value.get(pos) {
                    Some(b) => *b,
                    None => return QuotedString::Unterminated,
                }
            }
            Some(b) => *b,
        };
        pos += 1;
        if let Some(slot) = buf.get_mut(len) {
            *slot = byte;
            len += 1;
        } else {
            overflow = true;
        }
    }
}

fn skip_ows_rev(value: &[u8], mut pos: usize) -> usize {
    while matches!(before(value, pos), Some(b' ' | b'\t')) {
        pos -= 1;
    }
    pos
}

/// The byte just left of `pos`, if there is one.
#[inline]
fn before(value: &[u8], pos: usize) -> Option<u8> {
    value.get(pos.checked_sub(1)?).copied()
}

/// RFC 9110 `tchar`, as a table: the scanner asks once per byte.
#[allow(
    clippy::indexing_slicing,
    reason = "`b` counts to 255 in a 256-entry table"
)]
const TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        #[allow(clippy::cast_possible_truncation)]
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    table
};

/// `tchar`, plus the `:` `[` `]` of an unquoted node, which proxies write though RFC 7239 asks
/// for quotes.
#[allow(clippy::indexing_slicing, reason = "constant indices below 256")]
const UNQUOTED_NODE: [bool; 256] = {
    let mut table = TCHAR;
    table[b':' as usize] = true;
    table[b'[' as usize] = true;
    table[b']' as usize] = true;
    table
};

#[inline]
fn is_tchar(b: u8) -> bool {
    in_table(&TCHAR, b)
}

#[inline]
#[allow(clippy::indexing_slicing, reason = "a byte indexes a 256-entry table")]
fn in_table(table: &[bool; 256], b: u8) -> bool {
    table[usize::from(b)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::unnecessary_wraps, reason = "a hop is an Option")]
    fn ip(s: &str) -> Hop {
        Some(s.parse().unwrap())
    }

    #[test]
    fn node_table() {
        let cases: &[(&str, Hop)] = &[
            ("192.0.2.1", ip("192.0.2.1")),
            (" 192.0.2.1\t", ip("192.0.2.1")),
            ("192.0.2.1:8080", ip("192.0.2.1")),
            ("192.0.2.1:_obf", ip("192.0.2.1")),
            ("2001:db8::1", ip("2001:db8::1")),
            ("[2001:db8::1]", ip("2001:db8::1")),
            ("[2001:db8::1]:443", ip("2001:db8::1")),
            ("::ffff:192.0.2.1", ip("::ffff:192.0.2.1")),
            ("unknown", None),
            ("_hidden", None),
            ("", None),
            ("192.0.2.1:", None),
            ("192.0.2.1:123456", None),
            ("192.0.2.1:80:80", None),
            ("192.0.2", None),
            ("[192.0.2.1]", None),
            ("[2001:db8::1", None),
            ("[2001:db8::1]x", None),
            ("fe80::1%eth0", None),
            ("example.com", None),
            ("1.2.3.4 5.6.7.8", None),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_node(input), *expected, "node {input:?}");
        }
    }

    #[test]
    fn ipv4_fast_path_table() {
        for (text, ok) in [
            ("0.0.0.0", true),
            ("255.255.255.255", true),
            ("192.0.2.1", true),
            ("10.0.0.10", true),
            ("256.0.0.1", false),
            ("1.2.3", false),
            ("1.2.3.4.5", false),
            ("01.2.3.4", false),
            ("1.2.3.04", false),
            ("1..3.4", false),
            (".1.2.3", false),
            ("1.2.3.", false),
            ("1.2.3.4 ", false),
            ("1.2.3.-4", false),
            ("1000.2.3.4", false),
            ("1.2.3.4444", false),
        ] {
            assert_eq!(parse_ipv4(text.as_bytes()).is_some(), ok, "{text}");
            assert_eq!(
                parse_ipv4(text.as_bytes()),
                text.parse::<Ipv4Addr>().ok(),
                "{text} agrees with std"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn ipv4_fast_path_agrees_with_std(text in "[0-9.]{0,17}", octets in proptest::prelude::any::<[u8; 4]>()) {
            proptest::prop_assert_eq!(parse_ipv4(text.as_bytes()), text.parse::<Ipv4Addr>().ok());
            let dotted = Ipv4Addr::from(octets).to_string();
            proptest::prop_assert_eq!(parse_ipv4(dotted.as_bytes()), Some(Ipv4Addr::from(octets)));
        }
    }

    /// The hops of a `Forwarded` value in reading order (left to right), as far as the
    /// right-to-left parse reads: nothing left of a malformed element.
    fn hops(value: &str) -> Vec<Hop> {
        let mut out = Vec::new();
        forwarded_hops_rev(value.as_bytes(), |hop| {
            out.push(hop);
            true
        });
        out.reverse();
        out
    }

    #[test]
    fn forwarded_rfc_7239_examples() {
        assert_eq!(hops(r#"for="_gazonk""#), vec![None]);
        assert_eq!(
            hops(r#"For="[2001:db8:cafe::17]:4711""#),
            vec![ip("2001:db8:cafe::17")]
        );
        assert_eq!(
            hops("for=192.0.2.60;proto=http;by=203.0.113.43"),
            vec![ip("192.0.2.60")]
        );
        assert_eq!(
            hops("for=192.0.2.43, for=198.51.100.17"),
            vec![ip("192.0.2.43"), ip("198.51.100.17")]
        );
        assert_eq!(
            hops("for=unknown, for=192.0.2.1"),
            vec![None, ip("192.0.2.1")]
        );
    }

    #[test]
    fn forwarded_client_text_never_changes_the_elements_on_its_right() {
        let cases: &[(&str, Vec<Hop>)] = &[
            // unterminated quote from the client, then the proxy's own element
            (
                r#"for="1.1.1.1, for=192.0.2.9"#,
                vec![None, ip("192.0.2.9")],
            ),
            // a single stray quote before a quoted hop (issue 10: the empty-name path)
            (r#"", for="192.0.2.9:4711""#, vec![None, ip("192.0.2.9")]),
            (
                r#"", for="[2001:db8::9]:4711""#,
                vec![None, ip("2001:db8::9")],
            ),
            (
                r#"for="6.6.6.6, for="[2001:db9::c]:4711""#,
                vec![None, ip("2001:db9::c")],
            ),
            // a trailing backslash or a half element from the client
            (r#"for=\, for="192.0.2.9""#, vec![None, ip("192.0.2.9")]),
            (r#"for=", for=192.0.2.9"#, vec![None, ip("192.0.2.9")]),
            (r#"="=", for="192.0.2.9""#, vec![None, ip("192.0.2.9")]),
            // garbage after a value
            (
                "for=1.1.1.1 junk, for=192.0.2.9",
                vec![None, ip("192.0.2.9")],
            ),
            // a pair without '='
            ("for, for=192.0.2.9", vec![None, ip("192.0.2.9")]),
            // two `for` in one element is ambiguous
            (
                "for=1.1.1.1;for=2.2.2.2, for=192.0.2.9",
                vec![None, ip("192.0.2.9")],
            ),
            // a quoted comma in another parameter does not split the element
            (
                r#"ext="a,b";for=192.0.2.8, for=192.0.2.9"#,
                vec![ip("192.0.2.8"), ip("192.0.2.9")],
            ),
            // a quoted comma and an escaped quote right of the `for`
            (
                r#"for=192.0.2.8;ext="a\",b", for=192.0.2.9"#,
                vec![ip("192.0.2.8"), ip("192.0.2.9")],
            ),
            // no `for` at all
            ("proto=https, for=192.0.2.9", vec![None, ip("192.0.2.9")]),
            // empty elements
            (",for=192.0.2.9", vec![None, ip("192.0.2.9")]),
            ("for=192.0.2.9,", vec![ip("192.0.2.9"), None]),
            // escaped characters inside a quoted node
            (r#"for="\[2001:db8::1\]""#, vec![ip("2001:db8::1")]),
            // an escaped closing quote is not a closing quote
            (r#"for="192.0.2.9\""#, vec![None]),
            // a quoted node longer than any address
            (
                &format!("for=\"{}\", for=192.0.2.9", "1".repeat(200)),
                vec![None, ip("192.0.2.9")],
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(&hops(value), expected, "Forwarded: {value}");
        }
    }

    #[test]
    fn opening_quote_counts_backslash_runs() {
        for (value, expected) in [
            (r#""a""#, Some(0)),
            (r#""a\"b""#, Some(0)),
            (r#""a\\""#, Some(0)),
            (r#"x\"a""#, None),
            (r#"x\\"a""#, Some(3)),
            (r#"a""#, None),
        ] {
            assert_eq!(
                opening_quote(value.as_bytes(), value.len() - 1),
                expected,
                "{value}"
            );
        }
    }
}
