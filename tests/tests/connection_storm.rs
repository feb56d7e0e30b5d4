//! A storm of idle connections is capped by `max.connections`, not fatal: the
//! broker keeps serving the connections it accepted, stays alive, and serves
//! new clients once the storm is gone.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use millrace_tests::wire::{api_versions_v0_ok, connect, frame_v1, read_frame, API_VERSIONS};
use millrace_tests::BrokerProcess;

const CAP: usize = 50;
const STORM: usize = 1_500;

#[test]
fn idle_connection_storm_is_capped_and_survived() {
    let mut broker = BrokerProcess::start(&[&format!("max.connections={CAP}")]);
    // The first connection is within the cap: it must keep working throughout.
    let mut first = connect(broker.addr());
    let mut storm: Vec<TcpStream> = Vec::with_capacity(STORM);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut refused_in_a_row = 0;
    for _ in 0..STORM {
        if Instant::now() > deadline || refused_in_a_row >= 5 {
            break;
        }
        // Past the cap and a full backlog the kernel drops the SYN: a connect
        // that times out means the storm is as big as it gets, not a failure.
        match TcpStream::connect_timeout(&broker.addr(), Duration::from_millis(200)) {
            Ok(s) => {
                storm.push(s);
                refused_in_a_row = 0;
            }
            Err(_) => refused_in_a_row += 1,
        }
    }
    assert!(storm.len() > CAP, "only {} connections opened", storm.len());
    first
        .write_all(&frame_v1(API_VERSIONS, 0, 1, &[]))
        .expect("send on the first connection");
    let resp =
        read_frame(&mut first).expect("the first connection is still served during the storm");
    assert_eq!(&resp[..4], &1i32.to_be_bytes());
    assert!(broker.is_running(), "the broker died during the storm");
    drop(storm);
    // Freed slots let new clients in again.
    let started = Instant::now();
    assert_eq!(api_versions_v0_ok(broker.addr()), 0);
    assert!(started.elapsed() < Duration::from_secs(10));
    let status = broker.stop();
    assert!(status.success(), "exit status {status}");
}
