//! Every subcommand that prints results ends quietly when its reader goes
//! away (`raftcheck ... | head -1`): exit 141, no panic, no "Broken pipe" on
//! stderr; and a closed stderr loses the progress lines but not the verdict.
//!
//! To make "the reader went away before the output ended" certain rather
//! than a race, each run either prints more than a pipe holds (64 KiB) after
//! the first line, or prints its next line seconds later, or finds stdout
//! closed before it starts.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn raftcheck(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_raftcheck"));
    c.args(args);
    c
}

/// `n` copies of `arg`: many runs (or histories) from one small file.
fn repeat(arg: &str, n: usize) -> Vec<&str> {
    vec![arg; n]
}

struct Ended {
    code: Option<i32>,
    first_line: String,
    stderr: String,
}

impl Ended {
    /// Ended with one of `codes`, without a panic or a complaint about the pipe.
    fn assert_quiet(&self, codes: &[i32]) {
        let Ended { code, stderr, .. } = self;
        assert!(
            code.is_some_and(|c| codes.contains(&c)),
            "exit {code:?}, expected one of {codes:?}; stderr:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "stderr:\n{stderr}");
        assert!(!stderr.contains("Broken pipe"), "stderr:\n{stderr}");
        assert!(
            !stderr.lines().any(|l| l.starts_with("raftcheck: ")),
            "an error was reported; stderr:\n{stderr}"
        );
    }
}

/// Runs `cmd` with stdout a pipe whose reader reads the first line and
/// then closes it.
fn close_after_first_line(mut cmd: Command) -> Ended {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn raftcheck");
    let mut first_line = String::new();
    {
        let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
        reader.read_line(&mut first_line).expect("read a line");
    } // the reader is dropped here: the read end of the pipe is closed
    let out = child.wait_with_output().expect("wait");
    Ended {
        code: out.status.code(),
        first_line,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `cmd` with stdout a pipe whose read end is closed before it starts.
fn closed_stdout(mut cmd: Command) -> Ended {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = cmd
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run raftcheck");
    Ended {
        code: out.status.code(),
        first_line: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `cmd` with stderr a pipe whose read end is closed before it starts;
/// returns the exit code and stdout.
fn closed_stderr(mut cmd: Command) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(writer)
        .output()
        .expect("run raftcheck");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

const TRACE: &str = "traces/examples/election-and-commits.ndjson";
const HISTORY: &str = "traces/examples/client-history.ndjson";

#[test]
fn check_stops_quietly_when_the_reader_leaves_between_configurations() {
    // The default suite prints each configuration's result when it is done;
    // with a 2 s budget the second one comes long after the first.
    let e = close_after_first_line(raftcheck(&["check", "--timeout", "2"]));
    assert!(e.first_line.starts_with("[elections] "), "{}", e.first_line);
    e.assert_quiet(&[0, 141]);
}

#[test]
fn check_on_a_closed_stdout_exits_141() {
    let small = [
        "check",
        "--servers",
        "3",
        "--clients",
        "0",
        "--max-term",
        "1",
    ];
    closed_stdout(raftcheck(&small)).assert_quiet(&[141]);
    let mut json = raftcheck(&small);
    json.arg("--json");
    let e = closed_stdout(json);
    e.assert_quiet(&[141]);
    assert_eq!(e.stderr, "", "--json prints nothing on stderr");
}

#[test]
fn bugs_on_a_closed_stdout_exits_141() {
    closed_stdout(raftcheck(&["bugs"])).assert_quiet(&[141]);
    closed_stdout(raftcheck(&["bugs", "--json"])).assert_quiet(&[141]);
}

#[test]
fn sim_stops_quietly_when_the_reader_leaves_after_the_first_line() {
    // Every seed fails with this bug: two lines (~300 bytes) per seed.
    let e = close_after_first_line(raftcheck(&[
        "sim",
        "--seeds",
        "500",
        "--keep-going",
        "--bug",
        "volatile-vote",
    ]));
    assert!(e.first_line.starts_with("seed 0: "), "{}", e.first_line);
    e.assert_quiet(&[141]);
}

#[test]
fn sim_on_a_closed_stdout_exits_141() {
    closed_stdout(raftcheck(&["sim", "--seeds", "50"])).assert_quiet(&[141]);
    closed_stdout(raftcheck(&["sim", "--seeds", "50", "--json"])).assert_quiet(&[141]);
    closed_stdout(raftcheck(&["sim", "--list-bugs"])).assert_quiet(&[141]);
}

#[test]
fn validate_stops_quietly_when_the_reader_leaves_after_the_first_line() {
    let mut cmd = raftcheck(&["validate"]);
    cmd.args(repeat(TRACE, 1000));
    let e = close_after_first_line(cmd);
    assert!(
        e.first_line.starts_with(&format!("{TRACE}: valid (")),
        "{}",
        e.first_line
    );
    e.assert_quiet(&[141]);
}

#[test]
fn validate_json_on_a_closed_stdout_exits_141() {
    closed_stdout(raftcheck(&["validate", "--json", TRACE])).assert_quiet(&[141]);
}

#[test]
fn validate_format_only_stops_quietly_when_the_reader_leaves_after_the_first_line() {
    let mut cmd = raftcheck(&["validate", "--format-only"]);
    cmd.args(repeat(TRACE, 1000));
    let e = close_after_first_line(cmd);
    assert!(
        e.first_line.starts_with(&format!("{TRACE}: ok, ")),
        "{}",
        e.first_line
    );
    e.assert_quiet(&[141]);
    closed_stdout(raftcheck(&["validate", "--format-only", "--json", TRACE])).assert_quiet(&[141]);
}

#[test]
fn linearize_stops_quietly_when_the_reader_leaves_after_the_first_line() {
    let mut cmd = raftcheck(&["linearize"]);
    cmd.args(repeat(HISTORY, 1000));
    let e = close_after_first_line(cmd);
    assert!(
        e.first_line
            .starts_with(&format!("{HISTORY}: linearizable (")),
        "{}",
        e.first_line
    );
    e.assert_quiet(&[141]);
    closed_stdout(raftcheck(&["linearize", "--json", HISTORY])).assert_quiet(&[141]);
}

#[test]
fn cluster_on_a_closed_stdout_stops_its_nodes_and_exits_141() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout_reader, stdout_writer) = std::io::pipe().expect("pipe");
    drop(stdout_reader);
    // The nodes inherit stderr: it reads to its end once they are all gone.
    let (mut stderr_reader, stderr_writer) = std::io::pipe().expect("pipe");
    let mut cmd = raftcheck(&["cluster", "--nodes", "1", "--data-dir"]);
    cmd.arg(dir.path())
        .stdout(stdout_writer)
        .stderr(stderr_writer);
    let status = cmd.status().expect("run raftcheck");
    drop(cmd);
    assert_eq!(status.code(), Some(141));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stderr = String::new();
        let _ = stderr_reader.read_to_string(&mut stderr);
        let _ = tx.send(stderr);
    });
    let stderr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a node still runs after the cluster ended");
    Ended {
        code: status.code(),
        first_line: String::new(),
        stderr,
    }
    .assert_quiet(&[141]);
}

#[test]
fn a_closed_stderr_loses_progress_but_not_the_verdict() {
    // `check` writes a progress line to stderr before it prints anything.
    let (code, stdout) = closed_stderr(raftcheck(&[
        "check",
        "--servers",
        "3",
        "--clients",
        "0",
        "--max-term",
        "1",
    ]));
    assert_eq!(code, Some(0), "stdout:\n{stdout}");
    assert!(stdout.ends_with("verdict: holds\n"), "stdout:\n{stdout}");
    // An error message that cannot be shown still gives its exit code.
    let (code, _) = closed_stderr(raftcheck(&["validate", "no-such-file.ndjson"]));
    assert_eq!(code, Some(2));
}

#[test]
fn a_full_disk_on_stdout_is_an_error_not_a_panic() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = raftcheck(&["bugs"])
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.starts_with("raftcheck: cannot write results to stdout: "),
        "stderr:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "stderr:\n{stderr}");
}

/// A one-request HTTP server on loopback answering every request with
/// `response`; returns its address.
fn one_shot_server(response: &'static str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(response.as_bytes());
        }
    });
    addr
}

#[test]
fn client_on_a_closed_stdout_exits_141() {
    let addr = one_shot_server(
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nworld",
    );
    let e = closed_stdout(raftcheck(&["client", "--endpoints", &addr, "get", "hello"]));
    e.assert_quiet(&[141]);
}

/// A loopback HTTP/1.1 server that answers every request on every
/// connection with `204 No Content` (a raftkv write) or `200` with a value
/// (a read), until the test process ends.
fn always_ok_server() -> String {
    use std::io::{BufRead, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            std::thread::spawn(move || {
                let mut w = conn.try_clone().unwrap();
                let mut r = std::io::BufReader::new(conn);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let get = line.starts_with("GET");
                    let mut len = 0usize;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h == "\r\n" {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    let reply: &[u8] = if get {
                        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nv"
                    } else {
                        b"HTTP/1.1 204 No Content\r\n\r\n"
                    };
                    if w.write_all(reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn bench_on_a_closed_stdout_exits_141() {
    let addr = always_ok_server();
    for json in [false, true] {
        let mut args = vec![
            "bench",
            "--endpoints",
            &addr,
            "--clients",
            "2",
            "--duration",
            "0.3",
        ];
        if json {
            args.push("--json");
        }
        let e = closed_stdout(raftcheck(&args));
        e.assert_quiet(&[141]);
    }
}

/// Logs written to a file or a pipe carry no terminal colour codes.
#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let port = |l: std::net::TcpListener| l.local_addr().unwrap().to_string();
    let peer = port(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let client = port(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let mut child = raftcheck(&[
        "--log",
        "info",
        "node",
        "--id",
        "1",
        "--peers",
        &format!("1={peer}"),
        "--client-addr",
        &client,
        "--data-dir",
        dir.path().to_str().unwrap(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().expect("a log line").unwrap();
    child.kill().ok();
    child.wait().ok();
    assert!(first.contains("INFO"), "{first}");
    assert!(!first.contains('\u{1b}'), "{first:?}");
}
