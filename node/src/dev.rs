//! `synod dev`: a local cluster of child processes, one per member, so that
//! a user can `kill -9` one and watch the others carry on.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::cli::{DevArgs, Fsync};

/// One member's command line: what `synod dev` runs, and what a user runs
/// to start that member again by hand.
fn member_args(args: &DevArgs, id: u64) -> Vec<String> {
    let port = |base: u16, n: u64| u64::from(base) + n - 1;
    let list = |base: u16| {
        (1..=args.members)
            .map(|n| format!("{n}=127.0.0.1:{}", port(base, n)))
            .collect::<Vec<_>>()
            .join(",")
    };
    let fsync = match args.fsync {
        Fsync::Always => "always",
        Fsync::Never => "never",
    };
    vec![
        "node".to_string(),
        "--id".to_string(),
        id.to_string(),
        "--listen".to_string(),
        format!("127.0.0.1:{}", port(args.base_port, id)),
        "--peer-listen".to_string(),
        format!("127.0.0.1:{}", port(args.base_peer_port, id)),
        "--peers".to_string(),
        list(args.base_peer_port),
        "--clients".to_string(),
        list(args.base_port),
        "--data".to_string(),
        args.data.join(format!("node-{id}")).display().to_string(),
        "--fsync".to_string(),
        fsync.to_string(),
    ]
}

/// Copies a child's output lines to ours, each prefixed with its member.
fn forward_output(reader: impl AsyncRead + Unpin + Send + 'static, prefix: String) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            println!("{prefix} {line}");
        }
    });
}

fn spawn_member(exe: &Path, args: &[String], id: u64) -> std::io::Result<Child> {
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let prefix = format!("[node {id}]");
    if let Some(stdout) = child.stdout.take() {
        forward_output(stdout, prefix.clone());
    }
    if let Some(stderr) = child.stderr.take() {
        forward_output(stderr, prefix);
    }
    Ok(child)
}

/// Quotes a word for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
    if word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Runs the cluster until Ctrl-C or SIGTERM. Returns the process exit code.
pub async fn run(args: DevArgs) -> i32 {
    if args.members == 0 || args.members % 2 == 0 {
        eprintln!("synod dev: --members must be odd (got {})", args.members);
        return 2;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(error) => {
            eprintln!("synod dev: cannot find the synod executable: {error}");
            return 1;
        }
    };
    let mut children = Vec::new();
    for id in 1..=args.members {
        let member_args = member_args(&args, id);
        match spawn_member(&exe, &member_args, id) {
            Ok(child) => {
                let command = std::iter::once(exe.display().to_string())
                    .chain(member_args.iter().cloned())
                    .map(|w| shell_word(&w))
                    .collect::<Vec<_>>()
                    .join(" ");
                println!(
                    "member {id}: pid {}, clients on 127.0.0.1:{}\n  restart it by hand with: {command}",
                    child.id().unwrap_or(0),
                    u64::from(args.base_port) + id - 1
                );
                children.push((id, Some(child), command));
            }
            Err(error) => {
                eprintln!("synod dev: cannot start member {id}: {error}");
                return 1;
            }
        }
    }
    println!();
    println!(
        "A {}-member Synod cluster is starting. Connect with:",
        args.members
    );
    println!("  redis-cli -p {}", args.base_port);
    println!("  then e.g.  ADDJOB myqueue \"hello\" 0   /   GETJOB FROM myqueue   /   ACKJOB <id>");
    println!("  cluster state:  synod status    (or: cargo run -p synod -- status)");
    println!(
        "Stop with Ctrl-C. Kill a member (kill -9 <pid>) to watch the others elect a new leader."
    );
    println!();

    let mut terminate = match terminate_signal() {
        Ok(signal) => signal,
        Err(error) => {
            eprintln!("synod dev: cannot listen for SIGTERM: {error}");
            return 1;
        }
    };
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            biased;
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = poll.tick() => {
                for (id, slot, command) in &mut children {
                    let Some(child) = slot else { continue };
                    if let Ok(Some(status)) = child.try_wait() {
                        println!(
                            "synod dev: member {id} exited ({status}); the others keep running. Start it again with:\n  {command}"
                        );
                        *slot = None;
                    }
                }
            }
        }
    }
    println!("synod dev: stopping the members");
    for (_, slot, _) in &mut children {
        if let Some(child) = slot {
            if let Some(pid) = child.id() {
                // SIGTERM lets a member shut down cleanly.
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
        }
    }
    for (id, slot, _) in &mut children {
        if let Some(child) = slot {
            match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    eprintln!("synod dev: member {id} did not stop in time; killing it");
                    let _ = child.kill().await;
                }
            }
        }
    }
    0
}

#[cfg(unix)]
fn terminate_signal() -> std::io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_command_lines_name_every_member() {
        let args = DevArgs {
            members: 3,
            base_port: 7711,
            base_peer_port: 7811,
            data: "synod-data".into(),
            fsync: Fsync::Always,
        };
        let line = member_args(&args, 2).join(" ");
        assert_eq!(
            line,
            "node --id 2 --listen 127.0.0.1:7712 --peer-listen 127.0.0.1:7812 \
             --peers 1=127.0.0.1:7811,2=127.0.0.1:7812,3=127.0.0.1:7813 \
             --clients 1=127.0.0.1:7711,2=127.0.0.1:7712,3=127.0.0.1:7713 \
             --data synod-data/node-2 --fsync always"
        );
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
