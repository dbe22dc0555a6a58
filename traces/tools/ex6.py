# Example 6: leader transfer (features check-quorum, leader-transfer; thesis
# 3.10). The leader replicates its entry to node 2, sends it timeout_now once
# node 2's match is its last index; node 2 campaigns at once (role reason
# transfer) with request_vote marked transfer, which node 3 may not ignore
# although it heard from leader 1 (check-quorum's lease), and wins term 2.
from gen import *
t=T([1,2,3],network={"loss":True,"duplication":False,"reorder":True})
t.lines[0]["features"]=["check-quorum","leader-transfer"]
for n in (1,2,3):
    t.ev(n,"init",P(0,None,"follower",0,0,0),reason="boot",term=0,vote=None,last_index=0,last_term=0)
# node 1 wins term 1 with node 2's vote
t.ev(1,"timeout",timer="election")
t.ev(1,"role",P(1,1,"candidate",0,0,0),role="candidate",term=1,reason="election_timeout")
t.ev(1,"persist",term=1,vote=1,last_index=0)
rv2=t.send(1,2,1,"request_vote",last_index=0,last_term=0)
rv3=t.send(1,3,1,"request_vote",last_index=0,last_term=0)
t.recv(rv2,P(1,1,"follower",0,0,0))
t.ev(2,"persist",term=1,vote=1,last_index=0)
g2=t.send(2,1,1,"request_vote_reply",granted=True)
t.recv(g2,P(1,1,"candidate",0,0,0))
t.ev(1,"role",P(1,1,"leader",0,0,0),role="leader",term=1,reason="won_election")
noop={"term":1,"data":{"kind":"noop"}}
t.ev(1,"append",P(1,1,"leader",0,1,1),index=1,entries=[noop])
t.ev(1,"persist",term=1,vote=1,last_index=1)
a2=t.send(1,2,1,"append_entries",prev_index=0,prev_term=0,commit=0,entries=[noop])
a3=t.send(1,3,1,"append_entries",prev_index=0,prev_term=0,commit=0,entries=[noop])
# node 2 takes the entry
t.recv(a2,P(1,1,"follower",0,0,0))
t.ev(2,"append",index=1,entries=[noop])
t.ev(2,"persist",term=1,vote=1,last_index=1)
r2=t.send(2,1,1,"append_entries_reply",success=True,match_index=1)
t.recv(r2,P(1,1,"leader",0,1,1))
t.ev(1,"commit",index=1)
t.ev(1,"apply",P(1,1,"leader",1,1,1),index=1,term=1)
# an operator asks node 1 to hand leadership to node 2, whose match is the
# leader's last index: timeout_now
tn=t.send(1,2,1,"timeout_now",P(1,1,"leader",1,1,1))
# node 2 campaigns at once, without waiting for its election timeout
t.recv(tn,P(2,2,"candidate",0,1,1))
t.ev(2,"role",P(2,2,"candidate",0,1,1),role="candidate",term=2,reason="transfer")
t.ev(2,"persist",term=2,vote=2,last_index=1)
q1=t.send(2,1,2,"request_vote",last_index=1,last_term=1,transfer=True)
q3=t.send(2,3,2,"request_vote",last_index=1,last_term=1,transfer=True)
# node 3 hears from leader 1 (its lease starts), then the transfer's vote
# request: it may not ignore it, and grants
t.recv(rv3,P(1,1,"follower",0,0,0))
t.ev(3,"persist",term=1,vote=1,last_index=0)
g3=t.send(3,1,1,"request_vote_reply",granted=True)
t.recv(a3,P(1,1,"follower",0,0,0))
t.ev(3,"append",index=1,entries=[noop])
t.ev(3,"persist",term=1,vote=1,last_index=1)
r3=t.send(3,1,1,"append_entries_reply",success=True,match_index=1)
t.recv(q3,P(2,2,"follower",0,1,1))
t.ev(3,"persist",term=2,vote=2,last_index=1)
v3=t.send(3,2,2,"request_vote_reply",granted=True)
t.recv(v3,P(2,2,"candidate",0,1,1))
t.ev(2,"role",P(2,2,"leader",0,1,1),role="leader",term=2,reason="won_election")
# node 1 learns of term 2 from the vote request and steps down
t.recv(q1,P(2,None,"follower",1,1,1))
t.ev(1,"role",P(2,None,"follower",1,1,1),role="follower",term=2,reason="higher_term")
t.ev(1,"persist",term=2,vote=2,last_index=1)
v1=t.send(1,2,2,"request_vote_reply",P(2,2,"follower",1,1,1),granted=True)
t.recv(g3)
t.recv(r3)
t.recv(v1)
t.write(__import__("sys").argv[1])
