//! `raftcheck linearize` end to end: verdicts and exit codes, JSON, HTML,
//! the three input formats, timeouts and bad input.

use std::path::PathBuf;

use assert_cmd::Command;
use predicates::prelude::*;
use raft_trace::{ClientEvent, Header, Invoke, Observes, Op, Return, Status, TraceWriter};

fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("conformance/tests/data/porcupine")
        .join(rel)
}

fn raftcheck() -> Command {
    Command::cargo_bin("raftcheck").expect("binary")
}

#[test]
fn jepsen_verdicts_and_exit_codes() {
    raftcheck()
        .args(["linearize"])
        .arg(data("jepsen/etcd_002.log"))
        .assert()
        .code(0)
        .stdout(predicate::str::contains("linearizable (77 operations"));
    raftcheck()
        .args(["linearize"])
        .arg(data("jepsen/etcd_000.log"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("NOT linearizable"))
        .stdout(predicate::str::contains("cannot be placed next"))
        .stdout(predicate::str::contains("longest linearizable prefix"));
}

#[test]
fn json_output() {
    let out = raftcheck()
        .args(["linearize", "--json"])
        .arg(data("kv/c10-bad.txt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["verdict"], "not-linearizable");
    assert_eq!(v["operations"], 405);
    assert_eq!(v["partitions"], 10);
    assert!(v["seconds"].as_f64().is_some());
    assert!(v["failing"]["key"].is_string());
    assert!(!v["failing"]["unplaceable"].as_array().unwrap().is_empty());

    let out = raftcheck()
        .args(["linearize", "--json", "--unpartitioned"])
        .arg(data("kv/c10-ok.txt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "linearizable");
    assert_eq!(v["partitions"], 1);
    assert!(v.get("failing").is_none());
}

#[test]
fn timeout_gives_unknown() {
    let out = raftcheck()
        .args(["linearize", "--json", "--timeout", "0"])
        .arg(data("jepsen/etcd_002.log"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "unknown");
}

#[test]
fn html_report_is_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    raftcheck()
        .args(["linearize", "--html"])
        .arg(&page)
        .arg(data("jepsen/etcd_000.log"))
        .arg(data("kv/c01-bad.txt"))
        .arg(data("kv/c01-ok.txt"))
        .assert()
        .code(1);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<svg"));
    assert!(html.contains("NOT linearizable"));
    assert!(html.contains("cannot be placed next"));
    assert!(html.contains("Linearization ("));
    assert_self_contained(&html);
}

/// The page may carry its own script, but fetches nothing.
fn assert_self_contained(html: &str) {
    for fetch in [
        "src=", "<link", "url(", "http://", "https://", "fetch(", "XMLHttp", "import(",
    ] {
        assert!(!html.contains(fetch), "page fetches something: {fetch}");
    }
}

/// One partition of the page: its key, verdict, whether it is open, and
/// its HTML up to the next partition.
struct Part<'a> {
    key: String,
    verdict: &'a str,
    open: bool,
    body: &'a str,
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let from = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[from..].find('"')?;
    Some(&tag[from..from + len])
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn parts(html: &str) -> Vec<Part<'_>> {
    html.split("<details class=\"part\"")
        .skip(1)
        .map(|body| {
            let tag = &body[..body.find('>').unwrap()];
            Part {
                key: unescape(attr(tag, "data-key").unwrap()),
                verdict: attr(tag, "data-verdict").unwrap(),
                open: tag.ends_with(" open"),
                body,
            }
        })
        .collect()
}

/// Issue 18: on a failing history every other key said "unknown" (the
/// check stops the other keys once one fails, and the page drew them
/// undecided). Now the failing key comes first and open, with its
/// unplaceable operations in red and a line saying why; every other key is
/// decided and folded; and no bar's label is wider than the bar.
#[test]
fn html_page_shows_the_failing_key_first_and_decides_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let out = raftcheck()
        .args(["linearize", "--json", "--html"])
        .arg(&page)
        .arg(data("kv/c10-bad.txt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failing_key = v["failing"]["key"].as_str().unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    assert_self_contained(&html);
    let parts = parts(&html);
    assert_eq!(parts.len(), 10);
    let first = &parts[0];
    assert_eq!(first.key, failing_key);
    assert_eq!(first.verdict, "not-linearizable");
    assert!(first.open);
    assert!(
        first.body.contains("No order fits: the first"),
        "{}",
        first.body
    );
    assert!(first.body.contains("<g class=\"op unp"));
    assert!(first.body.contains("cannot be placed next"));
    // Other failing keys next, open; then the linearizable ones, folded.
    let passing = parts.iter().position(|p| p.verdict == "linearizable");
    let passing = passing.expect("a linearizable key");
    assert!(passing < parts.len() - 1, "more than one passing key");
    for p in &parts[..passing] {
        assert_eq!(p.verdict, "not-linearizable", "key {}", p.key);
        assert!(p.open, "key {} is folded", p.key);
        assert!(p.body.contains("op unp"), "key {}", p.key);
    }
    for p in &parts[passing..] {
        assert_eq!(p.verdict, "linearizable", "key {}", p.key);
        assert!(!p.open, "key {} is not folded", p.key);
        assert!(!p.body.contains("op unp"), "key {}", p.key);
        // Every operation of a decided key has its place and the state after.
        assert!(p.body.contains("state after: "), "key {}", p.key);
        assert!(!p.body.contains("class=\"op oth"), "key {}", p.key);
    }
    assert!(html.contains("<p>Keys: 8 not linearizable, 2 linearizable.</p>"));
    assert!(!html.contains("data-verdict=\"unknown\""));
    assert!(!html.contains(">unknown<"));
    // No label is wider than its bar (7px a character, 6px of padding).
    let mut bars = 0;
    for g in html.split("<g class=\"op").skip(1) {
        let rect = &g[g.find("<rect").unwrap()..];
        let width: f64 = attr(rect, "width").unwrap().parse().unwrap();
        let text = &g[g.find("<text").unwrap()..];
        let text = &text[text.find('>').unwrap() + 1..text.find("</text>").unwrap()];
        let chars = unescape(text).chars().count() as f64;
        assert!(
            chars * 7.0 <= width - 6.0 || chars == 0.0,
            "{text:?} in {width}"
        );
        bars += 1;
    }
    assert_eq!(bars, 405);
}

/// The page as a browser shows it: its script runs (hover details, zoom
/// from `#zoom=N`), and zoomed labels still fit their bars. Without
/// Chromium there is nothing to look with, except in CI, which installs it.
#[test]
fn chromium_runs_the_page_script_and_zooms() {
    let chromium = std::path::Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        assert!(
            std::env::var_os("RAFTCHECK_ETCD_RAFT_REQUIRED").is_none(),
            "CI must install chromium"
        );
        eprintln!("no /usr/bin/chromium: the linearize page is not rendered");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    raftcheck()
        .args(["linearize", "--html"])
        .arg(&page)
        .arg(data("jepsen/etcd_000.log"))
        .assert()
        .code(1);
    let dom = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("file://{}#zoom=4", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("data-ready=\"1\""),
        "the script did not run: {dom}"
    );
    let svg = &dom[dom.find("<svg id=\"tl1\"").expect("a timeline")..];
    let tag = &svg[..svg.find('>').unwrap()];
    let unit: f64 = attr(tag, "data-unit").unwrap().parse().unwrap();
    let points: f64 = attr(tag, "data-points").unwrap().parse().unwrap();
    let width: f64 = attr(tag, "width").unwrap().parse().unwrap();
    assert!(
        (width - (points * unit * 4.0).round()).abs() <= 1.0,
        "{tag}"
    );
    let svg = &svg[..svg.find("</svg>").unwrap()];
    let mut longer = 0;
    for g in svg.split("<g class=\"op").skip(1) {
        let rect = &g[g.find("<rect").unwrap()..];
        let w: f64 = attr(rect, "width").unwrap().parse().unwrap();
        let text = &g[g.find("<text").unwrap()..];
        let text = &text[text.find('>').unwrap() + 1..text.find("</text>").unwrap()];
        let chars = unescape(text).chars().count() as f64;
        assert!(chars * 7.0 <= w - 6.0 || chars == 0.0, "{text:?} in {w}");
        if !text.ends_with('…') && !text.is_empty() {
            longer += 1;
        }
    }
    // Zoomed in, most labels are whole.
    assert!(longer > 0, "{svg}");
}

fn history(path: &std::path::Path, events: &[ClientEvent]) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = TraceWriter::new(file, &Header::new("test", vec![], Observes::default())).unwrap();
    for e in events {
        w.write_client(e).unwrap();
    }
    w.flush().unwrap();
}

fn invoke(client: u64, req: u64, op: Op) -> ClientEvent {
    ClientEvent::Invoke(Invoke {
        client,
        req,
        node: None,
        op,
        time: None,
    })
}

fn ret(client: u64, req: u64, status: Status, value: Option<&str>) -> ClientEvent {
    ClientEvent::Return(Return {
        client,
        req,
        status,
        value: value.map(str::to_string),
        error: None,
        time: None,
    })
}

#[test]
fn raft_trace_histories_with_the_raftkv_model() {
    let dir = tempfile::tempdir().unwrap();
    let k = || "x".to_string();
    let good = [
        invoke(
            1,
            1,
            Op::Write {
                key: k(),
                value: "1".into(),
            },
        ),
        invoke(2, 1, Op::Read { key: k() }),
        ret(1, 1, Status::Ok, None),
        ret(2, 1, Status::Ok, None),
        invoke(
            1,
            2,
            Op::Cas {
                key: k(),
                from: Some("1".into()),
                to: "2".into(),
            },
        ),
        ret(1, 2, Status::Ok, None),
        invoke(
            2,
            2,
            Op::Cas {
                key: k(),
                from: Some("1".into()),
                to: "3".into(),
            },
        ),
        ret(2, 2, Status::Fail, None),
        invoke(3, 1, Op::Delete { key: k() }),
        ret(3, 1, Status::Info, None),
        invoke(2, 3, Op::Read { key: k() }),
        ret(2, 3, Status::Ok, Some("2")),
        invoke(2, 4, Op::Read { key: k() }),
        ret(2, 4, Status::Ok, None),
    ];
    let path = dir.path().join("good.ndjson");
    history(&path, &good);
    raftcheck()
        .args(["linearize"])
        .arg(&path)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("model raftkv"));
    // Reading 2 again after the delete was seen is a violation.
    let mut bad = good.to_vec();
    bad.push(invoke(2, 5, Op::Read { key: k() }));
    bad.push(ret(2, 5, Status::Ok, Some("2")));
    let path = dir.path().join("bad.ndjson");
    history(&path, &bad);
    raftcheck()
        .args(["linearize", "--format", "raft-trace"])
        .arg(&path)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("key \"x\""));
    // A return nobody invoked: bad input naming the line.
    let path = dir.path().join("orphan.ndjson");
    history(&path, &[ret(9, 9, Status::Ok, None)]);
    raftcheck()
        .args(["linearize"])
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("orphan.ndjson:2:"));
}

#[test]
fn bad_input_exits_2_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let jepsen = dir.path().join("bad.log");
    std::fs::write(
        &jepsen,
        "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:read\tbanana\n",
    )
    .unwrap();
    raftcheck()
        .args(["linearize"])
        .arg(&jepsen)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.log:2:"))
        .stderr(predicate::str::contains("not an integer"));
    let edn = dir.path().join("bad.txt");
    std::fs::write(
        &edn,
        "{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n{:process 0 :type}\n",
    )
    .unwrap();
    raftcheck()
        .args(["linearize"])
        .arg(&edn)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.txt:2:"));
    // Porcupine's empty etcd_095.log.
    raftcheck()
        .args(["linearize"])
        .arg(data("jepsen/etcd_095.log"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("empty"));
    // An operation the model cannot express.
    raftcheck()
        .args(["linearize", "--model", "cas-register"])
        .arg(data("kv/c01-ok.txt"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "not supported by the cas-register model",
        ));
    let garbage = dir.path().join("garbage.txt");
    std::fs::write(&garbage, "hello\n").unwrap();
    raftcheck()
        .args(["linearize"])
        .arg(&garbage)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("garbage.txt:1:"));
}

/// A bad file among several no longer hides the others: each file gets its
/// line (Porcupine's empty etcd_095.log used to stop the run before any
/// check), and the exit code is the worst over all of them.
#[test]
fn every_file_is_reported_and_the_worst_code_wins() {
    // A linearizable file and the empty one: bad input (2) outweighs a pass.
    raftcheck()
        .args(["linearize"])
        .arg(data("kv/c01-ok.txt"))
        .arg(data("jepsen/etcd_095.log"))
        .assert()
        .code(2)
        .stdout(predicate::str::contains("c01-ok.txt: linearizable"))
        .stdout(predicate::str::contains(
            "etcd_095.log: bad input, not checked",
        ))
        .stderr(predicate::str::contains("empty"));
    // A violation (1) outweighs bad input, and the file after the bad one
    // is still checked.
    let out = raftcheck()
        .args(["linearize", "--json"])
        .arg(data("jepsen/etcd_095.log"))
        .arg(data("kv/c01-bad.txt"))
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["bad_files"], 1);
    assert_eq!(v["verdict"], "not-linearizable", "{v}");
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert!(files[0]["error"].as_str().unwrap().contains("empty"));
    assert!(files[1]["file"].as_str().unwrap().ends_with("c01-bad.txt"));
}

/// An error about a whole file names the file alone (no `:0:` line number).
#[test]
fn a_missing_history_names_the_file_without_a_line() {
    let out = Command::cargo_bin("raftcheck")
        .unwrap()
        .args(["linearize", "/no/such/history.ndjson"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/no/such/history.ndjson: cannot read"),
        "{err}"
    );
    assert!(!err.contains(":0:"), "{err}");
}

/// `--log` takes a level (or TARGET=LEVEL directives); anything else is bad
/// usage, not silently "warn".
#[test]
fn an_unknown_log_level_is_refused() {
    for (level, code) in [("foo", 2), ("debug", 0), ("raftkv=debug,warn", 0)] {
        let out = Command::cargo_bin("raftcheck")
            .unwrap()
            .args(["--log", level, "bugs"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "--log {level}");
        if code == 2 {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("--log"), "{err}");
        }
    }
}

/// An operation's place is given once, as lines of the file (which is also
/// its real-time interval), not as lines and as 0-based positions.
#[test]
fn operations_are_placed_by_their_lines_only() {
    let out = raftcheck()
        .args(["linearize"])
        .arg(data("jepsen/etcd_000.log"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("cas(\"4\", \"3\") fail (client 0, lines 82-83)"),
        "{text}"
    );
    // An operation with an unknown outcome may take effect until the end.
    assert!(
        text.contains("write(\"4\") ? (client 14, line 81 to the end, unknown at line 90)"),
        "{text}"
    );
    assert!(!text.contains("interval"), "{text}");
    assert!(!text.contains("[82, 83]"), "{text}");
}

/// `-` reads a history from standard input, in any of the formats.
#[test]
fn a_history_on_standard_input_is_checked_and_named_stdin() {
    for (file, code, verdict) in [
        (
            "jepsen/etcd_002.log",
            0,
            "stdin: linearizable (77 operations",
        ),
        ("jepsen/etcd_000.log", 1, "stdin: NOT linearizable"),
        ("kv/c10-bad.txt", 1, "stdin: NOT linearizable"),
    ] {
        raftcheck()
            .args(["linearize", "-"])
            .write_stdin(std::fs::read(data(file)).unwrap())
            .assert()
            .code(code)
            .stdout(predicate::str::contains(verdict));
    }
    raftcheck()
        .args(["linearize", "-"])
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("stdin: the file is empty"));
}
