//! The RESP module at the byte level: requests in both forms, replies in both
//! protocols, Redis's protocol error texts, and properties over random input
//! and random splits of the stream.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use synod::resp::{
    Limits, Protocol, ProtocolError, ReplyError, ReplyParser, Request, RequestError, RequestParser,
    Value, encode, encode_request,
};

// ---------------------------------------------------------------------------
// Helpers

/// What a request stream parsed to.
#[derive(Debug, PartialEq)]
struct Outcome {
    items: Vec<Request>,
    error: Option<ProtocolError>,
}

/// Feeds `input` in chunks of the given sizes (cycled), draining the parser
/// after each, and checks after every `Ok(None)` that the parser holds no
/// more than the limits allow.
fn run_chunked(input: &[u8], chunk_sizes: &[usize], limits: Limits) -> Outcome {
    let mut parser = RequestParser::new(limits);
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut rest = input;
    let mut chunk = 0;
    let buffer_bound = limits.max_inline_bytes.max(limits.max_bulk_bytes) + 1;
    loop {
        loop {
            match parser.parse(&mut buf) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(error) => {
                    // Stopped for good: the same error again.
                    assert_eq!(parser.parse(&mut buf), Err(error.clone()));
                    return Outcome {
                        items,
                        error: Some(error),
                    };
                }
            }
        }
        assert!(
            buf.len() <= buffer_bound,
            "buffered {} > {buffer_bound}",
            buf.len()
        );
        assert!(parser.held_bytes() <= limits.max_request_bytes);
        if rest.is_empty() {
            return Outcome { items, error: None };
        }
        let size = chunk_sizes
            .get(chunk % chunk_sizes.len().max(1))
            .copied()
            .unwrap_or(1);
        let size = size.clamp(1, rest.len());
        chunk += 1;
        buf.extend_from_slice(&rest[..size]);
        rest = &rest[size..];
    }
}

/// Parses `input` given whole.
fn run(input: &[u8], limits: Limits) -> Outcome {
    run_chunked(input, &[usize::MAX], limits)
}

/// A command from words.
fn command(words: &[&[u8]]) -> Request {
    Request::Command(words.iter().map(|w| Bytes::copy_from_slice(w)).collect())
}

fn ok(items: Vec<Request>) -> Outcome {
    Outcome { items, error: None }
}

fn failed(items: Vec<Request>, error: ProtocolError) -> Outcome {
    Outcome {
        items,
        error: Some(error),
    }
}

fn small_limits() -> Limits {
    Limits {
        max_bulk_bytes: 16,
        max_request_bytes: 40,
        max_args: 8,
        max_inline_bytes: 32,
    }
}

fn encoded(value: &Value, protocol: Protocol) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(value, protocol, &mut out);
    out.to_vec()
}

/// Every reply in `input`, read in chunks of the given sizes (cycled).
fn replies_chunked(
    input: &[u8],
    chunk_sizes: &[usize],
    parser: &mut ReplyParser,
    max_reply_bytes: usize,
) -> (Vec<Value>, Option<ReplyError>) {
    let mut buf = BytesMut::new();
    let mut values = Vec::new();
    let mut rest = input;
    let mut chunk = 0;
    loop {
        loop {
            match parser.parse(&mut buf) {
                Ok(Some(value)) => values.push(value),
                Ok(None) => break,
                Err(error) => return (values, Some(error)),
            }
        }
        assert!(buf.len() < max_reply_bytes, "buffered {} bytes", buf.len());
        if rest.is_empty() {
            return (values, None);
        }
        let size = chunk_sizes
            .get(chunk % chunk_sizes.len().max(1))
            .copied()
            .unwrap_or(1);
        let size = size.clamp(1, rest.len());
        chunk += 1;
        buf.extend_from_slice(&rest[..size]);
        rest = &rest[size..];
    }
}

fn reply(input: &[u8]) -> Result<Option<Value>, ReplyError> {
    ReplyParser::new().parse(&mut BytesMut::from(input))
}

// ---------------------------------------------------------------------------
// Requests: multibulk

#[test]
fn multibulk_commands_parse_with_binary_and_empty_arguments() {
    let input = b"*3\r\n$3\r\nSET\r\n$4\r\na\r\nb\r\n$0\r\n\r\n*1\r\n$4\r\nPING\r\n";
    assert_eq!(
        run(input, Limits::default()),
        ok(vec![
            command(&[b"SET", b"a\r\nb", b""]),
            command(&[b"PING"])
        ])
    );
}

#[test]
fn multibulk_waits_for_every_part() {
    let input = b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n";
    let mut parser = RequestParser::new(Limits::default());
    let mut buf = BytesMut::new();
    for (i, &byte) in input.iter().enumerate() {
        buf.extend_from_slice(&[byte]);
        let parsed = parser.parse(&mut buf).unwrap();
        if i + 1 < input.len() {
            assert_eq!(parsed, None, "after {} bytes", i + 1);
        } else {
            assert_eq!(parsed, Some(command(&[b"ECHO", b"hello"])));
        }
    }
    assert!(buf.is_empty());
}

#[test]
fn multibulk_arguments_are_split_off_the_read_buffer_not_copied() {
    let mut buf = BytesMut::from(&b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n"[..]);
    let base = buf.as_ptr() as usize;
    let parsed = RequestParser::new(Limits::default())
        .parse(&mut buf)
        .unwrap();
    let Some(Request::Command(args)) = parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(args[0].as_ptr() as usize, base + 8);
    assert_eq!(args[1].as_ptr() as usize, base + 18);
}

#[test]
fn empty_and_null_multibulk_are_skipped_like_redis() {
    let input = b"*0\r\n*-1\r\n*-5\r\n*1\r\n$4\r\nPING\r\n";
    assert_eq!(run(input, Limits::default()), ok(vec![command(&[b"PING"])]));
}

#[test]
fn encode_request_writes_multibulk() {
    let mut out = BytesMut::new();
    encode_request(&["ADDJOB", "q", ""], &mut out);
    assert_eq!(&out[..], b"*3\r\n$6\r\nADDJOB\r\n$1\r\nq\r\n$0\r\n\r\n");
}

// ---------------------------------------------------------------------------
// Requests: inline

#[test]
fn inline_commands_end_in_lf_or_crlf_and_split_on_spaces() {
    let input = b"PING\nPING\r\n PING\t\r\nECHO  a \t b\r\n";
    assert_eq!(
        run(input, Limits::default()),
        ok(vec![
            command(&[b"PING"]),
            command(&[b"PING"]),
            command(&[b"PING"]),
            command(&[b"ECHO", b"a", b"b"]),
        ])
    );
}

#[test]
fn empty_inline_lines_are_skipped() {
    let input = b"\n\r\n \t\nPING\r\n";
    assert_eq!(run(input, Limits::default()), ok(vec![command(&[b"PING"])]));
}

#[test]
fn inline_double_quotes_take_redis_escapes() {
    let input = br#"SET k "a b\" \\ \n\r\t\b\a\x41\x4a\x4A\xzz\q" ""
"#;
    let expected: &[u8] = b"a b\" \\ \n\r\t\x08\x07AJJxzzq";
    assert_eq!(
        run(input, Limits::default()),
        ok(vec![command(&[b"SET", b"k", expected, b""])])
    );
}

#[test]
fn inline_single_quotes_take_only_escaped_quote() {
    let input = b"ECHO 'it\\'s \\n' \"x\"\r\n";
    assert_eq!(
        run(input, Limits::default()),
        ok(vec![command(&[b"ECHO", b"it's \\n", b"x"])])
    );
}

#[test]
fn inline_quote_inside_a_word_quotes_the_rest_of_it() {
    let input = b"ECHO foo\"bar baz\" x\n";
    assert_eq!(
        run(input, Limits::default()),
        ok(vec![command(&[b"ECHO", b"foobar baz", b"x"])])
    );
}

#[test]
fn inline_unbalanced_quotes_are_a_protocol_error() {
    let cases: [&[u8]; 7] = [
        b"ECHO \"a\n",
        b"ECHO 'a\r\n",
        b"ECHO \"a\"x\n",
        b"ECHO 'a'x\n",
        b"ECHO \"a\\\"\n",
        b"ECHO 'a\\'\n",
        b"ECHO \"a\\\n",
    ];
    for input in cases {
        assert_eq!(
            run(input, Limits::default()),
            failed(vec![], ProtocolError::UnbalancedQuotes),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
    assert_eq!(
        ProtocolError::UnbalancedQuotes.to_string(),
        "ERR Protocol error: unbalanced quotes in request"
    );
}

#[test]
fn inline_arguments_are_slices_of_the_line() {
    let mut buf = BytesMut::from(&b"ECHO hello\r\n"[..]);
    let base = buf.as_ptr() as usize;
    let parsed = RequestParser::new(Limits::default())
        .parse(&mut buf)
        .unwrap();
    let Some(Request::Command(args)) = parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(args[1].as_ptr() as usize, base + 5);
}

#[test]
fn inline_request_too_big_like_redis() {
    let limits = Limits::default();
    assert_eq!(limits.max_inline_bytes, 64 * 1024);
    // Redis: 65536 bytes without a newline wait; 65537 fail.
    assert_eq!(run(&[b'x'; 65536], limits), ok(vec![]));
    assert_eq!(
        run(&[b'x'; 65537], limits),
        failed(vec![], ProtocolError::TooBigInline)
    );
    let mut line = vec![b'x'; 65535];
    line.extend_from_slice(b"\r\n");
    assert_eq!(run(&line, limits).items.len(), 1);
    assert_eq!(
        ProtocolError::TooBigInline.to_string(),
        "ERR Protocol error: too big inline request"
    );
}

// ---------------------------------------------------------------------------
// Requests: protocol errors, with Redis's texts

#[test]
fn invalid_multibulk_length() {
    let text = "ERR Protocol error: invalid multibulk length";
    assert_eq!(ProtocolError::InvalidMultibulkLength.to_string(), text);
    let limits = Limits {
        max_args: 3,
        ..Limits::default()
    };
    let cases: [&[u8]; 7] = [
        b"*x\r\n", b"*1x\r\n", b"*01\r\n", b"*\r\n", b"*+1\r\n", b"*1\rx", b"*4\r\n",
    ];
    for input in cases {
        assert_eq!(
            run(input, limits),
            failed(vec![], ProtocolError::InvalidMultibulkLength),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
    assert_eq!(run(b"*3\r\n", limits), ok(vec![]));
}

#[test]
fn expected_dollar() {
    let cases: [(&[u8], u8, &str); 4] = [
        (
            b"*1\r\nx\r\n",
            b'x',
            "ERR Protocol error: expected '$', got 'x'",
        ),
        (
            b"*1\r\n\r\n",
            b'\r',
            "ERR Protocol error: expected '$', got ' '",
        ),
        (
            b"*1\r\n\x01",
            0x01,
            "ERR Protocol error: expected '$', got '\\x01'",
        ),
        (
            b"*2\r\n$1\r\na\r\n*",
            b'*',
            "ERR Protocol error: expected '$', got '*'",
        ),
    ];
    for (input, got, text) in cases {
        let error = ProtocolError::ExpectedDollar { got };
        assert_eq!(run(input, Limits::default()), failed(vec![], error.clone()));
        assert_eq!(error.to_string(), text);
    }
}

#[test]
fn invalid_bulk_length() {
    let text = "ERR Protocol error: invalid bulk length";
    assert_eq!(ProtocolError::InvalidBulkLength.to_string(), text);
    let cases: [&[u8]; 6] = [
        b"*1\r\n$-1\r\n",
        b"*1\r\n$x\r\n",
        b"*1\r\n$01\r\n",
        b"*1\r\n$\r\n",
        b"*1\r\n$1\rx",
        b"*1\r\n$18446744073709551616\r\n",
    ];
    for input in cases {
        assert_eq!(
            run(input, Limits::default()),
            failed(vec![], ProtocolError::InvalidBulkLength),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn missing_crlf_after_bulk() {
    assert_eq!(
        ProtocolError::MissingBulkCrlf.to_string(),
        "ERR Protocol error: expected CRLF after bulk argument"
    );
    let limits = small_limits();
    for input in [
        &b"*1\r\n$3\r\nabcXY"[..],
        b"*1\r\n$3\r\nabc\rX",
        b"*1\r\n$20\r\n",
    ] {
        let mut input = input.to_vec();
        if input.ends_with(b"$20\r\n") {
            // A rejected argument's CRLF is checked too.
            input.extend_from_slice(&[b'z'; 20]);
            input.extend_from_slice(b"\n\n");
        }
        assert_eq!(
            run(&input, limits),
            failed(vec![], ProtocolError::MissingBulkCrlf)
        );
    }
}

#[test]
fn count_strings_too_big_like_redis() {
    let limits = Limits::default();
    for (prefix, too_big, invalid) in [
        (
            &b"*"[..],
            ProtocolError::TooBigMultibulkCount,
            ProtocolError::InvalidMultibulkLength,
        ),
        (
            b"*1\r\n$",
            ProtocolError::TooBigBulkCount,
            ProtocolError::InvalidBulkLength,
        ),
    ] {
        // The count string: `prefix` then zeros, 65536 bytes from its start.
        let count_start = prefix.len() - 1;
        let mut large = prefix.to_vec();
        large.resize(count_start + 65536, b'0');
        assert_eq!(run(&large, limits), ok(vec![]));
        let mut longer = large.clone();
        longer.push(b'0');
        assert_eq!(run(&longer, limits), failed(vec![], too_big));
        let mut with_cr = large.clone();
        with_cr.push(b'\r');
        assert_eq!(run(&with_cr, limits), ok(vec![]));
        with_cr.push(b'\n');
        assert_eq!(run(&with_cr, limits), failed(vec![], invalid));
    }
    assert_eq!(
        ProtocolError::TooBigMultibulkCount.to_string(),
        "ERR Protocol error: too big mbulk count string"
    );
    assert_eq!(
        ProtocolError::TooBigBulkCount.to_string(),
        "ERR Protocol error: too big bulk count string"
    );
}

#[test]
fn commands_before_an_error_are_still_delivered_and_the_parser_stays_stopped() {
    let mut parser = RequestParser::new(Limits::default());
    let mut buf = BytesMut::from(&b"PING\r\n*x\r\nPING\r\n"[..]);
    assert_eq!(parser.parse(&mut buf), Ok(Some(command(&[b"PING"]))));
    assert_eq!(
        parser.parse(&mut buf),
        Err(ProtocolError::InvalidMultibulkLength)
    );
    buf.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    assert_eq!(
        parser.parse(&mut buf),
        Err(ProtocolError::InvalidMultibulkLength)
    );
}

#[test]
fn protocol_errors_encode_as_error_replies() {
    let value = Value::from(ProtocolError::ExpectedDollar { got: b'\n' });
    assert_eq!(
        encoded(&value, Protocol::Resp2),
        b"-ERR Protocol error: expected '$', got ' '\r\n"
    );
}

// ---------------------------------------------------------------------------
// Requests: limits that reject a command but keep the connection

#[test]
fn oversized_argument_is_rejected_and_the_next_command_parses() {
    let limits = small_limits();
    let mut input = b"*3\r\n$3\r\nSET\r\n$17\r\n".to_vec();
    input.extend_from_slice(&[b'v'; 17]);
    input.extend_from_slice(b"\r\n$2\r\nok\r\n*1\r\n$4\r\nPING\r\n");
    let rejected = RequestError::ArgumentTooLong {
        len_bytes: 17,
        max_bytes: 16,
    };
    assert_eq!(
        run(&input, limits),
        ok(vec![
            Request::Rejected(rejected.clone()),
            command(&[b"PING"])
        ])
    );
    assert_eq!(
        rejected.to_string(),
        "ERR argument too long: 17 bytes, the limit is 16"
    );
    assert_eq!(
        encoded(&rejected.into(), Protocol::Resp2),
        b"-ERR argument too long: 17 bytes, the limit is 16\r\n"
    );
}

#[test]
fn an_argument_of_exactly_the_limit_is_accepted() {
    let mut input = b"*1\r\n$16\r\n".to_vec();
    input.extend_from_slice(&[b'v'; 16]);
    input.extend_from_slice(b"\r\n");
    assert_eq!(
        run(&input, small_limits()),
        ok(vec![command(&[&[b'v'; 16]])])
    );
}

#[test]
fn request_too_large_is_rejected() {
    // Three arguments of 15 bytes: 45 > 40.
    let mut input = b"*3\r\n".to_vec();
    for _ in 0..3 {
        input.extend_from_slice(b"$15\r\n");
        input.extend_from_slice(&[b'a'; 15]);
        input.extend_from_slice(b"\r\n");
    }
    input.extend_from_slice(b"PING\r\n");
    let rejected = RequestError::RequestTooLarge { max_bytes: 40 };
    assert_eq!(
        run(&input, small_limits()),
        ok(vec![
            Request::Rejected(rejected.clone()),
            command(&[b"PING"])
        ])
    );
    assert_eq!(
        rejected.to_string(),
        "ERR request too large: its arguments pass the limit of 40 bytes"
    );
}

#[test]
fn inline_argument_over_the_limit_is_rejected() {
    let mut input = b"ECHO ".to_vec();
    input.extend_from_slice(&[b'a'; 17]);
    input.extend_from_slice(b"\nPING\n");
    let rejected = RequestError::ArgumentTooLong {
        len_bytes: 17,
        max_bytes: 16,
    };
    assert_eq!(
        run(&input, small_limits()),
        ok(vec![Request::Rejected(rejected), command(&[b"PING"])])
    );
}

#[test]
fn a_huge_argument_is_dropped_as_it_arrives() {
    let limits = Limits::default();
    let len_bytes: u64 = 64 * 1024 * 1024;
    let mut parser = RequestParser::new(limits);
    let mut buf = BytesMut::from(format!("*2\r\n$6\r\nADDJOB\r\n${len_bytes}\r\n").as_bytes());
    assert_eq!(parser.parse(&mut buf), Ok(None));
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < len_bytes {
        buf.extend_from_slice(&chunk);
        sent += chunk.len() as u64;
        assert_eq!(parser.parse(&mut buf), Ok(None));
        assert!(buf.is_empty());
        assert_eq!(parser.held_bytes(), 0);
    }
    buf.extend_from_slice(b"\r\nPING\r\n");
    let rejected = RequestError::ArgumentTooLong {
        len_bytes,
        max_bytes: 1024 * 1024,
    };
    assert_eq!(
        parser.parse(&mut buf),
        Ok(Some(Request::Rejected(rejected)))
    );
    assert_eq!(parser.parse(&mut buf), Ok(Some(command(&[b"PING"]))));
}

// ---------------------------------------------------------------------------
// Replies: exact bytes in both protocols

#[test]
fn replies_encode_exactly() {
    use Protocol::{Resp2, Resp3};
    let cases: Vec<(Value, &[u8], &[u8])> = vec![
        (Value::ok(), b"+OK\r\n", b"+OK\r\n"),
        (
            Value::error("BADID Invalid Job ID format."),
            b"-BADID Invalid Job ID format.\r\n",
            b"-BADID Invalid Job ID format.\r\n",
        ),
        (Value::Integer(-42), b":-42\r\n", b":-42\r\n"),
        (
            Value::Integer(i64::MIN),
            b":-9223372036854775808\r\n",
            b":-9223372036854775808\r\n",
        ),
        (
            Value::bulk("a\r\nb"),
            b"$4\r\na\r\nb\r\n",
            b"$4\r\na\r\nb\r\n",
        ),
        (Value::bulk(""), b"$0\r\n\r\n", b"$0\r\n\r\n"),
        (Value::Null, b"$-1\r\n", b"_\r\n"),
        (Value::NullArray, b"*-1\r\n", b"_\r\n"),
        (Value::Array(vec![]), b"*0\r\n", b"*0\r\n"),
        (
            Value::Array(vec![Value::Integer(1), Value::Array(vec![Value::Null])]),
            b"*2\r\n:1\r\n*1\r\n$-1\r\n",
            b"*2\r\n:1\r\n*1\r\n_\r\n",
        ),
        (
            Value::Map(vec![
                (Value::simple("a"), Value::Integer(1)),
                (Value::bulk("b"), Value::Null),
            ]),
            b"*4\r\n+a\r\n:1\r\n$1\r\nb\r\n$-1\r\n",
            b"%2\r\n+a\r\n:1\r\n$1\r\nb\r\n_\r\n",
        ),
        (
            Value::Set(vec![Value::Integer(7)]),
            b"*1\r\n:7\r\n",
            b"~1\r\n:7\r\n",
        ),
        (Value::Boolean(true), b":1\r\n", b"#t\r\n"),
        (Value::Boolean(false), b":0\r\n", b"#f\r\n"),
        (Value::Double(1.5), b"$3\r\n1.5\r\n", b",1.5\r\n"),
        (Value::Double(3.0), b"$3\r\n3.0\r\n", b",3.0\r\n"),
        (Value::Double(1e100), b"$5\r\n1e100\r\n", b",1e100\r\n"),
        (Value::Double(f64::INFINITY), b"$3\r\ninf\r\n", b",inf\r\n"),
        (
            Value::Double(f64::NEG_INFINITY),
            b"$4\r\n-inf\r\n",
            b",-inf\r\n",
        ),
        (Value::Double(f64::NAN), b"$3\r\nnan\r\n", b",nan\r\n"),
        (
            Value::text("a\r\nb"),
            b"$4\r\na\r\nb\r\n",
            b"=8\r\ntxt:a\r\nb\r\n",
        ),
    ];
    for (value, resp2, resp3) in cases {
        assert_eq!(encoded(&value, Resp2), resp2, "{value:?} in RESP2");
        assert_eq!(encoded(&value, Resp3), resp3, "{value:?} in RESP3");
    }
}

#[test]
fn simple_strings_and_errors_cannot_break_framing() {
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        assert_eq!(
            encoded(&Value::simple("a\r\n+b\nc\r"), protocol),
            b"+a  +b c \r\n"
        );
        assert_eq!(
            encoded(&Value::error("ERR x\r\n:1"), protocol),
            b"-ERR x  :1\r\n"
        );
    }
}

// ---------------------------------------------------------------------------
// Replies: the client-side parser

#[test]
fn reply_parser_reads_every_type() {
    let cases: Vec<(&[u8], Value)> = vec![
        (b"+OK\r\n", Value::ok()),
        (b"-ERR no\r\n", Value::error("ERR no")),
        (b":-3\r\n", Value::Integer(-3)),
        (b"$3\r\na\nb\r\n", Value::bulk("a\nb")),
        (b"$-1\r\n", Value::Null),
        (b"*-1\r\n", Value::NullArray),
        (b"_\r\n", Value::Null),
        (b"*0\r\n", Value::Array(vec![])),
        (b"%0\r\n", Value::Map(vec![])),
        (b"~0\r\n", Value::Set(vec![])),
        (b"#t\r\n", Value::Boolean(true)),
        (b",-2.5\r\n", Value::Double(-2.5)),
        (b",inf\r\n", Value::Double(f64::INFINITY)),
        (
            b"=7\r\nmkd:a\r\n\r\n",
            Value::Verbatim {
                format: *b"mkd",
                text: Bytes::from("a\r\n"),
            },
        ),
        (
            b"%1\r\n*1\r\n~1\r\n:1\r\n$0\r\n\r\n",
            Value::Map(vec![(
                Value::Array(vec![Value::Set(vec![Value::Integer(1)])]),
                Value::bulk(""),
            )]),
        ),
    ];
    for (input, value) in cases {
        assert_eq!(
            reply(input),
            Ok(Some(value.clone())),
            "{}",
            String::from_utf8_lossy(input)
        );
        // Every proper prefix is incomplete, even when fed byte by byte.
        let mut parser = ReplyParser::new();
        let mut buf = BytesMut::new();
        for &byte in &input[..input.len() - 1] {
            buf.extend_from_slice(&[byte]);
            assert_eq!(parser.parse(&mut buf), Ok(None));
        }
        buf.extend_from_slice(&input[input.len() - 1..]);
        assert_eq!(parser.parse(&mut buf), Ok(Some(value)));
        assert!(buf.is_empty());
    }
    let Ok(Some(Value::Double(nan))) = reply(b",nan\r\n") else {
        panic!()
    };
    assert!(nan.is_nan());
}

#[test]
fn reply_parser_reads_pipelined_replies_in_order() {
    let mut buf = BytesMut::from(&b"+OK\r\n:1\r\n*1\r\n$1\r\nx\r\n:2"[..]);
    let mut parser = ReplyParser::new();
    assert_eq!(parser.parse(&mut buf), Ok(Some(Value::ok())));
    assert_eq!(parser.parse(&mut buf), Ok(Some(Value::Integer(1))));
    assert_eq!(
        parser.parse(&mut buf),
        Ok(Some(Value::Array(vec![Value::bulk("x")])))
    );
    assert_eq!(parser.parse(&mut buf), Ok(None));
    buf.extend_from_slice(b"\r\n");
    assert_eq!(parser.parse(&mut buf), Ok(Some(Value::Integer(2))));
}

#[test]
fn reply_parser_errors() {
    let cases: Vec<(&[u8], ReplyError)> = vec![
        (b"?x\r\n", ReplyError::InvalidType { byte: b'?' }),
        (b"+OK\n", ReplyError::MissingCrlf),
        (b"\n", ReplyError::InvalidType { byte: b'\n' }),
        (b"*2\r\n:1\r\n?", ReplyError::InvalidType { byte: b'?' }),
        (b"$1\r\nab\r\n", ReplyError::MissingCrlf),
        (b":1.5\r\n", ReplyError::Malformed("integer")),
        (b",x\r\n", ReplyError::Malformed("double")),
        (b"#x\r\n", ReplyError::Malformed("boolean")),
        (b"_x\r\n", ReplyError::Malformed("null")),
        (b"$-2\r\n", ReplyError::Malformed("length")),
        (b"%-1\r\n", ReplyError::Malformed("length")),
        (b"=3\r\nabc\r\n", ReplyError::Malformed("verbatim string")),
        (b"=4\r\nabcd\r\n", ReplyError::Malformed("verbatim string")),
    ];
    for (input, error) in cases {
        assert_eq!(
            reply(input),
            Err(error),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn reply_parser_limits_depth_and_size() {
    let mut parser = ReplyParser::with_limits(2, 64);
    let mut buf = BytesMut::from(&b"*1\r\n*1\r\n:1\r\n"[..]);
    assert_eq!(
        parser.parse(&mut buf),
        Ok(Some(Value::Array(vec![Value::Array(vec![
            Value::Integer(1)
        ])])))
    );
    buf.extend_from_slice(b"*1\r\n*1\r\n*1\r\n:1\r\n");
    assert_eq!(
        parser.parse(&mut buf),
        Err(ReplyError::TooDeep { max_depth: 2 })
    );

    let too_large = ReplyError::TooLarge { max_bytes: 64 };
    let mut parser = ReplyParser::with_limits(2, 64);
    assert_eq!(
        parser.parse(&mut BytesMut::from(&b"$60\r\n"[..])),
        Err(too_large.clone())
    );
    let mut parser = ReplyParser::with_limits(2, 64);
    assert_eq!(
        parser.parse(&mut BytesMut::from(&[b'+'; 64][..])),
        Err(too_large.clone())
    );
    let mut parser = ReplyParser::with_limits(2, 64);
    assert_eq!(parser.parse(&mut BytesMut::from(&[b'+'; 63][..])), Ok(None));
    assert_eq!(too_large.to_string(), "reply longer than 64 bytes");
}

// ---------------------------------------------------------------------------
// Properties

/// Arguments: mostly short, some with protocol bytes inside.
fn argument() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..24),
        proptest::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'*'), Just(b'$')],
            0..6
        ),
    ]
}

fn commands() -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
    proptest::collection::vec(proptest::collection::vec(argument(), 1..6), 0..8)
}

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(prop_oneof![Just(1usize), 1usize..8, 1usize..200], 1..8)
}

/// Bytes that look like RESP more often than random bytes would.
fn garbage(tokens: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        3 => proptest::sample::select(tokens).prop_map(<[u8]>::to_vec),
        1 => "[0-9]{1,3}".prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..4),
    ];
    proptest::collection::vec(token, 0..48).prop_map(|tokens| tokens.concat())
}

const REQUEST_TOKENS: &[&[u8]] = &[
    b"*",
    b"$",
    b"\r\n",
    b"\r",
    b"\n",
    b"-1",
    b"0",
    b"\"",
    b"'",
    b"\\",
    b"\\x4",
    b" ",
    b"x",
    b"*2\r\n",
    b"$3\r\n",
    b"$20\r\n",
    b"PING\r\n",
];

const REPLY_TOKENS: &[&[u8]] = &[
    b"+", b"-", b":", b"$", b"*", b"%", b"~", b"#", b"_", b",", b"=", b"\r\n", b"\r", b"\n", b"-1",
    b"t", b"txt:", b"inf", b"*3\r\n", b"$2\r\n", b"%1\r\n", b"$5\r\n",
];

fn multibulk(commands: &[Vec<Vec<u8>>]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for command in commands {
        encode_request(command, &mut out);
    }
    out.to_vec()
}

fn as_requests(commands: &[Vec<Vec<u8>>]) -> Vec<Request> {
    commands
        .iter()
        .map(|args| Request::Command(args.iter().map(|a| Bytes::copy_from_slice(a)).collect()))
        .collect()
}

/// `arg` as an inline word: double-quoted, every byte as `\xHH`.
fn inline_word(arg: &[u8]) -> String {
    let mut word = String::from("\"");
    for byte in arg {
        word.push_str(&format!("\\x{byte:02x}"));
    }
    word.push('"');
    word
}

/// What a value reads back as after `encode` in `protocol`.
fn after_round_trip(value: &Value, protocol: Protocol) -> Value {
    let resp2 = protocol == Protocol::Resp2;
    let sanitized = |text: &str| text.replace(['\r', '\n'], " ");
    let all = |items: &[Value]| {
        items
            .iter()
            .map(|v| after_round_trip(v, protocol))
            .collect()
    };
    match value {
        Value::Simple(text) => Value::Simple(sanitized(text)),
        Value::Error(line) => Value::Error(sanitized(line)),
        Value::NullArray if !resp2 => Value::Null,
        Value::Array(items) => Value::Array(all(items)),
        Value::Map(pairs) if resp2 => Value::Array(
            pairs
                .iter()
                .flat_map(|(k, v)| [after_round_trip(k, protocol), after_round_trip(v, protocol)])
                .collect(),
        ),
        Value::Map(pairs) => Value::Map(
            pairs
                .iter()
                .map(|(k, v)| (after_round_trip(k, protocol), after_round_trip(v, protocol)))
                .collect(),
        ),
        Value::Set(items) if resp2 => Value::Array(all(items)),
        Value::Set(items) => Value::Set(all(items)),
        Value::Boolean(b) if resp2 => Value::Integer(i64::from(*b)),
        Value::Double(d) if resp2 => Value::Bulk(Bytes::from(match *d {
            f64::INFINITY => "inf".to_string(),
            f64::NEG_INFINITY => "-inf".to_string(),
            d => format!("{d:?}"),
        })),
        Value::Verbatim { text, .. } if resp2 => Value::Bulk(text.clone()),
        other => other.clone(),
    }
}

fn value() -> impl Strategy<Value = Value> {
    let double = prop_oneof![
        any::<f64>().prop_filter("NaN is not equal to itself", |d| !d.is_nan()),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
    ];
    let leaf = prop_oneof![
        any::<String>().prop_map(Value::Simple),
        "[A-Z]{1,6} [ -~\r\n]{0,20}".prop_map(Value::Error),
        any::<i64>().prop_map(Value::Integer),
        proptest::collection::vec(any::<u8>(), 0..32).prop_map(|b| Value::Bulk(b.into())),
        Just(Value::Null),
        Just(Value::NullArray),
        any::<bool>().prop_map(Value::Boolean),
        double.prop_map(Value::Double),
        (
            any::<[u8; 3]>(),
            proptest::collection::vec(any::<u8>(), 0..16)
        )
            .prop_map(|(format, text)| Value::Verbatim {
                format,
                text: text.into()
            }),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Value::Map),
            proptest::collection::vec(inner, 0..6).prop_map(Value::Set),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Any commands, sent as multibulk and split anywhere, parse back.
    #[test]
    fn multibulk_parses_back_however_split(commands in commands(), sizes in chunk_sizes()) {
        let input = multibulk(&commands);
        prop_assert_eq!(run_chunked(&input, &sizes, Limits::default()), ok(as_requests(&commands)));
        prop_assert_eq!(run_chunked(&input, &[1], Limits::default()), ok(as_requests(&commands)));
    }

    /// Any arguments, quoted as inline words, parse back.
    #[test]
    fn inline_quoting_parses_back(commands in commands(), sizes in chunk_sizes()) {
        let mut input = Vec::new();
        for args in &commands {
            let words: Vec<String> = args.iter().map(|a| inline_word(a)).collect();
            input.extend_from_slice(words.join(" ").as_bytes());
            input.extend_from_slice(b"\r\n");
        }
        prop_assert_eq!(run_chunked(&input, &sizes, Limits::default()), ok(as_requests(&commands)));
    }

    /// Garbage never panics, never holds more than the limits allow (checked
    /// in `run_chunked`), and parses the same however it is split.
    #[test]
    fn request_garbage_is_handled_the_same_however_split(
        input in garbage(REQUEST_TOKENS),
        sizes in chunk_sizes(),
    ) {
        let whole = run(&input, small_limits());
        prop_assert_eq!(run_chunked(&input, &sizes, small_limits()), whole);
    }

    /// A too-long argument anywhere in a command rejects that command only.
    #[test]
    fn oversized_argument_then_a_command(
        before in proptest::collection::vec(argument(), 0..3),
        extra_bytes in 1usize..3000,
        after in proptest::collection::vec(argument(), 0..3),
        next in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..16), 1..3),
        sizes in chunk_sizes(),
    ) {
        let limits = Limits { max_bulk_bytes: 16, max_request_bytes: 1000, ..Limits::default() };
        let len_bytes = 16 + extra_bytes;
        let mut command = vec![b"ADDJOB".to_vec()];
        command.extend(before.iter().map(|a| a[..a.len().min(16)].to_vec()));
        command.push(vec![b'j'; len_bytes]);
        command.extend(after.iter().map(|a| a[..a.len().min(16)].to_vec()));
        let input = multibulk(&[command, next.clone()]);
        let rejected = RequestError::ArgumentTooLong { len_bytes: len_bytes as u64, max_bytes: 16 };
        let mut expected = vec![Request::Rejected(rejected)];
        expected.extend(as_requests(&[next]));
        prop_assert_eq!(run_chunked(&input, &sizes, limits), ok(expected));
    }

    /// Every value reads back, in both protocols, however the bytes arrive;
    /// RESP2 loses what `after_round_trip` says.
    #[test]
    fn replies_read_back(values in proptest::collection::vec(value(), 1..4), sizes in chunk_sizes()) {
        for protocol in [Protocol::Resp2, Protocol::Resp3] {
            let mut out = BytesMut::new();
            for value in &values {
                encode(value, protocol, &mut out);
            }
            let expected: Vec<Value> = values.iter().map(|v| after_round_trip(v, protocol)).collect();
            let mut parser = ReplyParser::new();
            let max_bytes = ReplyParser::DEFAULT_MAX_REPLY_BYTES;
            let (got, error) = replies_chunked(&out, &sizes, &mut parser, max_bytes);
            prop_assert_eq!(error, None);
            prop_assert_eq!(got, expected);
        }
    }

    /// Reply garbage never panics, stays within the limits, and reads the
    /// same however it is split.
    #[test]
    fn reply_garbage_is_handled_the_same_however_split(
        input in garbage(REPLY_TOKENS),
        sizes in chunk_sizes(),
    ) {
        let whole = replies_chunked(&input, &[usize::MAX], &mut ReplyParser::with_limits(3, 64), 64);
        let split = replies_chunked(&input, &sizes, &mut ReplyParser::with_limits(3, 64), 64);
        prop_assert_eq!(split, whole);
    }
}

/// A bulk length past Redis's `proto-max-bulk-len` (512 MiB) is broken
/// protocol and closes the connection; one up to it is an oversized
/// argument, skipped as it arrives.
#[test]
fn bulk_lengths_past_512_mib_are_protocol_errors() {
    let limit = synod::resp::PROTO_MAX_BULK_BYTES;
    let mut parser = RequestParser::new(Limits::default());
    let mut buf = BytesMut::from(format!("*1\r\n${}\r\n", limit + 1).as_bytes());
    assert_eq!(
        parser.parse(&mut buf).map_err(|e| e.to_string()),
        Err("ERR Protocol error: invalid bulk length".to_string())
    );
    let mut parser = RequestParser::new(Limits::default());
    let mut buf = BytesMut::from(format!("*1\r\n${limit}\r\n").as_bytes());
    assert_eq!(parser.parse(&mut buf).map_err(|e| e.to_string()), Ok(None));
}
