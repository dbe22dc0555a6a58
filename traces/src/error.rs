//! Errors that name the file, the line and the field.

use std::fmt;

/// What went wrong, broadly; the message says exactly what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be opened or read.
    Io,
    /// The file has no lines.
    Empty,
    /// The first line is not a valid header.
    Header,
    /// The header names another format or version.
    Version,
    /// A line is not valid UTF-8.
    Utf8,
    /// A line is longer than the reader's limit.
    TooLong,
    /// The last line has no newline and is not a complete JSON object.
    Truncated,
    /// A line is not JSON, or not a JSON object.
    Syntax,
    /// The `type` field names no known event.
    UnknownEvent,
    /// A field is missing, has the wrong type, or is not allowed.
    Field,
    /// A line is well-formed but inconsistent with the header or earlier
    /// lines (unknown node, `seq` not increasing).
    Consistency,
}

/// An error in a trace or history file, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TraceError {
    /// The file's name as given by the caller.
    pub file: String,
    /// The 1-based line, or 0 when the error is about the whole file.
    pub line: u64,
    /// The dotted path of the offending field, when one is to blame.
    pub field: Option<String>,
    pub kind: ErrorKind,
    pub message: String,
}

impl TraceError {
    pub(crate) fn new(file: &str, line: u64, kind: ErrorKind, message: impl Into<String>) -> Self {
        TraceError {
            file: file.to_string(),
            line,
            field: None,
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "field \"{field}\": ")?;
        }
        write!(f, "{}", self.message)
    }
}
