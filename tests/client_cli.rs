//! `raftcheck client` and `bench` against endpoints where nothing answers:
//! they say on stderr what they are trying, give up after `--timeout`, and
//! exit 4 (unavailable), not 2 (bad usage or input). And what they say
//! about an answer, against a node that always gives it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use assert_cmd::Command;

/// A loopback address where nothing listens.
fn unused_endpoint() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn run(args: &[&str]) -> (Option<i32>, String, String, Duration) {
    let start = Instant::now();
    let out = Command::cargo_bin("raftcheck")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed(),
    )
}

#[test]
fn a_client_says_what_it_tries_and_exits_4_when_no_node_answers() {
    let ep = unused_endpoint();
    let (code, out, err, took) = run(&[
        "client",
        "--endpoints",
        &ep,
        "--timeout",
        "1",
        "put",
        "k",
        "v",
    ]);
    assert_eq!(code, Some(4), "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains(&format!("client: no answer yet from {ep}")),
        "{err}"
    );
    assert!(err.contains("retrying for up to 1.0 s"), "{err}");
    assert!(
        err.contains("client: unavailable: no node answered within"),
        "{err}"
    );
    // Said once, not once per attempt.
    assert_eq!(err.matches("no answer yet").count(), 1, "{err}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn a_client_that_keeps_trying_says_so_periodically() {
    let ep = unused_endpoint();
    let (code, _, err, _) = run(&["client", "--endpoints", &ep, "--timeout", "3.5", "get", "k"]);
    assert_eq!(code, Some(4), "{err}");
    assert!(
        err.contains(&format!("client: still trying {ep}:")),
        "{err}"
    );
}

#[test]
fn bench_exits_4_when_no_node_answers() {
    let ep = unused_endpoint();
    let (code, out, err, _) = run(&[
        "bench",
        "--endpoints",
        &ep,
        "--timeout",
        "1",
        "--duration",
        "0.5",
    ]);
    assert_eq!(code, Some(4), "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains(&format!("bench: no answer yet from {ep}")),
        "{err}"
    );
    assert!(err.contains("bench: unavailable"), "{err}");
}

#[test]
fn a_bad_timeout_is_bad_usage() {
    let (code, _, err, _) = run(&["client", "--timeout", "0", "get", "k"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--timeout must be a positive number of seconds"),
        "{err}"
    );
}

/// A node that answers every request with `status` and the JSON `body`.
fn fake_node(status: &'static str, body: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut request_body = vec![0; length];
            let _ = reader.read_exact(&mut request_body);
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[test]
fn a_failed_cas_shows_the_current_value_as_a_person_reads_it() {
    for (body, said) in [
        (
            r#"{"current":"there"}"#,
            r#"cas failed: current value "there""#,
        ),
        (r#"{"current":null}"#, "cas failed: key absent"),
    ] {
        let ep = fake_node("412 Precondition Failed", body);
        let (code, out, err, _) = run(&[
            "client",
            "--endpoints",
            &ep,
            "--timeout",
            "5",
            "cas",
            "hello",
            "--from",
            "world",
            "--to",
            "there",
        ]);
        assert_eq!(code, Some(1), "{err}");
        assert!(out.is_empty(), "{out}");
        assert!(err.contains(said), "{err}");
        assert!(!err.contains("Some("), "{err}");
        assert!(!err.contains("None"), "{err}");
    }
}

#[test]
fn bench_with_one_client_says_client() {
    let ep = fake_node("204 No Content", "");
    let (code, out, err, _) = run(&[
        "bench",
        "--endpoints",
        &ep,
        "--clients",
        "1",
        "--duration",
        "0.3",
        "--warmup",
        "0",
        "--mix",
        "write=100",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains(", 1 client, "), "{err}");
    assert!(!err.contains("1 clients"), "{err}");
    assert!(out.contains("clients 1: "), "{out}");
}
