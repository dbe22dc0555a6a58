# Writes ../schema.json (python3 schema.py ../schema.json). Keep it in sync with
# src/event.rs and src/history.rs; tests/roundtrip.rs and tests/examples.rs check that.
import json,sys
u={"type":"integer","minimum":0}
pos={"type":"integer","minimum":1}
nullable_node={"oneOf":[{"type":"null"},pos]}
def obj(props, required, extra=False):
    return {"type":"object","properties":props,"required":required,"additionalProperties":extra}
D={}
D["node"]=pos
D["uint"]=u
D["op"]={"oneOf":[
  obj({"f":{"const":"read"},"key":{"type":"string"}},["f","key"]),
  obj({"f":{"const":"write"},"key":{"type":"string"},"value":{"type":"string"}},["f","key","value"]),
  obj({"f":{"const":"cas"},"key":{"type":"string"},"from":{"type":["string","null"]},"to":{"type":"string"}},["f","key","from","to"]),
  obj({"f":{"const":"delete"},"key":{"type":"string"}},["f","key"]),
  obj({"f":{"const":"append"},"key":{"type":"string"},"value":{"type":"string"}},["f","key","value"]),
]}
D["entry_data"]={"oneOf":[
  obj({"kind":{"const":"noop"}},["kind"]),
  obj({"kind":{"const":"command"},"client":u,"req":u,"op":{"$ref":"#/$defs/op"}},["kind","client","req","op"]),
  obj({"kind":{"const":"config"},"voters":{"type":"array","items":{"$ref":"#/$defs/node"},"uniqueItems":True},"learners":{"type":"array","items":{"$ref":"#/$defs/node"},"uniqueItems":True},"data":{}},["kind"]),
  obj({"kind":{"const":"opaque"},"data":{}},["kind"]),
]}
D["entry"]=obj({"term":u,"data":{"$ref":"#/$defs/entry_data"}},["term"])
D["entries"]={"type":"array","items":{"$ref":"#/$defs/entry"}}
D["role"]={"enum":["follower","pre_candidate","candidate","leader"]}
D["post"]=obj({"term":u,"vote":nullable_node,"role":{"$ref":"#/$defs/role"},"leader":nullable_node,"commit":u,"applied":u,
  "last_index":u,"last_term":u,"snapshot_index":u,"snapshot_term":u},[])
common={"msg_head":{"id":u,"from":{"$ref":"#/$defs/node"},"to":{"$ref":"#/$defs/node"},"term":u}}
# Feature commit-any-message: every message may carry commit_term, and a
# message whose rpc has no commit of its own also commit (the two go together).
def msg(rpc, props, req):
    p=dict(common["msg_head"]); p["rpc"]={"const":rpc}; p.update(props)
    p["commit_term"]=u
    o=obj(p,["id","from","to","term","rpc"]+req)
    if "commit" not in props:
        p["commit"]=u
        o["dependentRequired"]={"commit":["commit_term"],"commit_term":["commit"]}
    return o
D["message"]={"oneOf":[
  msg("request_vote",{"last_index":u,"last_term":u,"transfer":{"type":"boolean"}},["last_index","last_term"]),
  msg("request_vote_reply",{"granted":{"type":"boolean"}},["granted"]),
  msg("append_entries",{"prev_index":u,"prev_term":u,"commit":u,"entries":{"$ref":"#/$defs/entries"},"entry_count":u,"context":u},["prev_index","prev_term","commit"]),
  msg("append_entries_reply",{"success":{"type":"boolean"},"match_index":u,"hint_index":u,"hint_term":u,"context":u},["success"]),
  msg("install_snapshot",{"last_index":u,"last_term":u,"offset":u,"done":{"type":"boolean"},"data":{}},["last_index","last_term","done"]),
  msg("install_snapshot_reply",{"last_index":u},["last_index"]),
  msg("pre_vote",{"last_index":u,"last_term":u},["last_index","last_term"]),
  msg("pre_vote_reply",{"granted":{"type":"boolean"}},["granted"]),
  msg("heartbeat",{"commit":u,"context":u},["commit"]),
  msg("heartbeat_reply",{"context":u},[]),
  msg("timeout_now",{},[]),
  msg("propose",{"entries":{"type":"array","items":{"$ref":"#/$defs/entry_data"}}},[]),
]}
event_types=["init","crash","role","timeout","send","receive","append","truncate","persist","commit","apply","snapshot","install","read","gap","invoke","return"]
D["header"]=obj({
  "type":{"const":"header"},"format":{"const":"raft-trace/1"},"implementation":{"type":"string"},
  "nodes":{"type":"array","items":{"$ref":"#/$defs/node"},"uniqueItems":True},
  "voters":{"type":"array","items":{"$ref":"#/$defs/node"},"uniqueItems":True},
  "learners":{"type":"array","items":{"$ref":"#/$defs/node"},"uniqueItems":True},
  "observes":obj({"events":{"type":"array","items":{"enum":event_types}},
                  "state":{"type":"array","items":{"enum":["term","vote","role","leader","commit","applied","last_index","last_term","snapshot_index","snapshot_term"]}},
                  "entries":{"enum":["full","terms","count"]}},["events"]),
  "network":obj({"loss":{"type":"boolean"},"duplication":{"type":"boolean"},"reorder":{"type":"boolean"}},[]),
  "params":{},
  "features":{"type":"array","items":{"type":"string","minLength":1},"uniqueItems":True}},["type","format","implementation","nodes","observes"])
def node_ev(t, props, req):
    p={"type":{"const":t},"node":{"$ref":"#/$defs/node"},"seq":u,"time":u,"post":{"$ref":"#/$defs/post"}}
    p.update(props)
    return obj(p,["type","node","seq"]+req)
snap=obj({"index":u,"term":u},["index","term"])
D["node_event"]={"oneOf":[
  node_ev("init",{"reason":{"enum":["boot","restart"]},"term":u,"vote":nullable_node,"snapshot":snap,"commit":u,"last_index":u,"last_term":u,"entries":{"$ref":"#/$defs/entries"}},["reason","term","vote","last_index","last_term"]),
  node_ev("crash",{},[]),
  node_ev("role",{"role":{"$ref":"#/$defs/role"},"term":u,"reason":{"enum":["election_timeout","won_election","higher_term","leader_discovered","lost_election","pre_vote_won","check_quorum","transfer","other"]}},["role","term","reason"]),
  node_ev("timeout",{"timer":{"enum":["election","heartbeat"]}},["timer"]),
  node_ev("send",{"msg":{"$ref":"#/$defs/message"}},["msg"]),
  node_ev("receive",{"msg":{"$ref":"#/$defs/message"}},["msg"]),
  node_ev("append",{"index":pos,"entries":{"$ref":"#/$defs/entries"},"entry_count":u},["index"]),
  node_ev("truncate",{"from":pos},["from"]),
  node_ev("persist",{"term":u,"vote":nullable_node,"last_index":u},["term","vote","last_index"]),
  node_ev("commit",{"index":u},["index"]),
  node_ev("apply",{"index":pos,"term":u,"client":u,"req":u,"duplicate":{"type":"boolean"}},["index","term"]),
  node_ev("snapshot",{"index":u,"term":u},["index","term"]),
  node_ev("install",{"index":u,"term":u},["index","term"]),
  node_ev("read",{"index":u,"via":{"enum":["read_index","lease"]},"context":u,"client":u,"req":u},["index","via"]),
  node_ev("gap",{"lost":u,"reason":{"type":"string"}},[]),
]}
D["client_event"]={"oneOf":[
  obj({"type":{"const":"invoke"},"client":u,"req":u,"node":{"$ref":"#/$defs/node"},"op":{"$ref":"#/$defs/op"},"time":u},["type","client","req","op"]),
  obj({"type":{"const":"return"},"client":u,"req":u,"status":{"enum":["ok","fail","info"]},"value":{"type":["string","null"]},"error":{"type":"string"},"time":u},["type","client","req","status"]),
]}
S={"$schema":"https://json-schema.org/draft/2020-12/schema",
   "$id":"https://raftcheck.dev/schema/raft-trace-1.json",
   "title":"raft-trace/1: one line of a trace or history file",
   "description":"Each line of an ndjson trace is one JSON object. The first line is a header; every other line is a node event or a client event. See traces/SCHEMA.md for the meaning of every field.",
   "oneOf":[{"$ref":"#/$defs/header"},{"$ref":"#/$defs/node_event"},{"$ref":"#/$defs/client_event"}],
   "$defs":D}
json.dump(S,open(sys.argv[1],"w"),indent=2); open(sys.argv[1],"a").write("\n")
