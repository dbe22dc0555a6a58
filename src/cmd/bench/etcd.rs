//! The etcd target of `raftcheck bench`: etcd's JSON gateway (grpc-gateway),
//! `POST {prefix}/kv/put` and `POST {prefix}/kv/range` with base64 keys and
//! values, where the prefix is `/v3` (etcd 3.4 and later) or `/v3beta`
//! (etcd 3.3), found by asking. Ranges are linearizable (etcd's default).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use raftkv::node::http_client::{base64, request};

/// A found etcd cluster: the leader's client address and the gateway prefix.
pub struct Etcd {
    pub leader: String,
    pub prefix: &'static str,
}

const PREFIXES: [&str; 2] = ["/v3", "/v3beta"];

fn status(addr: &str, prefix: &str) -> Result<Option<serde_json::Value>> {
    let r = request(
        addr,
        "POST",
        &format!("{prefix}/maintenance/status"),
        &[("Content-Type", "application/json".into())],
        b"{}",
        Duration::from_secs(2),
    )?;
    if r.status == 404 {
        return Ok(None);
    }
    if r.status != 200 {
        bail!("{addr}{prefix}/maintenance/status: HTTP {}", r.status);
    }
    Ok(Some(serde_json::from_slice(&r.body).with_context(
        || format!("{addr}{prefix}/maintenance/status: not JSON"),
    )?))
}

/// Finds the gateway prefix and the leader among `endpoints`, waiting up to
/// 10 s for a leader to be elected.
pub fn discover(endpoints: &[String]) -> Result<Etcd> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::from("no endpoint answered");
    loop {
        for addr in endpoints {
            for prefix in PREFIXES {
                match status(addr, prefix) {
                    Ok(None) => continue,
                    Ok(Some(v)) => {
                        let me = v["header"]["member_id"].as_str().unwrap_or("");
                        let leader = v["leader"].as_str().unwrap_or("0");
                        if !me.is_empty() && me == leader {
                            return Ok(Etcd {
                                leader: addr.clone(),
                                prefix,
                            });
                        }
                        last = format!("{addr}: not the leader (leader {leader})");
                        break;
                    }
                    Err(e) => {
                        last = format!("{e:#}");
                        break;
                    }
                }
            }
        }
        if Instant::now() > deadline {
            bail!("no etcd leader found: {last}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `POST {prefix}/kv/put` of `key` = `value` (the value already in base64).
pub fn put_request(prefix: &str, host: &str, key: &str, value_b64: &str) -> String {
    let body = format!(
        "{{\"key\":\"{}\",\"value\":\"{value_b64}\"}}",
        base64(key.as_bytes())
    );
    format!(
        "POST {prefix}/kv/put HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// `POST {prefix}/kv/range` of one key (a linearizable read).
pub fn range_request(prefix: &str, host: &str, key: &str) -> String {
    let body = format!("{{\"key\":\"{}\"}}", base64(key.as_bytes()));
    format!(
        "POST {prefix}/kv/range HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_base64_json_and_exact_length() {
        let r = put_request("/v3", "h:1", "k7", "eHg=");
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /v3/kv/put HTTP/1.1\r\n"));
        assert_eq!(body, r#"{"key":"azc=","value":"eHg="}"#);
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        let r = range_request("/v3beta", "h:1", "k7");
        assert!(r.starts_with("POST /v3beta/kv/range "));
        assert!(r.ends_with(r#"{"key":"azc="}"#));
    }
}
