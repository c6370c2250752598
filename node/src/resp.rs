//! RESP: the Redis protocol that clients speak.
//!
//! Three pure parts (bytes in, values out; the connection code does the I/O):
//!
//! - [`RequestParser`] turns the bytes a client sends into commands, in both
//!   of Redis's request forms: multibulk (`*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n`,
//!   what redis-cli, redis-benchmark and client libraries send) and inline
//!   (`ECHO "hi there"\r\n`, what a person types into telnet).
//! - [`encode`] writes a reply [`Value`] in RESP2 or RESP3.
//! - [`ReplyParser`] reads replies back, for our own clients: tests,
//!   `synod status`, the bench tool and the simulator.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use synod::resp::{Limits, Protocol, ReplyParser, Request, RequestParser, Value, encode};
//!
//! // Requests arrive in pieces; the parser keeps its place between reads.
//! let mut requests = RequestParser::new(Limits::default());
//! let mut input = BytesMut::from(&b"*2\r\n$4\r\nECHO\r\n$2\r"[..]);
//! assert_eq!(requests.parse(&mut input), Ok(None));
//! input.extend_from_slice(b"\nhi\r\nPING\r\n");
//! let echo = vec![Bytes::from("ECHO"), Bytes::from("hi")];
//! assert_eq!(requests.parse(&mut input), Ok(Some(Request::Command(echo))));
//! let ping = vec![Bytes::from("PING")];
//! assert_eq!(requests.parse(&mut input), Ok(Some(Request::Command(ping))));
//! assert_eq!(requests.parse(&mut input), Ok(None));
//!
//! // A reply, and the client side reading it back.
//! let mut output = BytesMut::new();
//! let reply = Value::Map(vec![(Value::simple("role"), Value::bulk("leader"))]);
//! encode(&reply, Protocol::Resp3, &mut output);
//! assert_eq!(&output[..], b"%1\r\n+role\r\n$6\r\nleader\r\n");
//! assert_eq!(ReplyParser::new().parse(&mut output), Ok(Some(reply)));
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

/// A bulk length above this is broken protocol, not an oversized argument
/// (Redis's `proto-max-bulk-len` default, 512 MiB): skipping it would mean
/// reading that much from a client that is most likely not speaking RESP.
pub const PROTO_MAX_BULK_BYTES: i64 = 512 * 1024 * 1024;

/// Limits on what one client request may make the server hold.
///
/// With them the bytes held for one connection stay within
/// `max_request_bytes + max(max_bulk_bytes, max_inline_bytes) + 1`, plus
/// one [`Bytes`] handle per argument (at most `max_args`), whatever the
/// client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest argument. A longer one is discarded as it arrives and its
    /// command rejected with [`RequestError::ArgumentTooLong`]; the
    /// connection stays usable. Default 1 MiB.
    pub max_bulk_bytes: usize,
    /// The most argument bytes one command may carry in all. Past it the
    /// command is rejected with [`RequestError::RequestTooLarge`], the same
    /// way. Default 16 MiB.
    pub max_request_bytes: usize,
    /// The most arguments a multibulk command may declare. More is a
    /// protocol error, as in Redis (`invalid multibulk length`). Default 64 Ki.
    pub max_args: usize,
    /// The longest inline command, and the longest multibulk length line,
    /// not counting the final `\n`. Longer is a protocol error. Default
    /// 64 KiB, as Redis's `PROTO_INLINE_MAX_SIZE`.
    pub max_inline_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bulk_bytes: 1024 * 1024,
            max_request_bytes: 16 * 1024 * 1024,
            max_args: 64 * 1024,
            max_inline_bytes: 64 * 1024,
        }
    }
}

/// A request stream the server cannot follow. Reply with the error (its
/// `Display` is the whole error line, Redis's text) and close the
/// connection: where the next command starts is unknown.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// The count after `*` is not a number, or is above [`Limits::max_args`].
    #[error("ERR Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// No `\r` within [`Limits::max_inline_bytes`] of a `*`.
    #[error("ERR Protocol error: too big mbulk count string")]
    TooBigMultibulkCount,
    /// A multibulk argument that does not start with `$`. Redis shows the
    /// byte raw; here `\r` and `\n` show as a space (as a client sees Redis's
    /// reply after sanitising) and non-printable bytes as `\xHH`, so that the
    /// text stays UTF-8.
    #[error("ERR Protocol error: expected '$', got '{}'", shown_byte(*.got))]
    ExpectedDollar {
        /// The byte found instead.
        got: u8,
    },
    /// No `\r` within [`Limits::max_inline_bytes`] of a `$`.
    #[error("ERR Protocol error: too big bulk count string")]
    TooBigBulkCount,
    /// The length after `$` is not a number, or is negative.
    #[error("ERR Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// An argument's bytes not followed by `\r\n` (Redis does not check).
    #[error("ERR Protocol error: expected CRLF after bulk argument")]
    MissingBulkCrlf,
    /// An inline command longer than [`Limits::max_inline_bytes`].
    #[error("ERR Protocol error: too big inline request")]
    TooBigInline,
    /// An inline command with an unclosed quote, or a closing quote not
    /// followed by a space.
    #[error("ERR Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
}

/// A byte as [`ProtocolError::ExpectedDollar`] shows it.
fn shown_byte(byte: u8) -> String {
    match byte {
        b'\r' | b'\n' | b' ' => " ".to_string(),
        _ if byte.is_ascii_graphic() => char::from(byte).to_string(),
        _ => format!("\\x{byte:02x}"),
    }
}

/// A command refused for its size. Its bytes were read and dropped, so the
/// connection can go on: reply with the error (its `Display` is the whole
/// error line) and read the next command.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RequestError {
    /// One argument is longer than [`Limits::max_bulk_bytes`].
    #[error("ERR argument too long: {len_bytes} bytes, the limit is {max_bytes}")]
    ArgumentTooLong {
        /// The argument's declared length.
        len_bytes: u64,
        /// The limit.
        max_bytes: usize,
    },
    /// The arguments together pass [`Limits::max_request_bytes`].
    #[error("ERR request too large: its arguments pass the limit of {max_bytes} bytes")]
    RequestTooLarge {
        /// The limit.
        max_bytes: usize,
    },
}

/// What [`RequestParser::parse`] found: one item per client command, in the
/// order sent, so replies can follow in the same order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A whole command: its name first, then its arguments.
    Command(Vec<Bytes>),
    /// A command refused for its size; reply with the error and go on.
    Rejected(RequestError),
}

/// Where the parser stands in the byte stream.
#[derive(Clone, Debug)]
enum State {
    /// The next byte starts a request.
    Start,
    /// In an inline command, looking for its `\n`.
    Inline,
    /// At a `*`, looking for the end of the count line.
    Count,
    /// Expecting `$<len>\r\n`.
    BulkHeader,
    /// Waiting for an argument's bytes and their `\r\n`.
    BulkBody { len: usize },
    /// Dropping a rejected command's argument bytes as they arrive.
    Skip { remaining_bytes: u64 },
    /// Expecting the `\r\n` after a dropped argument.
    SkipCrlf,
    /// Stopped: the stream cannot be followed.
    Failed(ProtocolError),
}

/// Turns the bytes a client sends into commands, incrementally.
///
/// Call [`parse`](Self::parse) with the connection's read buffer after each
/// read until it returns `Ok(None)`. The parser consumes what it has used
/// from the front of the buffer and remembers how far it looked into the
/// rest, so each byte is examined a bounded number of times however the
/// stream is split. Arguments are split off the buffer, not copied (inline
/// arguments with quote escapes are the exception).
#[derive(Debug)]
pub struct RequestParser {
    limits: Limits,
    state: State,
    /// The current multibulk command's arguments so far.
    args: Vec<Bytes>,
    /// Arguments the current multibulk command still has to send.
    args_remaining: usize,
    /// Argument bytes the current command has declared so far.
    request_bytes: usize,
    /// Set once the current command broke a limit; the rest of it is dropped.
    rejected: Option<RequestError>,
    /// How far into the buffer the current line was already searched for
    /// its terminator, so a line that arrives byte by byte is scanned once.
    scanned: usize,
}

impl RequestParser {
    /// A parser at the start of a connection.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            state: State::Start,
            args: Vec::new(),
            args_remaining: 0,
            request_bytes: 0,
            rejected: None,
            scanned: 0,
        }
    }

    /// The limits this parser enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Bytes of arguments held for the unfinished command (not counting what
    /// is still in the caller's buffer). Walks the arguments: for tests and
    /// metrics, not for every read.
    pub fn held_bytes(&self) -> usize {
        self.args.iter().map(Bytes::len).sum()
    }

    /// The next command in `buf`, or `Ok(None)` when `buf` holds no whole one
    /// yet (or when it is empty).
    ///
    /// Between calls the caller may only append to `buf`. After `Ok(None)`,
    /// `buf` holds at most `max(max_inline_bytes, max_bulk_bytes) + 1` bytes.
    /// Empty inline lines and multibulk counts of zero or less are skipped,
    /// as Redis does. After an `Err` the parser is stopped and returns the
    /// same error on every call.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
        loop {
            match self.state {
                State::Failed(ref error) => return Err(error.clone()),
                State::Start => {
                    let Some(&first) = buf.first() else {
                        return Ok(None);
                    };
                    // Redis reads anything not starting with `*` as inline.
                    self.state = if first == b'*' {
                        State::Count
                    } else {
                        State::Inline
                    };
                    self.scanned = 0;
                }
                State::Inline => {
                    let max = self.limits.max_inline_bytes;
                    // The `\n` may sit at index `max` at the latest.
                    let Some(newline) = self.find(buf, 0, b'\n', max) else {
                        if buf.len() > max {
                            return self.fail(ProtocolError::TooBigInline);
                        }
                        return Ok(None);
                    };
                    let mut line = buf.split_to(newline + 1).freeze();
                    line.truncate(newline);
                    if line.last() == Some(&b'\r') {
                        line.truncate(newline - 1);
                    }
                    self.state = State::Start;
                    let Some(args) = split_inline(&line) else {
                        return self.fail(ProtocolError::UnbalancedQuotes);
                    };
                    if args.is_empty() {
                        continue;
                    }
                    return Ok(Some(self.check_inline(args)));
                }
                State::Count => {
                    let Some(line_end) = self.find(buf, 1, b'\r', self.limits.max_inline_bytes)
                    else {
                        if buf.len() > self.limits.max_inline_bytes {
                            return self.fail(ProtocolError::TooBigMultibulkCount);
                        }
                        return Ok(None);
                    };
                    let Some(count) = self.take_number_line(buf, line_end) else {
                        return Ok(None);
                    };
                    let count = match count {
                        Ok(count)
                            if count <= i64::try_from(self.limits.max_args).unwrap_or(i64::MAX) =>
                        {
                            count
                        }
                        _ => return self.fail(ProtocolError::InvalidMultibulkLength),
                    };
                    if count <= 0 {
                        self.state = State::Start;
                        continue;
                    }
                    self.args_remaining = count as usize;
                    // The count is only a claim; grow with what arrives.
                    self.args = Vec::with_capacity(self.args_remaining.min(16));
                    self.request_bytes = 0;
                    self.rejected = None;
                    self.state = State::BulkHeader;
                }
                State::BulkHeader => {
                    let Some(&first) = buf.first() else {
                        return Ok(None);
                    };
                    if first != b'$' {
                        return self.fail(ProtocolError::ExpectedDollar { got: first });
                    }
                    let Some(line_end) = self.find(buf, 1, b'\r', self.limits.max_inline_bytes)
                    else {
                        if buf.len() > self.limits.max_inline_bytes {
                            return self.fail(ProtocolError::TooBigBulkCount);
                        }
                        return Ok(None);
                    };
                    let Some(len) = self.take_number_line(buf, line_end) else {
                        return Ok(None);
                    };
                    let len_bytes = match len {
                        Ok(len) if (0..=PROTO_MAX_BULK_BYTES).contains(&len) => len as u64,
                        _ => return self.fail(ProtocolError::InvalidBulkLength),
                    };
                    self.state = self.start_argument(len_bytes);
                }
                State::BulkBody { len } => {
                    if buf.len() < len.saturating_add(2) {
                        return Ok(None);
                    }
                    if buf[len..len + 2] != *b"\r\n" {
                        return self.fail(ProtocolError::MissingBulkCrlf);
                    }
                    let arg = buf.split_to(len).freeze();
                    buf.advance(2);
                    self.args.push(arg);
                    if let Some(request) = self.argument_done() {
                        return Ok(Some(request));
                    }
                }
                State::Skip { remaining_bytes } => {
                    let dropped = remaining_bytes.min(buf.len() as u64);
                    buf.advance(dropped as usize);
                    let remaining_bytes = remaining_bytes - dropped;
                    if remaining_bytes > 0 {
                        self.state = State::Skip { remaining_bytes };
                        return Ok(None);
                    }
                    self.state = State::SkipCrlf;
                }
                State::SkipCrlf => {
                    if buf.len() < 2 {
                        return Ok(None);
                    }
                    if buf[..2] != *b"\r\n" {
                        return self.fail(ProtocolError::MissingBulkCrlf);
                    }
                    buf.advance(2);
                    if let Some(request) = self.argument_done() {
                        return Ok(Some(request));
                    }
                }
            }
        }
    }

    /// Stops the parser for good.
    fn fail<T>(&mut self, error: ProtocolError) -> Result<T, ProtocolError> {
        self.state = State::Failed(error.clone());
        self.args = Vec::new();
        Err(error)
    }

    /// The index of the first `byte` in `buf[from..=last]`, resuming where
    /// the previous call for the same line stopped. Past `last` the line is
    /// too long, which the caller reports.
    fn find(&mut self, buf: &BytesMut, from: usize, byte: u8, last: usize) -> Option<usize> {
        let start = self.scanned.max(from);
        let end = buf.len().min(last.saturating_add(1));
        let found = buf
            .get(start..end)
            .and_then(|window| window.iter().position(|&b| b == byte))
            .map(|i| start + i);
        self.scanned = found.unwrap_or(end.max(start));
        found
    }

    /// Consumes a `*<n>\r\n` or `$<n>\r\n` line whose `\r` is at `line_end`.
    /// `None`: the `\n` has not arrived. `Some(Err)`: not a number, or not
    /// followed by `\n`.
    fn take_number_line(&mut self, buf: &mut BytesMut, line_end: usize) -> Option<Result<i64, ()>> {
        let newline = *buf.get(line_end + 1)?;
        if newline != b'\n' {
            return Some(Err(()));
        }
        let number = buf.get(1..line_end).and_then(parse_length).ok_or(());
        if number.is_ok() {
            buf.advance(line_end + 2);
            self.scanned = 0;
        }
        Some(number)
    }

    /// The state to read an argument of `len_bytes` in: kept, or dropped if
    /// it (or the command it belongs to) is over a limit.
    fn start_argument(&mut self, len_bytes: u64) -> State {
        if self.rejected.is_none() {
            let max_bulk_bytes = self.limits.max_bulk_bytes;
            let room_bytes = self.limits.max_request_bytes - self.request_bytes;
            if len_bytes > max_bulk_bytes as u64 {
                self.reject(RequestError::ArgumentTooLong {
                    len_bytes,
                    max_bytes: max_bulk_bytes,
                });
            } else if len_bytes > room_bytes as u64 {
                let max_bytes = self.limits.max_request_bytes;
                self.reject(RequestError::RequestTooLarge { max_bytes });
            } else {
                let len = len_bytes as usize;
                self.request_bytes += len;
                return State::BulkBody { len };
            }
        }
        State::Skip {
            remaining_bytes: len_bytes,
        }
    }

    /// Marks the current command refused and lets go of what it held.
    fn reject(&mut self, error: RequestError) {
        self.rejected = Some(error);
        self.args = Vec::new();
    }

    /// One multibulk argument read (or dropped); the command when it was the
    /// last.
    fn argument_done(&mut self) -> Option<Request> {
        self.args_remaining -= 1;
        if self.args_remaining > 0 {
            self.state = State::BulkHeader;
            return None;
        }
        self.state = State::Start;
        self.request_bytes = 0;
        Some(match self.rejected.take() {
            Some(error) => Request::Rejected(error),
            None => Request::Command(std::mem::take(&mut self.args)),
        })
    }

    /// An inline command, or its refusal if an argument is over a limit
    /// (the line is at most `max_inline_bytes`, so it was safe to read).
    fn check_inline(&self, args: Vec<Bytes>) -> Request {
        let limits = &self.limits;
        if let Some(arg) = args.iter().find(|arg| arg.len() > limits.max_bulk_bytes) {
            return Request::Rejected(RequestError::ArgumentTooLong {
                len_bytes: arg.len() as u64,
                max_bytes: limits.max_bulk_bytes,
            });
        }
        if args.iter().map(Bytes::len).sum::<usize>() > limits.max_request_bytes {
            let max_bytes = limits.max_request_bytes;
            return Request::Rejected(RequestError::RequestTooLarge { max_bytes });
        }
        Request::Command(args)
    }
}

/// A length as Redis's `string2ll` reads it: optional `-`, then digits with
/// no leading zero (except `0` itself), within `i64`.
fn parse_length(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    match digits {
        [b'0'] if !negative => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    // Accumulate downwards so that i64::MIN fits.
    let mut value: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value
            .checked_mul(10)?
            .checked_sub(i64::from(digit - b'0'))?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

/// C's `isspace`, which Redis's inline splitting uses between words.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Splits an inline command into words as Redis's `sdssplitargs` does:
/// words separated by spaces; `"..."` with escapes `\xHH \n \r \t \b \a`
/// and `\<any>` for that byte; `'...'` with only `\'`. A closing quote must
/// be followed by a space or the end. `None` for unbalanced quotes. Unlike
/// Redis (which stops at a NUL byte, C strings), NUL is an ordinary byte.
fn split_inline(line: &Bytes) -> Option<Vec<Bytes>> {
    let text = &line[..];
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < text.len() && is_space(text[i]) {
            i += 1;
        }
        if i == text.len() {
            return Some(words);
        }
        let start = i;
        // Unquoted words are slices of the line; only quotes force a copy.
        let mut owned: Option<Vec<u8>> = None;
        while i < text.len() && !matches!(text[i], b' ' | b'\n' | b'\r' | b'\t') {
            let byte = text[i];
            if byte == b'"' || byte == b'\'' {
                let word = owned.get_or_insert_with(|| text[start..i].to_vec());
                i = if byte == b'"' {
                    read_double_quoted(text, i + 1, word)?
                } else {
                    read_single_quoted(text, i + 1, word)?
                };
                // A quoted part ends the word.
                break;
            }
            if let Some(word) = owned.as_mut() {
                word.push(byte);
            }
            i += 1;
        }
        words.push(match owned {
            Some(word) => Bytes::from(word),
            None => line.slice(start..i),
        });
    }
}

/// Reads a `"..."` part from `i` (just past the opening quote) into `word`;
/// the index past the closing quote.
fn read_double_quoted(text: &[u8], mut i: usize, word: &mut Vec<u8>) -> Option<usize> {
    loop {
        match *text.get(i)? {
            b'\\'
                if text.get(i + 1) == Some(&b'x')
                    && text.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
                    && text.get(i + 3).is_some_and(u8::is_ascii_hexdigit) =>
            {
                word.push(hex_value(text[i + 2]) * 16 + hex_value(text[i + 3]));
                i += 4;
            }
            b'\\' => {
                let escaped = *text.get(i + 1)?;
                word.push(match escaped {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 0x08,
                    b'a' => 0x07,
                    other => other,
                });
                i += 2;
            }
            b'"' => return after_closing_quote(text, i),
            byte => {
                word.push(byte);
                i += 1;
            }
        }
    }
}

/// Reads a `'...'` part from `i` (just past the opening quote) into `word`;
/// the index past the closing quote.
fn read_single_quoted(text: &[u8], mut i: usize, word: &mut Vec<u8>) -> Option<usize> {
    loop {
        match *text.get(i)? {
            b'\\' if text.get(i + 1) == Some(&b'\'') => {
                word.push(b'\'');
                i += 2;
            }
            b'\'' => return after_closing_quote(text, i),
            byte => {
                word.push(byte);
                i += 1;
            }
        }
    }
}

/// The index past a closing quote at `i`, which must end the word.
fn after_closing_quote(text: &[u8], i: usize) -> Option<usize> {
    match text.get(i + 1) {
        Some(&next) if !is_space(next) => None,
        _ => Some(i + 1),
    }
}

/// The value of an ASCII hex digit.
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        // Callers check for a hex digit first.
        _ => 0,
    }
}

/// Writes a command as a multibulk request, as a client sends it.
pub fn encode_request<A: AsRef<[u8]>>(args: &[A], out: &mut BytesMut) {
    put_header(out, b'*', args.len() as u64);
    for arg in args {
        put_bulk(out, b'$', arg.as_ref());
    }
}

/// Which RESP the connection speaks: RESP2 until the client says `HELLO 3`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// RESP2: no maps, sets, booleans, doubles or typed null; [`encode`]
    /// writes them as their RESP2 stand-ins.
    #[default]
    Resp2,
    /// RESP3.
    Resp3,
}

/// A reply, as the server encodes it and a client parses it.
///
/// Encoding in RESP2 and parsing back gives the RESP2 stand-ins: `Map` an
/// `Array` of keys and values in turn, `Set` an `Array`, `Boolean` an
/// `Integer` 1 or 0, `Double` and `Verbatim` a `Bulk` of their text. In
/// RESP3 only `NullArray` changes: both nulls are `_`, read as `Null`.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `+OK`. Any `\r` or `\n` is written as a space.
    Simple(String),
    /// The whole error line after `-`, prefix first: `ERR syntax error`,
    /// `BADID Invalid Job ID format.`. Any `\r` or `\n` is written as a
    /// space.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$5\r\nhello`: any bytes.
    Bulk(Bytes),
    /// No value: `$-1` in RESP2, `_` in RESP3.
    Null,
    /// No array (Disque's GETJOB timing out): `*-1` in RESP2, `_` in RESP3.
    NullArray,
    /// `*n` and the elements.
    Array(Vec<Value>),
    /// `%n` and the pairs, in this order; in RESP2 a flat array of `2n`.
    Map(Vec<(Value, Value)>),
    /// `~n` and the elements; in RESP2 an array.
    Set(Vec<Value>),
    /// `#t` or `#f`; in RESP2 the integer 1 or 0.
    Boolean(bool),
    /// `,1.5` (also `inf`, `-inf`, `nan`); in RESP2 a bulk of that text.
    Double(f64),
    /// `=` text with a three-byte format (`txt`, `mkd`); in RESP2 a bulk of
    /// the text alone.
    Verbatim {
        /// The format, such as `*b"txt"`.
        format: [u8; 3],
        /// The text.
        text: Bytes,
    },
}

impl Value {
    /// `+OK`.
    pub fn ok() -> Self {
        Value::Simple("OK".to_string())
    }

    /// A simple string.
    pub fn simple(text: impl Into<String>) -> Self {
        Value::Simple(text.into())
    }

    /// An error: the whole line, prefix first (`ERR ...`, `NOJOB ...`).
    pub fn error(line: impl Into<String>) -> Self {
        Value::Error(line.into())
    }

    /// A bulk string.
    pub fn bulk(bytes: impl Into<Bytes>) -> Self {
        Value::Bulk(bytes.into())
    }

    /// Plain text for a person (INFO): verbatim `txt` in RESP3, bulk in RESP2.
    pub fn text(text: impl Into<Bytes>) -> Self {
        Value::Verbatim {
            format: *b"txt",
            text: text.into(),
        }
    }
}

impl From<ProtocolError> for Value {
    fn from(error: ProtocolError) -> Self {
        Value::Error(error.to_string())
    }
}

impl From<RequestError> for Value {
    fn from(error: RequestError) -> Self {
        Value::Error(error.to_string())
    }
}

/// Appends `value` to `out` in `protocol`.
pub fn encode(value: &Value, protocol: Protocol, out: &mut BytesMut) {
    let resp3 = protocol == Protocol::Resp3;
    match value {
        Value::Simple(text) => put_line(out, b'+', text.as_bytes()),
        Value::Error(line) => put_line(out, b'-', line.as_bytes()),
        Value::Integer(n) => {
            out.put_u8(b':');
            put_decimal(out, *n);
            out.put_slice(b"\r\n");
        }
        Value::Bulk(bytes) => put_bulk(out, b'$', bytes),
        Value::Null if resp3 => out.put_slice(b"_\r\n"),
        Value::Null => out.put_slice(b"$-1\r\n"),
        Value::NullArray if resp3 => out.put_slice(b"_\r\n"),
        Value::NullArray => out.put_slice(b"*-1\r\n"),
        Value::Array(items) => {
            put_header(out, b'*', items.len() as u64);
            for item in items {
                encode(item, protocol, out);
            }
        }
        Value::Map(pairs) => {
            if resp3 {
                put_header(out, b'%', pairs.len() as u64);
            } else {
                put_header(out, b'*', 2 * pairs.len() as u64);
            }
            for (key, value) in pairs {
                encode(key, protocol, out);
                encode(value, protocol, out);
            }
        }
        Value::Set(items) => {
            put_header(out, if resp3 { b'~' } else { b'*' }, items.len() as u64);
            for item in items {
                encode(item, protocol, out);
            }
        }
        Value::Boolean(true) if resp3 => out.put_slice(b"#t\r\n"),
        Value::Boolean(false) if resp3 => out.put_slice(b"#f\r\n"),
        Value::Boolean(b) => out.put_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
        Value::Double(d) if resp3 => put_line(out, b',', double_text(*d).as_bytes()),
        Value::Double(d) => put_bulk(out, b'$', double_text(*d).as_bytes()),
        Value::Verbatim { format, text } if resp3 => {
            put_header(out, b'=', text.len() as u64 + 4);
            out.put_slice(format);
            out.put_u8(b':');
            out.put_slice(text);
            out.put_slice(b"\r\n");
        }
        Value::Verbatim { text, .. } => put_bulk(out, b'$', text),
    }
}

/// A double as RESP3 writes it: shortest text that reads back the same.
fn double_text(d: f64) -> String {
    if d.is_nan() {
        "nan".to_string()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        // Debug, unlike Display, uses an exponent for large and small
        // magnitudes instead of hundreds of digits.
        format!("{d:?}")
    }
}

/// `<kind><text>\r\n`, with `\r` and `\n` in `text` made spaces so that the
/// reply cannot end early.
fn put_line(out: &mut BytesMut, kind: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(kind);
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    } else {
        out.put_slice(text);
    }
    out.put_slice(b"\r\n");
}

/// `<kind><count>\r\n`.
fn put_header(out: &mut BytesMut, kind: u8, count: u64) {
    out.put_u8(kind);
    put_unsigned(out, count);
    out.put_slice(b"\r\n");
}

/// `<kind><len>\r\n<bytes>\r\n`.
fn put_bulk(out: &mut BytesMut, kind: u8, bytes: &[u8]) {
    out.reserve(bytes.len() + 16);
    put_header(out, kind, bytes.len() as u64);
    out.put_slice(bytes);
    out.put_slice(b"\r\n");
}

/// A signed decimal, without going through `fmt`.
fn put_decimal(out: &mut BytesMut, n: i64) {
    if n < 0 {
        out.put_u8(b'-');
    }
    put_unsigned(out, n.unsigned_abs());
}

/// An unsigned decimal, without going through `fmt`.
fn put_unsigned(out: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[start..]);
}

/// A reply a client cannot read. The connection is then out of step: close it.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ReplyError {
    /// A value starting with a byte that is no RESP2/RESP3 type we read.
    #[error("invalid reply type byte 0x{byte:02x}")]
    InvalidType {
        /// The byte.
        byte: u8,
    },
    /// A line or bulk not ended by `\r\n`.
    #[error("reply line or bulk not ended by CRLF")]
    MissingCrlf,
    /// A line whose content does not fit its type.
    #[error("malformed reply: invalid {0}")]
    Malformed(&'static str),
    /// Aggregates nested deeper than the parser's limit.
    #[error("reply nested deeper than {max_depth} aggregates")]
    TooDeep {
        /// The limit.
        max_depth: usize,
    },
    /// A reply longer than the parser's limit.
    #[error("reply longer than {max_bytes} bytes")]
    TooLarge {
        /// The limit.
        max_bytes: usize,
    },
}

/// Reads replies, incrementally: the client side of RESP2 and RESP3.
///
/// Reads every type [`encode`] writes, in either protocol (`$-1` is
/// [`Value::Null`], `*-1` [`Value::NullArray`]). Like [`RequestParser`],
/// it keeps its place in the buffer between calls, so each byte is looked at
/// a bounded number of times however the reply is split. Bulk strings are
/// split off the buffer, not copied.
#[derive(Debug)]
pub struct ReplyParser {
    max_depth: usize,
    max_reply_bytes: usize,
    /// Where the next value's header starts, in the unconsumed buffer.
    offset: usize,
    /// Where to resume looking for the end of that header's line.
    line_from: usize,
    /// Elements still to come in each open aggregate, outermost first.
    open: Vec<u64>,
}

impl Default for ReplyParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplyParser {
    /// Default nesting limit: far above the server's replies (depth 3).
    pub const DEFAULT_MAX_DEPTH: usize = 64;
    /// Default reply size limit: Redis's default `proto-max-bulk-len`.
    pub const DEFAULT_MAX_REPLY_BYTES: usize = 512 * 1024 * 1024;

    /// A parser with the default limits.
    pub fn new() -> Self {
        Self::with_limits(Self::DEFAULT_MAX_DEPTH, Self::DEFAULT_MAX_REPLY_BYTES)
    }

    /// A parser that refuses replies nesting more than `max_depth`
    /// aggregates or longer than `max_reply_bytes`.
    pub fn with_limits(max_depth: usize, max_reply_bytes: usize) -> Self {
        Self {
            max_depth,
            max_reply_bytes,
            offset: 0,
            line_from: 0,
            open: Vec::new(),
        }
    }

    /// The next reply in `buf`, consumed from its front, or `Ok(None)` when
    /// `buf` holds no whole reply yet (it then holds less than the size
    /// limit). Between calls the caller may only append to `buf`. After an
    /// `Err` the stream is out of step.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Value>, ReplyError> {
        let end = match self.scan(buf) {
            Ok(Some(end)) => end,
            Ok(None) => return Ok(None),
            Err(error) => {
                self.restart();
                return Err(error);
            }
        };
        self.restart();
        let frame = buf.split_to(end).freeze();
        let mut pos = 0;
        // The scan checked the whole frame, so building cannot fail; if it
        // somehow did, report it rather than panic.
        build(&frame, &mut pos)
            .map(Some)
            .ok_or(ReplyError::Malformed("reply"))
    }

    /// Forgets a partial scan.
    fn restart(&mut self) {
        self.offset = 0;
        self.line_from = 0;
        self.open.clear();
    }

    /// Checks the reply at the front of `buf`, resuming the previous scan;
    /// its length once whole.
    fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, ReplyError> {
        if self.offset > buf.len() {
            // The caller did not only append: start over.
            self.restart();
        }
        let too_large = ReplyError::TooLarge {
            max_bytes: self.max_reply_bytes,
        };
        loop {
            let start = self.offset;
            let Some(&kind) = buf.get(start) else {
                return Ok(None);
            };
            if !b"+-:,#_$=*~%".contains(&kind) {
                return Err(ReplyError::InvalidType { byte: kind });
            }
            // A `\n` at `max_reply_bytes` or later ends a reply that is too
            // long, so look no further: the error is then the same however
            // the bytes arrived.
            let from = self.line_from.max(start + 1);
            let end = buf.len().min(self.max_reply_bytes);
            let Some(newline) = buf
                .get(from..end)
                .and_then(|window| window.iter().position(|&b| b == b'\n'))
                .map(|i| from + i)
            else {
                if buf.len() >= self.max_reply_bytes {
                    return Err(too_large);
                }
                self.line_from = buf.len();
                return Ok(None);
            };
            if newline < start + 2 || buf[newline - 1] != b'\r' {
                return Err(ReplyError::MissingCrlf);
            }
            let line = &buf[start + 1..newline - 1];
            let after = newline + 1;
            match kind {
                b'+' | b'-' => {}
                b':' => {
                    parse_integer(line).ok_or(ReplyError::Malformed("integer"))?;
                }
                b',' => {
                    parse_double(line).ok_or(ReplyError::Malformed("double"))?;
                }
                b'#' => {
                    if line != b"t" && line != b"f" {
                        return Err(ReplyError::Malformed("boolean"));
                    }
                }
                b'_' => {
                    if !line.is_empty() {
                        return Err(ReplyError::Malformed("null"));
                    }
                }
                b'$' | b'=' => match parse_length(line) {
                    Some(-1) if kind == b'$' => {}
                    Some(len) if len >= 0 => {
                        if kind == b'=' && len < 4 {
                            return Err(ReplyError::Malformed("verbatim string"));
                        }
                        let end = (len as u64).saturating_add(after as u64 + 2);
                        if end > self.max_reply_bytes as u64 {
                            return Err(too_large);
                        }
                        let end = end as usize;
                        if buf.len() < end {
                            // Find this header again at once next time.
                            self.line_from = newline;
                            return Ok(None);
                        }
                        if buf[end - 2..end] != *b"\r\n" {
                            return Err(ReplyError::MissingCrlf);
                        }
                        if kind == b'=' && buf[after + 3] != b':' {
                            return Err(ReplyError::Malformed("verbatim string"));
                        }
                        self.offset = end;
                        self.line_from = 0;
                        if self.element_done() {
                            return Ok(Some(end));
                        }
                        continue;
                    }
                    _ => return Err(ReplyError::Malformed("length")),
                },
                b'*' | b'~' | b'%' => match parse_length(line) {
                    Some(-1) if kind == b'*' => {}
                    Some(0) => {}
                    Some(count) if count > 0 => {
                        let per_entry = if kind == b'%' { 2 } else { 1 };
                        if self.open.len() >= self.max_depth {
                            return Err(ReplyError::TooDeep {
                                max_depth: self.max_depth,
                            });
                        }
                        self.open.push(count as u64 * per_entry);
                        self.offset = after;
                        self.line_from = 0;
                        continue;
                    }
                    _ => return Err(ReplyError::Malformed("length")),
                },
                byte => return Err(ReplyError::InvalidType { byte }),
            }
            // A one-line value (or an empty or null aggregate) is done.
            self.offset = after;
            self.line_from = 0;
            if self.element_done() {
                return Ok(Some(after));
            }
        }
    }

    /// Counts one finished value against the open aggregates, closing those
    /// it completes; true when the whole reply is done.
    fn element_done(&mut self) -> bool {
        while let Some(remaining) = self.open.last_mut() {
            *remaining -= 1;
            if *remaining > 0 {
                return false;
            }
            self.open.pop();
        }
        true
    }
}

/// An integer reply's text, leniently (a `+` sign is fine).
fn parse_integer(line: &[u8]) -> Option<i64> {
    std::str::from_utf8(line).ok()?.parse().ok()
}

/// A double reply's text, including `inf`, `-inf` and `nan`.
fn parse_double(line: &[u8]) -> Option<f64> {
    std::str::from_utf8(line).ok()?.parse().ok()
}

/// Builds the value at `*pos` of a frame the scan has checked.
fn build(frame: &Bytes, pos: &mut usize) -> Option<Value> {
    let start = *pos;
    let kind = *frame.get(start)?;
    let newline = start + 1 + frame.get(start + 1..)?.iter().position(|&b| b == b'\n')?;
    let line = frame.get(start + 1..newline.checked_sub(1)?)?;
    *pos = newline + 1;
    let text = || String::from_utf8_lossy(line).into_owned();
    Some(match kind {
        b'+' => Value::Simple(text()),
        b'-' => Value::Error(text()),
        b':' => Value::Integer(parse_integer(line)?),
        b',' => Value::Double(parse_double(line)?),
        b'#' => Value::Boolean(line == b"t"),
        b'_' => Value::Null,
        b'$' | b'=' => {
            let len = parse_length(line)?;
            if len < 0 {
                return Some(Value::Null);
            }
            let body = *pos..pos.checked_add(len as usize)?;
            let bytes = frame.get(body.clone())?;
            *pos = body.end + 2;
            if kind == b'$' {
                Value::Bulk(frame.slice(body))
            } else {
                let format = bytes.get(..3)?.try_into().ok()?;
                Value::Verbatim {
                    format,
                    text: frame.slice(body.start + 4..body.end),
                }
            }
        }
        b'*' | b'~' | b'%' => {
            let count = parse_length(line)?;
            if count < 0 {
                return Some(Value::NullArray);
            }
            // Each element takes at least 3 bytes, so the frame bounds this.
            let count = (count as usize).min(frame.len());
            if kind == b'%' {
                let mut pairs = Vec::with_capacity(count);
                for _ in 0..count {
                    pairs.push((build(frame, pos)?, build(frame, pos)?));
                }
                Value::Map(pairs)
            } else {
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(build(frame, pos)?);
                }
                if kind == b'*' {
                    Value::Array(items)
                } else {
                    Value::Set(items)
                }
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_read_like_string2ll() {
        assert_eq!(parse_length(b"0"), Some(0));
        assert_eq!(parse_length(b"12"), Some(12));
        assert_eq!(parse_length(b"-1"), Some(-1));
        assert_eq!(parse_length(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_length(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"00",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"1a",
            b"9223372036854775808",
        ] {
            assert_eq!(parse_length(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hex_digits() {
        for (digit, value) in [
            (b'0', 0),
            (b'9', 9),
            (b'a', 10),
            (b'f', 15),
            (b'A', 10),
            (b'F', 15),
        ] {
            assert_eq!(hex_value(digit), value);
        }
    }
}
