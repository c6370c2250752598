//! Why a client command was refused before reaching the state machine.

use thiserror::Error;

use crate::resp::Value;

/// A refused command. `Display` is the whole RESP error line, prefix first,
/// in Disque's (or, for Redis's own commands, Redis 7's) words, because
/// clients match on them.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CommandError {
    /// No such command. Redis shows the name (up to 128 bytes) and the
    /// first arguments (up to 128 bytes in all), each quoted and followed
    /// by a space.
    #[error("ERR unknown command '{name}', with args beginning with: {args}")]
    UnknownCommand {
        /// The name as sent (lossy UTF-8, `\r` and `\n` made spaces).
        name: String,
        /// The quoted arguments, as Redis formats them.
        args: String,
    },
    /// No such subcommand of a container command (`CLIENT`, `COMMAND`,
    /// `CONFIG`).
    #[error("ERR unknown subcommand '{subcommand}'. Try {command} HELP.")]
    UnknownSubcommand {
        /// The subcommand as sent.
        subcommand: String,
        /// The command, uppercase.
        command: String,
    },
    /// The command (or `command|subcommand`) got too many or too few
    /// arguments for its arity.
    #[error("ERR wrong number of arguments for '{command}' command")]
    WrongArity {
        /// The lowercase name, `client|setname` for a subcommand.
        command: String,
    },
    /// Options out of place or unknown.
    #[error("ERR syntax error")]
    Syntax,
    /// A number that is not one, or outside a 64-bit integer.
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// A malformed job id: the whole command is refused, whichever id it is.
    #[error("BADID Invalid Job ID format.")]
    BadId,
    /// ADDJOB's `REPLICATE`.
    #[error("ERR REPLICATE must be between 1 and 65535")]
    ReplicateRange,
    /// ADDJOB's `TTL`.
    #[error("ERR TTL must be a number > 0")]
    TtlNotPositive,
    /// ADDJOB's `RETRY`.
    #[error("ERR RETRY time must be a non negative number")]
    RetryNegative,
    /// ADDJOB's (and Synod's NACK's) `DELAY`.
    #[error("ERR DELAY time must be a non negative number")]
    DelayNegative,
    /// ADDJOB's `MAXLEN`.
    #[error("ERR MAXLEN must be a positive number")]
    MaxLenNotPositive,
    /// ADDJOB's `REPLICATE` above 1 with `RETRY 0`. (Disque's text has the
    /// two spaces.)
    #[error(
        "ERR With RETRY set to 0 please explicitly set  REPLICATE to 1 (at-most-once delivery)"
    )]
    RetryZeroReplicated,
    /// ADDJOB's `DELAY` not below its TTL.
    #[error(
        "ERR The specified DELAY is greater than TTL. Job refused since would never be delivered"
    )]
    DelayNotBelowTtl,
    /// ADDJOB's `REPLICATE` above the cluster size (see
    /// [`AddJobCommand::check_replicate`](super::AddJobCommand::check_replicate)).
    #[error("NOREPL Not enough reachable nodes for the requested replication level")]
    NoRepl,
    /// Synod's `DELIVERY-LIMIT` (ADDJOB, QCONFIG).
    #[error("ERR DELIVERY-LIMIT must be a number between 1 and 4294967295")]
    DeliveryLimitRange,
    /// A timeout (ADDJOB's, GETJOB's) that is not a number.
    #[error("ERR timeout is not an integer or out of range")]
    TimeoutNotInteger,
    /// A negative timeout.
    #[error("ERR timeout is negative")]
    TimeoutNegative,
    /// GETJOB's `COUNT`.
    #[error("ERR COUNT must be a number greater than zero")]
    CountNotPositive,
    /// A scan cursor Synod did not hand out.
    #[error("ERR invalid cursor")]
    InvalidCursor,
    /// JSCAN's `STATE`.
    #[error("ERR Invalid job state name")]
    InvalidJobState,
    /// JSCAN's `REPLY`.
    #[error("ERR Invalid REPLY type, try ID or ALL")]
    InvalidReplyType,
    /// Queue names are kept as text by the state machine.
    #[error("ERR queue name is not valid UTF-8")]
    QueueNameNotUtf8,
    /// HELLO's protocol version is not a number.
    #[error("ERR Protocol version is not an integer or out of range")]
    ProtocolVersionNotInteger,
    /// HELLO's protocol version is neither 2 nor 3.
    #[error("NOPROTO unsupported protocol version")]
    NoProto,
    /// A HELLO option that is unknown or lacks its values.
    #[error("ERR Syntax error in HELLO option '{option}'")]
    HelloOption {
        /// The option as sent.
        option: String,
    },
    /// `CLIENT SETNAME` (or HELLO's `SETNAME`) with a byte outside `!`..`~`.
    #[error("ERR Client names cannot contain spaces, newlines or special characters.")]
    BadClientName,
    /// `CLIENT SETINFO` with an attribute other than LIB-NAME and LIB-VER.
    #[error("ERR Unrecognized option '{option}'")]
    UnrecognizedOption {
        /// The attribute as sent.
        option: String,
    },
    /// `CLIENT SETINFO` with a value holding a byte outside `!`..`~`.
    #[error("ERR {attribute} cannot contain spaces, newlines or special characters.")]
    BadLibraryInfo {
        /// The attribute as sent.
        attribute: String,
    },
    /// `SELECT` of a database other than 0.
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
}

impl From<CommandError> for Value {
    fn from(error: CommandError) -> Self {
        Value::Error(error.to_string())
    }
}
