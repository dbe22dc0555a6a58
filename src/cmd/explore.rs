//! `raftcheck explore`: stateright's web explorer for one configuration of
//! the model, behind a small front server of our own.
//!
//! Stateright's explorer runs on a loopback port of its own and serves the
//! model as [`ExplorerModel`] shows it (servers named S1..Sn). The front
//! server, on `--addr`, passes every request on and changes two things:
//!
//! - A state's properties. Stateright marks a property violated only on the
//!   one path its own search found, so a counterexample reached another way
//!   (the path `raftcheck check` prints) showed "Safety holds" at a state
//!   that breaks the property. The front server evaluates every property at
//!   each state it returns, and marks the state where an `always` property
//!   fails (or a `sometimes` property is reached) as that property's
//!   discovery, which the explorer's page then shows for the state.
//! - The page for a URL whose `?config=` names another configuration: an
//!   explanation with the command that explores it, instead of an
//!   unrelated path.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use raft_model::explorer::{query_value, ExplorerModel, CONFIG_PARAM};
use raft_model::{build, RaftModel, RaftState};
use serde_json::Value;
use stateright::{Expectation, Model};

use crate::cmd::check::ModelArgs;
use crate::exit::Outcome;
use crate::output::errln;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to listen on (port 0: any free port, announced on stderr).
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: String,
}

pub fn run(args: Args) -> Result<Outcome> {
    let cfg = args.model.config()?;
    let addr: SocketAddr = args
        .addr
        .parse()
        .map_err(|e| anyhow!("--addr {:?}: {e}", args.addr))?;
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let model = ExplorerModel::new(&cfg)?;

    // Stateright's explorer, on a loopback port only the front server uses.
    let backend = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("cannot find a loopback port for the explorer")?;
    let serving = std::thread::spawn(move || {
        model.checker().serve(backend);
    });
    let start = Instant::now();
    while TcpStream::connect(backend).is_err() {
        if serving.is_finished() || start.elapsed() > Duration::from_secs(10) {
            anyhow::bail!("the explorer did not start on {backend}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let front = Arc::new(Front {
        backend,
        flags: cfg.to_flags(),
        model: build(&cfg),
        addr: local,
    });
    errln!(
        "explorer for {} on http://{local}/ (Ctrl-C to stop)",
        front.flags
    );
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let front = Arc::clone(&front);
        std::thread::spawn(move || {
            // A client that goes away mid-request is no error of ours.
            let _ = front.handle(conn);
        });
    }
    Ok(Outcome::Holds)
}

struct Front {
    backend: SocketAddr,
    flags: String,
    model: RaftModel,
    addr: SocketAddr,
}

/// An HTTP response: status line text, content type, body.
struct Response {
    status: String,
    content_type: String,
    body: Vec<u8>,
}

impl Front {
    fn handle(&self, conn: TcpStream) -> std::io::Result<()> {
        conn.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut reader = BufReader::new(conn.try_clone()?);
        let mut request_line = String::new();
        reader.read_line(&mut request_line)?;
        let mut content_length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.trim().eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; content_length.min(1 << 20)];
        reader.read_exact(&mut body)?;
        let mut parts = request_line.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return respond(&conn, &text_response("400 Bad Request", "bad request\n"));
        };
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let response = if method == "GET" && path == "/" {
            match query_value(query, CONFIG_PARAM) {
                Some(theirs) if theirs != self.flags => self.mismatch(&theirs),
                _ => {
                    let mut r = self.forward(method, path);
                    if r.status.starts_with("200") {
                        r.body = self.decorate(&r.body);
                    }
                    r
                }
            }
        } else if method == "GET" && path.starts_with("/.states") {
            let mut r = self.forward(method, path);
            if r.status.starts_with("200") {
                if let Some(body) = self.mark_properties(&path["/.states".len()..], &r.body) {
                    r.body = body;
                }
            }
            r
        } else {
            self.forward(method, path)
        };
        respond(&conn, &response)
    }

    /// Passes a request on to stateright's explorer.
    fn forward(&self, method: &str, path: &str) -> Response {
        match self.try_forward(method, path) {
            Ok(r) => r,
            Err(e) => text_response(
                "502 Bad Gateway",
                &format!("the explorer behind this server did not answer: {e}\n"),
            ),
        }
    }

    fn try_forward(&self, method: &str, path: &str) -> std::io::Result<Response> {
        let mut s = TcpStream::connect(self.backend)?;
        s.set_read_timeout(Some(Duration::from_secs(600)))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            self.backend
        )?;
        let mut raw = vec![];
        s.read_to_end(&mut raw)?;
        let bad = || std::io::Error::other("malformed response");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(bad)?;
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_once(' '))
            .map(|(_, s)| s.to_string())
            .ok_or_else(bad)?;
        let mut content_type = String::new();
        let mut chunked = false;
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                let name = name.trim().to_ascii_lowercase();
                if name == "content-type" {
                    content_type = value.trim().to_string();
                } else if name == "transfer-encoding"
                    && value.to_ascii_lowercase().contains("chunked")
                {
                    chunked = true;
                }
            }
        }
        let mut body = raw[split + 4..].to_vec();
        if chunked {
            body = dechunk(&body).ok_or_else(bad)?;
        }
        Ok(Response {
            status,
            content_type,
            body,
        })
    }

    /// Marks, in a `/.states` answer, the properties each returned state
    /// breaks (`always`) or reaches (`sometimes`) as discovered at that
    /// state. `None` when the answer or the path is not what was expected
    /// (the answer then goes out unchanged).
    fn mark_properties(&self, path: &str, body: &[u8]) -> Option<Vec<u8>> {
        let indices: Vec<usize> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().ok())
            .collect::<Option<_>>()?;
        let mut views: Vec<Value> = serde_json::from_slice(body).ok()?;
        let model = &self.model;
        let init = model.init_states();
        // The state the path ends at, and its actions (as the explorer
        // replays a path: an action that changes nothing is skipped).
        let from = match indices.split_first() {
            None => None,
            Some((first, rest)) => {
                let mut state = init.get(*first)?.clone();
                for &i in rest {
                    let mut actions = vec![];
                    model.actions(&state, &mut actions);
                    let action = actions.get(i)?.clone();
                    if let Some(next) = model.next_state(&state, action) {
                        state = next;
                    }
                }
                let mut actions = vec![];
                model.actions(&state, &mut actions);
                Some((state, actions))
            }
        };
        let properties = model.properties();
        for view in &mut views {
            if view.get("state").is_none() {
                continue;
            }
            let k = view.get("actionIndex")?.as_u64()? as usize;
            let state: RaftState = match &from {
                None => init.get(k)?.clone(),
                Some((state, actions)) => model.next_state(state, actions.get(k)?.clone())?,
            };
            let here: Vec<String> = indices
                .iter()
                .chain(std::iter::once(&k))
                .map(|i| i.to_string())
                .collect();
            let here = here.join("/");
            for shown in view.get_mut("properties")?.as_array_mut()? {
                let name = shown.get(1)?.as_str()?;
                let p = properties.iter().find(|p| p.name == name)?;
                let holds = (p.condition)(model, &state);
                let found = match p.expectation {
                    Expectation::Always => !holds,
                    Expectation::Sometimes => holds,
                    Expectation::Eventually => false,
                };
                if found {
                    *shown.get_mut(2)? = Value::String(here.clone());
                }
            }
        }
        serde_json::to_vec(&views).ok()
    }

    /// Stateright's page with the configuration named under its header,
    /// and the properties of the selected state shown from the start (the
    /// state a counterexample URL opens is the one that breaks a property).
    fn decorate(&self, page: &[u8]) -> Vec<u8> {
        let page = String::from_utf8_lossy(page);
        let banner = format!(
            "<div class=\"color-dark font-code padding-small\" id=\"raftcheck-config\">\
             raftcheck explore {}</div>",
            escape(&self.flags)
        );
        let script = "<script>\n\
             // raftcheck: open with the selected state's properties shown.\n\
             if (window.app) { window.app.showCurrentStateProperties(true); }\n\
             </script>\n";
        page.replacen("</header>", &format!("</header>\n{banner}"), 1)
            .replacen("</body>", &format!("{script}</body>"), 1)
            .into_bytes()
    }

    /// The page for a URL made for another configuration.
    fn mismatch(&self, theirs: &str) -> Response {
        let esc = escape;
        let body = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Another configuration</title></head>\n\
             <body style=\"font-family: sans-serif; max-width: 60em; margin: 2em\">\n\
             <h1>This URL is for another configuration</h1>\n\
             <p>The path in this URL was found in the configuration</p>\n<pre>{}</pre>\n\
             <p>but this explorer explores</p>\n<pre>{}</pre>\n\
             <p>The same path means something else here, so it is not shown. To see it, stop this explorer, start</p>\n\
             <pre>raftcheck explore {} --addr {}</pre>\n<p>and open the URL again.</p>\n\
             </body></html>\n",
            esc(theirs),
            esc(&self.flags),
            esc(theirs),
            self.addr
        );
        Response {
            status: "409 Conflict".into(),
            content_type: "text/html; charset=utf-8".into(),
            body: body.into_bytes(),
        }
    }
}

/// HTML text.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn text_response(status: &str, text: &str) -> Response {
    Response {
        status: status.into(),
        content_type: "text/plain; charset=utf-8".into(),
        body: text.as_bytes().to_vec(),
    }
}

fn respond(mut conn: &TcpStream, r: &Response) -> std::io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        r.status,
        r.body.len()
    )?;
    if !r.content_type.is_empty() {
        write!(conn, "Content-Type: {}\r\n", r.content_type)?;
    }
    conn.write_all(b"\r\n")?;
    conn.write_all(&r.body)?;
    conn.flush()
}

/// The body of a chunked transfer encoding.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![];
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}
