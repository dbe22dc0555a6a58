//! TCP relays in front of every directed peer link. raftkv sends node i's
//! messages to node j over a connection that i opens to j, so a relay that i
//! dials instead of j carries exactly the i -> j direction: cutting it is a
//! one-way partition, cutting both directions a full one. No root needed.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One relay: listens on `addr`, forwards to the peer while open.
pub struct Relay {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    /// Starts a relay on a free loopback port that forwards to `target`.
    pub fn start(target: SocketAddr) -> io::Result<Relay> {
        let port = raftkv::transport::ports::listen_port()?;
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        let open = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (o, c) = (open.clone(), conns.clone());
        std::thread::Builder::new()
            .name(format!("relay-{}", addr.port()))
            .spawn(move || accept_loop(listener, target, o, c))?;
        Ok(Relay { addr, open, conns })
    }

    /// Cuts the link: open connections are reset (what was in flight is
    /// lost) and new ones are closed at once until [`Relay::heal`].
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for s in self.conns.lock().expect("relay lock").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    pub fn heal(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    #[cfg(test)]
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }
}

fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
) {
    for incoming in listener.incoming() {
        let Ok(from) = incoming else { continue };
        if !open.load(Ordering::SeqCst) {
            let _ = from.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(to) = TcpStream::connect_timeout(&target, Duration::from_secs(1)) else {
            let _ = from.shutdown(Shutdown::Both);
            continue;
        };
        let _ = from.set_nodelay(true);
        let _ = to.set_nodelay(true);
        let clones = (from.try_clone(), to.try_clone());
        let (Ok(from2), Ok(to2)) = clones else {
            continue;
        };
        {
            let mut list = conns.lock().expect("relay lock");
            // A cut may have come between the check above and here.
            if !open.load(Ordering::SeqCst) {
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                continue;
            }
            list.retain(|s| s.peer_addr().is_ok());
            if let (Ok(a), Ok(b)) = (from.try_clone(), to.try_clone()) {
                list.push(a);
                list.push(b);
            }
        }
        pipe(from, to);
        pipe(to2, from2);
    }
}

/// Copies `a` to `b` on a thread of its own; closes both when either ends.
fn pipe(mut a: TcpStream, mut b: TcpStream) {
    let _ = std::thread::Builder::new()
        .name("relay-pipe".into())
        .spawn(move || {
            let _ = io::copy(&mut a, &mut b);
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
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
        assert!(!relay.is_open());
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
        assert!(relay.is_open());
    }
}
