//! A TCP relay for fault experiments on node processes (`raftcheck
//! jepsen`, the cluster tests): it sits in front of a node's peer port and
//! carries one link. raftkv sends node i's messages to node j over a
//! connection that i opens to j (the receiver never writes on it), so a
//! relay that i dials instead of j carries exactly the i -> j direction:
//! cutting it is a one-way partition, cutting both directions a full one.
//! Cut, it resets the connections it carries (what was in flight is lost)
//! and closes every new one at once, so the sender's transport keeps
//! reconnecting; healed, it forwards again. No root needed.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The cut flag and the open connections (both halves), under one lock so
/// that no connection is registered after a cut without being closed.
type State = Arc<Mutex<(bool, Vec<TcpStream>)>>;

/// One relay: listens on `addr`, forwards to its target while not cut.
pub struct Relay {
    pub addr: SocketAddr,
    state: State,
    stop: Arc<AtomicBool>,
}

impl Relay {
    /// Starts a relay on a free loopback port (see [`super::ports`]) that
    /// forwards to `target`.
    pub fn start(target: SocketAddr) -> io::Result<Relay> {
        let port = super::ports::listen_port()?;
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        let state: State = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::Builder::new()
            .name(format!("relay-{}", addr.port()))
            .spawn(move || accept_loop(listener, target, st, sp))?;
        Ok(Relay { addr, state, stop })
    }

    /// Cuts the link.
    pub fn cut(&self) {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        g.0 = true;
        for s in g.1.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Forwards again.
    pub fn heal(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).0 = false;
    }

    pub fn is_cut(&self) -> bool {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).0
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the stop.
        let _ = TcpStream::connect(self.addr);
    }
}

fn accept_loop(listener: TcpListener, target: SocketAddr, state: State, stop: Arc<AtomicBool>) {
    for incoming in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(inbound) = incoming else { continue };
        if state.lock().unwrap_or_else(|p| p.into_inner()).0 {
            let _ = inbound.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(outbound) = TcpStream::connect_timeout(&target, Duration::from_secs(1)) else {
            let _ = inbound.shutdown(Shutdown::Both);
            continue;
        };
        let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
        let halves = (
            inbound.try_clone(),
            outbound.try_clone(),
            inbound.try_clone(),
            outbound.try_clone(),
        );
        let (Ok(in2), Ok(out2), Ok(in3), Ok(out3)) = halves else {
            continue;
        };
        {
            let mut g = state.lock().unwrap_or_else(|p| p.into_inner());
            if g.0 {
                let _ = inbound.shutdown(Shutdown::Both);
                let _ = outbound.shutdown(Shutdown::Both);
                continue;
            }
            g.1.retain(|s| s.peer_addr().is_ok());
            g.1.push(in3);
            g.1.push(out3);
        }
        pipe(inbound, out2);
        pipe(outbound, in2);
    }
}

/// Copies `from` to `to` on a thread of its own; closes both when it ends.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::thread::Builder::new()
        .name("relay-pipe".into())
        .spawn(move || {
            let _ = io::copy(&mut from, &mut to);
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn forwards_while_open_and_resets_when_cut() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = server.local_addr().unwrap();
        let relay = Relay::start(target).unwrap();
        let echo = std::thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
            // Keep it open until the relay resets it.
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
        });
        let mut c = TcpStream::connect(relay.addr).unwrap();
        c.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");

        relay.cut();
        assert!(relay.is_cut());
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        // The cut closed the connection: reading ends (EOF or reset).
        let _ = c.read_to_end(&mut rest);
        echo.join().unwrap();

        // While cut, a new connection is closed at once.
        let mut d = TcpStream::connect(relay.addr).unwrap();
        d.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut one = [0u8; 1];
        assert!(matches!(d.read(&mut one), Ok(0) | Err(_)));
        relay.heal();
        assert!(!relay.is_cut());
    }
}
