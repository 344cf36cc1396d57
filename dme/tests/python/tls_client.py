"""A client of a DME over TLS, on independent stacks: grpcio (stubs from mex_subset.proto) and
Python's ssl + http.client, both trusting only the given CA certificate.

Usage: tls_client.py GRPC_TLS_ADDR REST_TLS_ADDR REST_PLAIN_ADDR CA_FILE ORG APP VERSION CARRIER LAT LON
Prints one JSON object with what the server answered, for the Rust test to check.
"""
import hashlib
import http.client
import json
import ssl
import sys

import grpc

from mex_stubs import load_stubs


def fingerprint(der):
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def over_grpc(addr, ca, org, app, vers, carrier, lat, lon):
    pb, rpc, _ = load_stubs()
    creds = grpc.ssl_channel_credentials(root_certificates=ca)
    # The test certificate names localhost; connect by IP without depending on name resolution.
    options = [("grpc.ssl_target_name_override", "localhost")]
    with grpc.secure_channel(addr, creds, options=options) as ch:
        reg = rpc.SessionStub(ch).RegisterClient(
            pb.RegisterClientRequest(org_name=org, app_name=app, app_vers=vers), timeout=10)
        found = rpc.MatchEngineApiStub(ch).FindCloudlet(pb.FindCloudletRequest(
            session_cookie=reg.session_cookie, carrier_name=carrier,
            gps_location=pb.Loc(latitude=float(lat), longitude=float(lon))), timeout=10)
        return {
            "register_status": pb.ReplyStatus.Name(reg.status),
            "find_status": pb.FindCloudletReply.FindStatus.Name(found.status),
            "fqdn": found.fqdn,
        }


def post(conn, path, body):
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    reply = conn.getresponse()
    return reply.status, json.loads(reply.read())


def over_rest(tls_addr, plain_addr, ca_file, org, app, vers, carrier, lat, lon):
    host, port = tls_addr.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=ca_file)
    tls = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
    status, reg = post(tls, "/v1/registerclient",
                       {"org_name": org, "app_name": app, "app_vers": vers})
    result = {"rest_register_status": status, "rest_register": reg.get("status"),
              "rest_fingerprint": fingerprint(tls.sock.getpeercert(binary_form=True)),
              "rest_tls_version": tls.sock.version()}
    host, port = plain_addr.rsplit(":", 1)
    plain = http.client.HTTPConnection(host, int(port), timeout=10)
    for name, path, body in [
        ("find", "/v1/findcloudlet", {"session_cookie": reg["session_cookie"], "carrier_name": carrier,
                                      "gps_location": {"latitude": float(lat), "longitude": float(lon)}}),
        ("list", "/v1/getappinstlist", {"session_cookie": reg["session_cookie"], "carrier_name": carrier,
                                        "gps_location": {"latitude": float(lat), "longitude": float(lon)}}),
    ]:
        result[f"tls_{name}"] = post(tls, path, body)
        result[f"plain_{name}"] = post(plain, path, body)
    return result


def main():
    grpc_addr, rest_addr, plain_addr, ca_file, org, app, vers, carrier, lat, lon = sys.argv[1:11]
    with open(ca_file, "rb") as f:
        ca = f.read()
    result = over_grpc(grpc_addr, ca, org, app, vers, carrier, lat, lon)
    result.update(over_rest(rest_addr, plain_addr, ca_file, org, app, vers, carrier, lat, lon))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
