"""An independent HTTP/3 client (aioquic) for the DME's QUIC endpoint, driven by dme/tests/h3_independent.rs.

Usage: h3_client.py HOST PORT --ca CERT.pem [--server-name NAME] [--alpn h3]
                    [--ticket-in FILE] [--ticket-out FILE] [--early] [--timeout S]
                    --request REQUEST [--request REQUEST ...]

Each REQUEST is a JSON object {"method": "POST", "path": "/v1/findcloudlet", "body": {...},
"after_handshake": false}. Requests run one after the other; a string "$session_cookie" anywhere in
a body is replaced by the session_cookie of the latest answer that had one. With --early the
connection does not wait for the handshake: a request not marked after_handshake is sent at once,
so with a resumption ticket (--ticket-in) it travels in 0-RTT.

Prints one JSON object on stdout: the handshake (ALPN, resumed, early data accepted), the packet
types that carried each request (from aioquic's QUIC log: "0RTT" or "1RTT"), each answer (status,
headers, body: parsed JSON when it is JSON, else text) and, when the connection failed, the error
and the close the peer sent. Exits 0 whenever it could print that object.
"""

import argparse
import asyncio
import json
import pickle
import sys
import time

from aioquic.asyncio import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted
from aioquic.quic.logger import QuicLogger


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.pending = {}  # stream id -> (future, {"headers": [], "body": bytearray()})
        self.handshake = None
        self.handshake_done = asyncio.Event()
        self.terminated = None

    def quic_event_received(self, event):
        if isinstance(event, HandshakeCompleted):
            self.handshake = {
                "alpn": event.alpn_protocol,
                "early_data_accepted": event.early_data_accepted,
                "session_resumed": event.session_resumed,
            }
            self.handshake_done.set()
        elif isinstance(event, ConnectionTerminated):
            self.terminated = {
                "error_code": event.error_code,
                "frame_type": event.frame_type,
                "reason": event.reason_phrase,
            }
            self.handshake_done.set()
            for fut, _ in self.pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError(f"connection closed: {self.terminated}"))
        for ev in self.h3.handle_event(event):
            entry = self.pending.get(getattr(ev, "stream_id", None))
            if entry is None:
                continue
            fut, acc = entry
            if isinstance(ev, HeadersReceived):
                acc["headers"].extend(ev.headers)
            elif isinstance(ev, DataReceived):
                acc["body"].extend(ev.data)
            if getattr(ev, "stream_ended", False) and not fut.done():
                fut.set_result(acc)

    def send_request(self, authority, method, path, body):
        stream_id = self._quic.get_next_available_stream_id()
        headers = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", authority.encode()),
            (b":path", path.encode()),
            (b"user-agent", b"edgeplane-aioquic-test"),
        ]
        if body is not None:
            headers.append((b"content-type", b"application/json"))
        self.h3.send_headers(stream_id, headers, end_stream=body is None)
        if body is not None:
            self.h3.send_data(stream_id, body, end_stream=True)
        fut = asyncio.get_running_loop().create_future()
        self.pending[stream_id] = (fut, {"headers": [], "body": bytearray()})
        self.transmit()
        return stream_id, fut


def substitute(value, cookie):
    if isinstance(value, str):
        return cookie if value == "$session_cookie" and cookie is not None else value
    if isinstance(value, list):
        return [substitute(v, cookie) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, cookie) for k, v in value.items()}
    return value


def packet_types(logger, stream_id):
    """The QUIC packet types (from the client's own log) that carried data of `stream_id`, in
    the order they were first used: ["0RTT"] for a request sent in 0-RTT, ["0RTT", "1RTT"] when
    some of it was sent again (lost, refused or probed) after the handshake."""
    kinds = []
    for trace in logger.to_dict()["traces"]:
        for ev in trace["events"]:
            if ev.get("name") != "transport:packet_sent":
                continue
            data = ev["data"]
            for frame in data.get("frames", []):
                if frame.get("frame_type") == "stream" and frame.get("stream_id") == stream_id:
                    kind = data["header"]["packet_type"]
                    if kind not in kinds:
                        kinds.append(kind)
    return kinds


async def run(args, out):
    configuration = QuicConfiguration(
        is_client=True,
        alpn_protocols=[args.alpn] if args.alpn else H3_ALPN,
        server_name=args.server_name,
    )
    configuration.load_verify_locations(args.ca)
    logger = QuicLogger()
    configuration.quic_logger = logger
    ticket_in = None
    if args.ticket_in:
        with open(args.ticket_in, "rb") as f:
            ticket_in = pickle.load(f)
        configuration.session_ticket = ticket_in
    out["ticket_offered"] = ticket_in is not None
    out["ticket_allows_early_data"] = bool(ticket_in and ticket_in.max_early_data_size)
    tickets = []
    authority = f"{args.server_name}:{args.port}"
    def create_protocol(*a, **kw):
        out["_client"] = Client(*a, **kw)
        return out["_client"]

    async with connect(
        args.host,
        args.port,
        configuration=configuration,
        create_protocol=create_protocol,
        session_ticket_handler=tickets.append,
        wait_connected=not args.early,
    ) as client:
        cookie = None
        for req in args.requests:
            if req.get("after_handshake"):
                await client.handshake_done.wait()
            body = req.get("body")
            raw = None if body is None else json.dumps(substitute(body, cookie)).encode()
            before_handshake = client.handshake is None
            stream_id, fut = client.send_request(authority, req.get("method", "POST"), req["path"], raw)
            acc = await fut
            headers = {k.decode(): v.decode() for k, v in acc["headers"]}
            text = bytes(acc["body"]).decode("utf-8", "replace")
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
            if isinstance(parsed, dict) and isinstance(parsed.get("session_cookie"), str):
                cookie = parsed["session_cookie"]
            out["responses"].append(
                {
                    "path": req["path"],
                    "status": int(headers.pop(":status", "0")),
                    "headers": headers,
                    "body": parsed,
                    "sent_before_handshake": before_handshake,
                    "stream_id": stream_id,
                }
            )
        await client.handshake_done.wait()
        out["handshake"] = client.handshake
        # Let the server's NewSessionTicket arrive (it follows the handshake).
        if args.ticket_out:
            deadline = time.monotonic() + 2
            while not tickets and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        for r in out["responses"]:
            r["packet_types"] = packet_types(logger, r["stream_id"])
        client.close()
    out["tickets_received"] = len(tickets)
    if args.ticket_out and tickets:
        with open(args.ticket_out, "wb") as f:
            pickle.dump(tickets[-1], f)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--request", dest="requests", action="append", type=json.loads, default=[])
    p.add_argument("--ca", required=True)
    p.add_argument("--server-name", default="localhost")
    p.add_argument("--alpn")
    p.add_argument("--ticket-in")
    p.add_argument("--ticket-out")
    p.add_argument("--early", action="store_true")
    p.add_argument("--timeout", type=float, default=15)
    args = p.parse_args()
    out = {"responses": [], "handshake": None, "error": None, "terminated": None}

    async def bounded():
        try:
            await asyncio.wait_for(run(args, out), args.timeout)
        except asyncio.TimeoutError:
            out["error"] = f"timed out after {args.timeout}s"
        except ConnectionError as e:
            out["error"] = f"connection error: {e!r}"
        client = out.pop("_client", None)
        if client is not None:
            out["terminated"] = client.terminated
            out["handshake"] = out["handshake"] or client.handshake

    start = time.monotonic()
    asyncio.run(bounded())
    out["elapsed_s"] = round(time.monotonic() - start, 3)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
