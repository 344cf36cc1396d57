"""An interactive SDK-style edge-events client built with grpcio-tools from mex_subset.proto.

Usage: edge_client.py HOST:PORT

Reads JSON commands, one per line, on stdin and answers each with exactly one JSON line on
stdout, so a Rust test can drive several bidi StreamEdgeEvent streams step by step. Commands:

  {"op":"register","org","app","vers"}            -> {"session_cookie","status"} | {"error",...}
  {"op":"find","session","carrier","lat","lon"}   -> {"status","fqdn","edge_events_cookie",
                                                      "cloudlet_location":[lat,lon]}
  {"op":"open","id","session","edge","carrier"?,"lat"?,"lon"?,"read"?,"init"?}
      opens a stream on its own channel; sends an INIT unless "init" is false; with "read"
      false nobody consumes the responses (a client that does not read) until "start_reading".
  {"op":"send","id","event","lat"?,"lon"?,"samples"?,"custom"?,"device_os"?,"device_model"?,
   "network"?,"carrier"?,"session"?,"edge"?}       -> {"ok":true}
  {"op":"recv","id","timeout"}                     -> event | {"timeout":true} |
                                                      {"closed":true,"code","details"}
  {"op":"quiet","id","secs"}                       -> {"events":[...]} (all within secs)
  {"op":"drain","id","count","timeout"}            -> {"events":[...]} up to count events, each
                                                      within timeout; stops at a close
  {"op":"start_reading","id"}                      -> {"ok":true}
  {"op":"end","id"}                                -> half-closes the request stream
  {"op":"close","id"}                              -> cancels the stream
  {"op":"exit"}

Exits when stdin closes. Every wait has a timeout, so nothing hangs.
"""
import json
import os
import queue
import shutil
import sys
import threading
import time

import grpc

from mex_stubs import load_stubs

# No stream outlives this (seconds): a forgotten stream cannot keep the process alive.
STREAM_DEADLINE = 300
UNARY_TIMEOUT = 10


pb, rpc, GENERATED = load_stubs("mexpb-edge-")
CLIENT_TYPES = pb.ClientEdgeEvent.ClientEventType
SERVER_TYPES = pb.ServerEdgeEvent.ServerEventType
CLIENT_EVENTS = {
    "UNKNOWN": CLIENT_TYPES.Value("EVENT_UNKNOWN"),
    "INIT": CLIENT_TYPES.Value("EVENT_INIT_CONNECTION"),
    "TERMINATE": CLIENT_TYPES.Value("EVENT_TERMINATE_CONNECTION"),
    "LATENCY_SAMPLES": CLIENT_TYPES.Value("EVENT_LATENCY_SAMPLES"),
    "LOCATION_UPDATE": CLIENT_TYPES.Value("EVENT_LOCATION_UPDATE"),
    "CUSTOM_EVENT": CLIENT_TYPES.Value("EVENT_CUSTOM_EVENT"),
}
_END = object()


def find_json(reply):
    loc = reply.cloudlet_location
    return {
        "status": pb.FindCloudletReply.FindStatus.Name(reply.status),
        "fqdn": reply.fqdn,
        "edge_events_cookie": reply.edge_events_cookie,
        "cloudlet_location": [loc.latitude, loc.longitude],
        "ports": [[pb.LProto.Name(p.proto), p.internal_port, p.public_port] for p in reply.ports],
    }


def event_json(ev):
    out = {
        "event_type": SERVER_TYPES.Name(ev.event_type),
        "cloudlet_state": pb.CloudletState.Name(ev.cloudlet_state),
        "maintenance_state": pb.MaintenanceState.Name(ev.maintenance_state),
        "health_check": pb.HealthCheck.Name(ev.health_check),
        "statistics": None,
        "new_cloudlet": None,
        "error_msg": ev.error_msg,
        "tags": dict(ev.tags),
    }
    if ev.HasField("statistics"):
        s = ev.statistics
        out["statistics"] = {
            "avg": s.avg, "min": s.min, "max": s.max, "std_dev": s.std_dev,
            "variance": s.variance, "num_samples": s.num_samples,
            "has_timestamp": s.HasField("timestamp"),
        }
    if ev.HasField("new_cloudlet"):
        out["new_cloudlet"] = find_json(ev.new_cloudlet)
    return out


def rpc_error_json(e):
    return {"error": e.code().name, "details": e.details() or ""}


class Stream:
    """One StreamEdgeEvent call on its own channel, fed from a queue."""

    def __init__(self, addr, cmd):
        self.session = cmd.get("session") or ""
        self.edge = cmd.get("edge") or ""
        self.requests = queue.Queue()
        self.events = queue.Queue()
        self.reader = None
        self.closed = None
        # A client that does not read must not let its transport read ahead much either, so
        # that unread events back up to the server quickly.
        options = []
        if not cmd.get("read", True):
            options = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1024)]
        self.channel = grpc.insecure_channel(addr, options=options)
        stub = rpc.MatchEngineApiStub(self.channel)
        self.call = stub.StreamEdgeEvent(self._requests(), timeout=STREAM_DEADLINE)
        if cmd.get("read", True):
            self.start_reading()

    def _requests(self):
        while True:
            item = self.requests.get()
            if item is _END:
                return
            yield item

    def start_reading(self):
        if self.reader is None:
            self.reader = threading.Thread(target=self._read, daemon=True)
            self.reader.start()

    def _read(self):
        try:
            for ev in self.call:
                self.events.put(event_json(ev))
            self.events.put({"closed": True, "code": self.call.code().name,
                             "details": self.call.details() or ""})
        except grpc.RpcError as e:
            self.events.put({"closed": True, "code": e.code().name, "details": e.details() or ""})
        except Exception as e:  # pragma: no cover - reported to the test rather than lost
            self.events.put({"closed": True, "code": "CLIENT_ERROR", "details": repr(e)})

    def send(self, cmd):
        name = cmd.get("event", "UNKNOWN")
        ev = pb.ClientEdgeEvent(event_type=CLIENT_EVENTS[name])
        if name == "INIT" or "session" in cmd or "edge" in cmd:
            ev.session_cookie = cmd.get("session", self.session) or ""
            ev.edge_events_cookie = cmd.get("edge", self.edge) or ""
        if cmd.get("lat") is not None and cmd.get("lon") is not None:
            ev.gps_location.latitude = float(cmd["lat"])
            ev.gps_location.longitude = float(cmd["lon"])
        for v in cmd.get("samples") or []:
            ev.samples.add(value=float(v))
        if cmd.get("custom") is not None:
            ev.custom_event = cmd["custom"]
        if cmd.get("device_os") is not None or cmd.get("device_model") is not None:
            ev.device_info_static.device_os = cmd.get("device_os") or ""
            ev.device_info_static.device_model = cmd.get("device_model") or ""
        if cmd.get("network") is not None or cmd.get("carrier") is not None:
            ev.device_info_dynamic.data_network_type = cmd.get("network") or ""
            ev.device_info_dynamic.carrier_name = cmd.get("carrier") or ""
        self.requests.put(ev)

    def next_event(self, timeout):
        if self.closed is not None:
            return self.closed
        try:
            ev = self.events.get(timeout=timeout)
        except queue.Empty:
            return None
        if ev.get("closed"):
            self.closed = ev
        return ev

    def close(self):
        self.requests.put(_END)
        self.call.cancel()
        self.channel.close()


class Driver:
    def __init__(self, addr):
        self.addr = addr
        self.channel = grpc.insecure_channel(addr)
        self.stub = rpc.MatchEngineApiStub(self.channel)
        self.streams = {}

    def handle(self, cmd):
        op = cmd.get("op")
        if op == "register":
            try:
                reply = self.stub.RegisterClient(pb.RegisterClientRequest(
                    org_name=cmd["org"], app_name=cmd["app"], app_vers=cmd["vers"]),
                    timeout=UNARY_TIMEOUT)
            except grpc.RpcError as e:
                return rpc_error_json(e)
            return {"session_cookie": reply.session_cookie,
                    "status": pb.ReplyStatus.Name(reply.status)}
        if op == "find":
            try:
                reply = self.stub.FindCloudlet(pb.FindCloudletRequest(
                    session_cookie=cmd["session"], carrier_name=cmd.get("carrier", ""),
                    gps_location=pb.Loc(latitude=float(cmd["lat"]), longitude=float(cmd["lon"]))),
                    timeout=UNARY_TIMEOUT)
            except grpc.RpcError as e:
                return rpc_error_json(e)
            return find_json(reply)
        if op == "open":
            sid = cmd["id"]
            if sid in self.streams:
                self.streams.pop(sid).close()
            stream = Stream(self.addr, cmd)
            self.streams[sid] = stream
            if cmd.get("init", True):
                init = {"event": "INIT", "session": stream.session, "edge": stream.edge,
                        "carrier": cmd.get("carrier", ""), "lat": cmd.get("lat"),
                        "lon": cmd.get("lon")}
                for k in ("device_os", "device_model", "network"):
                    if k in cmd:
                        init[k] = cmd[k]
                stream.send(init)
            return {"ok": True}
        if op == "exit":
            return {"ok": True}
        stream = self.streams.get(cmd.get("id"))
        if stream is None:
            return {"error": "NO_STREAM", "details": f"no stream {cmd.get('id')!r}"}
        if op == "send":
            stream.send(cmd)
            return {"ok": True}
        if op == "recv":
            ev = stream.next_event(float(cmd.get("timeout", 5)))
            return ev if ev is not None else {"timeout": True}
        if op == "quiet":
            return {"events": self._collect(stream, float(cmd.get("secs", 1)))}
        if op == "drain":
            return {"events": self._drain(stream, int(cmd["count"]),
                                          float(cmd.get("timeout", 5)))}
        if op == "start_reading":
            stream.start_reading()
            return {"ok": True}
        if op == "end":
            stream.requests.put(_END)
            return {"ok": True}
        if op == "close":
            self.streams.pop(cmd["id"]).close()
            return {"ok": True}
        return {"error": "BAD_OP", "details": f"unknown op {op!r}"}

    @staticmethod
    def _collect(stream, secs):
        deadline = time.monotonic() + secs
        events = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return events
            ev = stream.next_event(left)
            if ev is None:
                return events
            events.append(ev)
            if ev.get("closed"):
                return events

    @staticmethod
    def _drain(stream, count, timeout):
        events = []
        while len(events) < count:
            ev = stream.next_event(timeout)
            if ev is None:
                events.append({"timeout": True})
                return events
            events.append(ev)
            if ev.get("closed"):
                return events
        return events

    def shutdown(self):
        for s in list(self.streams.values()):
            try:
                s.close()
            except Exception:
                pass
        self.channel.close()


def main():
    driver = Driver(sys.argv[1])
    try:
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                cmd = json.loads(line)
                out = driver.handle(cmd)
            except Exception as e:  # one answer per command, whatever happens
                cmd, out = {}, {"error": "CLIENT_ERROR", "details": repr(e)}
            sys.stdout.write(json.dumps(out) + "\n")
            sys.stdout.flush()
            if cmd.get("op") == "exit":
                break
    finally:
        driver.shutdown()
        shutil.rmtree(GENERATED, ignore_errors=True)
    # Daemon reader threads and grpc's own threads must not hold the process open.
    os._exit(0)


if __name__ == "__main__":
    main()
