"""Python stubs of mex_subset.proto (written from the reference's field numbers), generated
with grpcio-tools into a temporary directory, for the test clients beside this file."""
import os
import sys
import tempfile

from grpc_tools import protoc


def load_stubs(prefix="mexpb-"):
    """Generates the stubs and imports them: (messages module, services module, directory)."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = tempfile.mkdtemp(prefix=prefix)
    rc = protoc.main(["protoc", f"-I{here}", f"--python_out={out}", f"--grpc_python_out={out}",
                      os.path.join(here, "mex_subset.proto")])
    if rc != 0:
        raise SystemExit(f"protoc failed: {rc}")
    sys.path.insert(0, out)
    import mex_subset_pb2 as pb
    import mex_subset_pb2_grpc as rpc
    return pb, rpc, out
