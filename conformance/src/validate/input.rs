//! Finding the runs under a path, and merging a run's files into one stream
//! of events in an order that respects send-before-receive.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use raft_trace::{
    ClientEvent, Event, EventType, Header, NodeEvent, NodeId, Record, TraceError, TraceReader,
};

use super::network::NetworkCheck;
use super::InputError;

/// The files of one run: one file for the cluster, or one per node, and any
/// client-history files.
#[derive(Debug, Clone)]
pub struct Run {
    pub name: String,
    pub files: Vec<PathBuf>,
    /// Set when the files were grouped without reading them
    /// ([`candidate_runs`]): they are one run only if no node has events in
    /// two of them, which the merge finds out as it reads them.
    pub(crate) unverified: bool,
}

impl Run {
    /// A run of the given files, as they are (no grouping to verify).
    pub fn new(name: impl Into<String>, files: Vec<PathBuf>) -> Run {
        Run {
            name: name.into(),
            files,
            unverified: false,
        }
    }

    /// Each file a run of its own.
    pub(crate) fn split(&self) -> Vec<Run> {
        self.files
            .iter()
            .map(|f| Run::new(f.display().to_string(), vec![f.clone()]))
            .collect()
    }

    /// The run as it is when no node has events in two of its files (read
    /// in full to find out), else each file a run of its own.
    fn verified(self) -> Result<Vec<Run>, InputError> {
        Ok(if self.unverified && shares_a_node(&self.files)? {
            self.split()
        } else {
            vec![Run {
                unverified: false,
                ..self
            }]
        })
    }
}

fn ndjson_files(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        InputError::Layout(format!("{}: cannot read directory: {e}", dir.display()))
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| InputError::Layout(format!("{}: {e}", dir.display())))?
            .path();
        if path.is_file() && path.extension().is_some_and(|e| e == "ndjson") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The runs under `path`: a file is a run; a directory holding `*.ndjson`
/// files is a run when they split one run by node, else each file is a run
/// (files that share a node are separate runs); the same for each
/// subdirectory (`DIR/seed-N/`). Every file is read to group them.
pub fn runs_in(path: &Path) -> Result<Vec<Run>, InputError> {
    let mut runs = Vec::new();
    for run in candidate_runs(path)? {
        runs.extend(run.verified()?);
    }
    Ok(runs)
}

/// As [`runs_in`], without reading the files: each directory's files are
/// one run, to be split if a node turns out to have events in two of them
/// ([`super::check_runs`] does that as it validates them).
pub fn candidate_runs(path: &Path) -> Result<Vec<Run>, InputError> {
    if path.is_file() {
        return Ok(vec![Run::new(
            path.display().to_string(),
            vec![path.to_path_buf()],
        )]);
    }
    if !path.is_dir() {
        return Err(InputError::Layout(format!(
            "{}: no such file or directory",
            path.display()
        )));
    }
    let mut runs = Vec::new();
    runs.extend(group(path, ndjson_files(path)?));
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| InputError::Layout(format!("{}: cannot read directory: {e}", path.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    subdirs.sort_by_key(|p| natural_key(p));
    for dir in subdirs {
        runs.extend(group(&dir, ndjson_files(&dir)?));
    }
    if runs.is_empty() {
        return Err(InputError::Layout(format!(
            "{}: no *.ndjson trace files here or in its subdirectories",
            path.display()
        )));
    }
    Ok(runs)
}

/// The files of one directory as one run, unverified when there are
/// several (see [`Run::unverified`]).
fn group(dir: &Path, files: Vec<PathBuf>) -> Vec<Run> {
    match files.len() {
        0 => vec![],
        1 => vec![Run::new(dir.display().to_string(), files)],
        _ => vec![Run {
            name: dir.display().to_string(),
            files,
            unverified: true,
        }],
    }
}

/// Whether some node has node events in two of `files` (each read in full).
pub(crate) fn shares_a_node(files: &[PathBuf]) -> Result<bool, InputError> {
    let mut owner: std::collections::BTreeMap<u64, usize> = Default::default();
    for (i, file) in files.iter().enumerate() {
        for node in nodes_with_events(file)? {
            if *owner.entry(node).or_insert(i) != i {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The nodes that have node events in `file` (a client's `invoke` names
/// the node it asked, but is not the node's event). Lines that are not JSON
/// objects are left to the reader to report.
fn nodes_with_events(file: &Path) -> Result<std::collections::BTreeSet<u64>, InputError> {
    use std::io::BufRead;
    #[derive(serde::Deserialize)]
    struct NodeField<'a> {
        #[serde(rename = "type", borrow)]
        ty: Option<std::borrow::Cow<'a, str>>,
        node: Option<u64>,
    }
    let f = File::open(file)
        .map_err(|e| InputError::Layout(format!("{}: cannot open: {e}", file.display())))?;
    let mut nodes = std::collections::BTreeSet::new();
    for line in BufReader::new(f).lines() {
        let line =
            line.map_err(|e| InputError::Layout(format!("{}: cannot read: {e}", file.display())))?;
        if let Ok(NodeField {
            ty: Some(ty),
            node: Some(n),
        }) = serde_json::from_str(&line)
        {
            if ty != "invoke" && ty != "return" {
                nodes.insert(n);
            }
        }
    }
    Ok(nodes)
}

/// Sorts `seed-2` before `seed-10`.
fn natural_key(p: &Path) -> (String, u64) {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let digits: String = name
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    let number = digits
        .chars()
        .rev()
        .collect::<String>()
        .parse()
        .unwrap_or(0);
    (name[..name.len() - digits.len()].to_string(), number)
}

/// Where an item was read: the index of its file in the run's files, and
/// its line. (A [`Location`] names the file; it is made from this only for
/// a report, so that the stream does not share a file name's counter
/// between threads on every event.)
#[derive(Debug, Clone, Copy)]
pub struct At {
    pub file: usize,
    pub line: u64,
}

/// One item of the merged stream.
pub enum Item {
    /// A node event, boxed as the reader gives it (moved as a pointer).
    Node(At, Box<NodeEvent>),
    /// A client event; each file's client events are a history of their own.
    Client(At, Box<ClientEvent>),
}

/// Records parsed per batch by a file's reading thread.
const BATCH: usize = 512;
/// Batches a reading thread may be ahead of the checks (bounded memory).
const BATCHES_AHEAD: usize = 8;

/// A record and its line (the error boxed: a batch moves small items).
type Parsed = (u64, Result<Record, Box<TraceError>>);

/// One file's records, each with its line. They are parsed on a thread of
/// the file's own, a few batches ahead of the checks that consume them
/// (parsing is about half of a validation's work), in file order; the
/// thread stops at the file's end, after its first error, or when the run
/// is dropped.
struct Source {
    file: String,
    header: Header,
    batches: mpsc::Receiver<Vec<Parsed>>,
    batch: std::vec::IntoIter<Parsed>,
    head: Option<(u64, Record)>,
}

impl Source {
    fn start(mut reader: TraceReader<BufReader<File>>) -> Source {
        let file = reader.file().to_string();
        let header = reader.header().clone();
        let (tx, batches) = mpsc::sync_channel(BATCHES_AHEAD);
        std::thread::spawn(move || loop {
            let mut batch = Vec::with_capacity(BATCH);
            let mut end = false;
            while batch.len() < BATCH {
                match reader.next() {
                    Some(r) => {
                        end = r.is_err();
                        batch.push((reader.line(), r.map_err(Box::new)));
                        if end {
                            break;
                        }
                    }
                    None => {
                        end = true;
                        break;
                    }
                }
            }
            if (!batch.is_empty() && tx.send(batch).is_err()) || end {
                return;
            }
        });
        Source {
            file,
            header,
            batches,
            batch: Vec::new().into_iter(),
            head: None,
        }
    }

    fn advance(&mut self) -> Result<(), InputError> {
        let next = match self.batch.next() {
            Some(p) => Some(p),
            None => match self.batches.recv() {
                Ok(b) => {
                    self.batch = b.into_iter();
                    self.batch.next()
                }
                // The thread ended: the file has no more records.
                Err(_) => None,
            },
        };
        self.head = match next {
            Some((line, Ok(r))) => Some((line, r)),
            Some((_, Err(e))) => return Err((*e).into()),
            None => None,
        };
        Ok(())
    }
}

/// The files of a run read together.
pub struct Merged {
    header: Header,
    sources: Vec<Source>,
    /// The source to take from next when several may go.
    current: usize,
    /// The source each node's events came from so far.
    owners: Vec<(NodeId, usize)>,
}

impl Merged {
    pub fn open(run: &Run) -> Result<Self, InputError> {
        let mut sources = Vec::new();
        let mut header: Option<Header> = None;
        for path in &run.files {
            let reader = raft_trace::read_file(path)?;
            let h = reader.header().clone();
            // The run's header is that of a file with node events: a history
            // file's header says nothing of the network between the nodes.
            let has_node_events = h
                .observes
                .events
                .iter()
                .any(|e| !matches!(e, EventType::Invoke | EventType::Return));
            if !h.nodes.is_empty() && has_node_events {
                match &header {
                    Some(first) if first.nodes != h.nodes => {
                        return Err(InputError::Layout(format!(
                            "{}:1: field \"nodes\": {:?} differs from {:?} in another file of the same run",
                            path.display(),
                            h.nodes,
                            first.nodes
                        )))
                    }
                    Some(_) => {}
                    None => header = Some(h),
                }
            }
            let mut source = Source::start(reader);
            source.advance()?;
            sources.push(source);
        }
        let header = match header {
            Some(h) => h,
            None => sources
                .first()
                .map(|s| s.header.clone())
                .ok_or_else(|| InputError::Layout(format!("{}: no files", run.name)))?,
        };
        Ok(Merged {
            header,
            sources,
            current: 0,
            owners: Vec::new(),
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Notes that `node` has events in source `i`: an error when it had
    /// some in another file, which is then a run of its own.
    fn owned(&mut self, node: NodeId, i: usize) -> Result<(), InputError> {
        match self.owners.iter().find(|(n, _)| *n == node) {
            Some(&(_, j)) if j != i => Err(InputError::SharedNode {
                node,
                first: self.sources[j].file.clone(),
                second: self.sources[i].file.clone(),
            }),
            Some(_) => Ok(()),
            None => {
                self.owners.push((node, i));
                Ok(())
            }
        }
    }

    /// Whether this head may go now: anything but a receive whose send has
    /// not been replayed yet.
    fn ready(head: &Record, network: &NetworkCheck) -> bool {
        match head {
            Record::Node(e) => match &e.event {
                Event::Receive(m) => network.was_sent(m.msg.from, m.msg.id),
                _ => true,
            },
            _ => true,
        }
    }

    /// The next event. With one file, file order is kept as it is (a
    /// receive before its send is then the validator's to reject). With
    /// several, events with a `time` go in time order; otherwise the merge
    /// stays on one file until it reaches a receive whose send has not been
    /// seen, then moves on.
    pub fn next(&mut self, network: &NetworkCheck) -> Result<Option<Item>, InputError> {
        let n = self.sources.len();
        let pick = if n == 1 {
            self.sources[0].head.as_ref().map(|_| 0)
        } else {
            // The sources with a head, in file order: (index, time, head).
            let heads = || {
                self.sources.iter().enumerate().filter_map(|(i, s)| {
                    let (_, r) = s.head.as_ref()?;
                    let time = match r {
                        Record::Node(e) => e.time,
                        Record::Client(c) => match &**c {
                            ClientEvent::Invoke(i) => i.time,
                            ClientEvent::Return(r) => r.time,
                        },
                    };
                    Some((i, time, r))
                })
            };
            let first = heads().next().map(|h| h.0);
            if first.is_none() {
                None
            } else if heads().all(|(_, t, _)| t.is_some()) {
                heads()
                    .filter(|h| Self::ready(h.2, network))
                    .min_by_key(|(i, t, _)| (*t, *i))
                    .map(|h| h.0)
                    .or(first)
            } else {
                (0..n)
                    .map(|k| (self.current + k) % n)
                    .find(|&i| heads().any(|h| h.0 == i && Self::ready(h.2, network)))
                    .or(first)
            }
        };
        let Some(i) = pick else { return Ok(None) };
        self.current = i;
        if let (Some((_, Record::Node(e))), true) = (&self.sources[i].head, n > 1) {
            self.owned(e.node, i)?;
        }
        let source = &mut self.sources[i];
        let (line, record) = source.head.take().expect("picked a source with a head");
        source.advance()?;
        let at = At { file: i, line };
        Ok(Some(match record {
            Record::Node(e) => Item::Node(at, e),
            Record::Client(c) => Item::Client(at, c),
        }))
    }
}
