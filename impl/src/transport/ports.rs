//! Listen ports for a cluster of nodes on one machine.
//!
//! A cluster's addresses are fixed before its nodes start (each node is told
//! its peers' addresses), so a port is chosen first and bound later, by the
//! node, and again after every restart. Asking the kernel for a free port
//! (binding port 0) gives one from its ephemeral range, the range outgoing
//! connections take their local ports from: between the choice and the
//! node's bind, or while a node is down, any connection on the machine can
//! take it, and the node then fails with "address in use". [`listen_port`]
//! chooses below that range instead, where only an explicit bind can take a
//! port, and checks that none holds it now.

use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

/// The kernel's ephemeral port range when it can be read (Linux), or the
/// IANA dynamic range.
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|x| x.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((49152, 65535))
}

/// A loopback TCP port that is free now and outside the kernel's ephemeral
/// range (see the module docs), or a free ephemeral one when no port below
/// the range is free. Successive calls, in this process and in others
/// started at the same time, try different ports first.
pub fn listen_port() -> std::io::Result<u16> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (low, _) = ephemeral_range();
    // Ports from 10000 (clear of the well-known and common service ports)
    // up to the ephemeral range.
    let first = 10_000u32;
    let span = u32::from(low).saturating_sub(first);
    if span > 0 {
        let start = std::process::id().wrapping_mul(7919) % span;
        for _ in 0..span.min(4096) {
            let k = NEXT.fetch_add(1, Ordering::Relaxed);
            let port = (first + (start + k) % span) as u16;
            if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(port);
            }
        }
    }
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_free_and_below_the_ephemeral_range() {
        let (low, _) = ephemeral_range();
        let ports: Vec<u16> = (0..50).map(|_| listen_port().unwrap()).collect();
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        for p in ports {
            assert!(p < low, "port {p} is in the ephemeral range from {low}");
            TcpListener::bind((Ipv4Addr::LOCALHOST, p)).unwrap();
        }
    }

    #[test]
    fn a_port_held_by_a_listener_is_skipped() {
        let held: Vec<TcpListener> = (0..3)
            .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, listen_port().unwrap())).unwrap())
            .collect();
        let held_ports: Vec<u16> = held
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        for _ in 0..20 {
            assert!(!held_ports.contains(&listen_port().unwrap()));
        }
    }
}
