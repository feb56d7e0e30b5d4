//! The broker binary as an operator meets it: unknown config keys refuse to
//! start (exit 2, the key named on stderr), SIGTERM exits 0.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use millrace_tests::broker::broker_bin;
use millrace_tests::BrokerProcess;

#[test]
fn unknown_config_key_refuses_to_start_with_exit_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(broker_bin())
        .arg("--override")
        .arg(format!("log.dirs={}", dir.path().display()))
        .arg("--override")
        .arg("listeners=PLAINTEXT://127.0.0.1:0")
        .arg("--override")
        .arg("no.such.key=1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the broker");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("broker with an unknown key kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().expect("stderr");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("no.such.key"),
        "stderr does not name the key: {stderr}"
    );
}

#[test]
fn sigterm_after_serving_exits_zero() {
    let mut broker = BrokerProcess::start(&[]);
    // One full request/response first: the node is up, not just its port.
    assert_eq!(millrace_tests::wire::api_versions_v0_ok(broker.addr()), 0);
    std::thread::sleep(Duration::from_millis(200));
    let status = broker.stop();
    assert!(status.success(), "exit status {status}");
}

#[test]
fn sigterm_right_after_the_port_opens_exits_zero() {
    let mut broker = BrokerProcess::start(&[]);
    let status = broker.stop();
    assert!(status.success(), "exit status {status}");
}
