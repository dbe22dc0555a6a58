//! Lease reads (thesis §6.4.1).

use super::*;

fn lease_on(c: &mut Config) {
    c.check_quorum = true;
    c.lease_read = true;
    c.leader_transfer = true;
}

/// A cluster with lease reads whose nodes are past their first election
/// timeout (before it they answer no campaign).
fn cluster() -> Cluster {
    let mut c = Cluster::new(3, lease_on);
    for n in c.nodes.values_mut() {
        n.since_start = n.config().election_ticks;
    }
    c
}

/// Ticks the leader until it has sent a heartbeat round and the followers
/// acknowledged it.
fn heartbeat_round(c: &mut Cluster) {
    let hb = c.node(1).config().heartbeat_ticks;
    for _ in 0..hb {
        c.tick_all();
    }
}

fn lease_read(c: &mut Cluster, ctx: u64) -> Vec<ReadState> {
    c.node(1).read_index(ctx).unwrap();
    std::mem::take(&mut c.node(1).read_states)
}

#[test]
fn lease_reads_need_check_quorum() {
    let mut k = cfg(1, 3);
    k.lease_read = true;
    assert_eq!(k.validate(), Err(ConfigError::LeaseWithoutCheckQuorum));
    k.check_quorum = true;
    assert_eq!(k.validate(), Ok(()));
    k.lease_drift_ticks = k.election_ticks;
    assert!(k.validate().is_err());
}

#[test]
fn a_leader_with_a_lease_serves_reads_at_once() {
    let mut c = cluster();
    c.elect(1);
    assert!(!c.node(1).lease_holds(), "no round acknowledged yet");
    heartbeat_round(&mut c);
    assert!(c.node(1).lease_holds());
    let commit = c.node(1).commit_index();
    // No heartbeat round, no message: the read state is there at once.
    assert_eq!(
        lease_read(&mut c, 5),
        vec![ReadState {
            ctx: 5,
            index: commit
        }]
    );
    assert_eq!(c.node(1).pending_reads(), 0);
}

#[test]
fn the_lease_expires_before_the_followers_election_timeout() {
    let mut c = cluster();
    c.elect(1);
    heartbeat_round(&mut c);
    assert!(c.node(1).lease_holds());
    c.cut.insert(2);
    c.cut.insert(3);
    let e = c.node(1).config().election_ticks;
    let drift = c.node(1).config().lease_drift_ticks;
    // The round acknowledged was sent at the last tick; the lease lasts
    // `election_ticks - drift` ticks from then.
    for _ in 0..(e - drift) {
        assert!(c.node(1).lease_holds());
        c.node(1).tick();
    }
    assert!(!c.node(1).lease_holds());
    // Without the lease a read waits for a heartbeat round again.
    assert!(lease_read(&mut c, 6).is_empty());
    assert_eq!(c.node(1).pending_reads(), 1);
    // The followers still honour the lease: they heard from the leader
    // less than an election timeout ago.
    assert!(c.node(2).in_lease() && c.node(3).in_lease());
}

#[test]
fn a_transfer_ends_the_lease_for_the_term() {
    let mut c = cluster();
    c.elect(1);
    heartbeat_round(&mut c);
    assert!(c.node(1).lease_holds());
    c.cut.insert(2);
    c.node(1).transfer_leader(2).unwrap();
    assert!(!c.node(1).lease_holds());
    c.pump(); // the TimeoutNow is lost
              // Abandoned, the transfer leaves the leader without a lease still.
    c.cut.clear();
    let e = c.node(1).config().election_ticks;
    for _ in 0..e {
        c.node(1).tick();
    }
    assert_eq!(c.node(1).transferring(), None);
    heartbeat_round(&mut c);
    assert!(c.node(1).is_leader());
    assert!(!c.node(1).lease_holds());
}

#[test]
fn a_restarted_node_answers_no_campaign_for_an_election_timeout() {
    let mut k = cfg(3, 3);
    lease_on(&mut k);
    let rec = Recovered {
        hard_state: HardState {
            term: 1,
            vote: None,
            commit: 0,
        },
        incarnation: 1,
        ..Recovered::default()
    };
    let mut n = RaftNode::new(k, rec, None);
    let vote = Message {
        id: 1,
        from: 2,
        to: 3,
        term: 2,
        body: Body::RequestVote {
            last_index: 0,
            last_term: 0,
            transfer: false,
        },
    };
    n.step(vote.clone());
    assert_eq!(n.term(), 1, "discarded unread");
    for _ in 0..n.config().election_ticks {
        n.tick();
        if n.role() != Role::Follower {
            break;
        }
    }
    let mut n2 = {
        let mut k = cfg(3, 3);
        lease_on(&mut k);
        RaftNode::new(k, Recovered::default(), None)
    };
    for _ in 0..n2.config().election_ticks {
        n2.election_elapsed = 0; // keep it from campaigning itself
        n2.tick();
    }
    n2.step(Message { term: 2, ..vote });
    assert_eq!(n2.term(), 2, "answered once an election timeout has passed");
}

/// The planted bug: a lease of four election timeouts outlives the
/// followers' promise; the old leader still claims a lease after the others
/// could have elected a new leader.
#[test]
fn planted_lease_overrun_outlives_the_followers() {
    for bug in [false, true] {
        let mut c = Cluster::new(3, |k| {
            lease_on(k);
            if bug {
                k.bugs = Bugs::NONE.with(Bug::LeaseOverrun);
            }
        });
        for n in c.nodes.values_mut() {
            n.since_start = n.config().election_ticks;
        }
        c.elect(1);
        heartbeat_round(&mut c);
        c.cut.insert(1);
        let e = c.node(1).config().election_ticks;
        for _ in 0..e {
            c.tick_all();
        }
        // The followers' promise has run out; the leader still leads.
        assert!(!c.node(2).in_lease() && !c.node(3).in_lease());
        assert!(c.node(1).is_leader());
        assert_eq!(c.node(1).lease_holds(), bug);
    }
}

/// A follower in its leader's lease does not read a reply of a higher term
/// (a late answer to a campaign of its own): adopting that term would end
/// its promise to the leader early. Out of the lease it reads it.
#[test]
fn a_follower_in_a_lease_discards_a_higher_term_reply() {
    let mut c = cluster();
    c.elect(1);
    heartbeat_round(&mut c);
    let term = c.node(2).term();
    assert!(c.node(2).in_lease());
    let reply = Message {
        id: 99,
        from: 3,
        to: 2,
        term: term + 1,
        body: Body::RequestVoteReply { granted: false },
    };
    c.node(2).step(reply.clone());
    assert_eq!(c.node(2).term(), term, "discarded unread");
    assert_eq!(c.node(2).leader(), Some(1));
    let n = c.node(2);
    n.election_elapsed = n.config().election_ticks;
    assert!(!n.in_lease());
    n.step(reply);
    assert_eq!(n.term(), term + 1, "read once the lease is over");
}
