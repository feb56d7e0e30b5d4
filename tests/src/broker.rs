//! [`BrokerProcess`]: one broker node as a child process.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a start may take until the port accepts connections.
const START_WAIT_MAX: Duration = Duration::from_secs(20);
/// How long a SIGTERM shutdown may take until the process exits.
const STOP_WAIT_MAX: Duration = Duration::from_secs(15);
/// Fresh ports tried when the broker exits at start (e.g. the port was taken).
const START_ATTEMPTS_MAX: usize = 3;

/// A running broker node: loopback port, data dir, stderr log file.
///
/// Dropping it kills the process (SIGKILL) and removes the data dir.
pub struct BrokerProcess {
    child: Option<Child>,
    port: u16,
    overrides: Vec<String>,
    /// Holds `data/` (the broker's `log.dirs`) and `broker.stderr`.
    dir: TempDir,
}

impl BrokerProcess {
    /// Starts a node with `num.partitions=4` plus `extra_overrides`
    /// (`"key=value"`, Kafka key names) and waits until it accepts connections.
    pub fn start(extra_overrides: &[&str]) -> BrokerProcess {
        let dir = tempfile::Builder::new()
            .prefix("millrace-it-")
            .tempdir()
            .expect("create a temp dir");
        let mut overrides = vec!["num.partitions=4".to_string()];
        overrides.extend(extra_overrides.iter().map(|s| s.to_string()));
        let mut broker = BrokerProcess {
            child: None,
            port: 0,
            overrides,
            dir,
        };
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS_MAX {
            broker.port = free_port();
            match broker.spawn_and_wait() {
                Ok(()) => return broker,
                Err(e) => last_error = e,
            }
        }
        panic!("broker did not start after {START_ATTEMPTS_MAX} attempts:\n{last_error}");
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The socket address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The data dir given as `log.dirs`.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The broker's stderr so far (all starts appended), for failure messages.
    pub fn stderr_log(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    /// Whether the process is still alive (not exited, not reaped).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Sends SIGTERM, waits for the exit (bounded) and returns its status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("broker is running");
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
        let deadline = Instant::now() + STOP_WAIT_MAX;
        loop {
            if let Some(status) = child.try_wait().expect("wait for the broker") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "broker did not exit within {STOP_WAIT_MAX:?} of SIGTERM; stderr:\n{}",
                    tail(&self.stderr_log())
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM (asserting a clean exit 0), then a start on the same data dir and port.
    pub fn restart(&mut self) {
        let status = self.stop();
        assert!(
            status.success(),
            "broker exited with {status} on SIGTERM; stderr:\n{}",
            tail(&self.stderr_log())
        );
        self.start_again();
    }

    /// SIGKILL without any warning, and reap the process.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("broker is running");
        child.kill().expect("SIGKILL the broker");
        child.wait().expect("reap the broker");
    }

    /// Starts the node again on the same data dir and port (after `stop` or `kill9`).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "broker is still running");
        if let Err(e) = self.spawn_and_wait() {
            panic!("broker did not start again: {e}");
        }
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("broker.stderr")
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let bin = broker_bin();
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .map_err(|e| format!("open the stderr file: {e}"))?;
        let mut cmd = Command::new(&bin);
        cmd.arg("--override")
            .arg(format!("log.dirs={}", self.data_dir().display()))
            .arg("--override")
            .arg(format!("listeners=PLAINTEXT://127.0.0.1:{}", self.port));
        for o in &self.overrides {
            cmd.arg("--override").arg(o);
        }
        let child = cmd
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_WAIT_MAX;
        let addr = self.addr();
        loop {
            let child = self.child.as_mut().expect("spawned");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(format!(
                    "broker exited at start with {status}; stderr:\n{}",
                    tail(&self.stderr_log())
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                return Err(format!(
                    "port {} did not accept within {START_WAIT_MAX:?}; stderr:\n{}",
                    self.port,
                    tail(&self.stderr_log())
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- broker stderr (port {}) ---\n{}",
                self.port,
                tail(&self.stderr_log())
            );
        }
    }
}

/// The broker binary: `$MILLRACE_BROKER_BIN`, else `broker` in the profile
/// dir of this test executable (`target/<profile>/deps/<test>` → `target/<profile>/broker`).
pub fn broker_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MILLRACE_BROKER_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test exe lives in target/<profile>/deps");
    let bin = profile_dir.join("broker");
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build -p millrace-broker --bin broker` \
         (same profile as the tests) or set MILLRACE_BROKER_BIN",
        bin.display()
    );
    bin
}

/// A loopback port that was free a moment ago, picked below Linux's
/// ephemeral range (32768-60999): a port from `bind(0)` could be handed to an
/// outgoing connection (a node talking to another) before the broker that
/// was meant to listen on it starts.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    const LOW: u16 = 20_000;
    const SPAN: u64 = 12_000;
    for _ in 0..1000 {
        // RandomState is seeded per process: a random start without a crate.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let port = LOW + (h.finish() % SPAN) as u16;
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// The last 60 lines of a log.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}
