//! The Go driver process (`go/src/etcdraftdriver`): one per node
//! incarnation, one JSON object per line each way.

use std::io::{BufRead, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde::Deserialize;

/// The environment variable naming the driver binary.
pub const DRIVER_ENV: &str = "RAFTCHECK_ETCD_RAFT_DRIVER";

/// How to build the driver, for error messages.
pub const BUILD_HINT: &str = "build it with adapters/etcd-raft/run.sh (or: cd adapters/etcd-raft/go && \
GO111MODULE=off GOPATH=$PWD:/usr/share/gocode GOPROXY=off go build -o ../../../target/etcdraftdriver \
etcdraftdriver, with Debian's golang-go and golang-etcd-server-dev installed)";

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(
        "no etcd raft driver given: pass --etcd-raft-driver PATH or set {DRIVER_ENV}; {BUILD_HINT}"
    )]
    Unset,
    #[error("the etcd raft driver {0} does not exist; {BUILD_HINT}")]
    Missing(PathBuf),
}

/// The driver binary: `explicit`, else the environment variable; it must
/// exist.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, DriverError> {
    let p = match explicit {
        Some(p) => p.to_path_buf(),
        None => std::env::var_os(DRIVER_ENV)
            .map(PathBuf::from)
            .ok_or(DriverError::Unset)?,
    };
    if p.is_file() {
        Ok(p)
    } else {
        Err(DriverError::Missing(p))
    }
}

/// A node's raw state, as the driver reports it.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct GoObs {
    pub term: u64,
    pub vote: u64,
    /// etcd's `StateType`: 0 follower, 1 candidate, 2 leader, 3 pre-candidate.
    pub role: u64,
    pub lead: u64,
    pub commit: u64,
    pub applied: u64,
    pub last: u64,
    pub last_term: u64,
    pub snap: u64,
    pub snap_term: u64,
    pub unstable: Option<(u64, u64)>,
}

#[derive(Debug, Deserialize)]
pub struct GoRead {
    pub index: u64,
    pub ctx: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct GoReady {
    #[serde(default)]
    pub hard_state: Option<String>,
    #[serde(default)]
    pub snapshot: Option<String>,
    #[serde(default)]
    pub entries: Vec<String>,
    #[serde(default)]
    pub committed: Vec<String>,
}

/// The driver's answer to one request (see the driver's `answer`).
#[derive(Debug, Default, Deserialize)]
pub struct Answer {
    #[serde(default)]
    pub err: Option<String>,
    #[serde(default)]
    pub obs: Option<GoObs>,
    #[serde(default)]
    pub lo: u64,
    #[serde(default)]
    pub before: Vec<u64>,
    #[serde(default)]
    pub after: Vec<u64>,
    #[serde(default)]
    pub new: Vec<String>,
    #[serde(default)]
    pub msgs: Vec<String>,
    #[serde(default)]
    pub reads: Vec<GoRead>,
    #[serde(default)]
    pub failed: bool,
    #[serde(default)]
    pub ready: Option<GoReady>,
}

/// One running driver process.
pub struct Driver {
    child: Child,
    input: BufWriter<ChildStdin>,
    output: BufReader<ChildStdout>,
    line: String,
}

impl Driver {
    pub fn spawn(path: &Path) -> Driver {
        let mut child = Command::new(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the etcd raft driver {}: {e}", path.display()));
        let input = BufWriter::new(child.stdin.take().expect("piped stdin"));
        let output = BufReader::new(child.stdout.take().expect("piped stdout"));
        Driver {
            child,
            input,
            output,
            line: String::new(),
        }
    }

    /// Sends one request and reads its answer. The driver is part of the
    /// harness: a failure of it is a bug there, not a finding.
    pub fn call(&mut self, req: &serde_json::Value) -> Answer {
        serde_json::to_writer(&mut self.input, req).expect("serializable request");
        self.input
            .write_all(b"\n")
            .expect("the etcd raft driver's stdin");
        self.input.flush().expect("the etcd raft driver's stdin");
        self.line.clear();
        let n = self
            .output
            .read_line(&mut self.line)
            .expect("the etcd raft driver's stdout");
        assert!(n > 0, "the etcd raft driver exited (request {req})");
        let a: Answer = serde_json::from_str(&self.line)
            .unwrap_or_else(|e| panic!("the etcd raft driver's answer {:?}: {e}", self.line));
        if let Some(err) = &a.err {
            panic!("the etcd raft driver failed on {req}: {err}");
        }
        a
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The node crashed or the run ended: the process goes with it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("the driver writes hex"))
        .collect()
}

/// A raftpb message as raft-rs's eraftpb type (same wire format).
pub fn decode<M: protobuf::Message>(s: &str) -> M {
    M::parse_from_bytes(&unhex(s)).expect("etcd's raftpb decodes as eraftpb")
}

pub fn encode<M: protobuf::Message>(m: &M) -> String {
    hex(&m.write_to_bytes().expect("encodable"))
}
