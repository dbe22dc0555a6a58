# Example 5: production Raft (features pre-vote, heartbeat, check-quorum): a
# pre-vote round, the real election it allows, heartbeats, and the leader
# stepping down by check-quorum once it stops hearing from its followers.
import json
from gen import *
t=T([1,2,3],network={"loss":True,"duplication":False,"reorder":True})
t.lines[0]["features"]=["pre-vote","heartbeat","check-quorum"]
for n in (1,2,3):
    t.ev(n,"init",P(0,None,"follower",0,0,0),reason="boot",term=0,vote=None,last_index=0,last_term=0)
# node 1 times out: it asks for pre-votes for term 1, staying in term 0
t.ev(1,"timeout",timer="election")
t.ev(1,"role",P(0,None,"pre_candidate",0,0,0),role="pre_candidate",term=0,reason="election_timeout")
p2=t.send(1,2,1,"pre_vote",last_index=0,last_term=0)
p3=t.send(1,3,1,"pre_vote",last_index=0,last_term=0)
# node 2 grants the pre-vote: its term and vote do not change
t.recv(p2,P(0,None,"follower",0,0,0))
g2=t.send(2,1,1,"pre_vote_reply",granted=True)
# with its own, node 1 has pre-votes from a quorum: the real election
t.recv(g2,P(1,1,"candidate",0,0,0))
t.ev(1,"role",P(1,1,"candidate",0,0,0),role="candidate",term=1,reason="pre_vote_won")
t.ev(1,"persist",term=1,vote=1,last_index=0)
rv2=t.send(1,2,1,"request_vote",last_index=0,last_term=0)
rv3=t.send(1,3,1,"request_vote",last_index=0,last_term=0)
t.recv(rv2,P(1,1,"follower",0,0,0))
t.ev(2,"persist",term=1,vote=1,last_index=0)
v2=t.send(2,1,1,"request_vote_reply",granted=True)
t.recv(v2,P(1,1,"leader",0,0,0))
t.ev(1,"role",P(1,1,"leader",0,0,0),role="leader",term=1,reason="won_election")
# heartbeats carry min(match, commit): nothing is matched yet
t.ev(1,"timeout",timer="heartbeat")
h2=t.send(1,2,1,"heartbeat",commit=0)
h3=t.send(1,3,1,"heartbeat",commit=0)
t.recv(h2,P(1,1,"follower",0,0,0))
r2=t.send(2,1,1,"heartbeat_reply")
t.recv(r2)
# node 3 sees the old pre-vote late, and grants it (term 1 is above its own)
t.recv(p3,P(0,None,"follower",0,0,0))
g3=t.send(3,1,1,"pre_vote_reply",granted=True)
t.recv(h3,P(1,None,"follower",0,0,0))
r3=t.send(3,1,1,"heartbeat_reply")
t.recv(g3)
t.recv(r3)
# the vote request to node 3 is lost. Then node 1 hears from no one during
# an election timeout: check-quorum makes it a follower in its term
t.ev(1,"timeout",timer="election")
t.ev(1,"role",P(1,1,"follower",0,0,0),role="follower",term=1,reason="check_quorum")
t.write(__import__("sys").argv[1])
