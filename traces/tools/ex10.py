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
def append_and_replicate(index, entry):
    """Leader 1 appends `entry` at `index` and replicates it to node 2,
    which commits and applies the entry before it and acknowledges; the
    leader commits `index` with 1 and 2, a majority of {1,2,3}."""
    prev=index-1
    t.ev(1,"append",P(1,1,"leader",prev,index,1),index=index,entries=[entry])
    t.ev(1,"persist",term=1,vote=1,last_index=index)
    a=t.send(1,2,1,"append_entries",prev_index=prev,prev_term=1,commit=prev,entries=[entry])
    t.recv(a)
    t.ev(2,"append",index=index,entries=[entry])
    t.ev(2,"commit",index=prev)
    t.ev(2,"apply",index=prev,term=1)
    t.ev(2,"persist",P(1,1,"follower",prev,index,1),term=1,vote=1,last_index=index)
    r=t.send(2,1,1,"append_entries_reply",P(1,1,"follower",prev,index,1),success=True,match_index=index)
    t.recv(r)
    t.ev(1,"commit",P(1,1,"leader",index,index,1),index=index)
# the change: one server (node 4) added as a voter
append_and_replicate(2,{"term":1,"data":{"kind":"config","voters":[1,2,3,4],"learners":[]}})
# a client's write, appended and committed (1 and 2 are a majority of
# {1,2,3}, the configuration the leader applied last) before the leader
# applies the change
C=t.client
w={"f":"write","key":"x","value":"1"}
C("invoke",client=1,req=1,node=1,op=w)
append_and_replicate(3,{"term":1,"data":{"kind":"command","client":1,"req":1,"op":w}})
t.ev(1,"apply",index=2,term=1)
t.ev(1,"apply",index=3,term=1,client=1,req=1)
C("return",client=1,req=1,status="ok")
t.write(__import__("sys").argv[1])
