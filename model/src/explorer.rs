//! The model as the web explorer shows it. Stateright's explorer prints
//! actions and states with their `Debug` text, where a server is `Id(2)` in
//! an action and `id: 3` in its state; here every actor has the name the
//! CLI gives it (S1..Sn, C1..Cm), actions read as the counterexample steps
//! do, and a state is a short readable summary. The actions are the model's
//! own, in the same order, so an explorer path (`#/steps/0/4/1`) means the
//! same in both.

use std::fmt;

use stateright::{Expectation, Model, Path, Property};

use crate::actor::{NodeState, Timer};
use crate::check::Action;
use crate::explain::{
    actor_name, describe_action, log, message, network_envelopes, opt_node, read, role,
    step_changes,
};
use crate::model::{build, RaftModel, RaftState};
use crate::server::Server;
use crate::types::Msg;
use crate::Config;

/// A state of the model, printed readably (its hash is the state's own, so
/// the explorer's fingerprints do not change).
#[derive(Clone, PartialEq, Hash)]
pub struct Shown(pub RaftState);

/// An action of the model, printed with the actors' names.
#[derive(Clone, PartialEq)]
pub struct Act {
    /// The number of servers (to name actors).
    pub servers: u64,
    pub action: Action,
}

/// The Raft model for the explorer.
pub struct ExplorerModel {
    pub inner: RaftModel,
    props: Vec<Property<RaftModel>>,
}

type Condition = fn(&ExplorerModel, &Shown) -> bool;

/// Property `I` of the inner model. Stateright's properties are plain
/// function pointers, so each index needs a function of its own.
fn condition<const I: usize>(m: &ExplorerModel, s: &Shown) -> bool {
    (m.props[I].condition)(&m.inner, &s.0)
}

macro_rules! conditions {
    ($($i:literal)*) => { [$(condition::<$i> as Condition),*] };
}

/// One function per property index; more than any configuration has.
const CONDITIONS: [Condition; 48] = conditions!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23
    24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47
);

/// More properties than the explorer model can carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooManyProperties(pub usize);

impl fmt::Display for TooManyProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the configuration has {} properties, the explorer shows at most {}",
            self.0,
            CONDITIONS.len()
        )
    }
}

impl std::error::Error for TooManyProperties {}

impl ExplorerModel {
    pub fn new(cfg: &Config) -> Result<ExplorerModel, TooManyProperties> {
        let inner = build(cfg);
        let props = inner.properties();
        if props.len() > CONDITIONS.len() {
            return Err(TooManyProperties(props.len()));
        }
        Ok(ExplorerModel { inner, props })
    }

    fn servers(&self) -> u64 {
        self.inner.cfg.servers
    }

    fn wrap(&self, action: Action) -> Act {
        Act {
            servers: self.servers(),
            action,
        }
    }
}

impl Model for ExplorerModel {
    type State = Shown;
    type Action = Act;

    fn init_states(&self) -> Vec<Shown> {
        self.inner.init_states().into_iter().map(Shown).collect()
    }

    fn actions(&self, state: &Shown, actions: &mut Vec<Act>) {
        let mut inner = vec![];
        self.inner.actions(&state.0, &mut inner);
        actions.extend(inner.into_iter().map(|a| self.wrap(a)));
    }

    fn next_state(&self, last: &Shown, action: Act) -> Option<Shown> {
        self.inner.next_state(&last.0, action.action).map(Shown)
    }

    fn format_action(&self, action: &Act) -> String {
        format!("{action:?}")
    }

    fn format_step(&self, last: &Shown, action: Act) -> Option<String> {
        let (_, _, actor) = describe_action(self.servers(), &action.action);
        let next = self.inner.next_state(&last.0, action.action)?;
        let changes = step_changes(self.servers(), actor, &last.0, &next);
        Some(if changes.is_empty() {
            "nothing changes".into()
        } else {
            changes.join("\n")
        })
    }

    fn as_svg(&self, path: Path<Shown, Act>) -> Option<String> {
        Some(sequence_diagram(self.servers(), &path.into_vec()))
    }

    fn properties(&self) -> Vec<Property<Self>> {
        self.props
            .iter()
            .zip(CONDITIONS)
            .map(|(p, condition)| match p.expectation {
                Expectation::Always => Property::always(p.name, condition),
                Expectation::Sometimes => Property::sometimes(p.name, condition),
                Expectation::Eventually => Property::eventually(p.name, condition),
            })
            .collect()
    }

    fn within_boundary(&self, state: &Shown) -> bool {
        Model::within_boundary(&self.inner, &state.0)
    }
}

impl fmt::Debug for Act {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (actor, what, _) = describe_action(self.servers, &self.action);
        write!(f, "{actor} {what}")
    }
}

fn timer(t: &Timer) -> String {
    match t {
        Timer::Election => "election".into(),
        Timer::Heartbeat => "heartbeat".into(),
        Timer::Batch(n) => format!("batch of {n}"),
        Timer::CheckQuorum => "check-quorum".into(),
        Timer::Transfer(j) => format!("transfer to S{j}"),
        Timer::Lease => "lease".into(),
        Timer::Retry => "retry".into(),
        Timer::Change(c) => format!("change {c}"),
    }
}

fn names(ids: &[u64]) -> String {
    let v: Vec<String> = ids.iter().map(|i| format!("S{i}")).collect();
    v.join(", ")
}

/// A server on one line, then a line of its leader state when it has some.
fn server(s: &Server) -> String {
    let mut line = format!(
        "{:<13} term {}  votedFor {}  log {}  commit {}  register {}  knows leader {}",
        role(s.role),
        s.term,
        opt_node(s.voted_for),
        log(&s.log),
        s.commit,
        s.sm.value,
        opt_node(s.leader),
    );
    let mut more = vec![];
    if !s.votes.is_empty() {
        more.push(format!("votes from {}", names(&s.votes)));
    }
    if !s.rejections.is_empty() {
        more.push(format!("refused by {}", names(&s.rejections)));
    }
    if !s.match_index.is_empty() {
        more.push(format!("matchIndex {:?}", s.match_index));
    }
    if !s.next_index.is_empty() {
        more.push(format!("nextIndex {:?}", s.next_index));
    }
    if !s.heard.is_empty() {
        more.push(format!("heard from {}", names(&s.heard)));
    }
    if !s.lease_acks.is_empty() {
        more.push(format!("lease from {}", names(&s.lease_acks)));
    }
    for r in &s.reads {
        more.push(format!(
            "read {} at index {} confirmed by {}",
            read(crate::types::read_context(r.client, r.seq)),
            r.index,
            if r.acks.is_empty() {
                "none yet".into()
            } else {
                names(&r.acks)
            }
        ));
    }
    if let Some(t) = &s.transfer {
        more.push(format!(
            "transferring leadership to S{}{}",
            t.to,
            if t.sent { " (TimeoutNow sent)" } else { "" }
        ));
    }
    if s.transfer_campaign {
        more.push("campaign started by TimeoutNow".into());
    }
    if s.lease {
        more.push("in a leader's lease".into());
    }
    if s.sent_timeout_now {
        more.push("sent TimeoutNow this term".into());
    }
    if s.sm.reexecuted {
        more.push("EXECUTED A COMMAND A SECOND TIME".into());
    }
    if !more.is_empty() {
        line.push_str("\n      ");
        line.push_str(&more.join("  "));
    }
    line
}

impl fmt::Debug for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = &self.0;
        let n = state
            .actor_states
            .iter()
            .filter(|a| matches!(****a, NodeState::Server(_)))
            .count() as u64;
        for (i, a) in state.actor_states.iter().enumerate() {
            let name = actor_name(n, stateright::actor::Id::from(i));
            let crashed = if state.crashed.get(i) == Some(&true) {
                "  CRASHED"
            } else {
                ""
            };
            match &***a {
                NodeState::Server(s) => writeln!(f, "{name:<4}{}{crashed}", server(s))?,
                NodeState::Client(c) => writeln!(
                    f,
                    "{name:<4}client on request #{}, talks to S{}, retries {}{crashed}",
                    c.seq, c.target, c.retries
                )?,
            }
            let timers: Vec<String> = state.timers_set[i].iter().map(timer).collect();
            if !timers.is_empty() {
                writeln!(f, "      timers armed: {}", timers.join(", "))?;
            }
        }
        let net = network_envelopes(&state.network);
        writeln!(f, "in flight ({}):", net.len())?;
        for (src, dst, msg) in &net {
            writeln!(
                f,
                "  {} -> {}  {}",
                actor_name(n, *src),
                actor_name(n, *dst),
                message(msg)
            )?;
        }
        let h = &state.history;
        if !h.invoked.is_empty() {
            let clients: Vec<String> = h
                .invoked
                .iter()
                .zip(&h.returned)
                .enumerate()
                .map(|(c, (i, r))| format!("C{} invoked #{i}, returned #{r}", c + 1))
                .collect();
            writeln!(
                f,
                "history: {}; {}",
                clients.join("; "),
                if h.linearizable() {
                    "linearizable so far"
                } else {
                    "NOT LINEARIZABLE"
                }
            )?;
        }
        Ok(())
    }
}

/// XML text: `&`, `<`, `>` and quotes escaped.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

/// A path as a sequence diagram: one timeline per actor (S1..Sn, C1..Cm),
/// one row per step, an arrow from where a delivered message was sent to
/// where it arrives, a dot for a timeout, crash or restart, each labelled
/// as the counterexample steps are.
fn sequence_diagram(servers: u64, steps: &[(Shown, Option<Act>)]) -> String {
    use std::fmt::Write;
    let Some((first, _)) = steps.first() else {
        return String::new();
    };
    let actors = first.0.actor_states.len();
    let (dx, dy) = (110usize, 30usize);
    let width = actors * dx + 360;
    let height = (steps.len() + 1) * dy;
    let mut svg = format!(
        "<svg version='1.1' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' \
         viewbox='-20 -20 {} {}'><defs><marker class='svg-event-shape' id='arrow' \
         markerWidth='12' markerHeight='10' refX='12' refY='5' orient='auto'>\
         <polygon points='0 0, 12 5, 0 10' /></marker></defs>",
        width + 20,
        height + 20
    );
    for a in 0..actors {
        let x = a * dx;
        let name = actor_name(servers, stateright::actor::Id::from(a));
        let _ = write!(
            svg,
            "<line x1='{x}' y1='0' x2='{x}' y2='{}' class='svg-actor-timeline' />\
             <text x='{x}' y='0' class='svg-actor-label'>{name}</text>",
            steps.len() * dy
        );
    }
    // When each message in flight was sent (its step), by envelope.
    let mut sent: Vec<((usize, usize, crate::types::Msg), usize)> = vec![];
    let mut labels = String::new();
    for (t, pair) in steps.windows(2).enumerate() {
        let (before, after) = (&pair[0].0 .0, &pair[1].0 .0);
        let Some(act) = &pair[0].1 else { continue };
        let row = (t + 1) * dy;
        let (_, what, _) = describe_action(servers, &act.action);
        let at = match &act.action {
            stateright::actor::ActorModelAction::Deliver { src, dst, msg } => {
                let key = (usize::from(*src), usize::from(*dst), Msg::clone(msg));
                let from = sent
                    .iter()
                    .rposition(|(k, _)| *k == key)
                    .map(|i| sent.remove(i).1)
                    .unwrap_or(0);
                let _ = write!(
                    svg,
                    "<line x1='{}' y1='{}' x2='{}' y2='{row}' marker-end='url(#arrow)' \
                     class='svg-event-line' />",
                    key.0 * dx,
                    from * dy,
                    key.1 * dx
                );
                Some(key.1)
            }
            stateright::actor::ActorModelAction::Drop(_) => None,
            stateright::actor::ActorModelAction::Timeout(id, _)
            | stateright::actor::ActorModelAction::Crash(id)
            | stateright::actor::ActorModelAction::Recover(id)
            | stateright::actor::ActorModelAction::SelectRandom { actor: id, .. } => {
                let x = usize::from(*id) * dx;
                let _ = write!(
                    svg,
                    "<circle cx='{x}' cy='{row}' r='8' class='svg-event-shape' />"
                );
                Some(usize::from(*id))
            }
        };
        let x = at.map_or(actors * dx, |a| a * dx + 12);
        let _ = write!(
            labels,
            "<text x='{x}' y='{row}' class='svg-event-label'>{}</text>",
            xml(&what)
        );
        for (src, dst, msg) in crate::explain::new_messages(before, after) {
            sent.push(((usize::from(src), usize::from(dst), msg), t + 1));
        }
    }
    svg.push_str(&labels);
    svg.push_str("</svg>");
    svg
}

/// The query parameter of explorer URLs that names their configuration.
pub const CONFIG_PARAM: &str = "config";

/// `text` for a URL query value: letters, digits and `-_.` as they are,
/// a space as `+`, everything else as `%XX`.
pub fn query_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The inverse of [`query_encode`] (any `%XX`, `+` for a space); `None`
/// for a malformed escape or text that is not UTF-8.
pub fn query_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The value of `key` in a URL's query string (`a=1&b=2`), decoded.
pub fn query_value(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| query_decode(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::default_suite;

    #[test]
    fn queries_round_trip() {
        let flags = "--servers 3 --feature pre-vote --bug double-vote 100%";
        let q = query_encode(flags);
        assert!(!q.contains(' '), "{q}");
        assert_eq!(query_decode(&q).as_deref(), Some(flags));
        assert_eq!(
            query_value(&format!("x=1&config={q}"), "config").as_deref(),
            Some(flags)
        );
        assert_eq!(query_decode("%4"), None);
    }

    #[test]
    fn every_suite_configuration_fits_the_explorer() {
        for e in default_suite() {
            let m = ExplorerModel::new(&e.config).expect("fits");
            assert_eq!(m.properties().len(), m.inner.properties().len());
        }
        let all = Config {
            features: crate::FEATURES.to_vec(),
            clients: 1,
            ..Config::default()
        };
        ExplorerModel::new(&all).expect("every feature fits");
    }

    #[test]
    fn states_and_actions_name_servers_as_the_cli_does() {
        let m = ExplorerModel::new(&Config::default()).unwrap();
        let init = &m.init_states()[0];
        let mut actions = vec![];
        m.actions(init, &mut actions);
        let texts: Vec<String> = actions.iter().map(|a| m.format_action(a)).collect();
        assert!(
            texts.iter().any(|t| t == "S1 election timeout"),
            "{texts:?}"
        );
        let next = m.next_state(init, actions[0].clone()).unwrap();
        let shown = format!("{next:#?}");
        assert!(shown.contains("S1 "), "{shown}");
        assert!(!shown.contains("Id("), "{shown}");
        assert!(!shown.contains("id:"), "{shown}");
    }
}
