# Example 8: proposal forwarding (feature forward-proposals; etcd-io/raft
# MsgProp). A client writes through follower 2, which hands the proposal to
# leader 1 in a `propose` message instead of redirecting the client; the
# leader appends it as its own proposal, replicates, commits and applies it.
# The second proposal is sent with term 0, as etcd-io/raft writes MsgProp.
from gen import *
t=T([1,2,3],network={"loss":True,"duplication":False,"reorder":True})
t.lines[0]["features"]=["forward-proposals"]
elect_and_commit_noop(t,1,2)
# a client writes through node 2, which forwards the proposal to leader 1
C=t.client
w1={"f":"write","key":"x","value":"1"}
C("invoke",client=1,req=1,node=2,op=w1)
cmd1={"kind":"command","client":1,"req":1,"op":w1}
p1=t.send(2,1,1,"propose",P(1,1,"follower",0,1,1),entries=[cmd1])
t.recv(p1,P(1,1,"leader",1,1,1))
e2={"term":1,"data":cmd1}
t.ev(1,"append",P(1,1,"leader",1,2,1),index=2,entries=[e2])
t.ev(1,"persist",term=1,vote=1,last_index=2)
a2b=t.send(1,2,1,"append_entries",prev_index=1,prev_term=1,commit=1,entries=[e2])
t.recv(a2b,P(1,1,"follower",0,1,1))
t.ev(2,"append",index=2,entries=[e2])
t.ev(2,"persist",term=1,vote=1,last_index=2)
t.ev(2,"commit",index=1)
t.ev(2,"apply",index=1,term=1)
r2b=t.send(2,1,1,"append_entries_reply",P(1,1,"follower",1,2,1),success=True,match_index=2)
t.recv(r2b,P(1,1,"leader",1,2,1))
t.ev(1,"commit",index=2)
t.ev(1,"apply",P(1,1,"leader",2,2,1),index=2,term=1,client=1,req=1)
C("return",client=1,req=1,status="ok")
# a second write through node 2, forwarded with term 0 (etcd-io/raft's
# MsgProp has none) and without its contents
w2={"f":"write","key":"x","value":"2"}
C("invoke",client=1,req=2,node=2,op=w2)
p2=t.send(2,1,0,"propose",P(1,1,"follower",1,2,1))
t.recv(p2,P(1,1,"leader",2,2,1))
e3={"term":1,"data":{"kind":"command","client":1,"req":2,"op":w2}}
t.ev(1,"append",P(1,1,"leader",2,3,1),index=3,entries=[e3])
t.ev(1,"persist",term=1,vote=1,last_index=3)
t.write(__import__("sys").argv[1])
