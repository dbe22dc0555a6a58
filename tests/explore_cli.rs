//! `raftcheck explore` end to end: the explorer opened at the counterexample
//! URL that `raftcheck check` prints, read through the explorer's own state
//! API (`/.states/...`), and rendered in headless Chromium where installed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

fn raftcheck() -> Command {
    Command::cargo_bin("raftcheck").unwrap()
}

/// The violation `check --bug double-vote` reports: its explorer URL and
/// the flags that explore its configuration.
fn double_vote() -> (String, String) {
    let out = raftcheck()
        .args(["check", "--bug", "double-vote", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = v["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Election Safety")
        .expect("Election Safety reported");
    (
        p["explorer_url"].as_str().unwrap().to_string(),
        p["explore_flags"].as_str().unwrap().to_string(),
    )
}

/// A running explorer, stopped when dropped.
struct Explorer {
    child: Child,
    addr: String,
    _cwd: tempfile::TempDir,
}

impl Drop for Explorer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

fn explore(flags: &str) -> Explorer {
    let addr = free_addr();
    // Where no ./ui folder exists (stateright would serve it instead).
    let cwd = tempfile::tempdir().unwrap();
    let child = StdCommand::new(assert_cmd::cargo::cargo_bin("raftcheck"))
        .arg("explore")
        .args(flags.split_whitespace())
        .args(["--addr", &addr])
        .current_dir(cwd.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let explorer = Explorer {
        child,
        addr,
        _cwd: cwd,
    };
    let start = Instant::now();
    while get(&explorer.addr, "/.status").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the explorer did not answer"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    explorer
}

/// `(status code, body)` of a GET.
fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Some((code, if chunked { dechunk(body)? } else { body.into() }))
}

/// The body of a chunked transfer encoding.
fn dechunk(mut raw: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = raw.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        raw = rest.get(size + 2..)?;
    }
}

/// The `#/steps/...` path of an explorer URL, as action indices.
fn steps_of(url: &str) -> Vec<String> {
    let (_, steps) = url.split_once("#/steps/").expect("a steps path");
    steps.split('/').map(String::from).collect()
}

/// The explorer's view of the last state of `steps`: the entry of the
/// `/.states` answer for the path without its last index.
fn last_state(addr: &str, steps: &[String]) -> Value {
    let (last, parent) = steps.split_last().unwrap();
    let (code, body) = get(addr, &format!("/.states/{}", parent.join("/"))).unwrap();
    assert_eq!(code, 200, "{body}");
    let views: Vec<Value> = serde_json::from_str(&body).unwrap();
    views
        .into_iter()
        .find(|v| v["actionIndex"].as_u64().map(|i| i.to_string()).as_deref() == Some(last))
        .expect("the last action among the choices")
}

#[test]
fn the_explorer_shows_the_violated_property_at_the_counterexample_state() {
    let (url, flags) = double_vote();
    let explorer = explore(&flags);
    let steps = steps_of(&url);
    let view = last_state(&explorer.addr, &steps);
    let props = view["properties"].as_array().unwrap();
    let safety = props
        .iter()
        .find(|p| p[1] == "Election Safety")
        .expect("Election Safety listed");
    // A discovery at this very state: the page shows "Counterexample found".
    assert_eq!(safety[0], "Always");
    assert_eq!(safety[2], steps.join("/"), "{view}");
    // The properties that hold there are not marked.
    let append_only = props.iter().find(|p| p[1] == "Leader Append-Only").unwrap();
    assert!(append_only[2].is_null(), "{view}");
    // One state earlier, only one server leads: nothing is violated.
    let before = last_state(&explorer.addr, &steps[..steps.len() - 1]);
    let safety = before["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[1] == "Election Safety")
        .unwrap()
        .clone();
    assert!(safety[2].is_null(), "{before}");
}

#[test]
fn the_explorer_names_servers_as_the_cli_does() {
    let (url, flags) = double_vote();
    let explorer = explore(&flags);
    let steps = steps_of(&url);
    let view = last_state(&explorer.addr, &steps);
    let action = view["action"].as_str().unwrap();
    let state = view["state"].as_str().unwrap();
    let svg = view["svg"].as_str().unwrap();
    // The CLI's last step of this counterexample names the same servers.
    assert!(
        action.starts_with('S') && action.contains("receives VoteReply(term 1, granted) from S3"),
        "{action}"
    );
    assert_eq!(state.matches("leader        term 1").count(), 2, "{state}");
    for name in ["S1", "S2", "S3"] {
        assert!(state.contains(&format!("{name}  ")), "{name}: {state}");
        assert!(svg.contains(&format!(">{name}</text>")), "{name}: {svg}");
    }
    for text in [action, state, svg] {
        assert!(!text.contains("Id("), "{text}");
        assert!(!text.contains("id:"), "{text}");
    }
    // Every choice from the initial state too.
    let (_, body) = get(&explorer.addr, "/.states/0").unwrap();
    let views: Vec<Value> = serde_json::from_str(&body).unwrap();
    let actions: Vec<&str> = views
        .iter()
        .map(|v| v["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"S3 election timeout"), "{actions:?}");
    assert!(actions.iter().all(|a| !a.contains("Id(")), "{actions:?}");
}

#[test]
fn a_url_of_another_configuration_is_refused_with_both_configurations_named() {
    let (url, flags) = double_vote();
    let query = url
        .split_once("/?")
        .and_then(|(_, rest)| rest.split_once('#'))
        .map(|(q, _)| q.to_string())
        .expect("the URL carries its configuration");
    assert!(query.starts_with("config=--servers+3+"), "{url}");
    // An explorer of the correct specification is not the buggy one.
    let other = flags.replace(" --bug double-vote", "");
    let explorer = explore(&other);
    let (code, body) = get(&explorer.addr, &format!("/?{query}")).unwrap();
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("another configuration"), "{body}");
    assert!(body.contains(&flags), "{body}");
    assert!(body.contains(&other), "{body}");
    // Its own URLs open, and the page names its configuration.
    let own = format!("config={}", other.replace(' ', "+"));
    let (code, body) = get(&explorer.addr, &format!("/?{own}")).unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Stateright Explorer"), "{body}");
    assert!(
        body.contains(&format!("raftcheck explore {other}")),
        "{body}"
    );
}

#[test]
fn a_bad_address_fails_before_the_explorer_is_announced() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    for addr in ["not an address", "bad", &taken_addr] {
        let out = raftcheck()
            .args(["explore", "--max-term", "1", "--addr", addr])
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{addr}: {err}");
        assert!(!err.contains("explorer for"), "{addr}: {err}");
        assert!(
            err.contains(addr) || err.contains("--addr"),
            "{addr}: {err}"
        );
    }
}

/// Opens the counterexample URL in headless Chromium and reads the page as
/// the browser rendered it: the "Current state" panel names the violated
/// property, and the path names the servers S1..S3. Without Chromium there
/// is nothing to look with, except in CI, which installs it.
#[test]
fn chromium_renders_the_counterexample_with_the_violated_property() {
    let chromium = Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        assert!(
            std::env::var_os("RAFTCHECK_ETCD_RAFT_REQUIRED").is_none(),
            "CI must install chromium"
        );
        eprintln!("no /usr/bin/chromium: the explorer page is not rendered");
        return;
    }
    let (url, flags) = double_vote();
    let explorer = explore(&flags);
    let url = url.replace("127.0.0.1:3000", &explorer.addr);
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("explorer.png");
    let run = |extra: &[String]| {
        std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1400,1000",
                "--virtual-time-budget=10000",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .args(extra)
            .arg(&url)
            .output()
            .unwrap()
    };
    let dom = run(&["--dump-dom".to_string()]);
    let page = String::from_utf8_lossy(&dom.stdout);
    let current = page
        .split_once("Current state</h3>")
        .map(|(_, rest)| rest.split_once("</ul>").map_or(rest, |(ul, _)| ul))
        .unwrap_or_else(|| panic!("no Current state panel: {page}"));
    let safety = current
        .split("<li>")
        .find(|li| li.contains("Election Safety"))
        .unwrap_or_else(|| panic!("Election Safety not in the panel: {current}"));
    assert!(safety.contains("Counterexample found"), "{safety}");
    assert!(!safety.contains("Safety holds"), "{safety}");
    assert!(
        page.contains("S2 receives VoteReply(term 1, granted) from S3")
            || page.contains("S1 receives VoteReply(term 1, granted) from S3"),
        "{page}"
    );
    let shot = run(&[format!("--screenshot={}", png.display())]);
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "no screenshot ({size} bytes): {}",
        String::from_utf8_lossy(&shot.stderr)
    );
}
