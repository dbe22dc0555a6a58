//! Where results go: every subcommand prints its results to stdout through
//! this module, and its progress and diagnostics to stderr through [`errln!`].
//!
//! A closed stdout (`raftcheck check | head -1`) is not a failure worth a
//! panic: the first write that finds the reader gone returns an
//! [`OutputError`], the subcommand stops with `?`, and `main` ends the
//! process quietly with [`CLOSED_EXIT_CODE`] (what a shell reports for a
//! process killed by SIGPIPE). Later writes fail at once without writing.
//! Any other stdout failure (a full disk, say) is reported as an error.
//!
//! ```ignore
//! use crate::output::{self, outln};
//!
//! outln!("{} states", n)?;                    // a line of text
//! output::json(&serde_json::json!({"n": n}))?; // `--json`: one object, one line
//! errln!("wrote {}", path.display());         // progress: stderr, never fails
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

/// The exit code when stdout was closed before all results were printed:
/// 128 + SIGPIPE, what a shell reports for a process killed by a closed pipe.
pub const CLOSED_EXIT_CODE: u8 = 141;

/// Set once a write to stdout found the reader gone.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writing results to stdout failed.
#[derive(Debug)]
pub struct OutputError(io::Error);

impl OutputError {
    /// Whether the reader closed stdout (a broken pipe), as opposed to a
    /// real failure such as a full disk.
    pub fn is_closed(&self) -> bool {
        self.0.kind() == io::ErrorKind::BrokenPipe
    }
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write results to stdout: {}", self.0)
    }
}

impl StdError for OutputError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.0)
    }
}

/// Whether `e` (or an error it wraps) says stdout was closed early; `main`
/// then exits quietly with [`CLOSED_EXIT_CODE`].
pub fn closed_early(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<OutputError>()
            .is_some_and(OutputError::is_closed)
    })
}

/// Runs `write` on `w` unless an earlier write found the reader gone
/// (`closed`), and remembers a broken pipe in `closed`.
fn write_with<W: Write>(
    w: &mut W,
    closed: &AtomicBool,
    write: impl FnOnce(&mut W) -> io::Result<()>,
) -> Result<(), OutputError> {
    if closed.load(Ordering::Relaxed) {
        return Err(OutputError(io::ErrorKind::BrokenPipe.into()));
    }
    write(w).map_err(|e| {
        if e.kind() == io::ErrorKind::BrokenPipe {
            closed.store(true, Ordering::Relaxed);
        }
        OutputError(e)
    })
}

fn write_stdout(
    write: impl FnOnce(&mut io::StdoutLock<'static>) -> io::Result<()>,
) -> Result<(), OutputError> {
    write_with(&mut io::stdout().lock(), &STDOUT_CLOSED, write)
}

/// Prints `args` and a newline to stdout (what [`outln!`] expands to).
pub fn line(args: fmt::Arguments<'_>) -> Result<(), OutputError> {
    write_stdout(|w| {
        w.write_fmt(args)?;
        w.write_all(b"\n")
    })
}

/// Prints `args` to stdout (what [`out!`] expands to).
pub fn text(args: fmt::Arguments<'_>) -> Result<(), OutputError> {
    write_stdout(|w| w.write_fmt(args))
}

/// Prints `value` as one line of JSON to stdout: the one object a
/// subcommand prints with `--json`.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let buf = json_line(value)?;
    write_stdout(|w| w.write_all(&buf))?;
    Ok(())
}

/// `value` as compact JSON and a newline. Serialized in full before
/// anything is written, so a value that cannot be serialized prints nothing.
fn json_line<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut buf = Vec::new();
    serde_json::to_writer(&mut buf, value)?;
    buf.push(b'\n');
    Ok(buf)
}

/// Prints `args` and a newline to stderr, ignoring failures: progress and
/// diagnostics are lost on a closed stderr, but the check goes on (what
/// [`errln!`] expands to; `eprintln!` would panic).
pub fn err_line(args: fmt::Arguments<'_>) {
    let mut w = io::stderr().lock();
    let _ = w.write_fmt(args).and_then(|()| w.write_all(b"\n"));
}

/// `println!` for results: prints to stdout and returns
/// `Result<(), OutputError>`, to be propagated with `?`.
macro_rules! outln {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}

/// `print!` for results: prints to stdout and returns
/// `Result<(), OutputError>`, to be propagated with `?`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::text(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics: for progress and diagnostics on stderr.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::err_line(format_args!($($arg)*))
    };
}

pub(crate) use {errln, out, outln};

/// An error and its causes on one line (`outer: cause: root`), leaving out a cause whose
/// text the line already holds (library errors often repeat their source in their own
/// message, and the chain would print it twice).
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_error_line_names_each_cause_once() {
        /// An error that repeats its source in its own message.
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "storage: {}", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let io = std::io::Error::other("fdatasync wal-1.log: injected I/O error");
        let e = anyhow::Error::from(Outer(io)).context("node 1");
        assert_eq!(
            super::error_line(&e),
            "node 1: storage: fdatasync wal-1.log: injected I/O error"
        );
        let e = anyhow::anyhow!("root").context("middle").context("top");
        assert_eq!(super::error_line(&e), "top: middle: root");
    }

    use super::*;
    use anyhow::Context as _;

    /// Accepts `room` bytes, then fails every write with `kind`.
    struct Pipe {
        written: Vec<u8>,
        room: usize,
        kind: io::ErrorKind,
        calls: usize,
    }

    impl Pipe {
        fn new(room: usize, kind: io::ErrorKind) -> Self {
            Pipe {
                written: vec![],
                room,
                kind,
                calls: 0,
            }
        }
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.written.len() + buf.len() > self.room {
                return Err(self.kind.into());
            }
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn put(p: &mut Pipe, closed: &AtomicBool, s: &str) -> Result<(), OutputError> {
        write_with(p, closed, |w| w.write_all(s.as_bytes()))
    }

    #[test]
    fn a_broken_pipe_stops_printing_and_is_reported_as_closed() {
        let closed = AtomicBool::new(false);
        let mut p = Pipe::new(6, io::ErrorKind::BrokenPipe);
        put(&mut p, &closed, "first\n").unwrap();
        let e = put(&mut p, &closed, "second\n").unwrap_err();
        assert!(e.is_closed());
        assert!(closed.load(Ordering::Relaxed));
        // Later writes fail at once, without touching the writer.
        let calls = p.calls;
        assert!(put(&mut p, &closed, "third\n").unwrap_err().is_closed());
        assert_eq!(p.calls, calls);
        assert_eq!(p.written, b"first\n");
        // It reaches `main` through `?` and context as a closed output.
        let e = anyhow::Error::from(e).context("printing the summary");
        assert!(closed_early(&e));
        let e: anyhow::Result<()> =
            Err(OutputError(io::ErrorKind::BrokenPipe.into())).context("printing the summary");
        assert!(closed_early(&e.unwrap_err()));
    }

    #[test]
    fn other_write_failures_are_errors_not_a_closed_output() {
        let closed = AtomicBool::new(false);
        let mut p = Pipe::new(0, io::ErrorKind::StorageFull);
        let e = put(&mut p, &closed, "x\n").unwrap_err();
        assert!(!e.is_closed());
        assert!(!closed.load(Ordering::Relaxed));
        assert!(e
            .to_string()
            .starts_with("cannot write results to stdout: "));
        assert!(!closed_early(&anyhow::Error::from(e)));
        // A broken pipe elsewhere (a socket) is not stdout closing.
        let socket = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(!closed_early(&socket));
    }

    #[test]
    fn json_is_one_compact_line_like_to_string() {
        let v = serde_json::json!({"verdict": "holds", "n": [1, 2.5, null], "s": "a\"b"});
        let line = json_line(&v).unwrap();
        assert_eq!(
            line,
            format!("{}\n", serde_json::to_string(&v).unwrap()).as_bytes()
        );
        assert_eq!(line, format!("{v}\n").as_bytes());
    }

    #[test]
    fn json_that_cannot_be_serialized_is_an_error_before_any_output() {
        let mut m = std::collections::BTreeMap::new();
        m.insert(vec![1u8], 1);
        assert!(json_line(&m).is_err());
    }
}
