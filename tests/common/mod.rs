//! Helpers shared by the tests that run real node processes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A free loopback port.
pub fn free_port() -> u16 {
    raftkv::transport::ports::listen_port().unwrap()
}

/// Calls `f` every 50 ms until it returns a value, failing the test naming
/// `what` after `timeout`.
pub fn poll<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Prints the last `n` lines of each file on stderr: the nodes' own account
/// of a failed test, before its temporary folder goes.
pub fn print_tails(paths: impl IntoIterator<Item = PathBuf>, n: usize) {
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        eprintln!("---- last lines of {} ----", path.display());
        for l in &lines[lines.len().saturating_sub(n)..] {
            eprintln!("{l}");
        }
    }
}

/// Asserts that `raftcheck validate` accepts the traces at `path`.
pub fn assert_traces_valid(path: &Path) {
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("raftcheck"))
        .arg("validate")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "validate: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Stops node `id`'s process cleanly (SIGTERM: it flushes its trace),
/// failing the test if it is still running after 10 s.
pub fn stop_gracefully(child: std::process::Child, id: u64) {
    sigterm_within(child, Duration::from_secs(10), &format!("node {id}"));
}

/// Sends `child` (called `what` in the failure) SIGTERM and waits for it to
/// exit, failing the test if it is still running after `limit`.
pub fn sigterm_within(mut child: std::process::Child, limit: Duration, what: &str) {
    std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < limit, "{what} ignores SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}
