# Generator of the hand-written example traces in ../examples (python3 exN.py OUT).
# The examples are small, deliberate scenarios; this script only keeps seq numbers
# and message ids consistent while writing them.
import json, sys
class T:
    def __init__(s, nodes, impl="hand-written example", state=None, entries="full", network=None, events=None):
        s.lines=[]; s.seq={n:0 for n in nodes}; s.mid={n:0 for n in nodes}
        obs={"events": events or ["init","crash","role","timeout","send","receive","append","truncate","persist","commit","apply","snapshot","install","invoke","return"],
             "state": state if state is not None else ["term","vote","role","commit","last_index","last_term"], "entries": entries}
        h={"type":"header","format":"raft-trace/1","implementation":impl,"nodes":nodes,"observes":obs}
        if network: h["network"]=network
        s.lines.append(h)
    def ev(s, node, typ, post=None, **kw):
        s.seq[node]+=1
        d={"type":typ,"node":node,"seq":s.seq[node]}; d.update(kw)
        if post is not None: d["post"]=post
        s.lines.append(d)
    def send(s, frm, to, term, rpc, post=None, **kw):
        s.mid[frm]+=1
        m={"id":s.mid[frm],"from":frm,"to":to,"term":term,"rpc":rpc}; m.update(kw)
        s.ev(frm,"send",post,msg=m); return m
    def recv(s, m, post=None):
        s.ev(m["to"],"receive",post,msg=m)
    def client(s, typ, **kw):
        d={"type":typ}; d.update(kw); s.lines.append(d)
    def write(s, path):
        with open(path,"w") as f:
            for l in s.lines: f.write(json.dumps(l,separators=(",",":"))+"\n")
def P(term,vote,role,commit,li,lt): return {"term":term,"vote":vote,"role":role,"commit":commit,"last_index":li,"last_term":lt}
