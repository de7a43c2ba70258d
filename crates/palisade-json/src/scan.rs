//! The strict RFC 8259 scanner: one pass over the bytes, no recursion, no value built.
//!
//! It checks, in a single left-to-right pass: UTF-8 (the standard library's validator, first),
//! no byte-order mark, the grammar, escapes and surrogate pairs, no control character in a
//! string, no duplicate key in any object (compared after unescaping, so `"a"` and `"\u0061"`
//! are the same key), no data after the value, and every [`Limits`] bound. Each byte is looked
//! at a bounded number of times: strings are skipped eight bytes at a time, duplicate keys are
//! found by hash (a seeded `SipHash` set once an object holds more than
//! [`SMALL_OBJECT`] keys, so crafted collisions cannot make it quadratic). A rejection names
//! the rule, the byte offset and the JSON Pointer of the place, never the document's text
//! beyond pointer segments cut to [`MAX_POINTER_SEGMENT`] characters.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]
#![expect(
    clippy::inline_always,
    reason = "the per-byte helpers of the scan loop: measured 10-20% faster inlined into it"
)]

use std::collections::HashSet;
use std::fmt;

use crate::limits::{DuplicateKeys, Limits, LossyNumbers};

/// Objects with more keys than this check duplicates with a hash set.
pub const SMALL_OBJECT: usize = 12;

/// The longest JSON Pointer segment (in characters) a rejection repeats; longer ones are cut
/// and end in `…`.
pub const MAX_POINTER_SEGMENT: usize = 32;

/// Appends `/key` to a JSON Pointer, escaped (`~0`, `~1`) and cut to [`MAX_POINTER_SEGMENT`]
/// characters.
pub(crate) fn push_key(out: &mut String, key: &str) {
    out.push('/');
    for (i, c) in key.chars().enumerate() {
        if i == MAX_POINTER_SEGMENT {
            out.push('…');
            break;
        }
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}

/// Why a document was rejected, in general words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The body is empty or only whitespace.
    Empty,
    /// The body is not UTF-8.
    NotUtf8,
    /// The body starts with a byte-order mark.
    ByteOrderMark,
    /// A character that cannot start or continue what came before.
    Unexpected,
    /// The document ends before its value is complete.
    UnexpectedEnd,
    /// Data follows the JSON value.
    TrailingData,
    /// A control character (below U+0020) appears unescaped in a string.
    ControlCharacter,
    /// A backslash escape is not one of JSON's.
    InvalidEscape,
    /// A `\u` escape is one half of a surrogate pair without the other.
    LoneSurrogate,
    /// A number is malformed.
    InvalidNumber,
    /// A number cannot be represented without loss.
    LossyNumber,
    /// A key appears twice in one object.
    DuplicateKey,
    /// Arrays and objects nest deeper than allowed.
    TooDeep,
    /// An object has more members than allowed.
    TooManyKeys,
    /// An array has more elements than allowed.
    ArrayTooLong,
    /// A string is longer than allowed.
    StringTooLong,
    /// A key is longer than allowed.
    KeyTooLong,
    /// A number is longer than allowed.
    NumberTooLong,
}

impl Reason {
    /// The reason in general words, fit for a problem's `detail`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Empty => "the body is empty",
            Self::NotUtf8 => "the body is not UTF-8",
            Self::ByteOrderMark => "the body starts with a byte-order mark",
            Self::Unexpected => "unexpected character",
            Self::UnexpectedEnd => "the body ends before its JSON value is complete",
            Self::TrailingData => "there is data after the JSON value",
            Self::ControlCharacter => "a control character in a string is not escaped",
            Self::InvalidEscape => "a backslash escape in a string is not valid JSON",
            Self::LoneSurrogate => "a \\u escape is half of a surrogate pair",
            Self::InvalidNumber => "a number is malformed",
            Self::LossyNumber => "a number cannot be represented without loss",
            Self::DuplicateKey => "a key appears twice in one object",
            Self::TooDeep => "arrays and objects nest deeper than allowed",
            Self::TooManyKeys => "an object has more members than allowed",
            Self::ArrayTooLong => "an array has more elements than allowed",
            Self::StringTooLong => "a string is longer than allowed",
            Self::KeyTooLong => "a key is longer than allowed",
            Self::NumberTooLong => "a number is longer than allowed",
        }
    }

    /// A short name for logs and metrics (`duplicate_key`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::NotUtf8 => "not_utf8",
            Self::ByteOrderMark => "byte_order_mark",
            Self::Unexpected => "unexpected",
            Self::UnexpectedEnd => "unexpected_end",
            Self::TrailingData => "trailing_data",
            Self::ControlCharacter => "control_character",
            Self::InvalidEscape => "invalid_escape",
            Self::LoneSurrogate => "lone_surrogate",
            Self::InvalidNumber => "invalid_number",
            Self::LossyNumber => "lossy_number",
            Self::DuplicateKey => "duplicate_key",
            Self::TooDeep => "too_deep",
            Self::TooManyKeys => "too_many_keys",
            Self::ArrayTooLong => "array_too_long",
            Self::StringTooLong => "string_too_long",
            Self::KeyTooLong => "key_too_long",
            Self::NumberTooLong => "number_too_long",
        }
    }
}

/// A rejected document: the rule it broke, where (byte offset), and the JSON Pointer of the
/// value (or key) it broke it in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    reason: Reason,
    offset: usize,
    pointer: String,
}

impl Rejected {
    /// The rule.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The byte offset where the rule was broken.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The JSON Pointer (RFC 6901) of the place, `""` for the whole document; segments longer
    /// than [`MAX_POINTER_SEGMENT`] characters are cut and end in `…`.
    pub fn pointer(&self) -> &str {
        &self.pointer
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {:?} (byte {})",
            self.reason.describe(),
            self.pointer,
            self.offset
        )
    }
}

impl std::error::Error for Rejected {}

/// What a valid document holds (for tests and the differential fuzz target).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Objects.
    pub objects: u64,
    /// Arrays.
    pub arrays: u64,
    /// Object members.
    pub members: u64,
    /// Strings, keys not included.
    pub strings: u64,
    /// Numbers.
    pub numbers: u64,
    /// `true`, `false` and `null`.
    pub literals: u64,
    /// The deepest nesting.
    pub depth: u32,
}

/// Checks `bytes` as one strict JSON document under `limits`.
///
/// # Errors
///
/// [`Rejected`] naming the first rule broken.
///
/// ```
/// use palisade::json::{validate, Limits, Reason};
///
/// assert!(validate(br#"{"a": [1, 2.5, "x"], "b": null}"#, &Limits::default()).is_ok());
///
/// let duplicate = validate(br#"{"a": {"b": 1, "\u0062": 2}}"#, &Limits::default()).unwrap_err();
/// assert_eq!(duplicate.reason(), Reason::DuplicateKey);
/// assert_eq!(duplicate.pointer(), "/a/b");
/// ```
pub fn validate(bytes: &[u8], limits: &Limits) -> Result<Stats, Rejected> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(Rejected {
            reason: Reason::ByteOrderMark,
            offset: 0,
            pointer: String::new(),
        });
    }
    if let Err(err) = std::str::from_utf8(bytes) {
        return Err(Rejected {
            reason: Reason::NotUtf8,
            offset: err.valid_up_to(),
            pointer: String::new(),
        });
    }
    Scanner::new(bytes, limits).run()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Container {
    Object,
    Array,
}

/// A key as it was read: where in the input, and whether it had escapes (then its unescaped
/// bytes are in the frame's `unescaped` buffer).
#[derive(Clone, Copy, Default)]
struct KeySpan {
    start: usize,
    end: usize,
    /// Whether the key has escapes (0 or 1). A full word, not a `bool`: a byte store followed
    /// by a word load of the same span stalled the hot path.
    escaped: usize,
}

/// One open array or object.
struct Frame {
    container: Container,
    count: u32,
    /// The member being read (objects).
    key: KeySpan,
    /// Hashes of this object's first keys, with their spans: inline, so a small object costs
    /// no allocation.
    hashes: [u64; SMALL_OBJECT],
    spans: [KeySpan; SMALL_OBJECT],
    /// How many of `hashes` and `spans` are in use.
    small: usize,
    /// Unescaped copies of this object's escaped keys, back to back.
    unescaped: Vec<u8>,
    /// Where each escaped key's copy lies in `unescaped`, by the key's start in the input.
    copies: Vec<(usize, (usize, usize))>,
    /// All keys once the object is large (seeded hashes: no crafted collisions).
    big: Option<HashSet<Vec<u8>>>,
}

impl Frame {
    /// The unescaped bytes of a key this object already holds.
    fn stored<'b>(&'b self, input: &'b [u8], span: KeySpan) -> &'b [u8] {
        if span.escaped != 0 {
            let (from, to) = self
                .copies
                .iter()
                .find(|(start, _)| *start == span.start)
                .map_or((0, 0), |(_, range)| *range);
            self.unescaped.get(from..to).unwrap_or_default()
        } else {
            input.get(span.start..span.end).unwrap_or_default()
        }
    }

    fn new(container: Container) -> Self {
        Self {
            container,
            count: 0,
            key: KeySpan::default(),
            hashes: [0; SMALL_OBJECT],
            spans: [KeySpan::default(); SMALL_OBJECT],
            small: 0,
            unescaped: Vec::new(),
            copies: Vec::new(),
            big: None,
        }
    }

    fn reset(&mut self, container: Container) {
        self.container = container;
        self.count = 0;
        self.small = 0;
        self.unescaped.clear();
        self.copies.clear();
        self.big = None;
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    limits: &'a Limits,
    /// Frames `0..depth` are open; the rest are kept for their buffers.
    frames: Vec<Frame>,
    depth: usize,
    stats: Stats,
    scratch: Vec<u8>,
    /// Whether the last string read had escapes.
    escaped: bool,
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The bytes of `word` that are a quote, a backslash or below 0x20, as the high bit of each
/// byte. Bits above the lowest set one may be false alarms (a borrow carries into the next
/// byte); the lowest is exact, and no special byte is missed.
#[inline]
fn special(word: u64) -> u64 {
    let zero = |v: u64| v.wrapping_sub(LO) & !v & HI;
    let quote = zero(word ^ (LO * u64::from(b'"')));
    let backslash = zero(word ^ (LO * u64::from(b'\\')));
    let control = word.wrapping_sub(LO * 0x20) & !word & HI;
    quote | backslash | control
}

/// A fast hash of a key for the duplicate check of small objects (large ones use a seeded
/// set). Short keys are read with two overlapping loads, not copied.
#[inline]
fn hash_bytes(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mix = |hash: u64, word: u64| (hash.rotate_left(5) ^ word).wrapping_mul(K);
    let word = |at: usize| {
        u64::from_le_bytes(
            bytes
                .get(at..at + 8)
                .and_then(|w| w.try_into().ok())
                .unwrap_or([0; 8]),
        )
    };
    let half = |at: usize| {
        u64::from(u32::from_le_bytes(
            bytes
                .get(at..at + 4)
                .and_then(|w| w.try_into().ok())
                .unwrap_or([0; 4]),
        ))
    };
    let byte = |at: usize| u64::from(bytes.get(at).copied().unwrap_or(0));
    let n = bytes.len();
    let mut hash = n as u64;
    let last = if n >= 8 {
        let mut at = 0;
        while at + 8 < n {
            hash = mix(hash, word(at));
            at += 8;
        }
        word(n - 8)
    } else if n >= 4 {
        half(0) << 32 | half(n - 4)
    } else if n > 0 {
        byte(0) << 16 | byte(n / 2) << 8 | byte(n - 1)
    } else {
        0
    };
    mix(hash, last)
}

enum Next {
    Value,
    AfterValue,
}

/// A rejection while scanning, before its pointer is written: small, so that every `Result`
/// of the hot path fits in registers.
#[derive(Clone, Copy)]
struct Fail {
    reason: Reason,
    offset: usize,
}

impl<'a> Scanner<'a> {
    fn new(bytes: &'a [u8], limits: &'a Limits) -> Self {
        Self {
            bytes,
            pos: 0,
            limits,
            frames: Vec::with_capacity(4),
            depth: 0,
            stats: Stats::default(),
            scratch: Vec::new(),
            escaped: false,
        }
    }

    #[cold]
    fn fail(&self, reason: Reason) -> Fail {
        self.fail_at(reason, self.pos)
    }

    #[cold]
    fn fail_at(&self, reason: Reason, offset: usize) -> Fail {
        let _ = self;
        Fail { reason, offset }
    }

    /// The full rejection, with the pointer of the place the scan stopped at.
    #[cold]
    fn reject(&self, fail: Fail) -> Rejected {
        Rejected {
            reason: fail.reason,
            offset: fail.offset,
            pointer: self.pointer(),
        }
    }

    /// The pointer of the place being read.
    fn pointer(&self) -> String {
        let mut out = String::new();
        for frame in self.frames.iter().take(self.depth) {
            match frame.container {
                Container::Array => {
                    out.push('/');
                    out.push_str(&frame.count.to_string());
                }
                Container::Object => {
                    if frame.count == 0 {
                        break;
                    }
                    push_key(&mut out, &self.key_text(frame.key));
                }
            }
        }
        out
    }

    fn key_text(&self, span: KeySpan) -> String {
        let raw = self.bytes.get(span.start..span.end).unwrap_or_default();
        if span.escaped != 0 {
            let mut out = Vec::new();
            unescape_into(raw, &mut out);
            String::from_utf8_lossy(&out).into_owned()
        } else {
            String::from_utf8_lossy(raw).into_owned()
        }
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn run(mut self) -> Result<Stats, Rejected> {
        match self.scan() {
            Ok(()) => Ok(self.stats),
            Err(fail) => Err(self.reject(fail)),
        }
    }

    fn scan(&mut self) -> Result<(), Fail> {
        self.skip_whitespace();
        if self.pos == self.bytes.len() {
            return Err(self.fail(Reason::Empty));
        }
        let mut next = Next::Value;
        loop {
            next = match next {
                Next::Value => self.value()?,
                Next::AfterValue => {
                    self.skip_whitespace();
                    if self.depth == 0 {
                        if self.pos != self.bytes.len() {
                            return Err(self.fail(Reason::TrailingData));
                        }
                        return Ok(());
                    }
                    self.after_value()?
                }
            };
        }
    }

    #[inline(always)]
    fn value(&mut self) -> Result<Next, Fail> {
        let Some(&byte) = self.bytes.get(self.pos) else {
            return Err(self.fail(Reason::UnexpectedEnd));
        };
        match byte {
            b'{' => {
                self.stats.objects += 1;
                self.open(Container::Object)?;
                self.pos += 1;
                self.skip_whitespace();
                match self.bytes.get(self.pos) {
                    Some(b'}') => {
                        self.pos += 1;
                        self.depth -= 1;
                        Ok(Next::AfterValue)
                    }
                    Some(b'"') => self.member(),
                    Some(_) => Err(self.fail(Reason::Unexpected)),
                    None => Err(self.fail(Reason::UnexpectedEnd)),
                }
            }
            b'[' => {
                self.stats.arrays += 1;
                self.open(Container::Array)?;
                self.pos += 1;
                self.skip_whitespace();
                match self.bytes.get(self.pos) {
                    Some(b']') => {
                        self.pos += 1;
                        self.depth -= 1;
                        Ok(Next::AfterValue)
                    }
                    Some(_) => Ok(Next::Value),
                    None => Err(self.fail(Reason::UnexpectedEnd)),
                }
            }
            b'"' => {
                self.stats.strings += 1;
                self.string(self.limits.max_string_bytes, Reason::StringTooLong)?;
                Ok(Next::AfterValue)
            }
            b'-' | b'0'..=b'9' => {
                self.stats.numbers += 1;
                self.number()?;
                Ok(Next::AfterValue)
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => Err(self.fail(Reason::Unexpected)),
        }
    }

    #[inline(always)]
    fn literal(&mut self, word: &[u8]) -> Result<Next, Fail> {
        let end = self.pos + word.len();
        if self.bytes.get(self.pos..end) == Some(word) {
            self.pos = end;
            self.stats.literals += 1;
            Ok(Next::AfterValue)
        } else if self.bytes.len() < end
            && word.starts_with(self.bytes.get(self.pos..).unwrap_or_default())
        {
            self.pos = self.bytes.len();
            Err(self.fail(Reason::UnexpectedEnd))
        } else {
            Err(self.fail(Reason::Unexpected))
        }
    }

    /// The innermost open container's frame.
    #[inline(always)]
    fn open_frame(&mut self) -> Option<&mut Frame> {
        self.frames.get_mut(self.depth.checked_sub(1)?)
    }

    #[inline(always)]
    fn open(&mut self, container: Container) -> Result<(), Fail> {
        if self.depth >= self.limits.max_depth as usize {
            return Err(self.fail(Reason::TooDeep));
        }
        // Frames past `depth` are kept for their buffers.
        match self.frames.get_mut(self.depth) {
            Some(frame) => frame.reset(container),
            None => self.frames.push(Frame::new(container)),
        }
        self.depth += 1;
        self.stats.depth = self
            .stats
            .depth
            .max(u32::try_from(self.depth).unwrap_or(u32::MAX));
        Ok(())
    }

    #[inline(always)]
    fn after_value(&mut self) -> Result<Next, Fail> {
        let Some(container) = self.open_frame().map(|frame| frame.container) else {
            // Unreachable: a value inside a container was just read.
            return Err(self.fail(Reason::Unexpected));
        };
        match (self.bytes.get(self.pos), container) {
            (Some(b','), Container::Object) => {
                self.pos += 1;
                self.skip_whitespace();
                match self.bytes.get(self.pos) {
                    Some(b'"') => self.member(),
                    Some(_) => Err(self.fail(Reason::Unexpected)),
                    None => Err(self.fail(Reason::UnexpectedEnd)),
                }
            }
            (Some(b','), Container::Array) => {
                let max = self.limits.max_array_len;
                let count = self.open_frame().map_or(max, |frame| {
                    frame.count += 1;
                    frame.count
                });
                if count >= max {
                    return Err(self.fail(Reason::ArrayTooLong));
                }
                self.pos += 1;
                self.skip_whitespace();
                Ok(Next::Value)
            }
            (Some(b'}'), Container::Object) | (Some(b']'), Container::Array) => {
                self.pos += 1;
                self.depth -= 1;
                Ok(Next::AfterValue)
            }
            (Some(_), _) => Err(self.fail(Reason::Unexpected)),
            (None, _) => Err(self.fail(Reason::UnexpectedEnd)),
        }
    }

    /// A member: its key (at a quote), the colon, then its value.
    #[inline(always)]
    fn member(&mut self) -> Result<Next, Fail> {
        let key_at = self.pos;
        let end = self.string(self.limits.max_key_bytes, Reason::KeyTooLong)?;
        let (start, escaped) = (key_at + 1, self.escaped);
        self.stats.members += 1;
        let index = self.depth.saturating_sub(1);
        {
            let Some(frame) = self.frames.get_mut(index) else {
                // Unreachable: a member is read inside an object.
                return Err(self.fail_at(Reason::Unexpected, key_at));
            };
            // Field by field: a span built whole on the stack and copied in made a store that
            // could not forward to the load after it (measured: a fifth of a 1 KiB check).
            frame.count += 1;
            frame.key.start = start;
            frame.key.end = end;
            frame.key.escaped = usize::from(escaped);
            if frame.count > self.limits.max_keys {
                return Err(self.fail_at(Reason::TooManyKeys, key_at));
            }
        }
        if self.limits.duplicate_keys == DuplicateKeys::Reject && self.seen_before(index) {
            return Err(self.fail_at(Reason::DuplicateKey, key_at));
        }
        self.skip_whitespace();
        match self.bytes.get(self.pos) {
            Some(b':') => self.pos += 1,
            Some(_) => return Err(self.fail(Reason::Unexpected)),
            None => return Err(self.fail(Reason::UnexpectedEnd)),
        }
        self.skip_whitespace();
        Ok(Next::Value)
    }

    /// Records the key being read in frame `index`, answering whether the object had it
    /// already.
    fn seen_before(&mut self, index: usize) -> bool {
        let bytes = self.bytes;
        let Some(frame) = self.frames.get_mut(index) else {
            // Unreachable (`member` found the frame); refusing is the safe answer.
            return true;
        };
        let span = frame.key;
        let raw = bytes.get(span.start..span.end).unwrap_or_default();
        let key: &[u8] = if span.escaped != 0 {
            self.scratch.clear();
            unescape_into(raw, &mut self.scratch);
            &self.scratch
        } else {
            raw
        };
        if let Some(big) = &mut frame.big {
            return !big.insert(key.to_vec());
        }
        let hash = hash_bytes(key);
        for (other_hash, other) in frame.hashes.iter().zip(&frame.spans).take(frame.small) {
            if *other_hash == hash && frame.stored(bytes, *other) == key {
                return true;
            }
        }
        if span.escaped != 0 {
            let from = frame.unescaped.len();
            frame.unescaped.extend_from_slice(key);
            frame
                .copies
                .push((span.start, (from, frame.unescaped.len())));
        }
        if let (Some(slot_hash), Some(slot_span)) = (
            frame.hashes.get_mut(frame.small),
            frame.spans.get_mut(frame.small),
        ) {
            *slot_hash = hash;
            *slot_span = span;
            frame.small += 1;
        } else {
            // The object outgrew the inline slots: from now on, a seeded set of all its keys.
            let mut all: HashSet<Vec<u8>> = frame
                .spans
                .iter()
                .take(frame.small)
                .map(|other| frame.stored(bytes, *other).to_vec())
                .collect();
            all.insert(key.to_vec());
            frame.big = Some(all);
        }
        false
    }

    /// A string at a quote, up to `limit` bytes as written; returns where its content ends
    /// (it starts after the quote), and sets `escaped` if it had escapes.
    #[inline(always)]
    fn string(&mut self, limit: u32, too_long: Reason) -> Result<usize, Fail> {
        let quote = self.pos;
        let bytes = self.bytes;
        let start = quote + 1;
        let mut pos = start;
        let mut escaped = false;
        loop {
            // Eight bytes at a time to the first quote, backslash or control character.
            let byte = loop {
                if let Some(chunk) = bytes.get(pos..pos + 8) {
                    let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
                    let found = special(word);
                    if found == 0 {
                        pos += 8;
                        continue;
                    }
                    // The first special byte, which the byte-wise match below stops at.
                    pos += (found.trailing_zeros() / 8) as usize;
                }
                match bytes.get(pos) {
                    Some(&b) if b == b'"' || b == b'\\' || b < 0x20 => break b,
                    Some(_) => pos += 1,
                    None => {
                        self.pos = pos;
                        return Err(self.fail(Reason::UnexpectedEnd));
                    }
                }
            };
            match byte {
                b'"' => {
                    self.pos = pos + 1;
                    if pos - start > limit as usize {
                        return Err(self.fail_at(too_long, quote));
                    }
                    self.escaped = escaped;
                    return Ok(pos);
                }
                b'\\' => {
                    escaped = true;
                    self.pos = pos;
                    self.escape()?;
                    pos = self.pos;
                }
                _ => {
                    self.pos = pos;
                    return Err(self.fail(Reason::ControlCharacter));
                }
            }
        }
    }

    /// An escape at a backslash.
    fn escape(&mut self) -> Result<(), Fail> {
        match self.bytes.get(self.pos + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 2;
                Ok(())
            }
            Some(b'u') => {
                let unit = self.hex4(self.pos + 2)?;
                match unit {
                    0xD800..=0xDBFF => {
                        // A high surrogate must be followed by a low one.
                        if self.bytes.get(self.pos + 6..self.pos + 8) != Some(b"\\u") {
                            return Err(self.fail(Reason::LoneSurrogate));
                        }
                        let low = self.hex4(self.pos + 8)?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(self.fail(Reason::LoneSurrogate));
                        }
                        self.pos += 12;
                    }
                    0xDC00..=0xDFFF => return Err(self.fail(Reason::LoneSurrogate)),
                    _ => self.pos += 6,
                }
                Ok(())
            }
            Some(_) => Err(self.fail(Reason::InvalidEscape)),
            None => Err(self.fail(Reason::UnexpectedEnd)),
        }
    }

    fn hex4(&self, at: usize) -> Result<u32, Fail> {
        let Some(digits) = self.bytes.get(at..at + 4) else {
            return Err(self.fail_at(
                if self.bytes.len() < at + 4
                    && self
                        .bytes
                        .get(at.min(self.bytes.len())..)
                        .unwrap_or_default()
                        .iter()
                        .all(u8::is_ascii_hexdigit)
                {
                    Reason::UnexpectedEnd
                } else {
                    Reason::InvalidEscape
                },
                self.pos,
            ));
        };
        let mut unit = 0;
        for &d in digits {
            let value = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.fail(Reason::InvalidEscape)),
            };
            unit = unit << 4 | u32::from(value);
        }
        Ok(unit)
    }

    #[inline(always)]
    fn number(&mut self) -> Result<(), Fail> {
        let bytes = self.bytes;
        let start = self.pos;
        let negative = bytes.get(self.pos) == Some(&b'-');
        if negative {
            self.pos += 1;
        }
        let digits_start = self.pos;
        match bytes.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = bytes.get(self.pos) {
                    self.pos += 1;
                }
            }
            Some(_) => return Err(self.fail(Reason::InvalidNumber)),
            None => return Err(self.fail(Reason::UnexpectedEnd)),
        }
        let integer_digits = self.pos - digits_start;
        let mut integral = true;
        if bytes.get(self.pos) == Some(&b'.') {
            integral = false;
            self.pos += 1;
            let fraction = self.pos;
            while let Some(b'0'..=b'9') = bytes.get(self.pos) {
                self.pos += 1;
            }
            if self.pos == fraction {
                return Err(self.fail(if self.pos == bytes.len() {
                    Reason::UnexpectedEnd
                } else {
                    Reason::InvalidNumber
                }));
            }
        }
        if let Some(b'e' | b'E') = bytes.get(self.pos) {
            integral = false;
            self.pos += 1;
            if let Some(b'+' | b'-') = bytes.get(self.pos) {
                self.pos += 1;
            }
            let exponent = self.pos;
            while let Some(b'0'..=b'9') = bytes.get(self.pos) {
                self.pos += 1;
            }
            if self.pos == exponent {
                return Err(self.fail(if self.pos == bytes.len() {
                    Reason::UnexpectedEnd
                } else {
                    Reason::InvalidNumber
                }));
            }
        }
        if self.pos - start > self.limits.max_number_len as usize {
            return Err(self.fail_at(Reason::NumberTooLong, start));
        }
        if self.limits.lossy_numbers == LossyNumbers::Reject
            && lossy(
                bytes.get(start..self.pos).unwrap_or_default(),
                negative,
                integral,
                integer_digits,
            )
        {
            return Err(self.fail_at(Reason::LossyNumber, start));
        }
        Ok(())
    }
}

/// Whether a well-formed number cannot be represented without loss: an integer outside the
/// 64-bit range, or a value whose magnitude overflows an `f64` or underflows it to zero.
fn lossy(text: &[u8], negative: bool, integral: bool, integer_digits: usize) -> bool {
    if integral {
        if integer_digits < 19 {
            return false;
        }
        let digits = text.get(usize::from(negative)..).unwrap_or_default();
        if digits.len() > 20 {
            return true;
        }
        let value = digits
            .iter()
            .fold(0u128, |n, d| n * 10 + u128::from(d - b'0'));
        return if negative {
            value > 1 << 63
        } else {
            value > u128::from(u64::MAX)
        };
    }
    // Cheap in the common case: a number of at most 40 characters whose exponent is at most
    // 250 either way lies between 1e-290 and 1e290, well inside the f64 range. Only other
    // numbers are parsed.
    let exponent_at = text.iter().position(|b| matches!(b, b'e' | b'E'));
    let exponent: i64 = exponent_at.map_or(0, |at| {
        std::str::from_utf8(text.get(at + 1..).unwrap_or_default())
            .ok()
            .and_then(|e| e.parse::<i64>().ok())
            .unwrap_or(i64::MAX)
    });
    if text.len() <= 40 && (-250..=250).contains(&exponent) {
        return false;
    }
    let Some(value) = std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
    else {
        return true;
    };
    if !value.is_finite() {
        return true;
    }
    // A zero that was not written as zero underflowed.
    let mantissa = text
        .get(..exponent_at.unwrap_or(text.len()))
        .unwrap_or_default();
    value == 0.0 && mantissa.iter().any(|b| matches!(b, b'1'..=b'9'))
}

/// Unescapes a string's content (already checked) into `out`.
pub(crate) fn unescape_into(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while let Some(&byte) = raw.get(i) {
        if byte != b'\\' {
            out.push(byte);
            i += 1;
            continue;
        }
        let simple = match raw.get(i + 1) {
            Some(b'"') => Some(b'"'),
            Some(b'\\') => Some(b'\\'),
            Some(b'/') => Some(b'/'),
            Some(b'b') => Some(8),
            Some(b'f') => Some(12),
            Some(b'n') => Some(b'\n'),
            Some(b'r') => Some(b'\r'),
            Some(b't') => Some(b'\t'),
            _ => None,
        };
        if let Some(byte) = simple {
            out.push(byte);
            i += 2;
            continue;
        }
        let unit = |at: usize| {
            raw.get(at..at + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .unwrap_or(0xFFFD)
        };
        let first = unit(i + 2);
        let (code, used) = if (0xD800..=0xDBFF).contains(&first) {
            let low = unit(i + 8);
            (
                0x10000 + ((first - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF),
                12,
            )
        } else {
            (first, 6)
        };
        let c = char::from_u32(code).unwrap_or('\u{FFFD}');
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        i += used;
    }
}
