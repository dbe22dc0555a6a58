# Example 7: commits learned from vote messages (feature commit-any-message,
# raft-rs maybe_commit_by_vote) and log entries of kinds config and opaque.
# Every message carries commit_term (and commit, where its rpc has none of its
# own). Node 2 holds both entries but was never told they are committed; the
# vote reply node 1 sends in term 2 carries commit 2 of term 1, which node 2's
# log holds, so node 2 commits and applies them.
from gen import *
t=T([1,2,3],network={"loss":True,"duplication":False,"reorder":True})
t.lines[0]["features"]=["commit-any-message"]
for n in (1,2,3):
    t.ev(n,"init",P(0,None,"follower",0,0,0),reason="boot",term=0,vote=None,last_index=0,last_term=0)
t.ev(1,"timeout",timer="election")
t.ev(1,"role",P(1,1,"candidate",0,0,0),role="candidate",term=1,reason="election_timeout")
t.ev(1,"persist",term=1,vote=1,last_index=0)
rv2=t.send(1,2,1,"request_vote",last_index=0,last_term=0,commit=0,commit_term=0)
rv3=t.send(1,3,1,"request_vote",last_index=0,last_term=0,commit=0,commit_term=0)
t.recv(rv2,P(1,1,"follower",0,0,0))
t.ev(2,"persist",term=1,vote=1,last_index=0)
v2=t.send(2,1,1,"request_vote_reply",granted=True,commit=0,commit_term=0)
t.recv(v2)
t.ev(1,"role",P(1,1,"leader",0,0,0),role="leader",term=1,reason="won_election")
# the leader appends a membership change and an application command the
# checker does not interpret: both are compared by kind and data, never run
cfg={"term":1,"data":{"kind":"config","data":{"voters":[1,2,3]}}}
app={"term":1,"data":{"kind":"opaque","data":"c2V0IHggMQ=="}}
t.ev(1,"append",P(1,1,"leader",0,2,1),index=1,entries=[cfg,app])
t.ev(1,"persist",term=1,vote=1,last_index=2)
ae2=t.send(1,2,1,"append_entries",prev_index=0,prev_term=0,commit=0,entries=[cfg,app])
t.recv(ae2)
t.ev(2,"append",P(1,1,"follower",0,2,1),index=1,entries=[cfg,app])
t.ev(2,"persist",term=1,vote=1,last_index=2)
r2=t.send(2,1,1,"append_entries_reply",success=True,match_index=2)
t.recv(r2)
t.ev(1,"commit",index=2)
t.ev(1,"apply",P(1,1,"leader",2,2,1),index=1,term=1)
t.ev(1,"apply",P(1,1,"leader",2,2,1),index=2,term=1)
# node 3 campaigns in term 2 with an empty log: node 1 refuses, and its
# refusal carries its commit (2, of term 1), which node 3's log does not hold
t.recv(rv3,P(1,1,"follower",0,0,0))
t.ev(3,"persist",term=1,vote=1,last_index=0)
v3=t.send(3,1,1,"request_vote_reply",granted=True,commit=0,commit_term=0)
t.recv(v3)
t.ev(3,"timeout",timer="election")
t.ev(3,"role",P(2,3,"candidate",0,0,0),role="candidate",term=2,reason="election_timeout")
t.ev(3,"persist",term=2,vote=3,last_index=0)
rv31=t.send(3,1,2,"request_vote",last_index=0,last_term=0,commit=0,commit_term=0)
t.recv(rv31)
t.ev(1,"role",P(2,None,"follower",2,2,1),role="follower",term=2,reason="higher_term")
t.ev(1,"persist",term=2,vote=None,last_index=2)
n13=t.send(1,3,2,"request_vote_reply",granted=False,commit=2,commit_term=1)
t.recv(n13)
# node 2 campaigns in term 2; node 1 grants, and its reply carries commit 2
t.ev(2,"timeout",timer="election")
t.ev(2,"role",P(2,2,"candidate",0,2,1),role="candidate",term=2,reason="election_timeout")
t.ev(2,"persist",term=2,vote=2,last_index=2)
rv21=t.send(2,1,2,"request_vote",last_index=2,last_term=1,commit=0,commit_term=0)
t.recv(rv21)
t.ev(1,"persist",P(2,2,"follower",2,2,1),term=2,vote=2,last_index=2)
g12=t.send(1,2,2,"request_vote_reply",granted=True,commit=2,commit_term=1)
t.recv(g12)
t.ev(2,"role",P(2,2,"leader",0,2,1),role="leader",term=2,reason="won_election")
t.ev(2,"commit",index=2)
t.ev(2,"apply",P(2,2,"leader",2,2,1),index=1,term=1)
t.ev(2,"apply",P(2,2,"leader",2,2,1),index=2,term=1)
t.write(sys.argv[1])
