//! `broker job ...` against a running node (admin URL discovered through
//! DescribeConfigs), pause/resume, and a poison record that stops one job
//! while another job and the broker go on.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use millrace_tests::broker::broker_bin;
use millrace_tests::clients::{
    assign, consume_n, consumer, create_topic, producer, send, topic_name,
};
use millrace_tests::BrokerProcess;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::Offset;

fn sql_name(tag: &str) -> String {
    topic_name(tag).replace('-', "_")
}

fn start() -> BrokerProcess {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    BrokerProcess::start(&[&format!("admin.listener=127.0.0.1:{port}")])
}

fn job(broker: &BrokerProcess, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(broker_bin());
    cmd.arg("job")
        .args(args)
        .arg("--bootstrap-server")
        .arg(broker.bootstrap())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("run broker job");
    {
        let mut i = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            i.write_all(s.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn out(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Waits until `broker job describe NAME` prints `needle`.
fn wait_describe(broker: &BrokerProcess, name: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let o = job(broker, &["describe", name], None);
        let text = out(&o);
        if o.status.success() && text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < deadline, "no '{needle}' in:\n{text}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[tokio::test]
async fn cli_create_list_pause_resume_delete() {
    let broker = start();
    let input = sql_name("tweets");
    let output = sql_name("tracked");
    create_topic(&broker, &input, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("job.sql");
    std::fs::write(
        &file,
        format!("CREATE JOB tracked AS INSERT INTO {output} SELECT value FROM {input} WHERE value LIKE '%#messi%';"),
    )
    .unwrap();
    let o = job(&broker, &["create", "--file", file.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("Created job tracked."), "{}", out(&o));

    let o = job(
        &broker,
        &["create"],
        Some("CREATE JOB bad AS INSERT INTO o SELECT value FROM t WHERE (value"),
    );
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("line 1, column"),
        "{}",
        out(&o)
    );

    wait_describe(&broker, "tracked", "running");
    let o = job(&broker, &["list"], None);
    assert!(
        out(&o).contains("tracked") && out(&o).contains("running"),
        "{}",
        out(&o)
    );

    let p = producer(&broker, &[]);
    let rec = |v: &'static str| FutureRecord::<[u8], [u8]>::to(&input).payload(v.as_bytes());
    send(&p, rec("one #messi")).await;
    wait_describe(&broker, "tracked", "records-in:   1\n");

    let o = job(&broker, &["pause", "tracked"], None);
    assert!(o.status.success(), "{}", out(&o));
    wait_describe(&broker, "tracked", "paused");
    send(&p, rec("two #messi")).await;
    std::thread::sleep(Duration::from_secs(2));
    let c = consumer(&broker, &[]);
    assign(&c, &output, &[0, 1, 2, 3], Offset::Beginning);
    let mut seen = BTreeSet::new();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            seen.insert(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    assert_eq!(
        seen,
        BTreeSet::from(["one #messi".to_string()]),
        "paused job consumed"
    );

    let o = job(&broker, &["resume", "tracked"], None);
    assert!(o.status.success(), "{}", out(&o));
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until && seen.len() < 2 {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            seen.insert(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    assert!(seen.contains("two #messi"), "{seen:?}");

    let o = job(&broker, &["delete", "tracked"], None);
    assert!(o.status.success(), "{}", out(&o));
    let o = job(&broker, &["describe", "tracked"], None);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
}

#[tokio::test]
async fn poison_record_stops_only_its_job() {
    let broker = start();
    let input = sql_name("numbers");
    create_topic(&broker, &input, 1).await;
    let strict = format!(
        "CREATE JOB strict WITH (on_error = 'stop') AS INSERT INTO {} SELECT CAST(value AS BIGINT) * 2 AS n FROM {input};",
        sql_name("doubled")
    );
    let lenient = format!(
        "CREATE JOB lenient AS INSERT INTO {} SELECT value FROM {input};",
        sql_name("copied")
    );
    let dead = format!(
        "CREATE JOB dl WITH (on_error = 'dead_letter') AS INSERT INTO {} SELECT CAST(value AS BIGINT) * 2 AS n FROM {input};",
        sql_name("doubled_dl")
    );
    for sql in [&strict, &lenient, &dead] {
        let o = job(&broker, &["create"], Some(sql));
        assert!(o.status.success(), "{}", out(&o));
    }
    let p = producer(&broker, &[]);
    for v in ["1", "not a number", "3"] {
        send(
            &p,
            FutureRecord::<[u8], [u8]>::to(&input).payload(v.as_bytes()),
        )
        .await;
    }
    let text = wait_describe(&broker, "strict", "failed");
    assert!(text.contains("offset 1"), "{text}");
    wait_describe(&broker, "lenient", "records-in:   3\n");
    // The broker still serves.
    send(&p, FutureRecord::<[u8], [u8]>::to(&input).payload(b"4")).await;
    wait_describe(&broker, "lenient", "records-in:   4\n");
    let text = wait_describe(&broker, "dl", "records-in:   4\n");
    assert!(text.contains("running"), "{text}");
    let c = consumer(&broker, &[]);
    assign(&c, "_job.dl.dead_letter", &[0], Offset::Beginning);
    let m = consume_n(&c, 1, Duration::from_secs(30));
    assert_eq!(m[0].payload(), Some(&b"not a number"[..]));
}
