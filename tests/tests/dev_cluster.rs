//! `synod dev`, as a user runs it: three child processes, their pids and
//! restart lines printed; a member killed with `kill -9` is reported while
//! the others keep serving; the printed line starts it again and it
//! catches up; SIGTERM stops everything.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use synod::resp::Value;
use system_tests::{Client, TempDir, free_port, synod_bin, text};

/// Waits for a line containing `needle` on `lines`; returns it.
fn wait_line(lines: &mpsc::Receiver<String>, seen: &mut Vec<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(line) = seen.iter().find(|line| line.contains(needle)) {
            return line.clone();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("no line with {needle:?} in:\n{}", seen.join("\n")),
        }
    }
}

fn role(port: u16) -> Option<String> {
    let mut client = Client::new(format!("127.0.0.1:{port}").parse().expect("addr"));
    let Ok(Value::Bulk(info)) = client.call(&["INFO", "replication"]) else {
        return None;
    };
    String::from_utf8_lossy(&info)
        .lines()
        .find_map(|line| line.strip_prefix("role:").map(str::to_string))
}

/// Stops `synod dev` (which stops its members) and any member started by
/// hand, also when the test fails half way.
struct Stop(Vec<u32>);

impl Drop for Stop {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
}

#[test]
fn dev_runs_three_members_that_survive_a_kill_and_a_restart_by_hand() {
    let dir = TempDir::new("dev");
    // synod dev takes consecutive ports from each base.
    let client_base = free_port();
    let peer_base = client_base + 100;
    let mut dev = Command::new(synod_bin())
        .args(["dev", "--data"])
        .arg(dir.path().join("data"))
        .args(["--base-port", &client_base.to_string()])
        .args(["--base-peer-port", &peer_base.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start synod dev");
    let mut stop = Stop(vec![dev.id()]);
    let (sender, lines) = mpsc::channel();
    let stdout = dev.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut pids = Vec::new();
    let mut restart_lines = Vec::new();
    for id in 1..=3 {
        let line = wait_line(&lines, &mut seen, &format!("member {id}: pid "));
        let pid: u32 = line
            .split("pid ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .and_then(|pid| pid.trim().parse().ok())
            .expect("a pid");
        pids.push(pid);
        let restart = wait_line(&lines, &mut seen, &format!("node --id {id} "));
        restart_lines.push(
            restart
                .split("restart it by hand with: ")
                .nth(1)
                .expect("a command line")
                .to_string(),
        );
    }
    wait_line(&lines, &mut seen, "redis-cli -p");

    // A leader emerges; a job goes in through member 1.
    let port = |id: usize| client_base + id as u16 - 1;
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        if let Some(id) = (1..=3).find(|&id| role(port(id)).as_deref() == Some("leader")) {
            break id;
        }
        assert!(Instant::now() < deadline, "no leader");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut one = Client::new(format!("127.0.0.1:{}", port(1)).parse().expect("addr"));
    let id = text(&one.call(&["ADDJOB", "q", "kept", "0"]).expect("ADDJOB")).expect("an id");

    // kill -9 the leader: reported, and the others go on.
    Command::new("kill")
        .args(["-9", &pids[leader - 1].to_string()])
        .status()
        .expect("kill");
    wait_line(&lines, &mut seen, &format!("member {leader} exited"));
    let survivor = (1..=3).find(|&id| id != leader).expect("a survivor");
    let mut client = Client::new(
        format!("127.0.0.1:{}", port(survivor))
            .parse()
            .expect("addr"),
    );
    client.timeout = Duration::from_secs(15);
    let added = client.call(&["ADDJOB", "q", "after", "0"]).expect("ADDJOB");
    assert!(
        text(&added).is_some_and(|t| t.starts_with("D-")),
        "{added:?}"
    );

    // The printed line brings it back, and it catches up.
    let words: Vec<&str> = restart_lines[leader - 1].split(' ').collect();
    let mut again = Command::new(words[0])
        .args(&words[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("restart by hand");
    stop.0.push(again.id());
    let mut back = Client::new(format!("127.0.0.1:{}", port(leader)).parse().expect("addr"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if back.call(&["QLEN", "q"]).ok() == Some(Value::Integer(2)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted member did not catch up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let shown = back.call(&["SHOW", &id]).expect("SHOW");
    assert!(
        matches!(shown, Value::Array(_) | Value::Map(_)),
        "{shown:?}"
    );

    // SIGTERM stops the dev cluster and its members.
    Command::new("kill")
        .args(["-TERM", &dev.id().to_string()])
        .status()
        .expect("kill");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = dev.try_wait() {
            assert!(status.success(), "synod dev exited with {status}");
            break;
        }
        assert!(Instant::now() < deadline, "synod dev did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = again.kill();
    let _ = again.wait();
}
