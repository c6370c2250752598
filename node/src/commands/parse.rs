//! From RESP arguments to a [`ClientCommand`], following Disque's grammar:
//! options are matched without regard to case, an option that takes a value
//! is only one when a value follows it (otherwise: syntax error), a repeated
//! option's last value wins, and errors come in the order Disque checks.

use std::str::FromStr;

use bytes::Bytes;
use queue::{DEFAULT_TTL_MS, JobCursor, JobFilter, JobId, JobState, PauseState, QueueFilter};

use super::{
    AddJobCommand, ClientCommand, ClientSubcommand, CommandError, ConfigSubcommand,
    DEFAULT_SCAN_COUNT, GetJobCommand, Introspection, JobScan, JobScanReply, LibraryAttribute,
    QueueConfig, QueueScan,
};
use crate::resp::Protocol;

/// Every command with its arity, Redis's convention: `n` exactly `n`
/// arguments counting the name, `-n` at least `n`. Disque's arities for its
/// commands, Redis 7's for Redis's.
const COMMANDS: &[(&str, i32)] = &[
    ("addjob", -4),
    ("getjob", -2),
    ("ackjob", -1),
    ("fastack", -1),
    ("nack", -1),
    ("working", 2),
    ("deljob", -1),
    ("enqueue", -1),
    ("dequeue", -1),
    ("show", 2),
    ("qlen", 2),
    ("qpeek", 3),
    ("qstat", 2),
    ("qscan", -1),
    ("jscan", -1),
    ("pause", -3),
    ("qconfig", -2),
    ("hello", -1),
    ("info", -1),
    ("ping", -1),
    ("echo", 2),
    ("quit", -1),
    ("select", 2),
    ("client", -2),
    ("command", -1),
    ("config", -2),
];

/// The subcommands of `CLIENT`, with their arities (counting `CLIENT`).
const CLIENT_SUBCOMMANDS: &[(&str, i32)] = &[
    ("setname", 3),
    ("getname", 2),
    ("setinfo", 4),
    ("id", 2),
    ("list", -2),
    ("info", 2),
    ("no-evict", 3),
    ("no-touch", 3),
    ("help", 2),
];

/// The subcommands of `COMMAND`.
const COMMAND_SUBCOMMANDS: &[(&str, i32)] = &[
    ("count", 2),
    ("docs", -2),
    ("info", -2),
    ("list", -2),
    ("help", 2),
];

/// The subcommands of `CONFIG`.
const CONFIG_SUBCOMMANDS: &[(&str, i32)] = &[("get", -3), ("resetstat", 2), ("help", 2)];

/// Redis shows at most this many bytes of an unknown command's name, and of
/// its arguments in all.
const UNKNOWN_COMMAND_SHOWN_BYTES: usize = 128;

/// Parses one command: `args[0]` is its name (any case), the rest its
/// arguments. Never panics, whatever the arguments.
pub fn parse(args: &[Bytes]) -> Result<ClientCommand, CommandError> {
    let Some((name, rest)) = args.split_first() else {
        return Err(unknown_command(b"", &[]));
    };
    let Some(command) = lookup(COMMANDS, name, args.len(), "")? else {
        return Err(unknown_command(name, rest));
    };
    match command {
        "addjob" => parse_addjob(rest).map(ClientCommand::AddJob),
        "getjob" => parse_getjob(rest).map(ClientCommand::GetJob),
        "ackjob" => Ok(ClientCommand::AckJob {
            ids: parse_ids(rest)?,
        }),
        "fastack" => Ok(ClientCommand::FastAck {
            ids: parse_ids(rest)?,
        }),
        "nack" => parse_nack(rest),
        "working" => Ok(ClientCommand::Working {
            id: parse_id(nth(rest, 0, command)?)?,
        }),
        "deljob" => Ok(ClientCommand::DelJob {
            ids: parse_ids(rest)?,
        }),
        "enqueue" => Ok(ClientCommand::Enqueue {
            ids: parse_ids(rest)?,
        }),
        "dequeue" => Ok(ClientCommand::Dequeue {
            ids: parse_ids(rest)?,
        }),
        "show" => Ok(ClientCommand::Show {
            id: parse_id(nth(rest, 0, command)?)?,
        }),
        "qlen" => Ok(ClientCommand::QLen {
            queue: queue_name(nth(rest, 0, command)?)?,
        }),
        "qpeek" => {
            let count = parse_i64(nth(rest, 1, command)?).ok_or(CommandError::NotInteger)?;
            Ok(ClientCommand::QPeek {
                queue: queue_name(nth(rest, 0, command)?)?,
                count,
            })
        }
        "qstat" => Ok(ClientCommand::QStat {
            queue: queue_name(nth(rest, 0, command)?)?,
        }),
        "qscan" => parse_qscan(rest).map(ClientCommand::QScan),
        "jscan" => parse_jscan(rest).map(ClientCommand::JScan),
        "pause" => parse_pause(rest),
        "qconfig" => parse_qconfig(rest).map(ClientCommand::QConfig),
        "hello" => parse_hello(rest),
        "info" => Ok(ClientCommand::Info {
            sections: rest
                .iter()
                .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
                .collect(),
        }),
        "ping" => match rest {
            [] => Ok(ClientCommand::Ping { message: None }),
            [message] => Ok(ClientCommand::Ping {
                message: Some(message.clone()),
            }),
            // Redis's arity for PING is -1 but it takes at most one message.
            _ => Err(wrong_arity("ping")),
        },
        "echo" => Ok(ClientCommand::Echo {
            message: nth(rest, 0, command)?.clone(),
        }),
        "quit" => Ok(ClientCommand::Quit),
        "select" => match parse_i64(nth(rest, 0, command)?) {
            None => Err(CommandError::NotInteger),
            Some(0) => Ok(ClientCommand::Select),
            Some(_) => Err(CommandError::DbIndexOutOfRange),
        },
        "client" => parse_client(name, rest).map(ClientCommand::Client),
        "command" => parse_command(name, rest).map(ClientCommand::Command),
        "config" => parse_config(name, rest).map(ClientCommand::Config),
        // The table and this match name the same commands.
        _ => Err(unknown_command(name, rest)),
    }
}

/// Finds `name` in `table` and checks the arity against `argc` (all the
/// arguments, the command's name included). `Ok(None)` when unknown.
/// `container` is the parent command's name for a subcommand, so the arity
/// error reads `client|setname`.
fn lookup(
    table: &[(&'static str, i32)],
    name: &[u8],
    argc: usize,
    container: &str,
) -> Result<Option<&'static str>, CommandError> {
    let Some(&(found, arity)) = table
        .iter()
        .find(|(candidate, _)| name.eq_ignore_ascii_case(candidate.as_bytes()))
    else {
        return Ok(None);
    };
    let needed = arity.unsigned_abs() as usize;
    let fits = if arity >= 0 {
        argc == needed
    } else {
        argc >= needed
    };
    if !fits {
        let command = if container.is_empty() {
            found.to_string()
        } else {
            format!("{container}|{found}")
        };
        return Err(CommandError::WrongArity { command });
    }
    Ok(Some(found))
}

/// The argument at `index`, which the arity check guarantees; the arity
/// error rather than a panic should the table and the parser ever disagree.
fn nth<'a>(args: &'a [Bytes], index: usize, command: &str) -> Result<&'a Bytes, CommandError> {
    args.get(index).ok_or_else(|| wrong_arity(command))
}

fn wrong_arity(command: &str) -> CommandError {
    CommandError::WrongArity {
        command: command.to_string(),
    }
}

/// Redis's unknown-command error: the name and the arguments as far as
/// 128 bytes go, each argument quoted and followed by a space.
fn unknown_command(name: &[u8], rest: &[Bytes]) -> CommandError {
    let name = shown(&name[..name.len().min(UNKNOWN_COMMAND_SHOWN_BYTES)]);
    let mut args = String::new();
    for arg in rest {
        if args.len() >= UNKNOWN_COMMAND_SHOWN_BYTES {
            break;
        }
        let budget = UNKNOWN_COMMAND_SHOWN_BYTES - args.len();
        args.push('\'');
        args.push_str(&shown(&arg[..arg.len().min(budget)]));
        args.push_str("' ");
    }
    CommandError::UnknownCommand { name, args }
}

/// Client bytes as error text: lossy UTF-8 with `\r` and `\n` made spaces,
/// as Redis does, so that the error line cannot end early.
fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace(['\r', '\n'], " ")
}

fn unknown_subcommand(command: &[u8], subcommand: &[u8]) -> CommandError {
    CommandError::UnknownSubcommand {
        subcommand: shown(&subcommand[..subcommand.len().min(UNKNOWN_COMMAND_SHOWN_BYTES)]),
        command: shown(command).to_ascii_uppercase(),
    }
}

/// True if `arg` is the keyword `word` (given lowercase), in any case.
fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// An integer as Disque reads one (`strtoll` over the whole argument): an
/// optional sign, then at least one decimal digit, nothing else, within
/// 64 bits.
fn parse_i64(arg: &[u8]) -> Option<i64> {
    let digits = match arg.first() {
        Some(b'+' | b'-') => &arg[1..],
        _ => arg,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}

/// Seconds, as Disque's options give them, in milliseconds.
fn seconds_to_ms(seconds: i64) -> u64 {
    seconds.max(0).unsigned_abs().saturating_mul(1000)
}

/// A queue name. The state machine keeps names as text.
fn queue_name(arg: &Bytes) -> Result<String, CommandError> {
    std::str::from_utf8(arg)
        .map(str::to_string)
        .map_err(|_| CommandError::QueueNameNotUtf8)
}

fn queue_names(args: &[Bytes]) -> Result<Vec<String>, CommandError> {
    args.iter().map(queue_name).collect()
}

fn parse_id(arg: &[u8]) -> Result<JobId, CommandError> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|text| JobId::from_str(text).ok())
        .ok_or(CommandError::BadId)
}

/// Every id, or `BADID` if any is malformed: as Disque, nothing is done
/// unless all are valid.
fn parse_ids(args: &[Bytes]) -> Result<Vec<JobId>, CommandError> {
    args.iter().map(|arg| parse_id(arg)).collect()
}

/// A timeout in milliseconds as Disque reads one; 0 (no timeout) is `None`.
fn parse_timeout(arg: &[u8]) -> Result<Option<u64>, CommandError> {
    match parse_i64(arg) {
        None => Err(CommandError::TimeoutNotInteger),
        Some(ms) if ms < 0 => Err(CommandError::TimeoutNegative),
        Some(0) => Ok(None),
        Some(ms) => Ok(Some(ms.unsigned_abs())),
    }
}

fn parse_delivery_limit(arg: &[u8]) -> Result<u32, CommandError> {
    parse_i64(arg)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n > 0)
        .ok_or(CommandError::DeliveryLimitRange)
}

fn parse_addjob(args: &[Bytes]) -> Result<AddJobCommand, CommandError> {
    let [queue, body, timeout, options @ ..] = args else {
        return Err(wrong_arity("addjob"));
    };
    let mut replicate = None;
    let mut delay_seconds = None;
    let mut retry_seconds = None;
    let mut ttl_seconds = None;
    let mut max_len = None;
    let mut delivery_limit = None;
    let mut asynchronous = false;
    let mut i = 0;
    while let Some(option) = options.get(i) {
        let value = options.get(i + 1);
        match value {
            Some(value) if is(option, "replicate") => {
                let copies = parse_i64(value)
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|&n| n > 0)
                    .ok_or(CommandError::ReplicateRange)?;
                replicate = Some(copies);
            }
            Some(value) if is(option, "ttl") => {
                let seconds = parse_i64(value)
                    .filter(|&n| n > 0)
                    .ok_or(CommandError::TtlNotPositive)?;
                ttl_seconds = Some(seconds);
            }
            Some(value) if is(option, "retry") => {
                let seconds = parse_i64(value)
                    .filter(|&n| n >= 0)
                    .ok_or(CommandError::RetryNegative)?;
                retry_seconds = Some(seconds);
            }
            Some(value) if is(option, "delay") => {
                let seconds = parse_i64(value)
                    .filter(|&n| n >= 0)
                    .ok_or(CommandError::DelayNegative)?;
                delay_seconds = Some(seconds);
            }
            Some(value) if is(option, "maxlen") => {
                let count = parse_i64(value)
                    .filter(|&n| n > 0)
                    .ok_or(CommandError::MaxLenNotPositive)?;
                max_len = Some(count.unsigned_abs());
            }
            Some(value) if is(option, "delivery-limit") => {
                delivery_limit = Some(parse_delivery_limit(value)?);
            }
            _ if is(option, "async") => {
                asynchronous = true;
                i += 1;
                continue;
            }
            _ => return Err(CommandError::Syntax),
        }
        i += 2;
    }
    // Disque reads the timeout after the options.
    let timeout_ms = parse_timeout(timeout)?;
    // Only an explicit REPLICATE counts here: Synod's default replication
    // is the consensus group, which cannot deliver a RETRY 0 job twice.
    if replicate.is_some_and(|copies| copies > 1) && retry_seconds == Some(0) {
        return Err(CommandError::RetryZeroReplicated);
    }
    let ttl_for_check = ttl_seconds.unwrap_or((DEFAULT_TTL_MS / 1000) as i64);
    if delay_seconds.unwrap_or(0) >= ttl_for_check {
        return Err(CommandError::DelayNotBelowTtl);
    }
    Ok(AddJobCommand {
        queue: queue_name(queue)?,
        body: body.clone(),
        timeout_ms,
        replicate,
        delay_ms: delay_seconds.map(seconds_to_ms),
        retry_ms: retry_seconds.map(seconds_to_ms),
        ttl_ms: ttl_seconds.map(seconds_to_ms),
        max_len,
        asynchronous,
        delivery_limit,
    })
}

fn parse_getjob(args: &[Bytes]) -> Result<GetJobCommand, CommandError> {
    let mut count = 1u32;
    let mut timeout_ms = None;
    let mut nohang = false;
    let mut with_counters = false;
    let mut queues = None;
    let mut i = 0;
    while let Some(option) = args.get(i) {
        let value = args.get(i + 1);
        if is(option, "nohang") {
            nohang = true;
        } else if is(option, "withcounters") {
            with_counters = true;
        } else if let (true, Some(value)) = (is(option, "timeout"), value) {
            timeout_ms = parse_timeout(value)?;
            i += 1;
        } else if let (true, Some(value)) = (is(option, "count"), value) {
            let n = parse_i64(value)
                .filter(|&n| n > 0)
                .ok_or(CommandError::CountNotPositive)?;
            // More than u32::MAX jobs cannot be handed out anyway.
            count = u32::try_from(n).unwrap_or(u32::MAX);
            i += 1;
        } else if is(option, "from") {
            queues = Some(args.get(i + 1..).unwrap_or_default());
            break;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    let queues = match queues {
        Some(names) if !names.is_empty() => queue_names(names)?,
        _ => return Err(CommandError::Syntax),
    };
    Ok(GetJobCommand {
        queues,
        count,
        timeout_ms,
        nohang,
        with_counters,
    })
}

fn parse_nack(args: &[Bytes]) -> Result<ClientCommand, CommandError> {
    let (delay_ms, ids) = match args {
        [option, value, ids @ ..] if is(option, "delay") => {
            let seconds = parse_i64(value)
                .filter(|&n| n >= 0)
                .ok_or(CommandError::DelayNegative)?;
            (seconds_to_ms(seconds), ids)
        }
        ids => (0, ids),
    };
    Ok(ClientCommand::Nack {
        ids: parse_ids(ids)?,
        delay_ms,
    })
}

/// A scan's count option: any 64-bit integer, as Disque's `getLong`; a
/// negative count examines as little as 0 (one item).
fn parse_scan_count(arg: &[u8]) -> Result<usize, CommandError> {
    let n = parse_i64(arg).ok_or(CommandError::NotInteger)?;
    Ok(usize::try_from(n.max(0)).unwrap_or(usize::MAX))
}

/// A QSCAN cursor: `0`, or a queue name as lowercase hex of its bytes, so
/// that any name travels as a plain word.
fn parse_queue_cursor(arg: &[u8]) -> Result<Option<String>, CommandError> {
    if arg == b"0" {
        return Ok(None);
    }
    if arg.is_empty() || arg.len() % 2 != 0 {
        return Err(CommandError::InvalidCursor);
    }
    let bytes = arg
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            // `from_str_radix` takes a sign; a cursor has none.
            if !pair.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            u8::from_str_radix(text, 16).ok()
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or(CommandError::InvalidCursor)?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| CommandError::InvalidCursor)
}

/// A JSCAN cursor: the decimal `JobCursor`, `0` to start.
fn parse_job_cursor(arg: &[u8]) -> Result<JobCursor, CommandError> {
    if arg.is_empty() || !arg.iter().all(u8::is_ascii_digit) {
        return Err(CommandError::InvalidCursor);
    }
    std::str::from_utf8(arg)
        .ok()
        .and_then(|text| text.parse().ok())
        .map(JobCursor)
        .ok_or(CommandError::InvalidCursor)
}

fn parse_qscan(args: &[Bytes]) -> Result<QueueScan, CommandError> {
    let mut scan = QueueScan {
        cursor: None,
        count: DEFAULT_SCAN_COUNT,
        busyloop: false,
        filter: QueueFilter::default(),
        nothing_matches: false,
    };
    // Kept apart so that a repeated option replaces only its own verdict.
    let (mut max_excludes_all, mut rate_excludes_all) = (false, false);
    let mut cursor_set = false;
    let mut i = 0;
    while let Some(option) = args.get(i) {
        let value = args.get(i + 1);
        match value {
            Some(value) if is(option, "count") => {
                scan.count = parse_scan_count(value)?;
                i += 1;
            }
            _ if is(option, "busyloop") => scan.busyloop = true,
            Some(value) if is(option, "minlen") => {
                let min = parse_i64(value).ok_or(CommandError::NotInteger)?;
                // A negative minimum excludes nothing.
                scan.filter.min_len = usize::try_from(min).ok();
                i += 1;
            }
            Some(value) if is(option, "maxlen") => {
                let max = parse_i64(value).ok_or(CommandError::NotInteger)?;
                // -1 is Disque's "unset"; below that, every length is above.
                scan.filter.max_len = usize::try_from(max).ok();
                max_excludes_all = max < -1;
                i += 1;
            }
            Some(value) if is(option, "importrate") => {
                let rate = parse_i64(value).ok_or(CommandError::NotInteger)?;
                rate_excludes_all = rate > 0;
                i += 1;
            }
            // Disque takes the first word that is no option as the cursor,
            // wherever it is.
            _ if cursor_set => return Err(CommandError::Syntax),
            _ => {
                scan.cursor = parse_queue_cursor(option)?;
                cursor_set = true;
            }
        }
        i += 1;
    }
    scan.nothing_matches = max_excludes_all || rate_excludes_all;
    Ok(scan)
}

/// The Synod states a JSCAN `STATE` name stands for.
fn job_states(name: &[u8]) -> Result<&'static [JobState], CommandError> {
    if is(name, "active") {
        // A delayed job is active in Disque (state active, qtime set).
        Ok(&[JobState::Active, JobState::Delayed])
    } else if is(name, "queued") {
        Ok(&[JobState::Queued])
    } else if is(name, "delayed") {
        Ok(&[JobState::Delayed])
    } else if is(name, "wait-repl") || is(name, "acked") {
        // Valid in Disque; no Synod job is ever in these states.
        Ok(&[])
    } else {
        Err(CommandError::InvalidJobState)
    }
}

fn parse_jscan(args: &[Bytes]) -> Result<JobScan, CommandError> {
    let mut scan = JobScan {
        cursor: JobCursor::START,
        count: DEFAULT_SCAN_COUNT,
        busyloop: false,
        filter: JobFilter::default(),
        nothing_matches: false,
        reply: JobScanReply::Id,
    };
    let mut states_named = false;
    let mut cursor_set = false;
    let mut i = 0;
    while let Some(option) = args.get(i) {
        let value = args.get(i + 1);
        match value {
            Some(value) if is(option, "count") => {
                scan.count = parse_scan_count(value)?;
                i += 1;
            }
            _ if is(option, "busyloop") => scan.busyloop = true,
            Some(value) if is(option, "queue") => {
                scan.filter.queue = Some(queue_name(value)?);
                i += 1;
            }
            Some(value) if is(option, "state") => {
                states_named = true;
                for &state in job_states(value)? {
                    if !scan.filter.states.contains(&state) {
                        scan.filter.states.push(state);
                    }
                }
                i += 1;
            }
            Some(value) if is(option, "reply") => {
                scan.reply = if is(value, "id") {
                    JobScanReply::Id
                } else if is(value, "all") {
                    JobScanReply::All
                } else {
                    return Err(CommandError::InvalidReplyType);
                };
                i += 1;
            }
            _ if cursor_set => return Err(CommandError::Syntax),
            _ => {
                scan.cursor = parse_job_cursor(option)?;
                cursor_set = true;
            }
        }
        i += 1;
    }
    scan.nothing_matches = states_named && scan.filter.states.is_empty();
    Ok(scan)
}

fn parse_pause(args: &[Bytes]) -> Result<ClientCommand, CommandError> {
    let [queue, options @ ..] = args else {
        return Err(wrong_arity("pause"));
    };
    // As Disque: the options build the new state from nothing (`none`
    // clears what came before it); `state` and `bcast` change nothing.
    let (mut paused_in, mut paused_out, mut update, mut bcast) = (false, false, false, false);
    for option in options {
        if is(option, "none") {
            (paused_in, paused_out) = (false, false);
            update = true;
        } else if is(option, "in") {
            paused_in = true;
            update = true;
        } else if is(option, "out") {
            paused_out = true;
            update = true;
        } else if is(option, "all") {
            (paused_in, paused_out) = (true, true);
            update = true;
        } else if is(option, "bcast") {
            bcast = true;
        } else if !is(option, "state") {
            return Err(CommandError::Syntax);
        }
    }
    let state = match (paused_in, paused_out) {
        (false, false) => PauseState::None,
        (true, false) => PauseState::In,
        (false, true) => PauseState::Out,
        (true, true) => PauseState::All,
    };
    Ok(ClientCommand::Pause {
        queue: queue_name(queue)?,
        set: update.then_some(state),
        bcast,
    })
}

fn parse_qconfig(args: &[Bytes]) -> Result<QueueConfig, CommandError> {
    let [queue, options @ ..] = args else {
        return Err(wrong_arity("qconfig"));
    };
    let mut config = QueueConfig {
        queue: queue_name(queue)?,
        delivery_limit: None,
        dead_letter: None,
    };
    let mut pairs = options.chunks(2);
    for pair in pairs.by_ref() {
        let [option, value] = pair else {
            return Err(CommandError::Syntax);
        };
        if is(option, "delivery-limit") {
            config.delivery_limit = Some(if is(value, "none") {
                None
            } else {
                Some(parse_delivery_limit(value)?)
            });
        } else if is(option, "dead-letter") {
            config.dead_letter = Some(if is(value, "none") {
                None
            } else {
                Some(queue_name(value)?)
            });
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(config)
}

fn parse_hello(args: &[Bytes]) -> Result<ClientCommand, CommandError> {
    let Some((version, options)) = args.split_first() else {
        return Ok(ClientCommand::DisqueHello);
    };
    let protocol = match parse_i64(version) {
        None => return Err(CommandError::ProtocolVersionNotInteger),
        Some(2) => Protocol::Resp2,
        Some(3) => Protocol::Resp3,
        Some(_) => return Err(CommandError::NoProto),
    };
    let mut auth = None;
    let mut client_name = None;
    let mut i = 0;
    while let Some(option) = options.get(i) {
        let more = options.len() - i - 1;
        if is(option, "auth") && more >= 2 {
            if let (Some(user), Some(password)) = (options.get(i + 1), options.get(i + 2)) {
                auth = Some((user.clone(), password.clone()));
            }
            i += 3;
        } else if let (true, Some(name)) = (is(option, "setname") && more >= 1, options.get(i + 1))
        {
            client_name = Some(client_name_arg(name)?);
            i += 2;
        } else {
            return Err(CommandError::HelloOption {
                option: shown(option),
            });
        }
    }
    Ok(ClientCommand::Hello {
        protocol,
        auth,
        client_name,
    })
}

/// True for bytes Redis allows in client names and library info: `!`..`~`.
fn is_plain_word(value: &[u8]) -> bool {
    value.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

fn client_name_arg(name: &Bytes) -> Result<Bytes, CommandError> {
    if is_plain_word(name) {
        Ok(name.clone())
    } else {
        Err(CommandError::BadClientName)
    }
}

fn parse_client(command: &[u8], args: &[Bytes]) -> Result<ClientSubcommand, CommandError> {
    let Some(sub) = args.first() else {
        return Err(wrong_arity("client"));
    };
    let Some(found) = lookup(CLIENT_SUBCOMMANDS, sub, args.len() + 1, "client")? else {
        return Err(unknown_subcommand(command, sub));
    };
    Ok(match found {
        "setname" => ClientSubcommand::SetName(client_name_arg(nth(args, 1, "client|setname")?)?),
        "getname" => ClientSubcommand::GetName,
        "setinfo" => {
            let (attribute, value) = (
                nth(args, 1, "client|setinfo")?,
                nth(args, 2, "client|setinfo")?,
            );
            let parsed = if is(attribute, "lib-name") {
                LibraryAttribute::Name
            } else if is(attribute, "lib-ver") {
                LibraryAttribute::Version
            } else {
                return Err(CommandError::UnrecognizedOption {
                    option: shown(attribute),
                });
            };
            if !is_plain_word(value) {
                return Err(CommandError::BadLibraryInfo {
                    attribute: shown(attribute),
                });
            }
            ClientSubcommand::SetInfo {
                attribute: parsed,
                value: value.clone(),
            }
        }
        "id" => ClientSubcommand::Id,
        "list" => ClientSubcommand::List,
        "info" => ClientSubcommand::Info,
        "no-evict" | "no-touch" => {
            let switch = nth(args, 1, "client")?;
            if !(is(switch, "on") || is(switch, "off")) {
                return Err(CommandError::Syntax);
            }
            ClientSubcommand::NoOp
        }
        _ => ClientSubcommand::Help,
    })
}

fn parse_command(command: &[u8], args: &[Bytes]) -> Result<Introspection, CommandError> {
    let Some(sub) = args.first() else {
        return Ok(Introspection::All);
    };
    let Some(found) = lookup(COMMAND_SUBCOMMANDS, sub, args.len() + 1, "command")? else {
        return Err(unknown_subcommand(command, sub));
    };
    Ok(match found {
        "count" => Introspection::Count,
        "docs" => Introspection::Docs,
        "info" => Introspection::Info {
            names: args.get(1..).unwrap_or_default().to_vec(),
        },
        "list" => Introspection::List,
        _ => Introspection::Help,
    })
}

fn parse_config(command: &[u8], args: &[Bytes]) -> Result<ConfigSubcommand, CommandError> {
    let Some(sub) = args.first() else {
        return Err(wrong_arity("config"));
    };
    let Some(found) = lookup(CONFIG_SUBCOMMANDS, sub, args.len() + 1, "config")? else {
        return Err(unknown_subcommand(command, sub));
    };
    Ok(match found {
        "get" => ConfigSubcommand::Get {
            patterns: args.get(1..).unwrap_or_default().to_vec(),
        },
        "resetstat" => ConfigSubcommand::ResetStat,
        _ => ConfigSubcommand::Help,
    })
}
