# Example 10: a membership change (feature config-on-apply: a node uses the
# last configuration it applied, as etcd-io/raft and raft-rs do). Nodes 1 to
# 3 vote; node 4 starts outside the cluster. Leader 1 adds node 4 as a voter
# with a configuration entry that names the new voters. It commits that
# entry with node 2 (a majority of {1,2,3}) and, before it has applied it,
# commits a client's command with node 2 as well: until it applies the
# change it still counts the majority of {1,2,3}. Then it applies both.
from gen import *
t=T([1,2,3,4],network={"loss":True,"duplication":False,"reorder":True})
t.lines[0]["voters"]=[1,2,3]
t.lines[0]["features"]=["config-on-apply"]
elect_and_commit_noop(t,1,2)
# the change: one server (node 4) added as a voter
cfg={"term":1,"data":{"kind":"config","voters":[1,2,3,4],"learners":[]}}
t.ev(1,"append",P(1,1,"leader",1,2,1),index=2,entries=[cfg])
t.ev(1,"persist",term=1,vote=1,last_index=2)
a=t.send(1,2,1,"append_entries",prev_index=1,prev_term=1,commit=1,entries=[cfg])
t.recv(a)
t.ev(2,"append",index=2,entries=[cfg])
t.ev(2,"commit",index=1)
t.ev(2,"apply",index=1,term=1)
t.ev(2,"persist",P(1,1,"follower",1,2,1),term=1,vote=1,last_index=2)
r=t.send(2,1,1,"append_entries_reply",P(1,1,"follower",1,2,1),success=True,match_index=2)
t.recv(r)
t.ev(1,"commit",P(1,1,"leader",2,2,1),index=2)
# a client's write, appended and committed before the leader applies the change
C=t.client
w={"f":"write","key":"x","value":"1"}
C("invoke",client=1,req=1,node=1,op=w)
cmd={"term":1,"data":{"kind":"command","client":1,"req":1,"op":w}}
t.ev(1,"append",P(1,1,"leader",2,3,1),index=3,entries=[cmd])
t.ev(1,"persist",term=1,vote=1,last_index=3)
a=t.send(1,2,1,"append_entries",prev_index=2,prev_term=1,commit=2,entries=[cmd])
t.recv(a)
t.ev(2,"append",index=3,entries=[cmd])
t.ev(2,"commit",index=2)
t.ev(2,"apply",index=2,term=1)
t.ev(2,"persist",P(1,1,"follower",2,3,1),term=1,vote=1,last_index=3)
r=t.send(2,1,1,"append_entries_reply",P(1,1,"follower",2,3,1),success=True,match_index=3)
t.recv(r)
# 1 and 2 are a majority of {1,2,3}, the configuration the leader applied last
t.ev(1,"commit",P(1,1,"leader",3,3,1),index=3)
t.ev(1,"apply",index=2,term=1)
t.ev(1,"apply",index=3,term=1,client=1,req=1)
C("return",client=1,req=1,status="ok")
t.write(__import__("sys").argv[1])
