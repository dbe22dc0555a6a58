# Generator of the hand-written example traces in ../examples (python3 exN.py OUT).
# The examples are small, deliberate scenarios; this script only keeps seq numbers
# and message ids consistent while writing them.
import json, sys
class T:
    def __init__(s, nodes, impl="hand-written example", state=None, entries="full", network=None, events=None):
        s.lines=[]; s.seq={n:0 for n in nodes}; s.mid={n:0 for n in nodes}; s.last={}; s.after={}
        obs={"events": events or ["init","crash","role","timeout","send","receive","append","truncate","persist","commit","apply","snapshot","install","invoke","return"],
             "state": state if state is not None else ["term","vote","role","commit","last_index","last_term"], "entries": entries}
        h={"type":"header","format":"raft-trace/1","implementation":impl,"nodes":nodes,"observes":obs}
        if network: h["network"]=network
        s.lines.append(h)
    def ev(s, node, typ, post=None, **kw):
        s.seq[node]+=1
        d={"type":typ,"node":node,"seq":s.seq[node]}; d.update(kw)
        if typ not in ("receive","timeout","crash"):
            # The state a receive led to shows on the next event of its step
            # (unless that event brings its own).
            # A hand-written receive post shows term and vote after the
            # message but the log before it: not for log events.
            after=s.after.pop(node, None)
            if post is None and typ in ("role","persist","send"): post=after
        if post is not None:
            d["post"]=post; s.last[node]=post
        s.lines.append(d)
    def send(s, frm, to, term, rpc, post=None, **kw):
        s.mid[frm]+=1
        m={"id":s.mid[frm],"from":frm,"to":to,"term":term,"rpc":rpc}; m.update(kw)
        s.ev(frm,"send",post,msg=m); return m
    def recv(s, m, post=None):
        # A receive's post would be the state it arrived in (its effects
        # follow as events of their own); the examples leave it out and show
        # `post`, the state after handling it, on the next role, persist or
        # send of the node.
        n=m["to"]
        s.ev(n,"receive",None,msg=m)
        if post is not None: s.after[n]=post
    def client(s, typ, **kw):
        d={"type":typ}; d.update(kw); s.lines.append(d)
    def write(s, path):
        with open(path,"w") as f:
            for l in s.lines: f.write(json.dumps(l,separators=(",",":"))+"\n")
def P(term,vote,role,commit,li,lt): return {"term":term,"vote":vote,"role":role,"commit":commit,"last_index":li,"last_term":lt}

def elect_and_commit_noop(t, leader, voter):
    """All nodes boot; `leader` wins term 1 with `voter`'s vote, appends its
    no-op, replicates it to `voter` and commits and applies it."""
    for n in t.seq:
        t.ev(n,"init",P(0,None,"follower",0,0,0),reason="boot",term=0,vote=None,last_index=0,last_term=0)
    t.ev(leader,"timeout",timer="election")
    t.ev(leader,"role",P(1,leader,"candidate",0,0,0),role="candidate",term=1,reason="election_timeout")
    t.ev(leader,"persist",term=1,vote=leader,last_index=0)
    rv=t.send(leader,voter,1,"request_vote",last_index=0,last_term=0)
    t.recv(rv,P(1,leader,"follower",0,0,0))
    t.ev(voter,"persist",term=1,vote=leader,last_index=0)
    g=t.send(voter,leader,1,"request_vote_reply",granted=True)
    t.recv(g,P(1,leader,"candidate",0,0,0))
    t.ev(leader,"role",P(1,leader,"leader",0,0,0),role="leader",term=1,reason="won_election")
    noop={"term":1,"data":{"kind":"noop"}}
    t.ev(leader,"append",P(1,leader,"leader",0,1,1),index=1,entries=[noop])
    t.ev(leader,"persist",term=1,vote=leader,last_index=1)
    a=t.send(leader,voter,1,"append_entries",prev_index=0,prev_term=0,commit=0,entries=[noop])
    t.recv(a,P(1,leader,"follower",0,0,0))
    t.ev(voter,"append",index=1,entries=[noop])
    t.ev(voter,"persist",term=1,vote=leader,last_index=1)
    r=t.send(voter,leader,1,"append_entries_reply",success=True,match_index=1)
    t.recv(r,P(1,leader,"leader",0,1,1))
    t.ev(leader,"commit",index=1)
    t.ev(leader,"apply",P(1,leader,"leader",1,1,1),index=1,term=1)
