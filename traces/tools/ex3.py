from gen import *
t=T([1,2,3],entries="terms",state=["term","vote","role","commit","last_index","last_term","snapshot_index","snapshot_term"],network={"loss":True,"duplication":False,"reorder":True})
def Q(term,vote,role,commit,li,lt,si=0,st=0):
    d=P(term,vote,role,commit,li,lt); d["snapshot_index"]=si; d["snapshot_term"]=st; return d
for n in (1,2,3):
    t.ev(n,"init",Q(0,None,"follower",0,0,0),reason="boot",term=0,vote=None,last_index=0,last_term=0)
t.ev(3,"crash")
t.ev(1,"timeout",timer="election")
t.ev(1,"role",Q(1,1,"candidate",0,0,0),role="candidate",term=1,reason="election_timeout")
t.ev(1,"persist",term=1,vote=1,last_index=0)
rv=t.send(1,2,1,"request_vote",last_index=0,last_term=0)
t.send(1,3,1,"request_vote",last_index=0,last_term=0)  # node 3 is down: lost
t.recv(rv,Q(1,1,"follower",0,0,0)); t.ev(2,"persist",term=1,vote=1,last_index=0)
g=t.send(2,1,1,"request_vote_reply",granted=True)
t.recv(g,Q(1,1,"candidate",0,0,0))
t.ev(1,"role",Q(1,1,"leader",0,0,0),role="leader",term=1,reason="won_election")
# the no-op and two writes, replicated to node 2 in one batch
t.client("invoke",client=1,req=1,node=1,op={"f":"write","key":"x","value":"1"})
t.client("invoke",client=2,req=1,node=1,op={"f":"write","key":"y","value":"2"})
e=[{"term":1}]*3
t.ev(1,"append",Q(1,1,"leader",0,3,1),index=1,entries=e); t.ev(1,"persist",term=1,vote=1,last_index=3)
a=t.send(1,2,1,"append_entries",prev_index=0,prev_term=0,commit=0,entries=e)
t.recv(a,Q(1,1,"follower",0,0,0)); t.ev(2,"append",index=1,entries=e); t.ev(2,"persist",term=1,vote=1,last_index=3)
r=t.send(2,1,1,"append_entries_reply",success=True,match_index=3)
t.recv(r,Q(1,1,"leader",0,3,1)); t.ev(1,"commit",index=3)
t.ev(1,"apply",index=1,term=1); t.ev(1,"apply",index=2,term=1,client=1,req=1); t.ev(1,"apply",index=3,term=1,client=2,req=1)
t.client("return",client=1,req=1,status="ok"); t.client("return",client=2,req=1,status="ok")
# node 1 compacts its log into a snapshot of entries 1..3
t.ev(1,"snapshot",Q(1,1,"leader",3,3,1,3,1),index=3,term=1)
# node 3 comes back with an empty log; the entries it needs are gone from node 1's log
t.ev(3,"init",Q(0,None,"follower",0,0,0),reason="restart",term=0,vote=None,last_index=0,last_term=0)
a=t.send(1,3,1,"append_entries",prev_index=3,prev_term=1,commit=3,entries=[])
t.recv(a,Q(1,None,"follower",0,0,0)); t.ev(3,"persist",term=1,vote=None,last_index=0)
rj=t.send(3,1,1,"append_entries_reply",success=False,hint_index=1)
t.recv(rj,Q(1,1,"leader",3,3,1,3,1))
s=t.send(1,3,1,"install_snapshot",last_index=3,last_term=1,offset=0,done=True,data={"x":"1","y":"2"})
t.recv(s,Q(1,None,"follower",0,0,0))
t.ev(3,"install",Q(1,None,"follower",3,3,1,3,1),index=3,term=1)
t.ev(3,"persist",term=1,vote=None,last_index=3)
sr=t.send(3,1,1,"install_snapshot_reply",last_index=3)
t.recv(sr,Q(1,1,"leader",3,3,1,3,1))
# a read through the log now reaches all three nodes
t.client("invoke",client=3,req=1,node=1,op={"f":"read","key":"y"})
t.ev(1,"append",Q(1,1,"leader",3,4,1,3,1),index=4,entries=[{"term":1}]); t.ev(1,"persist",term=1,vote=1,last_index=4)
a=t.send(1,3,1,"append_entries",prev_index=3,prev_term=1,commit=3,entries=[{"term":1}])
t.recv(a,Q(1,None,"follower",3,3,1,3,1)); t.ev(3,"append",index=4,entries=[{"term":1}]); t.ev(3,"persist",term=1,vote=None,last_index=4)
r=t.send(3,1,1,"append_entries_reply",success=True,match_index=4)
t.recv(r,Q(1,1,"leader",3,4,1,3,1)); t.ev(1,"commit",index=4); t.ev(1,"apply",index=4,term=1,client=3,req=1)
t.client("return",client=3,req=1,status="ok",value="2")
t.write(sys.argv[1])
