//! A harness for tests of the whole system: real `synod node` processes on
//! loopback, on free ports, with data in a temporary directory, and a small
//! blocking RESP client to talk to them.
//!
//! The `synod` binary is the one cargo built for this workspace (the test
//! binary's sibling in `target/<profile>/`), or `SYNOD_BIN` if set.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use synod::resp::{self, ReplyParser, Value};

/// The `synod` executable to run: `SYNOD_BIN` if set, else the workspace's
/// own, built (or brought up to date) once per test process with the
/// profile this test was built with, so a test never runs a stale server.
pub fn synod_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("SYNOD_BIN") {
            return PathBuf::from(path);
        }
        let profile_dir = profile_dir();
        let target_dir = target_dir();
        let profile = profile_dir
            .file_name()
            .and_then(|name| name.to_str())
            .expect("profile dir name");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "-p", "synod", "--bin", "synod"])
            .arg("--target-dir")
            .arg(&target_dir);
        if profile == "release" {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "cargo build -p synod failed");
        let bin = profile_dir.join(format!("synod{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "no synod binary at {}", bin.display());
        bin
    })
    .clone()
}

/// The profile directory this test binary was built into,
/// `target/<profile>` (the binary itself is in its `deps/`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// The cargo target directory this test binary was built into: where
/// tests keep what they build or install once and reuse.
pub fn target_dir() -> PathBuf {
    profile_dir().parent().expect("target dir").to_path_buf()
}

/// A port nobody listens on right now, and that no other call in this
/// process has handed out. Ports come from below the kernel's ephemeral
/// range (32768 and up on Linux): asking the kernel for a free port (port
/// 0) can hand out the same one twice, or one that an outgoing connection
/// then takes as its source port before the member binds it. Each test
/// process starts at its own offset, so parallel test binaries rarely meet.
pub fn free_port() -> u16 {
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: Mutex<Option<u32>> = Mutex::new(None);
    let mut next = NEXT.lock().expect("port counter");
    let offset = next.get_or_insert_with(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        (std::process::id().wrapping_mul(7_919) ^ nanos) % SPAN
    });
    for _ in 0..SPAN {
        let port = (FIRST + *offset % SPAN) as u16;
        *offset += 1;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {FIRST} and {}", FIRST + SPAN)
}

/// A fresh directory under the system's temp dir, removed on drop unless
/// the test failed (so its logs and data can be looked at).
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<tmp>/synod-<name>-<pid>-<nanos>`.
    pub fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("synod-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("keeping {} for inspection", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// One member's fixed identity: how to start it again the same way.
#[derive(Clone, Debug)]
pub struct MemberSpec {
    /// Its id.
    pub id: u64,
    /// Its client address.
    pub client: SocketAddr,
    /// Its data directory.
    pub data: PathBuf,
    /// Its whole command line after the binary.
    pub args: Vec<String>,
    /// Where its output goes.
    pub log: PathBuf,
}

/// A cluster of `synod node` processes.
pub struct Cluster {
    /// The members, by id.
    pub specs: BTreeMap<u64, MemberSpec>,
    children: BTreeMap<u64, Child>,
    /// Keeps the data and logs.
    pub dir: TempDir,
}

impl Cluster {
    /// Starts `size` members on free ports.
    pub fn start(name: &str, size: u64) -> Cluster {
        Self::start_with(name, size, &[])
    }

    /// Starts `size` members, each with `extra` arguments added.
    pub fn start_with(name: &str, size: u64, extra: &[&str]) -> Cluster {
        let dir = TempDir::new(name);
        let clients: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let peers: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let list = |ports: &[u16]| {
            ports
                .iter()
                .enumerate()
                .map(|(i, port)| format!("{}=127.0.0.1:{port}", i + 1))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut specs = BTreeMap::new();
        for id in 1..=size {
            let i = (id - 1) as usize;
            let data = dir.path().join(format!("node-{id}"));
            let mut args: Vec<String> = [
                "node",
                "--id",
                &id.to_string(),
                "--listen",
                &format!("127.0.0.1:{}", clients[i]),
                "--peer-listen",
                &format!("127.0.0.1:{}", peers[i]),
                "--peers",
                &list(&peers),
                "--clients",
                &list(&clients),
                "--data",
                &data.display().to_string(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.extend(extra.iter().map(|s| s.to_string()));
            let spec = MemberSpec {
                id,
                client: format!("127.0.0.1:{}", clients[i]).parse().expect("addr"),
                data,
                args,
                log: dir.path().join(format!("node-{id}.log")),
            };
            specs.insert(id, spec);
        }
        let mut cluster = Cluster {
            specs,
            children: BTreeMap::new(),
            dir,
        };
        for id in 1..=size {
            cluster.restart(id);
        }
        cluster
    }

    /// Starts member `id` (again) with its original command line.
    pub fn restart(&mut self, id: u64) {
        let spec = &self.specs[&id];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log)
            .expect("open member log");
        let child = Command::new(synod_bin())
            .args(&spec.args)
            .env(
                "RUST_LOG",
                std::env::var("SYNOD_TEST_LOG").unwrap_or_else(|_| "info".to_string()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start synod node");
        self.children.insert(id, child);
    }

    /// `kill -9` member `id` and wait for it to be gone.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.children.remove(&id) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for member `id` to exit on its own; its exit status.
    pub fn wait_exit(&mut self, id: u64, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        let child = self.children.get_mut(&id)?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.children.remove(&id);
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Member `id`'s process id, while it runs.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.children.get(&id).map(Child::id)
    }

    /// Member `id`'s output so far.
    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(&self.specs[&id].log).unwrap_or_default()
    }

    /// The ids of running members.
    pub fn running(&self) -> Vec<u64> {
        self.children.keys().copied().collect()
    }

    /// A client for member `id`.
    pub fn client(&self, id: u64) -> Client {
        Client::new(self.specs[&id].client)
    }

    /// INFO fields of member `id`, or `None` if it does not answer.
    pub fn info(&self, id: u64) -> Option<BTreeMap<String, String>> {
        let mut client = self.client(id);
        match client.call(&["INFO"]).ok()? {
            Value::Bulk(text) => Some(
                String::from_utf8_lossy(&text)
                    .lines()
                    .filter_map(|line| line.split_once(':'))
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// Waits until a running member says it leads; its id.
    pub fn wait_for_leader(&self, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            for id in self.running() {
                if self
                    .info(id)
                    .is_some_and(|info| info.get("role").is_some_and(|r| r == "leader"))
                {
                    return id;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no leader within {within:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every running member has applied at least `slot`.
    pub fn wait_applied(&self, slot: u64, within: Duration) {
        let deadline = Instant::now() + within;
        for id in self.running() {
            loop {
                let applied = self
                    .info(id)
                    .and_then(|info| info.get("applied_slot")?.parse::<u64>().ok());
                if applied.is_some_and(|applied| applied >= slot) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "member {id} did not apply slot {slot} within {within:?} (at {applied:?})\n{}",
                    self.logs()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Every member's log, for failure messages.
    pub fn logs(&self) -> String {
        self.specs
            .keys()
            .map(|&id| format!("----- node {id} -----\n{}", self.log(id)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.children) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A blocking RESP client with a timeout on every call.
pub struct Client {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: BytesMut,
    parser: ReplyParser,
    /// How long one call may take.
    pub timeout: Duration,
}

impl Client {
    /// A client for `addr` (connects on first use).
    pub fn new(addr: SocketAddr) -> Self {
        Client {
            addr,
            stream: None,
            buf: BytesMut::new(),
            parser: ReplyParser::new(),
            timeout: Duration::from_secs(5),
        }
    }

    /// Sends one command and reads its reply. Any failure drops the
    /// connection (the next call reconnects).
    pub fn call(&mut self, args: &[&str]) -> Result<Value, String> {
        let result = self.exchange(args);
        if result.is_err() {
            self.stream = None;
            self.buf.clear();
            self.parser = ReplyParser::new();
        }
        result
    }

    fn exchange(&mut self, args: &[&str]) -> Result<Value, String> {
        if self.stream.is_none() {
            let stream = TcpStream::connect_timeout(&self.addr, self.timeout)
                .map_err(|e| format!("connect {}: {e}", self.addr))?;
            stream
                .set_read_timeout(Some(self.timeout))
                .map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().expect("connected");
        let mut out = BytesMut::new();
        resp::encode_request(args, &mut out);
        stream.write_all(&out).map_err(|e| format!("send: {e}"))?;
        let mut chunk = [0u8; 64 * 1024];
        loop {
            if let Some(value) = self
                .parser
                .parse(&mut self.buf)
                .map_err(|e| format!("bad reply: {e}"))?
            {
                return Ok(value);
            }
            let read = stream
                .read(&mut chunk)
                .map_err(|e| format!("read from {}: {e}", self.addr))?;
            if read == 0 {
                return Err(format!("{} closed the connection", self.addr));
            }
            self.buf.extend_from_slice(&chunk[..read]);
        }
    }
}

/// The text of a bulk or simple-string reply.
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::Bulk(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::Simple(text) => Some(text.clone()),
        _ => None,
    }
}
