# Example 9: a read served by ReadIndex (features heartbeat, read-index;
# thesis 6.4). Leader 1 commits an entry of its term (its no-op), then
# answers a client's read without appending it: it confirms its leadership
# with a round of heartbeats whose `context` names the read, and answers
# once a quorum (itself and node 3) echoed it; its `read` event says so.
from gen import *
t=T([1,2,3],network={"loss":True,"duplication":False,"reorder":True})
t.lines[0]["features"]=["heartbeat","read-index"]
t.lines[0]["observes"]["events"].insert(-2,"read")
elect_and_commit_noop(t,1,3)
# the read: no append; a heartbeat round names it (context 7)
C=t.client
C("invoke",client=1,req=1,node=1,op={"f":"read","key":"x"})
h2=t.send(1,2,1,"heartbeat",P(1,1,"leader",1,1,1),commit=0,context=7)
h3=t.send(1,3,1,"heartbeat",commit=1,context=7)
t.recv(h3,P(1,1,"follower",0,1,1))
t.ev(3,"commit",index=1)
t.ev(3,"apply",index=1,term=1)
e3=t.send(3,1,1,"heartbeat_reply",P(1,1,"follower",1,1,1),context=7)
t.recv(e3,P(1,1,"leader",1,1,1))
# with its own, a quorum confirmed the leadership: the leader serves the
# read at its commit index when the round left (1), an entry of its term,
# from its state machine applied up to it: x is absent
t.ev(1,"read",index=1,via="read_index",context=7,client=1,req=1)
C("return",client=1,req=1,status="ok")
t.recv(h2,P(1,None,"follower",0,0,0))
t.write(__import__("sys").argv[1])
