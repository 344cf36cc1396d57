"""An SDK-style client built with grpcio-tools from mex_subset.proto.

Usage: sdk_client.py HOST:PORT ORG APP VERSION CARRIER LAT LON
Prints one JSON object with what the server answered, for the Rust test to check.
"""
import json
import sys

import grpc

from mex_stubs import load_stubs


def main():
    addr, org, app, vers, carrier, lat, lon = sys.argv[1:8]
    pb, rpc, _ = load_stubs()

    result = {}
    with grpc.insecure_channel(addr) as ch:
        # EdgeXR service name for registration, MobiledgeX name for both.
        reg = rpc.SessionStub(ch).RegisterClient(
            pb.RegisterClientRequest(org_name=org, app_name=app, app_vers=vers), timeout=10)
        reg_old = rpc.MatchEngineApiStub(ch).RegisterClient(
            pb.RegisterClientRequest(org_name=org, app_name=app, app_vers=vers), timeout=10)
        result["register_status"] = pb.ReplyStatus.Name(reg.status)
        result["register_status_mex"] = pb.ReplyStatus.Name(reg_old.status)
        result["unique_id_type"] = reg.unique_id_type
        found = rpc.MatchEngineApiStub(ch).FindCloudlet(pb.FindCloudletRequest(
            session_cookie=reg.session_cookie, carrier_name=carrier,
            gps_location=pb.Loc(latitude=float(lat), longitude=float(lon))), timeout=10)
        result["find_status"] = pb.FindCloudletReply.FindStatus.Name(found.status)
        result["fqdn"] = found.fqdn
        result["ports"] = [[pb.LProto.Name(p.proto), p.internal_port, p.public_port] for p in found.ports]
        result["cloudlet_location"] = [found.cloudlet_location.latitude, found.cloudlet_location.longitude]
        result["has_edge_events_cookie"] = bool(found.edge_events_cookie)
        try:
            rpc.MatchEngineApiStub(ch).FindCloudlet(pb.FindCloudletRequest(
                session_cookie="forged", gps_location=pb.Loc(latitude=1, longitude=1)), timeout=10)
            result["forged"] = "accepted"
        except grpc.RpcError as e:
            result["forged"] = e.code().name
    print(json.dumps(result))


if __name__ == "__main__":
    main()
