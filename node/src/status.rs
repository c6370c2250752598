//! `synod status`: asks each member for INFO and prints one line per member.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::resp::{self, ReplyParser, Value};

/// How long to wait for one member.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(2);

/// Sends one command to `addr` and reads its reply.
pub async fn request(addr: SocketAddr, args: &[&str]) -> Result<Value, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let mut out = BytesMut::new();
        resp::encode_request(args, &mut out);
        stream
            .write_all(&out)
            .await
            .map_err(|e| format!("cannot send: {e}"))?;
        stream
            .flush()
            .await
            .map_err(|e| format!("cannot send: {e}"))?;
        let mut parser = ReplyParser::new();
        let mut buf = BytesMut::with_capacity(4096);
        loop {
            if let Some(value) = parser
                .parse(&mut buf)
                .map_err(|e| format!("bad reply: {e}"))?
            {
                return Ok(value);
            }
            let read = stream
                .read_buf(&mut buf)
                .await
                .map_err(|e| format!("cannot read: {e}"))?;
            if read == 0 {
                return Err("connection closed".to_string());
            }
        }
    };
    tokio::time::timeout(MEMBER_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err("no answer in time".to_string()))
}

/// The `key:value` lines of an INFO reply.
pub fn info_fields(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
        .collect()
}

/// Prints the status table; returns how many members did not answer.
pub async fn run(addrs: &[SocketAddr]) -> usize {
    let columns = [
        "role",
        "leader",
        "ballot",
        "chosen_slot",
        "applied_slot",
        "snapshot_slot",
        "jobs",
        "queues",
    ];
    println!(
        "{:<22} {:>4} {:<9} {:>6} {:>10} {:>12} {:>12} {:>13} {:>9} {:>7}",
        "member",
        "id",
        "role",
        "leader",
        "ballot",
        "chosen",
        "applied",
        "snapshot",
        "jobs",
        "queues"
    );
    let mut unreachable = 0;
    for &addr in addrs {
        match request(addr, &["INFO"]).await {
            Ok(Value::Bulk(text)) => {
                let fields = info_fields(&String::from_utf8_lossy(&text));
                let get = |key: &str| {
                    fields
                        .iter()
                        .find(|(k, _)| k == key)
                        .map_or("-", |(_, v)| v.as_str())
                        .to_string()
                };
                let values: Vec<String> = columns.iter().map(|c| get(c)).collect();
                println!(
                    "{:<22} {:>4} {:<9} {:>6} {:>10} {:>12} {:>12} {:>13} {:>9} {:>7}",
                    addr.to_string(),
                    get("node_id"),
                    values[0],
                    values[1],
                    values[2],
                    values[3],
                    values[4],
                    values[5],
                    values[6],
                    values[7]
                );
            }
            Ok(other) => {
                unreachable += 1;
                println!(
                    "{:<22} unexpected reply to INFO: {other:?}",
                    addr.to_string()
                );
            }
            Err(error) => {
                unreachable += 1;
                println!("{:<22} down ({error})", addr.to_string());
            }
        }
    }
    unreachable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_skip_headers_and_blank_lines() {
        let fields = info_fields("# Replication\r\nrole:leader\r\n\r\nballot:3.1\r\n");
        assert_eq!(
            fields,
            vec![
                ("role".to_string(), "leader".to_string()),
                ("ballot".to_string(), "3.1".to_string())
            ]
        );
    }
}
