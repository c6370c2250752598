//! The client command layer: exact parse results and error lines for every
//! Disque command and option (Disque's `job.c`, `queue.c`, `ack.c`; Redis 7
//! for Redis's own commands), and exact replies for every builder.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use queue::{
    AddJob, Command, Delivery, JobCursor, JobFilter, JobId, JobInfo, JobState, Page, PauseState,
    QueueError, QueueFilter, QueueStats, Response, StateMachine,
};
use synod::commands::reply::{self, ClientInfo, HelloNode, InfoSection};
use synod::commands::{
    self, AddJobCommand, ClientCommand, ClientSubcommand, CommandError, ConfigSubcommand,
    DEFAULT_SCAN_COUNT, GetJobCommand, Introspection, JobScan, JobScanReply, LibraryAttribute,
    QueueConfig, QueueScan,
};
use synod::resp::{Protocol, Value, encode};

// ----- Helpers ---------------------------------------------------------------

fn args(words: &[&str]) -> Vec<Bytes> {
    words
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

fn parse(words: &[&str]) -> Result<ClientCommand, CommandError> {
    commands::parse(&args(words))
}

fn ok(words: &[&str]) -> ClientCommand {
    match parse(words) {
        Ok(command) => command,
        Err(error) => panic!("{words:?} refused: {error}"),
    }
}

/// The error line the client would see; checks that the `Value` carries
/// the same line.
fn refused(words: &[&str]) -> String {
    match parse(words) {
        Ok(command) => panic!("{words:?} parsed as {command:?}"),
        Err(error) => {
            let line = error.to_string();
            assert_eq!(Value::from(error), Value::Error(line.clone()));
            line
        }
    }
}

fn bulk(text: &str) -> Value {
    Value::Bulk(Bytes::copy_from_slice(text.as_bytes()))
}

fn encoded(value: &Value, protocol: Protocol) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(value, protocol, &mut out);
    out.to_vec()
}

const ID_A: &str = "D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1";
const ID_B: &str = "D-00000001-AAAAAAAAAAAAAAAAAAAAAAAA-0000";

fn id(text: &str) -> JobId {
    text.parse().unwrap()
}

fn addjob(words: &[&str]) -> AddJobCommand {
    match ok(words) {
        ClientCommand::AddJob(add) => add,
        other => panic!("not ADDJOB: {other:?}"),
    }
}

fn minimal_addjob() -> AddJobCommand {
    AddJobCommand {
        queue: "q".to_string(),
        body: Bytes::from_static(b"body"),
        timeout_ms: None,
        replicate: None,
        delay_ms: None,
        retry_ms: None,
        ttl_ms: None,
        max_len: None,
        asynchronous: false,
        delivery_limit: None,
    }
}

// ----- Names, arity and unknown commands -------------------------------------

#[test]
fn command_names_match_in_any_case() {
    assert_eq!(
        ok(&["AdDjOb", "q", "body", "0"]),
        ClientCommand::AddJob(minimal_addjob())
    );
    assert_eq!(ok(&["qlen", "q"]), ok(&["QLEN", "q"]));
    assert_eq!(ok(&["PiNg"]), ClientCommand::Ping { message: None });
}

#[test]
fn arity_errors_name_the_command_in_lowercase() {
    let cases: &[(&[&str], &str)] = &[
        (&["ADDJOB", "q", "body"], "addjob"),
        (&["ADDJOB"], "addjob"),
        (&["GETJOB"], "getjob"),
        (&["WORKING"], "working"),
        (&["WORKING", ID_A, ID_B], "working"),
        (&["SHOW"], "show"),
        (&["SHOW", ID_A, ID_B], "show"),
        (&["QLEN"], "qlen"),
        (&["QLEN", "a", "b"], "qlen"),
        (&["QPEEK", "q"], "qpeek"),
        (&["QPEEK", "q", "1", "2"], "qpeek"),
        (&["QSTAT"], "qstat"),
        (&["PAUSE", "q"], "pause"),
        (&["QCONFIG"], "qconfig"),
        (&["PING", "a", "b"], "ping"),
        (&["ECHO"], "echo"),
        (&["ECHO", "a", "b"], "echo"),
        (&["SELECT"], "select"),
        (&["CLIENT"], "client"),
        (&["CONFIG"], "config"),
    ];
    for (words, name) in cases {
        assert_eq!(
            refused(words),
            format!("ERR wrong number of arguments for '{name}' command"),
            "{words:?}"
        );
    }
}

#[test]
fn subcommand_arity_errors_name_command_and_subcommand() {
    let cases: &[(&[&str], &str)] = &[
        (&["CLIENT", "SETNAME"], "client|setname"),
        (&["CLIENT", "GETNAME", "x"], "client|getname"),
        (&["CLIENT", "SETINFO", "LIB-NAME"], "client|setinfo"),
        (&["CLIENT", "ID", "x"], "client|id"),
        (&["CLIENT", "NO-EVICT"], "client|no-evict"),
        (&["COMMAND", "COUNT", "x"], "command|count"),
        (&["COMMAND", "HELP", "x"], "command|help"),
        (&["CONFIG", "GET"], "config|get"),
        (&["config", "resetstat", "x"], "config|resetstat"),
    ];
    for (words, name) in cases {
        assert_eq!(
            refused(words),
            format!("ERR wrong number of arguments for '{name}' command"),
            "{words:?}"
        );
    }
}

#[test]
fn unknown_commands_quote_their_first_arguments_as_redis() {
    assert_eq!(
        refused(&["foo", "a", "b"]),
        "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
    );
    assert_eq!(
        refused(&["FOO"]),
        "ERR unknown command 'FOO', with args beginning with: "
    );
    assert_eq!(
        commands::parse(&[]).unwrap_err().to_string(),
        "ERR unknown command '', with args beginning with: "
    );
    // Newlines would end the error line early: they become spaces.
    assert_eq!(
        refused(&["SET\r\n", "a\nb"]),
        "ERR unknown command 'SET  ', with args beginning with: 'a b' "
    );
}

#[test]
fn unknown_commands_show_at_most_128_bytes_of_name_and_arguments() {
    let long = "x".repeat(200);
    let line = refused(&[&long, &long, "second"]);
    let name = "x".repeat(128);
    assert_eq!(
        line,
        format!("ERR unknown command '{name}', with args beginning with: '{name}' ")
    );
    // Each argument gets what is left of the budget.
    let sixty = "y".repeat(60);
    let line = refused(&["nope", &sixty, &sixty, "zzzzzzzzzz", "never"]);
    // 63 + 63 bytes used (quotes and space included), 2 left for the third.
    assert_eq!(
        line,
        format!("ERR unknown command 'nope', with args beginning with: '{sixty}' '{sixty}' 'zz' ")
    );
}

#[test]
fn unknown_subcommands_point_to_help() {
    assert_eq!(
        refused(&["CLIENT", "KILL", "x"]),
        "ERR unknown subcommand 'KILL'. Try CLIENT HELP."
    );
    assert_eq!(
        refused(&["client", "kill"]),
        "ERR unknown subcommand 'kill'. Try CLIENT HELP."
    );
    assert_eq!(
        refused(&["COMMAND", "GETKEYS", "x"]),
        "ERR unknown subcommand 'GETKEYS'. Try COMMAND HELP."
    );
    assert_eq!(
        refused(&["Config", "SET", "save", ""]),
        "ERR unknown subcommand 'SET'. Try CONFIG HELP."
    );
}

// ----- ADDJOB ----------------------------------------------------------------

#[test]
fn addjob_minimal() {
    assert_eq!(addjob(&["ADDJOB", "q", "body", "0"]), minimal_addjob());
}

#[test]
fn addjob_every_option_converted_to_milliseconds() {
    let add = addjob(&[
        "ADDJOB",
        "q",
        "body",
        "5000",
        "REPLICATE",
        "3",
        "DELAY",
        "10",
        "RETRY",
        "30",
        "TTL",
        "3600",
        "MAXLEN",
        "100",
        "ASYNC",
        "DELIVERY-LIMIT",
        "5",
    ]);
    assert_eq!(
        add,
        AddJobCommand {
            timeout_ms: Some(5_000),
            replicate: Some(3),
            delay_ms: Some(10_000),
            retry_ms: Some(30_000),
            ttl_ms: Some(3_600_000),
            max_len: Some(100),
            asynchronous: true,
            delivery_limit: Some(5),
            ..minimal_addjob()
        }
    );
    // Options in any case and order.
    let same = addjob(&[
        "addjob",
        "q",
        "body",
        "5000",
        "delivery-limit",
        "5",
        "async",
        "maxlen",
        "100",
        "ttl",
        "3600",
        "Retry",
        "30",
        "delay",
        "10",
        "replicate",
        "3",
    ]);
    assert_eq!(same, add);
}

#[test]
fn addjob_repeated_option_last_wins() {
    let add = addjob(&[
        "ADDJOB", "q", "body", "0", "TTL", "10", "TTL", "20", "ASYNC", "ASYNC",
    ]);
    assert_eq!(add.ttl_ms, Some(20_000));
    assert!(add.asynchronous);
}

#[test]
fn addjob_retry_zero_and_delay_zero_are_kept() {
    let add = addjob(&["ADDJOB", "q", "body", "0", "RETRY", "0", "DELAY", "0"]);
    assert_eq!(add.retry_ms, Some(0));
    assert_eq!(add.delay_ms, Some(0));
}

#[test]
fn addjob_body_and_queue_are_taken_as_given() {
    let add = addjob(&["ADDJOB", "", "TTL", "0"]);
    assert_eq!(add.queue, "");
    assert_eq!(add.body, Bytes::from_static(b"TTL"));
    let raw = vec![
        Bytes::from_static(b"ADDJOB"),
        Bytes::from_static(b"q"),
        Bytes::from_static(b"\x00\xff\r\n"),
        Bytes::from_static(b"0"),
    ];
    let Ok(ClientCommand::AddJob(add)) = commands::parse(&raw) else {
        panic!()
    };
    assert_eq!(add.body, Bytes::from_static(b"\x00\xff\r\n"));
}

#[test]
fn addjob_option_errors_in_disque_words() {
    let base = ["ADDJOB", "q", "body", "0"];
    let with = |extra: &[&str]| {
        let mut words = base.to_vec();
        words.extend_from_slice(extra);
        refused(&words)
    };
    for value in ["0", "-1", "65536", "x", ""] {
        assert_eq!(
            with(&["REPLICATE", value]),
            "ERR REPLICATE must be between 1 and 65535",
            "{value}"
        );
    }
    for value in ["0", "-5", "x", "99999999999999999999"] {
        assert_eq!(
            with(&["TTL", value]),
            "ERR TTL must be a number > 0",
            "{value}"
        );
    }
    for value in ["-1", "x", "1.5"] {
        assert_eq!(
            with(&["RETRY", value]),
            "ERR RETRY time must be a non negative number",
            "{value}"
        );
        assert_eq!(
            with(&["DELAY", value]),
            "ERR DELAY time must be a non negative number",
            "{value}"
        );
    }
    for value in ["0", "-1", "x"] {
        assert_eq!(
            with(&["MAXLEN", value]),
            "ERR MAXLEN must be a positive number",
            "{value}"
        );
    }
    for value in ["0", "-1", "4294967296", "x"] {
        assert_eq!(
            with(&["DELIVERY-LIMIT", value]),
            "ERR DELIVERY-LIMIT must be a number between 1 and 4294967295",
            "{value}"
        );
    }
}

#[test]
fn addjob_option_without_value_or_unknown_is_a_syntax_error() {
    for extra in [
        &["TTL"][..],
        &["RETRY"],
        &["DELAY"],
        &["REPLICATE"],
        &["MAXLEN"],
        &["DELIVERY-LIMIT"],
        &["BOGUS"],
        &["TTL", "10", "BOGUS"],
        &["ASYNC", "10"],
    ] {
        let mut words = vec!["ADDJOB", "q", "body", "0"];
        words.extend_from_slice(extra);
        assert_eq!(refused(&words), "ERR syntax error", "{extra:?}");
    }
}

#[test]
fn addjob_timeout_errors() {
    assert_eq!(
        refused(&["ADDJOB", "q", "body", "x"]),
        "ERR timeout is not an integer or out of range"
    );
    assert_eq!(
        refused(&["ADDJOB", "q", "body", "9223372036854775808"]),
        "ERR timeout is not an integer or out of range"
    );
    assert_eq!(
        refused(&["ADDJOB", "q", "body", "-1"]),
        "ERR timeout is negative"
    );
    // Disque reads the options before the timeout.
    assert_eq!(
        refused(&["ADDJOB", "q", "body", "x", "TTL", "0"]),
        "ERR TTL must be a number > 0"
    );
}

#[test]
fn addjob_retry_zero_needs_replicate_one() {
    assert_eq!(
        refused(&["ADDJOB", "q", "b", "0", "REPLICATE", "2", "RETRY", "0"]),
        "ERR With RETRY set to 0 please explicitly set  REPLICATE to 1 (at-most-once delivery)"
    );
    assert_eq!(
        addjob(&["ADDJOB", "q", "b", "0", "REPLICATE", "1", "RETRY", "0"]).retry_ms,
        Some(0)
    );
    // Without REPLICATE, Synod's replication is the consensus group.
    assert_eq!(
        addjob(&["ADDJOB", "q", "b", "0", "RETRY", "0"]).retry_ms,
        Some(0)
    );
}

#[test]
fn addjob_delay_must_be_below_ttl() {
    let line =
        "ERR The specified DELAY is greater than TTL. Job refused since would never be delivered";
    assert_eq!(
        refused(&["ADDJOB", "q", "b", "0", "DELAY", "10", "TTL", "10"]),
        line
    );
    assert_eq!(refused(&["ADDJOB", "q", "b", "0", "DELAY", "86400"]), line);
    assert_eq!(
        addjob(&["ADDJOB", "q", "b", "0", "DELAY", "86399"]).delay_ms,
        Some(86_399_000)
    );
    // A huge DELAY against a huge TTL compares the numbers given.
    let add = addjob(&[
        "ADDJOB",
        "q",
        "b",
        "0",
        "DELAY",
        "9223372036854775806",
        "TTL",
        "9223372036854775807",
    ]);
    assert_eq!(add.ttl_ms, Some(u64::MAX), "saturates rather than wraps");
}

#[test]
fn integers_read_like_strtoll_over_the_whole_argument() {
    assert_eq!(
        addjob(&["ADDJOB", "q", "b", "+5", "TTL", "007"]).ttl_ms,
        Some(7_000)
    );
    assert_eq!(addjob(&["ADDJOB", "q", "b", "+5"]).timeout_ms, Some(5));
    for bad in [" 5", "5 ", "", "0x10", "1e3", "+", "-", "--1", "5a"] {
        assert_eq!(
            refused(&["ADDJOB", "q", "b", "0", "TTL", bad]),
            "ERR TTL must be a number > 0",
            "{bad:?}"
        );
    }
}

#[test]
fn addjob_queue_must_be_utf8() {
    let raw = vec![
        Bytes::from_static(b"ADDJOB"),
        Bytes::from_static(b"\xffq"),
        Bytes::from_static(b"b"),
        Bytes::from_static(b"0"),
    ];
    assert_eq!(
        commands::parse(&raw).unwrap_err().to_string(),
        "ERR queue name is not valid UTF-8"
    );
}

#[test]
fn addjob_times_apply_disque_defaults() {
    let times = addjob(&["ADDJOB", "q", "b", "0"]).times().unwrap();
    assert_eq!(
        (times.ttl_ms, times.retry_ms, times.delay_ms),
        (86_400_000, 300_000, 0),
        "RETRY defaults to TTL/10, at most 5 minutes"
    );
    let times = addjob(&["ADDJOB", "q", "b", "0", "TTL", "20", "DELAY", "3"])
        .times()
        .unwrap();
    assert_eq!(
        (times.ttl_ms, times.retry_ms, times.delay_ms),
        (20_000, 2_000, 3_000)
    );
    let times = addjob(&["ADDJOB", "q", "b", "0", "TTL", "5"])
        .times()
        .unwrap();
    assert_eq!(times.retry_ms, 1_000, "at least a second");
}

#[test]
fn addjob_replicate_is_checked_against_the_cluster_size() {
    let add = addjob(&["ADDJOB", "q", "b", "0", "REPLICATE", "3"]);
    assert_eq!(add.check_replicate(3), Ok(()));
    assert_eq!(add.check_replicate(5), Ok(()));
    let error = add.check_replicate(2).unwrap_err();
    assert_eq!(
        error.to_string(),
        "NOREPL Not enough reachable nodes for the requested replication level"
    );
    assert_eq!(
        minimal_addjob().check_replicate(1),
        Ok(()),
        "default fits any cluster"
    );
}

#[test]
fn addjob_becomes_the_state_machines_addjob_with_the_drawn_id() {
    let add = addjob(&[
        "ADDJOB",
        "q",
        "body",
        "0",
        "TTL",
        "60",
        "RETRY",
        "5",
        "DELAY",
        "1",
        "MAXLEN",
        "9",
        "DELIVERY-LIMIT",
        "2",
    ]);
    let job_id = id(ID_A);
    assert_eq!(
        add.to_add_job(job_id),
        AddJob {
            id: job_id,
            queue: "q".to_string(),
            body: Bytes::from_static(b"body"),
            ttl_ms: Some(60_000),
            retry_ms: Some(5_000),
            delay_ms: Some(1_000),
            max_len: Some(9),
            delivery_limit: Some(2),
        }
    );
}

// ----- GETJOB ----------------------------------------------------------------

fn getjob(words: &[&str]) -> GetJobCommand {
    match ok(words) {
        ClientCommand::GetJob(get) => get,
        other => panic!("not GETJOB: {other:?}"),
    }
}

#[test]
fn getjob_defaults() {
    assert_eq!(
        getjob(&["GETJOB", "FROM", "q"]),
        GetJobCommand {
            queues: vec!["q".to_string()],
            count: 1,
            timeout_ms: None,
            nohang: false,
            with_counters: false,
        }
    );
}

#[test]
fn getjob_every_option() {
    assert_eq!(
        getjob(&[
            "getjob",
            "nohang",
            "TIMEOUT",
            "100",
            "count",
            "5",
            "WITHCOUNTERS",
            "from",
            "a",
            "b",
            "a",
        ]),
        GetJobCommand {
            queues: vec!["a".to_string(), "b".to_string(), "a".to_string()],
            count: 5,
            timeout_ms: Some(100),
            nohang: true,
            with_counters: true,
        }
    );
    assert_eq!(
        getjob(&["GETJOB", "TIMEOUT", "0", "FROM", "q"]).timeout_ms,
        None
    );
    assert_eq!(
        getjob(&["GETJOB", "COUNT", "2", "COUNT", "3", "FROM", "q"]).count,
        3,
        "last wins"
    );
    assert_eq!(
        getjob(&["GETJOB", "COUNT", "99999999999", "FROM", "q"]).count,
        u32::MAX
    );
}

#[test]
fn getjob_words_after_from_are_queue_names() {
    assert_eq!(
        getjob(&["GETJOB", "FROM", "NOHANG", "COUNT", "FROM"]).queues,
        vec!["NOHANG", "COUNT", "FROM"]
    );
}

#[test]
fn getjob_errors() {
    assert_eq!(refused(&["GETJOB", "NOHANG"]), "ERR syntax error");
    assert_eq!(refused(&["GETJOB", "FROM"]), "ERR syntax error");
    assert_eq!(refused(&["GETJOB", "TIMEOUT"]), "ERR syntax error");
    assert_eq!(refused(&["GETJOB", "COUNT"]), "ERR syntax error");
    assert_eq!(
        refused(&["GETJOB", "BOGUS", "FROM", "q"]),
        "ERR syntax error"
    );
    for count in ["0", "-1", "x"] {
        assert_eq!(
            refused(&["GETJOB", "COUNT", count, "FROM", "q"]),
            "ERR COUNT must be a number greater than zero"
        );
    }
    assert_eq!(
        refused(&["GETJOB", "TIMEOUT", "-1", "FROM", "q"]),
        "ERR timeout is negative"
    );
    assert_eq!(
        refused(&["GETJOB", "TIMEOUT", "soon", "FROM", "q"]),
        "ERR timeout is not an integer or out of range"
    );
}

#[test]
fn getjob_becomes_a_get() {
    let command = ok(&["GETJOB", "COUNT", "4", "FROM", "a", "b"]);
    assert_eq!(
        command.to_queue_command(),
        Some(Command::Get {
            queues: vec!["a".to_string(), "b".to_string()],
            count: 4,
        })
    );
}

// ----- Commands on job ids ---------------------------------------------------

#[test]
fn id_lists_parse_every_id() {
    let ids = vec![id(ID_A), id(ID_B)];
    assert_eq!(
        ok(&["ACKJOB", ID_A, ID_B]),
        ClientCommand::AckJob { ids: ids.clone() }
    );
    assert_eq!(
        ok(&["FASTACK", ID_A, ID_B]),
        ClientCommand::FastAck { ids: ids.clone() }
    );
    assert_eq!(
        ok(&["DELJOB", ID_A, ID_B]),
        ClientCommand::DelJob { ids: ids.clone() }
    );
    assert_eq!(
        ok(&["ENQUEUE", ID_A, ID_B]),
        ClientCommand::Enqueue { ids: ids.clone() }
    );
    assert_eq!(
        ok(&["DEQUEUE", ID_A, ID_B]),
        ClientCommand::Dequeue { ids: ids.clone() }
    );
    assert_eq!(
        ok(&["NACK", ID_A, ID_B]),
        ClientCommand::Nack { ids, delay_ms: 0 }
    );
}

#[test]
fn id_lists_may_be_empty_as_in_disque() {
    assert_eq!(ok(&["ACKJOB"]), ClientCommand::AckJob { ids: vec![] });
    assert_eq!(ok(&["FASTACK"]), ClientCommand::FastAck { ids: vec![] });
    assert_eq!(ok(&["DELJOB"]), ClientCommand::DelJob { ids: vec![] });
    assert_eq!(ok(&["ENQUEUE"]), ClientCommand::Enqueue { ids: vec![] });
    assert_eq!(ok(&["DEQUEUE"]), ClientCommand::Dequeue { ids: vec![] });
    assert_eq!(
        ok(&["NACK"]),
        ClientCommand::Nack {
            ids: vec![],
            delay_ms: 0
        }
    );
}

#[test]
fn one_bad_id_refuses_the_whole_command() {
    for command in ["ACKJOB", "FASTACK", "DELJOB", "ENQUEUE", "DEQUEUE", "NACK"] {
        assert_eq!(
            refused(&[
                command,
                ID_A,
                "D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a",
                ID_B
            ]),
            "BADID Invalid Job ID format.",
            "{command}"
        );
    }
    for command in ["WORKING", "SHOW"] {
        assert_eq!(refused(&[command, "42"]), "BADID Invalid Job ID format.");
    }
    let raw = vec![Bytes::from_static(b"SHOW"), Bytes::from_static(b"\xff")];
    assert_eq!(commands::parse(&raw).unwrap_err(), CommandError::BadId);
}

#[test]
fn nack_takes_a_leading_delay_in_seconds() {
    assert_eq!(
        ok(&["NACK", "DELAY", "5", ID_A]),
        ClientCommand::Nack {
            ids: vec![id(ID_A)],
            delay_ms: 5_000
        }
    );
    assert_eq!(
        ok(&["nack", "delay", "0"]),
        ClientCommand::Nack {
            ids: vec![],
            delay_ms: 0
        }
    );
    for value in ["-1", "x"] {
        assert_eq!(
            refused(&["NACK", "DELAY", value, ID_A]),
            "ERR DELAY time must be a non negative number"
        );
    }
    // DELAY without its value is no option: it is a (bad) id.
    assert_eq!(refused(&["NACK", "DELAY"]), "BADID Invalid Job ID format.");
    assert_eq!(
        refused(&["NACK", ID_A, "DELAY", "5"]),
        "BADID Invalid Job ID format."
    );
}

#[test]
fn working_and_show_take_one_id() {
    assert_eq!(
        ok(&["WORKING", ID_A]),
        ClientCommand::Working { id: id(ID_A) }
    );
    assert_eq!(ok(&["show", ID_B]), ClientCommand::Show { id: id(ID_B) });
}

#[test]
fn id_commands_become_state_machine_commands() {
    let ids = vec![id(ID_A)];
    assert_eq!(
        ok(&["ACKJOB", ID_A]).to_queue_command(),
        Some(Command::Ack { ids: ids.clone() })
    );
    assert_eq!(
        ok(&["FASTACK", ID_A]).to_queue_command(),
        Some(Command::Ack { ids: ids.clone() })
    );
    assert_eq!(
        ok(&["NACK", "DELAY", "2", ID_A]).to_queue_command(),
        Some(Command::Nack {
            ids: ids.clone(),
            delay_ms: 2_000
        })
    );
    assert_eq!(
        ok(&["WORKING", ID_A]).to_queue_command(),
        Some(Command::Working { id: id(ID_A) })
    );
    assert_eq!(
        ok(&["DELJOB", ID_A]).to_queue_command(),
        Some(Command::Delete { ids: ids.clone() })
    );
    assert_eq!(
        ok(&["ENQUEUE", ID_A]).to_queue_command(),
        Some(Command::Enqueue { ids: ids.clone() })
    );
    assert_eq!(
        ok(&["DEQUEUE", ID_A]).to_queue_command(),
        Some(Command::Dequeue { ids })
    );
    for reads in [
        &["SHOW", ID_A][..],
        &["QLEN", "q"],
        &["QSTAT", "q"],
        &["PAUSE", "q", "state"],
        &["QCONFIG", "q", "DELIVERY-LIMIT", "3"],
        &["ADDJOB", "q", "b", "0"],
        &["PING"],
    ] {
        assert_eq!(ok(reads).to_queue_command(), None, "{reads:?}");
    }
}

// ----- Queue commands --------------------------------------------------------

#[test]
fn qlen_qstat_qpeek() {
    assert_eq!(
        ok(&["QLEN", "q"]),
        ClientCommand::QLen {
            queue: "q".to_string()
        }
    );
    assert_eq!(
        ok(&["QSTAT", "q"]),
        ClientCommand::QStat {
            queue: "q".to_string()
        }
    );
    assert_eq!(
        ok(&["QPEEK", "q", "-3"]),
        ClientCommand::QPeek {
            queue: "q".to_string(),
            count: -3
        }
    );
    for bad in ["x", "", "9223372036854775808"] {
        assert_eq!(
            refused(&["QPEEK", "q", bad]),
            "ERR value is not an integer or out of range"
        );
    }
    let raw = vec![Bytes::from_static(b"QLEN"), Bytes::from_static(b"\xc3")];
    assert_eq!(
        commands::parse(&raw).unwrap_err(),
        CommandError::QueueNameNotUtf8
    );
}

fn qscan(words: &[&str]) -> QueueScan {
    match ok(words) {
        ClientCommand::QScan(scan) => scan,
        other => panic!("not QSCAN: {other:?}"),
    }
}

fn default_qscan() -> QueueScan {
    QueueScan {
        cursor: None,
        count: DEFAULT_SCAN_COUNT,
        busyloop: false,
        filter: QueueFilter::default(),
        nothing_matches: false,
    }
}

#[test]
fn qscan_options() {
    assert_eq!(qscan(&["QSCAN"]), default_qscan());
    assert_eq!(qscan(&["QSCAN", "0"]), default_qscan());
    assert_eq!(
        qscan(&[
            "qscan",
            "0",
            "COUNT",
            "10",
            "busyloop",
            "MINLEN",
            "1",
            "maxlen",
            "5",
            "IMPORTRATE",
            "0",
        ]),
        QueueScan {
            count: 10,
            busyloop: true,
            filter: QueueFilter {
                min_len: Some(1),
                max_len: Some(5),
            },
            ..default_qscan()
        }
    );
    // The cursor is the first word that is no option, wherever it is.
    assert_eq!(
        qscan(&["QSCAN", "COUNT", "10", "6162"]).cursor,
        Some("ab".to_string())
    );
    assert_eq!(qscan(&["QSCAN", "COUNT", "-5"]).count, 0);
}

#[test]
fn qscan_disque_sentinels_and_filters_that_exclude_everything() {
    let scan = qscan(&["QSCAN", "MINLEN", "-1", "MAXLEN", "-1"]);
    assert_eq!(scan.filter, QueueFilter::default(), "-1 means unset");
    assert!(!scan.nothing_matches);
    assert!(qscan(&["QSCAN", "MAXLEN", "-2"]).nothing_matches);
    assert!(
        qscan(&["QSCAN", "IMPORTRATE", "1"]).nothing_matches,
        "Synod imports nothing"
    );
    assert!(!qscan(&["QSCAN", "IMPORTRATE", "-1"]).nothing_matches);
    assert!(!qscan(&["QSCAN", "MAXLEN", "-2", "MAXLEN", "3"]).nothing_matches);
    assert!(qscan(&["QSCAN", "MAXLEN", "-2", "IMPORTRATE", "0"]).nothing_matches);
}

#[test]
fn qscan_errors() {
    assert_eq!(refused(&["QSCAN", "0", "0"]), "ERR syntax error");
    assert_eq!(refused(&["QSCAN", "0", "COUNT"]), "ERR syntax error");
    for cursor in ["xyz", "616", "ff", "", "-1", "+61"] {
        assert_eq!(
            refused(&["QSCAN", cursor]),
            "ERR invalid cursor",
            "{cursor:?}"
        );
    }
    assert_eq!(refused(&["QSCAN", "COUNT"]), "ERR invalid cursor");
    for option in ["COUNT", "MINLEN", "MAXLEN", "IMPORTRATE"] {
        assert_eq!(
            refused(&["QSCAN", option, "x"]),
            "ERR value is not an integer or out of range"
        );
    }
}

#[test]
fn queue_cursors_round_trip_through_text() {
    for name in ["a", "emails.dead", "é q\r\n", "0"] {
        let text = reply::queue_cursor_text(Some(name));
        assert_eq!(qscan(&["QSCAN", &text]).cursor.as_deref(), Some(name));
    }
    assert_eq!(reply::queue_cursor_text(Some("ab")), "6162");
    assert_eq!(reply::queue_cursor_text(None), "0");
}

fn jscan(words: &[&str]) -> JobScan {
    match ok(words) {
        ClientCommand::JScan(scan) => scan,
        other => panic!("not JSCAN: {other:?}"),
    }
}

fn default_jscan() -> JobScan {
    JobScan {
        cursor: JobCursor::START,
        count: DEFAULT_SCAN_COUNT,
        busyloop: false,
        filter: JobFilter::default(),
        nothing_matches: false,
        reply: JobScanReply::Id,
    }
}

#[test]
fn jscan_options() {
    assert_eq!(jscan(&["JSCAN"]), default_jscan());
    assert_eq!(
        jscan(&[
            "jscan", "12", "COUNT", "5", "BUSYLOOP", "queue", "q", "STATE", "queued", "state",
            "ACTIVE", "STATE", "queued", "REPLY", "all",
        ]),
        JobScan {
            cursor: JobCursor(12),
            count: 5,
            busyloop: true,
            filter: JobFilter {
                queue: Some("q".to_string()),
                states: vec![JobState::Queued, JobState::Active, JobState::Delayed],
            },
            nothing_matches: false,
            reply: JobScanReply::All,
        }
    );
    assert_eq!(jscan(&["JSCAN", "REPLY", "ID"]).reply, JobScanReply::Id);
    assert_eq!(jscan(&["JSCAN", "COUNT", "1", "7"]).cursor, JobCursor(7));
}

#[test]
fn jscan_states_map_onto_synods() {
    assert_eq!(
        jscan(&["JSCAN", "STATE", "delayed"]).filter.states,
        vec![JobState::Delayed]
    );
    let acked = jscan(&["JSCAN", "STATE", "acked", "STATE", "wait-repl"]);
    assert!(acked.nothing_matches, "no Synod job is acked or waiting");
    assert!(acked.filter.states.is_empty());
    let mixed = jscan(&["JSCAN", "STATE", "acked", "STATE", "queued"]);
    assert!(!mixed.nothing_matches);
    assert_eq!(mixed.filter.states, vec![JobState::Queued]);
}

#[test]
fn jscan_errors() {
    assert_eq!(
        refused(&["JSCAN", "STATE", "bogus"]),
        "ERR Invalid job state name"
    );
    assert_eq!(
        refused(&["JSCAN", "REPLY", "bogus"]),
        "ERR Invalid REPLY type, try ID or ALL"
    );
    assert_eq!(
        refused(&["JSCAN", "COUNT", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(refused(&["JSCAN", "0", "1"]), "ERR syntax error");
    for cursor in ["-1", "abc", "18446744073709551616", ""] {
        assert_eq!(
            refused(&["JSCAN", cursor]),
            "ERR invalid cursor",
            "{cursor:?}"
        );
    }
}

// ----- PAUSE and QCONFIG -----------------------------------------------------

fn pause(words: &[&str]) -> (Option<PauseState>, bool) {
    match ok(words) {
        ClientCommand::Pause { queue, set, bcast } => {
            assert_eq!(queue, "q");
            (set, bcast)
        }
        other => panic!("not PAUSE: {other:?}"),
    }
}

#[test]
fn pause_builds_the_new_state_from_its_options() {
    assert_eq!(pause(&["PAUSE", "q", "in"]), (Some(PauseState::In), false));
    assert_eq!(
        pause(&["PAUSE", "q", "OUT"]),
        (Some(PauseState::Out), false)
    );
    assert_eq!(
        pause(&["PAUSE", "q", "all"]),
        (Some(PauseState::All), false)
    );
    assert_eq!(
        pause(&["PAUSE", "q", "none"]),
        (Some(PauseState::None), false)
    );
    assert_eq!(
        pause(&["PAUSE", "q", "in", "out"]),
        (Some(PauseState::All), false)
    );
    assert_eq!(
        pause(&["PAUSE", "q", "all", "none"]),
        (Some(PauseState::None), false)
    );
    assert_eq!(
        pause(&["PAUSE", "q", "none", "in"]),
        (Some(PauseState::In), false)
    );
    assert_eq!(pause(&["PAUSE", "q", "state"]), (None, false));
    assert_eq!(pause(&["PAUSE", "q", "bcast"]), (None, true));
    assert_eq!(
        pause(&["PAUSE", "q", "in", "BCAST", "state"]),
        (Some(PauseState::In), true)
    );
    assert_eq!(
        refused(&["PAUSE", "q", "in", "sideways"]),
        "ERR syntax error"
    );
    assert_eq!(
        ok(&["PAUSE", "q", "out"]).to_queue_command(),
        Some(Command::Pause {
            queue: "q".to_string(),
            set: Some(PauseState::Out)
        })
    );
}

fn qconfig(words: &[&str]) -> QueueConfig {
    match ok(words) {
        ClientCommand::QConfig(config) => config,
        other => panic!("not QCONFIG: {other:?}"),
    }
}

#[test]
fn qconfig_forms() {
    let read = qconfig(&["QCONFIG", "q"]);
    assert_eq!(
        read,
        QueueConfig {
            queue: "q".to_string(),
            delivery_limit: None,
            dead_letter: None,
        }
    );
    assert!(read.is_read_only());
    assert_eq!(read.to_command(None), None);
    let set = qconfig(&[
        "qconfig",
        "q",
        "delivery-limit",
        "5",
        "DEAD-LETTER",
        "graveyard",
    ]);
    assert_eq!(set.delivery_limit, Some(Some(5)));
    assert_eq!(set.dead_letter, Some(Some("graveyard".to_string())));
    assert!(!set.is_read_only());
    let cleared = qconfig(&[
        "QCONFIG",
        "q",
        "DELIVERY-LIMIT",
        "none",
        "DEAD-LETTER",
        "NONE",
    ]);
    assert_eq!(cleared.delivery_limit, Some(None));
    assert_eq!(cleared.dead_letter, Some(None));
}

#[test]
fn qconfig_errors() {
    assert_eq!(
        refused(&["QCONFIG", "q", "DELIVERY-LIMIT"]),
        "ERR syntax error"
    );
    assert_eq!(
        refused(&["QCONFIG", "q", "COLOUR", "red"]),
        "ERR syntax error"
    );
    assert_eq!(
        refused(&["QCONFIG", "q", "DELIVERY-LIMIT", "0"]),
        "ERR DELIVERY-LIMIT must be a number between 1 and 4294967295"
    );
}

fn stats(name: &str, delivery_limit: Option<u32>, dead_letter: &str) -> QueueStats {
    QueueStats {
        name: name.to_string(),
        len: 2,
        created_ms: 1_000,
        last_activity_ms: 5_000,
        jobs_in: 7,
        jobs_out: 5,
        pause: PauseState::Out,
        delivery_limit,
        dead_letter: dead_letter.to_string(),
    }
}

#[test]
fn qconfig_keeps_the_setting_not_named() {
    let current = stats("q", Some(3), "graveyard");
    assert_eq!(
        qconfig(&["QCONFIG", "q", "DELIVERY-LIMIT", "5"]).to_command(Some(&current)),
        Some(Command::Configure {
            queue: "q".to_string(),
            delivery_limit: Some(5),
            dead_letter: Some("graveyard".to_string()),
        })
    );
    assert_eq!(
        qconfig(&["QCONFIG", "q", "DEAD-LETTER", "NONE"]).to_command(Some(&current)),
        Some(Command::Configure {
            queue: "q".to_string(),
            delivery_limit: Some(3),
            dead_letter: None,
        })
    );
    // The default dead-letter queue stays a default.
    let default_dead = stats("q", None, "q.dead");
    assert_eq!(
        qconfig(&["QCONFIG", "q", "DELIVERY-LIMIT", "2"]).to_command(Some(&default_dead)),
        Some(Command::Configure {
            queue: "q".to_string(),
            delivery_limit: Some(2),
            dead_letter: None,
        })
    );
    assert_eq!(
        qconfig(&["QCONFIG", "q", "DEAD-LETTER", "x"]).to_command(None),
        Some(Command::Configure {
            queue: "q".to_string(),
            delivery_limit: None,
            dead_letter: Some("x".to_string()),
        })
    );
}

// ----- HELLO and the Redis commands clients send -----------------------------

#[test]
fn hello_bare_is_disques_and_with_a_version_the_handshake() {
    assert_eq!(ok(&["HELLO"]), ClientCommand::DisqueHello);
    assert_eq!(
        ok(&["hello", "3"]),
        ClientCommand::Hello {
            protocol: Protocol::Resp3,
            auth: None,
            client_name: None
        }
    );
    assert_eq!(
        ok(&[
            "HELLO", "2", "AUTH", "default", "secret", "setname", "worker-1"
        ]),
        ClientCommand::Hello {
            protocol: Protocol::Resp2,
            auth: Some((
                Bytes::from_static(b"default"),
                Bytes::from_static(b"secret")
            )),
            client_name: Some(Bytes::from_static(b"worker-1")),
        }
    );
}

#[test]
fn hello_errors_as_redis_7() {
    for version in ["1", "4", "-3", "0"] {
        assert_eq!(
            refused(&["HELLO", version]),
            "NOPROTO unsupported protocol version"
        );
    }
    assert_eq!(
        refused(&["HELLO", "three"]),
        "ERR Protocol version is not an integer or out of range"
    );
    assert_eq!(
        refused(&["HELLO", "3", "AUTH", "user"]),
        "ERR Syntax error in HELLO option 'AUTH'"
    );
    assert_eq!(
        refused(&["HELLO", "3", "SETNAME"]),
        "ERR Syntax error in HELLO option 'SETNAME'"
    );
    assert_eq!(
        refused(&["HELLO", "3", "bogus"]),
        "ERR Syntax error in HELLO option 'bogus'"
    );
    assert_eq!(
        refused(&["HELLO", "3", "SETNAME", "a b"]),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
}

#[test]
fn info_ping_echo_quit_select() {
    assert_eq!(ok(&["INFO"]), ClientCommand::Info { sections: vec![] });
    assert_eq!(
        ok(&["INFO", "Server", "CLIENTS"]),
        ClientCommand::Info {
            sections: vec!["server".to_string(), "clients".to_string()]
        }
    );
    assert_eq!(ok(&["PING"]), ClientCommand::Ping { message: None });
    assert_eq!(
        ok(&["PING", "hi"]),
        ClientCommand::Ping {
            message: Some(Bytes::from_static(b"hi"))
        }
    );
    assert_eq!(
        ok(&["ECHO", "hi"]),
        ClientCommand::Echo {
            message: Bytes::from_static(b"hi")
        }
    );
    assert_eq!(ok(&["QUIT"]), ClientCommand::Quit);
    assert_eq!(ok(&["quit", "now"]), ClientCommand::Quit);
    assert_eq!(ok(&["SELECT", "0"]), ClientCommand::Select);
    assert_eq!(refused(&["SELECT", "1"]), "ERR DB index is out of range");
    assert_eq!(
        refused(&["SELECT", "zero"]),
        "ERR value is not an integer or out of range"
    );
}

#[test]
fn client_subcommands() {
    assert_eq!(
        ok(&["CLIENT", "SETNAME", "worker-1"]),
        ClientCommand::Client(ClientSubcommand::SetName(Bytes::from_static(b"worker-1")))
    );
    assert_eq!(
        ok(&["client", "setname", ""]),
        ClientCommand::Client(ClientSubcommand::SetName(Bytes::new()))
    );
    assert_eq!(
        refused(&["CLIENT", "SETNAME", "a b"]),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    assert_eq!(
        ok(&["CLIENT", "GETNAME"]),
        ClientCommand::Client(ClientSubcommand::GetName)
    );
    assert_eq!(
        ok(&["CLIENT", "SETINFO", "lib-name", "redis-py"]),
        ClientCommand::Client(ClientSubcommand::SetInfo {
            attribute: LibraryAttribute::Name,
            value: Bytes::from_static(b"redis-py"),
        })
    );
    assert_eq!(
        ok(&["CLIENT", "SETINFO", "LIB-VER", "7.0.1"]),
        ClientCommand::Client(ClientSubcommand::SetInfo {
            attribute: LibraryAttribute::Version,
            value: Bytes::from_static(b"7.0.1"),
        })
    );
    assert_eq!(
        refused(&["CLIENT", "SETINFO", "colour", "red"]),
        "ERR Unrecognized option 'colour'"
    );
    assert_eq!(
        refused(&["CLIENT", "SETINFO", "LIB-NAME", "redis py"]),
        "ERR LIB-NAME cannot contain spaces, newlines or special characters."
    );
    assert_eq!(
        ok(&["CLIENT", "ID"]),
        ClientCommand::Client(ClientSubcommand::Id)
    );
    assert_eq!(
        ok(&["CLIENT", "LIST"]),
        ClientCommand::Client(ClientSubcommand::List)
    );
    assert_eq!(
        ok(&["CLIENT", "LIST", "TYPE", "normal"]),
        ClientCommand::Client(ClientSubcommand::List)
    );
    assert_eq!(
        ok(&["CLIENT", "INFO"]),
        ClientCommand::Client(ClientSubcommand::Info)
    );
    assert_eq!(
        ok(&["CLIENT", "NO-EVICT", "on"]),
        ClientCommand::Client(ClientSubcommand::NoOp)
    );
    assert_eq!(
        ok(&["CLIENT", "no-touch", "OFF"]),
        ClientCommand::Client(ClientSubcommand::NoOp)
    );
    assert_eq!(
        refused(&["CLIENT", "NO-EVICT", "maybe"]),
        "ERR syntax error"
    );
    assert_eq!(
        ok(&["CLIENT", "HELP"]),
        ClientCommand::Client(ClientSubcommand::Help)
    );
}

#[test]
fn command_and_config_forms() {
    assert_eq!(ok(&["COMMAND"]), ClientCommand::Command(Introspection::All));
    assert_eq!(
        ok(&["COMMAND", "COUNT"]),
        ClientCommand::Command(Introspection::Count)
    );
    assert_eq!(
        ok(&["COMMAND", "DOCS"]),
        ClientCommand::Command(Introspection::Docs)
    );
    assert_eq!(
        ok(&["command", "docs", "get"]),
        ClientCommand::Command(Introspection::Docs)
    );
    assert_eq!(
        ok(&["COMMAND", "INFO", "get", "set"]),
        ClientCommand::Command(Introspection::Info {
            names: args(&["get", "set"])
        })
    );
    assert_eq!(
        ok(&["COMMAND", "LIST"]),
        ClientCommand::Command(Introspection::List)
    );
    assert_eq!(
        ok(&["COMMAND", "HELP"]),
        ClientCommand::Command(Introspection::Help)
    );
    assert_eq!(
        ok(&["CONFIG", "GET", "save", "appendonly"]),
        ClientCommand::Config(ConfigSubcommand::Get {
            patterns: args(&["save", "appendonly"])
        })
    );
    assert_eq!(
        ok(&["config", "resetstat"]),
        ClientCommand::Config(ConfigSubcommand::ResetStat)
    );
    assert_eq!(
        ok(&["CONFIG", "HELP"]),
        ClientCommand::Config(ConfigSubcommand::Help)
    );
}

#[test]
fn every_command_knows_its_name() {
    let cases: &[(&[&str], &str)] = &[
        (&["ADDJOB", "q", "b", "0"], "addjob"),
        (&["GETJOB", "FROM", "q"], "getjob"),
        (&["ACKJOB"], "ackjob"),
        (&["FASTACK"], "fastack"),
        (&["NACK"], "nack"),
        (&["WORKING", ID_A], "working"),
        (&["DELJOB"], "deljob"),
        (&["ENQUEUE"], "enqueue"),
        (&["DEQUEUE"], "dequeue"),
        (&["SHOW", ID_A], "show"),
        (&["QLEN", "q"], "qlen"),
        (&["QPEEK", "q", "1"], "qpeek"),
        (&["QSTAT", "q"], "qstat"),
        (&["QSCAN"], "qscan"),
        (&["JSCAN"], "jscan"),
        (&["PAUSE", "q", "in"], "pause"),
        (&["QCONFIG", "q"], "qconfig"),
        (&["HELLO"], "hello"),
        (&["HELLO", "3"], "hello"),
        (&["INFO"], "info"),
        (&["PING"], "ping"),
        (&["ECHO", "x"], "echo"),
        (&["QUIT"], "quit"),
        (&["SELECT", "0"], "select"),
        (&["CLIENT", "ID"], "client"),
        (&["COMMAND"], "command"),
        (&["CONFIG", "GET", "x"], "config"),
    ];
    for (words, name) in cases {
        assert_eq!(ok(words).name(), *name);
    }
}

// ----- Replies ---------------------------------------------------------------

fn delivery(queue: &str, job: &str, body: &'static [u8], nacks: u32, more: u32) -> Delivery {
    Delivery {
        queue: queue.to_string(),
        id: id(job),
        body: Bytes::from_static(body),
        nacks,
        additional_deliveries: more,
    }
}

#[test]
fn addjob_replies_the_id_as_a_status() {
    let reply = reply::added(&id(ID_A));
    assert_eq!(reply, Value::Simple(ID_A.to_string()));
    assert_eq!(
        encoded(&reply, Protocol::Resp2),
        format!("+{ID_A}\r\n").into_bytes()
    );
}

#[test]
fn getjob_replies_queue_id_body_and_counters() {
    let delivered = [
        delivery("q", ID_A, b"one", 0, 0),
        delivery("r", ID_B, b"two", 2, 1),
    ];
    assert_eq!(
        reply::jobs(&delivered, false),
        Value::Array(vec![
            Value::Array(vec![bulk("q"), bulk(ID_A), bulk("one")]),
            Value::Array(vec![bulk("r"), bulk(ID_B), bulk("two")]),
        ])
    );
    assert_eq!(
        reply::jobs(&delivered[1..], true),
        Value::Array(vec![Value::Array(vec![
            bulk("r"),
            bulk(ID_B),
            bulk("two"),
            bulk("nacks"),
            Value::Integer(2),
            bulk("additional-deliveries"),
            Value::Integer(1),
        ])])
    );
    let expected = format!(
        "*1\r\n*7\r\n$1\r\nr\r\n$40\r\n{ID_B}\r\n$3\r\ntwo\r\n$5\r\nnacks\r\n:2\r\n\
         $21\r\nadditional-deliveries\r\n:1\r\n"
    );
    assert_eq!(
        encoded(&reply::jobs(&delivered[1..], true), Protocol::Resp2),
        expected.into_bytes()
    );
}

#[test]
fn getjob_without_jobs_replies_disques_null_array() {
    assert_eq!(reply::jobs(&[], true), Value::NullArray);
    assert_eq!(reply::no_jobs(), Value::NullArray);
    assert_eq!(encoded(&reply::no_jobs(), Protocol::Resp2), b"*-1\r\n");
    assert_eq!(encoded(&reply::no_jobs(), Protocol::Resp3), b"_\r\n");
}

#[test]
fn counts_working_and_qlen_are_integers() {
    assert_eq!(reply::count(3), Value::Integer(3));
    assert_eq!(reply::count(u64::MAX), Value::Integer(i64::MAX));
    assert_eq!(reply::working(30_000), Value::Integer(30));
    assert_eq!(
        reply::working(1_500),
        Value::Integer(1),
        "whole seconds, rounded down"
    );
    assert_eq!(reply::qlen(12), Value::Integer(12));
    assert_eq!(encoded(&reply::count(3), Protocol::Resp3), b":3\r\n");
}

#[test]
fn every_state_machine_response_has_its_reply() {
    let delivered = vec![delivery("q", ID_A, b"x", 1, 0)];
    let cases = [
        (Response::Added(id(ID_A)), Value::Simple(ID_A.to_string())),
        (Response::Jobs(vec![]), Value::NullArray),
        (
            Response::Jobs(delivered.clone()),
            reply::jobs(&delivered, false),
        ),
        (Response::Count(2), Value::Integer(2)),
        (Response::Extended { retry_ms: 60_000 }, Value::Integer(60)),
        (Response::Paused(PauseState::In), Value::simple("in")),
        (Response::Done, Value::ok()),
        (
            Response::Error(QueueError::NoJob),
            Value::error("NOJOB Job not known in the context of this node."),
        ),
        (
            Response::Error(QueueError::Paused),
            Value::error("PAUSED Queue paused in input, try later"),
        ),
    ];
    for (response, expected) in cases {
        assert_eq!(reply::response(&response, false), expected, "{response:?}");
    }
    assert_eq!(
        reply::response(&Response::Jobs(delivered.clone()), true),
        reply::jobs(&delivered, true)
    );
    assert_eq!(
        Value::from(QueueError::MaxLen),
        Value::error("MAXLEN Queue is already longer than the specified MAXLEN count")
    );
    assert_eq!(
        reply::queue_error(&QueueError::TooLate),
        Value::error(
            "TOOLATE Half of job TTL already elapsed, you are no longer allowed to postpone the next delivery."
        )
    );
}

fn job_info(state: JobState, next_event_ms: Option<u64>) -> JobInfo {
    JobInfo {
        id: id(ID_A),
        queue: "q".to_string(),
        state,
        body: Bytes::from_static(b"payload"),
        created_ms: 1_000,
        expires_ms: 101_000,
        retry_ms: 30_000,
        next_event_ms,
        nacks: 2,
        additional_deliveries: 1,
        deliveries: 4,
        delivery_limit: Some(10),
    }
}

fn nodes() -> Vec<String> {
    vec![
        "node-1".to_string(),
        "node-2".to_string(),
        "node-3".to_string(),
    ]
}

fn show_map(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(pairs.into_iter().map(|(k, v)| (bulk(k), v)).collect())
}

#[test]
fn show_lists_disques_fields_in_disques_order_then_synods() {
    // Active, leased until 31_000; now 11_000.
    let job = job_info(JobState::Active, Some(31_000));
    let node_ids = Value::Array(vec![bulk("node-1"), bulk("node-2"), bulk("node-3")]);
    assert_eq!(
        reply::show(Some(&job), 11_000, &nodes()),
        show_map(vec![
            ("id", bulk(ID_A)),
            ("queue", bulk("q")),
            ("state", bulk("active")),
            ("repl", Value::Integer(3)),
            ("ttl", Value::Integer(90)),
            ("ctime", Value::Integer(1_000_000_000)),
            ("delay", Value::Integer(0)),
            ("retry", Value::Integer(30)),
            ("nacks", Value::Integer(2)),
            ("additional-deliveries", Value::Integer(1)),
            ("nodes-delivered", node_ids),
            ("nodes-confirmed", Value::Array(vec![])),
            ("next-requeue-within", Value::Integer(20_000)),
            ("next-awake-within", Value::Integer(20_000)),
            ("body", bulk("payload")),
            ("deliveries", Value::Integer(4)),
            ("delivery-limit", Value::Integer(10)),
        ])
    );
}

#[test]
fn show_of_a_delayed_and_of_a_queued_job() {
    let delayed = job_info(JobState::Delayed, Some(13_500));
    let Value::Map(fields) = reply::show(Some(&delayed), 11_000, &[]) else {
        panic!()
    };
    let field = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == bulk(key))
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(
        field("state"),
        bulk("active"),
        "Disque's state for a delayed job"
    );
    assert_eq!(
        field("delay"),
        Value::Integer(3),
        "2.5 s still to wait, rounded up"
    );
    assert_eq!(field("next-requeue-within"), Value::Integer(2_500));
    assert_eq!(field("repl"), Value::Integer(0));
    assert_eq!(field("nodes-delivered"), Value::Array(vec![]));

    let mut queued = job_info(JobState::Queued, None);
    queued.delivery_limit = None;
    // Past its expiry (not yet applied): nothing goes negative.
    let Value::Map(fields) = reply::show(Some(&queued), 200_000, &[]) else {
        panic!()
    };
    let field = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == bulk(key))
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(field("state"), bulk("queued"));
    assert_eq!(field("next-requeue-within"), Value::Null);
    assert_eq!(field("next-awake-within"), Value::Integer(0));
    assert_eq!(field("ttl"), Value::Integer(0));
    assert_eq!(field("delivery-limit"), Value::Null);
}

#[test]
fn show_encodes_flat_in_resp2_and_as_a_map_in_resp3() {
    let job = job_info(JobState::Active, Some(31_000));
    let value = reply::show(Some(&job), 11_000, &nodes());
    let resp2 = encoded(&value, Protocol::Resp2);
    let resp3 = encoded(&value, Protocol::Resp3);
    assert!(
        resp2.starts_with(b"*34\r\n$2\r\nid\r\n$40\r\n"),
        "17 pairs, flat"
    );
    assert!(resp3.starts_with(b"%17\r\n$2\r\nid\r\n$40\r\n"));
    assert_eq!(reply::show(None, 0, &nodes()), Value::Null);
    assert_eq!(encoded(&Value::Null, Protocol::Resp2), b"$-1\r\n");
}

#[test]
fn qpeek_replies_like_getjob_but_empty_is_an_empty_array() {
    let jobs = [job_info(JobState::Queued, None)];
    assert_eq!(
        reply::qpeek(&jobs),
        Value::Array(vec![Value::Array(vec![
            bulk("q"),
            bulk(ID_A),
            bulk("payload")
        ])])
    );
    assert_eq!(reply::qpeek(&[]), Value::Array(vec![]));
    assert_eq!(encoded(&reply::qpeek(&[]), Protocol::Resp2), b"*0\r\n");
}

#[test]
fn qstat_lists_disques_fields_then_synods() {
    let stats = stats("q", Some(3), "q.dead");
    assert_eq!(
        reply::qstat(Some(&stats), 12_500, 4),
        show_map(vec![
            ("name", bulk("q")),
            ("len", Value::Integer(2)),
            ("age", Value::Integer(11)),
            ("idle", Value::Integer(7)),
            ("blocked", Value::Integer(4)),
            ("import-from", Value::Array(vec![])),
            ("import-rate", Value::Integer(0)),
            ("jobs-in", Value::Integer(7)),
            ("jobs-out", Value::Integer(5)),
            ("pause", bulk("out")),
            ("delivery-limit", Value::Integer(3)),
            ("dead-letter", bulk("q.dead")),
        ])
    );
    assert_eq!(reply::qstat(None, 0, 0), Value::NullArray);
    assert_eq!(
        encoded(&reply::qstat(None, 0, 0), Protocol::Resp2),
        b"*-1\r\n"
    );
    let unlimited = QueueStats {
        delivery_limit: None,
        ..stats
    };
    let Value::Map(fields) = reply::qstat(Some(&unlimited), 0, 0) else {
        panic!()
    };
    assert_eq!(fields[10], (bulk("delivery-limit"), Value::Null));
    assert_eq!(
        fields[2],
        (bulk("age"), Value::Integer(0)),
        "clock behind: no negative age"
    );
}

#[test]
fn pause_replies_the_state_as_a_status() {
    for (state, name) in [
        (PauseState::None, "none"),
        (PauseState::In, "in"),
        (PauseState::Out, "out"),
        (PauseState::All, "all"),
    ] {
        assert_eq!(reply::paused(state), Value::Simple(name.to_string()));
        assert_eq!(reply::pause_name(state), name);
    }
    assert_eq!(
        encoded(&reply::paused(PauseState::In), Protocol::Resp2),
        b"+in\r\n"
    );
}

#[test]
fn qconfig_read_only_reply() {
    assert_eq!(
        reply::queue_config("q", Some(&stats("q", Some(3), "graveyard"))),
        show_map(vec![
            ("delivery-limit", Value::Integer(3)),
            ("dead-letter", bulk("graveyard")),
        ])
    );
    assert_eq!(
        reply::queue_config("q", None),
        show_map(vec![
            ("delivery-limit", Value::Null),
            ("dead-letter", bulk("q.dead"))
        ])
    );
}

#[test]
fn scans_reply_cursor_and_items() {
    let page = Page {
        items: vec!["a".to_string(), "b".to_string()],
        next: Some("c".to_string()),
    };
    assert_eq!(
        reply::qscan(&page),
        Value::Array(vec![bulk("63"), Value::Array(vec![bulk("a"), bulk("b")])])
    );
    let last = Page {
        items: vec![],
        next: None,
    };
    assert_eq!(
        reply::qscan(&last),
        Value::Array(vec![bulk("0"), Value::Array(vec![])])
    );
    assert_eq!(
        reply::empty_scan(),
        Value::Array(vec![bulk("0"), Value::Array(vec![])])
    );

    let job = job_info(JobState::Queued, None);
    let page = Page {
        items: vec![job.clone()],
        next: Some(JobCursor(8)),
    };
    assert_eq!(
        reply::jscan(&page, JobScanReply::Id, 0, &[]),
        Value::Array(vec![
            bulk("8"),
            Value::Array(vec![Value::Simple(ID_A.to_string())])
        ])
    );
    assert_eq!(
        reply::jscan(&page, JobScanReply::All, 5_000, &nodes()),
        Value::Array(vec![
            bulk("8"),
            Value::Array(vec![reply::show(Some(&job), 5_000, &nodes())])
        ])
    );
    assert_eq!(reply::job_cursor_text(None), "0");
    assert_eq!(
        jscan(&["JSCAN", &reply::job_cursor_text(Some(JobCursor(8)))]).cursor,
        JobCursor(8)
    );
}

#[test]
fn bare_hello_lists_the_members_as_disque() {
    let members = [
        HelloNode {
            id: "aaaa".to_string(),
            host: "127.0.0.1".to_string(),
            port: 7711,
            priority: 1,
        },
        HelloNode {
            id: "bbbb".to_string(),
            host: "10.0.0.2".to_string(),
            port: 7712,
            priority: 10,
        },
    ];
    let value = reply::hello_nodes("aaaa", &members);
    assert_eq!(
        value,
        Value::Array(vec![
            Value::Integer(1),
            bulk("aaaa"),
            Value::Array(vec![
                bulk("aaaa"),
                bulk("127.0.0.1"),
                bulk("7711"),
                bulk("1")
            ]),
            Value::Array(vec![
                bulk("bbbb"),
                bulk("10.0.0.2"),
                bulk("7712"),
                bulk("10")
            ]),
        ])
    );
    let resp2 = encoded(&value, Protocol::Resp2);
    assert!(resp2.starts_with(b"*4\r\n:1\r\n$4\r\naaaa\r\n*4\r\n$4\r\naaaa\r\n"));
}

#[test]
fn hello_handshake_is_redis_map() {
    let value = reply::hello_handshake("0.1.0", 42, Protocol::Resp3);
    assert_eq!(
        value,
        show_map(vec![
            ("server", bulk("synod")),
            ("version", bulk("0.1.0")),
            ("proto", Value::Integer(3)),
            ("id", Value::Integer(42)),
            ("mode", bulk("cluster")),
            ("role", bulk("master")),
            ("modules", Value::Array(vec![])),
        ])
    );
    let resp3 = encoded(&value, Protocol::Resp3);
    assert!(resp3.starts_with(b"%7\r\n$6\r\nserver\r\n$5\r\nsynod\r\n"));
    let resp2 = encoded(
        &reply::hello_handshake("0.1.0", 42, Protocol::Resp2),
        Protocol::Resp2,
    );
    assert!(resp2.starts_with(b"*14\r\n$6\r\nserver\r\n"));
    assert!(
        resp2
            .windows(b"$5\r\nproto\r\n:2\r\n".len())
            .any(|w| w == b"$5\r\nproto\r\n:2\r\n")
    );
}

fn sections() -> Vec<InfoSection> {
    vec![
        InfoSection {
            name: "Server".to_string(),
            fields: vec![
                ("synod_version".to_string(), "0.1.0".to_string()),
                ("tcp_port".to_string(), "7711".to_string()),
            ],
        },
        InfoSection {
            name: "Jobs".to_string(),
            fields: vec![("registered_jobs".to_string(), "3".to_string())],
        },
    ]
}

#[test]
fn info_text_and_section_filter() {
    let everything =
        "# Server\r\nsynod_version:0.1.0\r\ntcp_port:7711\r\n\r\n# Jobs\r\nregistered_jobs:3\r\n";
    for wanted in [&[][..], &["all"], &["default"], &["EVERYTHING"]] {
        let wanted: Vec<String> = wanted.iter().map(|w| w.to_string()).collect();
        assert_eq!(reply::info(&sections(), &wanted), Value::text(everything));
    }
    assert_eq!(
        reply::info(&sections(), &["jobs".to_string()]),
        Value::text("# Jobs\r\nregistered_jobs:3\r\n")
    );
    assert_eq!(
        reply::info(&sections(), &["JOBS".to_string(), "server".to_string()]),
        Value::text(everything),
        "sections keep their own order"
    );
    assert_eq!(
        reply::info(&sections(), &["nope".to_string()]),
        Value::text("")
    );
    let jobs = reply::info(&sections(), &["jobs".to_string()]);
    assert_eq!(
        encoded(&jobs, Protocol::Resp2),
        b"$27\r\n# Jobs\r\nregistered_jobs:3\r\n\r\n"
    );
    assert_eq!(
        encoded(&jobs, Protocol::Resp3),
        b"=31\r\ntxt:# Jobs\r\nregistered_jobs:3\r\n\r\n"
    );
}

#[test]
fn ping_echo_and_local_replies() {
    assert_eq!(reply::ping(None), Value::simple("PONG"));
    assert_eq!(reply::ping(Some(&Bytes::from_static(b"hi"))), bulk("hi"));
    let local = |words: &[&str]| reply::local(&ok(words));
    assert_eq!(local(&["PING"]), Some(Value::simple("PONG")));
    assert_eq!(local(&["PING", "x"]), Some(bulk("x")));
    assert_eq!(local(&["ECHO", "x"]), Some(bulk("x")));
    assert_eq!(local(&["QUIT"]), Some(Value::ok()));
    assert_eq!(local(&["SELECT", "0"]), Some(Value::ok()));
    assert_eq!(local(&["COMMAND"]), Some(Value::Array(vec![])));
    assert_eq!(local(&["COMMAND", "COUNT"]), Some(Value::Integer(0)));
    assert_eq!(local(&["COMMAND", "DOCS"]), Some(Value::Map(vec![])));
    assert_eq!(
        local(&["COMMAND", "INFO", "get", "set"]),
        Some(Value::Array(vec![Value::Null, Value::Null]))
    );
    assert_eq!(local(&["COMMAND", "LIST"]), Some(Value::Array(vec![])));
    assert!(matches!(local(&["COMMAND", "HELP"]), Some(Value::Array(lines)) if !lines.is_empty()));
    assert_eq!(
        local(&["CONFIG", "GET", "save"]),
        Some(Value::Map(vec![(bulk("save"), bulk(""))]))
    );
    assert_eq!(local(&["CONFIG", "RESETSTAT"]), Some(Value::ok()));
    assert!(matches!(local(&["CONFIG", "HELP"]), Some(Value::Array(_))));
    assert_eq!(local(&["CLIENT", "NO-EVICT", "on"]), Some(Value::ok()));
    assert!(matches!(local(&["CLIENT", "HELP"]), Some(Value::Array(_))));
    for needs_node in [
        &["CLIENT", "ID"][..],
        &["CLIENT", "SETINFO", "LIB-NAME", "x"],
        &["CLIENT", "GETNAME"],
        &["CLIENT", "SETNAME", "x"],
        &["CLIENT", "LIST"],
        &["CLIENT", "INFO"],
        &["INFO"],
        &["HELLO"],
        &["HELLO", "3"],
        &["QLEN", "q"],
        &["GETJOB", "FROM", "q"],
    ] {
        assert_eq!(local(needs_node), None, "{needs_node:?}");
    }
}

#[test]
fn config_get_matches_globs_without_case() {
    let get = |patterns: &[&str]| reply::config_get(&args(patterns));
    let save = (bulk("save"), bulk(""));
    let appendonly = (bulk("appendonly"), bulk("yes"));
    assert_eq!(get(&["save"]), Value::Map(vec![save.clone()]));
    assert_eq!(get(&["SAVE"]), Value::Map(vec![save.clone()]));
    assert_eq!(get(&["appendonly"]), Value::Map(vec![appendonly.clone()]));
    assert_eq!(
        get(&["save", "appendonly", "*"]),
        Value::Map(vec![save.clone(), appendonly.clone()]),
        "each parameter once"
    );
    assert_eq!(get(&["*only"]), Value::Map(vec![appendonly.clone()]));
    assert_eq!(get(&["s?ve"]), Value::Map(vec![save.clone()]));
    assert_eq!(get(&["[a-s]ave"]), Value::Map(vec![save.clone()]));
    assert_eq!(get(&["[^s]ave"]), Value::Map(vec![]));
    assert_eq!(get(&["\\save"]), Value::Map(vec![save.clone()]));
    assert_eq!(get(&["a*e*d*y"]), Value::Map(vec![appendonly]));
    assert_eq!(get(&["sav"]), Value::Map(vec![]));
    assert_eq!(get(&["maxmemory"]), Value::Map(vec![]));
    assert_eq!(get(&["[save"]), Value::Map(vec![]));
    assert_eq!(
        encoded(&get(&["save"]), Protocol::Resp2),
        b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n"
    );
    assert_eq!(
        encoded(&get(&["save"]), Protocol::Resp3),
        b"%1\r\n$4\r\nsave\r\n$0\r\n\r\n"
    );
    assert_eq!(encoded(&get(&["nope"]), Protocol::Resp2), b"*0\r\n");
}

fn client() -> ClientInfo {
    ClientInfo {
        id: 7,
        addr: "127.0.0.1:50000".to_string(),
        laddr: "127.0.0.1:7711".to_string(),
        name: "worker".to_string(),
        age_secs: 12,
        idle_secs: 3,
        protocol: Protocol::Resp3,
        lib_name: "redis-py".to_string(),
        lib_ver: "7.0.0".to_string(),
        last_command: "client|info".to_string(),
    }
}

#[test]
fn client_info_and_list_lines() {
    let line = "id=7 addr=127.0.0.1:50000 laddr=127.0.0.1:7711 fd=-1 name=worker age=12 idle=3 \
                flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 watch=0 qbuf=0 qbuf-free=0 argv-mem=0 \
                multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=client|info \
                user=default redir=-1 resp=3 lib-name=redis-py lib-ver=7.0.0";
    assert_eq!(reply::client_info_line(&client()), line);
    assert_eq!(
        reply::client_info(&client()),
        Value::text(format!("{line}\n"))
    );
    let mut other = client();
    other.id = 8;
    other.protocol = Protocol::Resp2;
    let list = reply::client_list(&[client(), other.clone()]);
    assert_eq!(
        list,
        Value::text(format!("{line}\n{}\n", reply::client_info_line(&other)))
    );
    assert!(reply::client_info_line(&other).contains(" resp=2 "));
    assert_eq!(reply::client_name(None), Value::Null);
    assert_eq!(reply::client_name(Some(&Bytes::new())), Value::Null);
    assert_eq!(
        reply::client_name(Some(&Bytes::from_static(b"w"))),
        bulk("w")
    );
}

// ----- End to end with the state machine -------------------------------------

#[test]
fn a_job_goes_from_addjob_to_ackjob_through_parse_and_replies() {
    let mut jobs = StateMachine::new();
    let ClientCommand::AddJob(add) = ok(&["ADDJOB", "emails", "hi", "0", "RETRY", "5"]) else {
        panic!()
    };
    let times = add.times().unwrap();
    let job_id = JobId::new(1, [9; 18], times.ttl_ms, times.retry_ms);
    let added = jobs.apply(1_000, Command::Add(add.to_add_job(job_id)));
    assert_eq!(
        reply::response(&added, false),
        Value::Simple(job_id.to_string())
    );

    let get = ok(&["GETJOB", "NOHANG", "WITHCOUNTERS", "FROM", "emails"]);
    let ClientCommand::GetJob(options) = &get else {
        panic!()
    };
    let got = jobs.apply(1_100, get.to_queue_command().unwrap());
    assert_eq!(
        reply::response(&got, options.with_counters),
        Value::Array(vec![Value::Array(vec![
            bulk("emails"),
            bulk(&job_id.to_string()),
            bulk("hi"),
            bulk("nacks"),
            Value::Integer(0),
            bulk("additional-deliveries"),
            Value::Integer(0),
        ])])
    );
    let shown = reply::show(jobs.show(&job_id).as_ref(), jobs.now_ms(), &nodes());
    let Value::Map(fields) = shown else { panic!() };
    assert_eq!(fields[2], (bulk("state"), bulk("active")));
    assert_eq!(
        fields[12],
        (bulk("next-requeue-within"), Value::Integer(5_000))
    );

    let ack = ok(&["ACKJOB", &job_id.to_string()]);
    let acked = jobs.apply(1_200, ack.to_queue_command().unwrap());
    assert_eq!(reply::response(&acked, false), Value::Integer(1));
    let again = jobs.apply(1_300, get.to_queue_command().unwrap());
    assert_eq!(reply::response(&again, false), Value::NullArray);
}

// ----- Never a panic ---------------------------------------------------------

const VOCABULARY: &[&str] = &[
    "ADDJOB",
    "GETJOB",
    "ACKJOB",
    "FASTACK",
    "NACK",
    "WORKING",
    "DELJOB",
    "ENQUEUE",
    "DEQUEUE",
    "SHOW",
    "QLEN",
    "QPEEK",
    "QSTAT",
    "QSCAN",
    "JSCAN",
    "PAUSE",
    "QCONFIG",
    "HELLO",
    "INFO",
    "PING",
    "ECHO",
    "QUIT",
    "SELECT",
    "CLIENT",
    "COMMAND",
    "CONFIG",
    "REPLICATE",
    "DELAY",
    "RETRY",
    "TTL",
    "MAXLEN",
    "ASYNC",
    "DELIVERY-LIMIT",
    "DEAD-LETTER",
    "NONE",
    "NOHANG",
    "TIMEOUT",
    "COUNT",
    "WITHCOUNTERS",
    "FROM",
    "BUSYLOOP",
    "MINLEN",
    "IMPORTRATE",
    "QUEUE",
    "STATE",
    "REPLY",
    "all",
    "id",
    "in",
    "out",
    "none",
    "state",
    "bcast",
    "queued",
    "active",
    "acked",
    "delayed",
    "AUTH",
    "SETNAME",
    "SETINFO",
    "LIB-NAME",
    "GET",
    "DOCS",
    "LIST",
    "on",
    "save",
    "*",
    "[",
    "\\",
    "0",
    "1",
    "2",
    "3",
    "-1",
    "-2",
    "65536",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "+1",
    "",
    " ",
    "6162",
    "ff",
    ID_A,
    ID_B,
];

fn word() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        3 => prop::sample::select(VOCABULARY).prop_map(|w| Bytes::copy_from_slice(w.as_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..12).prop_map(Bytes::from),
    ]
}

fn command_name() -> impl Strategy<Value = Bytes> {
    prop::sample::select(&VOCABULARY[..26]).prop_map(|w| Bytes::copy_from_slice(w.as_bytes()))
}

/// Whatever parse answers must be sendable: one line, and a local reply
/// that encodes in both protocols.
fn check_answer(result: Result<ClientCommand, CommandError>) -> Result<(), TestCaseError> {
    match result {
        Err(error) => {
            let line = error.to_string();
            prop_assert!(!line.contains(['\r', '\n']), "{line:?}");
        }
        Ok(command) => {
            let _ = command.name();
            let _ = command.to_queue_command();
            if let Some(value) = reply::local(&command) {
                for protocol in [Protocol::Resp2, Protocol::Resp3] {
                    let _ = encoded(&value, protocol);
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn parse_never_panics_on_arbitrary_words(words in prop::collection::vec(word(), 0..10)) {
        check_answer(commands::parse(&words))?;
    }

    #[test]
    fn parse_never_panics_on_known_commands(
        name in command_name(),
        rest in prop::collection::vec(word(), 0..10),
    ) {
        let mut words = vec![name];
        words.extend(rest);
        check_answer(commands::parse(&words))?;
    }

    #[test]
    fn config_get_never_panics(patterns in prop::collection::vec(word(), 1..4)) {
        let _ = reply::config_get(&patterns);
    }

    #[test]
    fn queue_cursors_round_trip(name in ".{1,24}") {
        let text = reply::queue_cursor_text(Some(&name));
        let words = vec![Bytes::from_static(b"QSCAN"), Bytes::from(text)];
        let Ok(ClientCommand::QScan(scan)) = commands::parse(&words) else {
            return Err(TestCaseError::fail("cursor refused"));
        };
        prop_assert_eq!(scan.cursor, Some(name));
    }

    #[test]
    fn job_cursors_round_trip(position in 1u64..) {
        let text = reply::job_cursor_text(Some(JobCursor(position)));
        let words = vec![Bytes::from_static(b"JSCAN"), Bytes::from(text)];
        let Ok(ClientCommand::JScan(scan)) = commands::parse(&words) else {
            return Err(TestCaseError::fail("cursor refused"));
        };
        prop_assert_eq!(scan.cursor, JobCursor(position));
    }
}
