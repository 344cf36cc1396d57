#!/usr/bin/env python3
"""Runs schemathesis against one live CAMARA API: every operation of the spec, positive and
negative cases, every check. Exits non-zero when schemathesis reports any failure or error, or
when an operation of the spec was not exercised with both positive and negative cases.

Usage (tests/camara_contract.rs runs it; README.md beside this file has the details):

    CAMARA_TOKEN=<access token> contract.py --spec tests/data/camara/X.yaml \
        --base-url http://127.0.0.1:PORT/simple-edge-discovery/v2 --workdir DIR \
        [--feed tests/data/camara/devices.feed] [--app-id UUID ...] [--max-examples N] [--seed N]

The schemathesis configuration is generated into WORKDIR/schemathesis.toml (printed first), the
hooks are hooks.py beside this file, and the run's JSON report goes to WORKDIR/report.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The version scripts/test.sh installs; the configuration keys below are this version's.
SCHEMATHESIS_VERSION = "4.32.5"

# Statuses a correct CAMARA server gives to a schema-valid request, for the
# positive_data_acceptance check (schemathesis's default: 2xx, 3xx, 401, 403, 404, 409, 429, 5xx).
POSITIVE_STATUSES = ["2xx", "401", "403", "404", "409", "429"]
# 422 is added per operation, each with the spec text that requires it for a valid request:
ACCEPTS_422 = {
    # SED 2.0.1, info.description "Identifying the device": "If the device identifier is not
    # included in the request and cannot be derived from the access token, a 422
    # MISSING_IDENTIFIER error is returned" (`device` is optional in RequestBody, and our tokens
    # are two-legged); and Generic422 UNSUPPORTED_IDENTIFIER / SERVICE_NOT_APPLICABLE for an
    # identifier type or device the service does not cover (networkAccessIdentifier is
    # schema-valid but "CAMARA does not currently allow its use").
    "readClosestEdgeCloudZone",
    # AED 0.1.0: the same Generic422 codes (MISSING_IDENTIFIER, UNSUPPORTED_IDENTIFIER,
    # SERVICE_NOT_APPLICABLE) for a schema-valid body.
    "getOptimalAppEndpoints",
    # Location verification 3.0.0, info.description: "an error 422
    # LOCATION_VERIFICATION.INVALID_AREA" for an area the operator restricts, "422
    # LOCATION_VERIFICATION.UNABLE_TO_FULFILL_MAX_AGE" when the location is older than maxAge
    # (maxAge=0 asks for a fresh one), and the Generic422 identifier codes.
    "verifyLocation",
    # Location retrieval 0.5.0, info.description: "If the system is not able to provide location,
    # an error 422 with code LOCATION_RETRIEVAL.UNABLE_TO_LOCATE", "...UNABLE_TO_FULFILL_MAX_AGE",
    # "...UNABLE_TO_FULFILL_MAX_SURFACE", and the Generic422 identifier codes.
    "retrieveLocation",
}


# Statuses a correct CAMARA server gives to a schema-invalid request, for the
# negative_data_rejection check, on the specs whose operations take no path or query parameters
# (the DME's: a POST with a JSON body). Schemathesis's default also counts 404, 405, 409, 428
# and 5xx as a rejection; CAMARA says what an invalid request gets: "If the mobile subscription
# parameters contain a formatting error, a 400 INVALID_ARGUMENT error is returned" (SED 2.0.1,
# info.description, "Errors"), Generic400 "Client specified an invalid argument, request body or
# query param", so a malformed body about an unknown device is 400, not 404 IDENTIFIER_NOT_FOUND.
# 401/403 stay (authentication and authorisation come first), as do 406/413/415 (content
# negotiation and size, before the body is read) and 429 (rate limiting).
STRICT_NEGATIVE_STATUSES = ["400", "401", "403", "406", "413", "415", "429"]


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is a JSON string for what we write
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def toml(tables: list[tuple[str, dict]]) -> str:
    """TOML text for [(header, {key: value})]; header "" is the root, "[[x]]" an array item."""
    out = []
    for header, keys in tables:
        if header:
            out.append(header if header.startswith("[[") else f"[{header}]")
        out += [f"{json.dumps(k) if '.' in k else k} = {toml_value(v)}" for k, v in keys.items()]
        out.append("")
    return "\n".join(out)


def config(args, spec: dict) -> str:
    tables: list[tuple[str, dict]] = [
        (
            "",
            {
                "base-url": args.base_url,
                "seed": args.seed,
                "workers": 1,
                "hooks": str(HERE / "hooks.py"),
                # Report every failing case of an operation, not only the first.
                "continue-on-failure": True,
                "request-timeout": 10,
                "max-failures": 200,
            },
        ),
        # Every check schemathesis has.
        ("checks", {"enabled": True}),
        ("checks.positive_data_acceptance", {"expected-statuses": POSITIVE_STATUSES}),
        # Positive and negative cases; the examples, coverage, fuzzing and stateful phases are all
        # on (the default), bounded per operation.
        (
            "generation",
            {"mode": "all", "max-examples": args.max_examples, "database": "none"},
        ),
        # The token goes in the spec's security scheme (openId), so ignored_auth knows what to
        # remove or spoil when it checks that authentication is enforced.
        ("auth.openapi.openId", {"bearer": "${CAMARA_TOKEN}"}),
        ("reports", {"directory": str(args.workdir)}),
    ]
    if args.tls_verify:
        tables[0][1]["tls-verify"] = str(args.tls_verify)
    # Known values (ids of objects that exist) replace generated ones in about half the cases
    # where a parameter or body property of that name is generated; `OPID:` in front limits one
    # to that operation (so a DELETE gets an object of its own to delete).
    known: dict[tuple[str, str], list[str]] = {}
    for item in args.known:
        key, _, value = item.partition("=")
        opid, _, key = key.rpartition(":")
        known.setdefault((opid, key), []).append(value)
    global_bindings, op_bindings = {}, {}
    for i, ((opid, key), values) in enumerate(sorted(known.items())):
        tables.append((f"dictionaries.known{i}", {"values": values}))
        binding = {"dictionary": f"known{i}", "probability": 0.5}
        (op_bindings.setdefault(opid, {}) if opid else global_bindings)[key] = binding
    if global_bindings:
        tables.append(("parameters", global_bindings))
    def resolve(p: dict) -> dict:
        ref = p.get("$ref", "")
        return spec.get("components", {}).get("parameters", {}).get(ref.rsplit("/", 1)[-1], {}) if ref else p

    has_parameters = any(
        resolve(p).get("in") != "header"
        for item in spec.get("paths", {}).values()
        for method, op in item.items()
        if method in ("get", "put", "post", "delete", "patch") and isinstance(op, dict)
        for p in [*item.get("parameters", []), *op.get("parameters", [])]
    )
    if not has_parameters:
        tables.append(("checks.negative_data_rejection", {"expected-statuses": STRICT_NEGATIVE_STATUSES}))
    for method, op in spec_operations(spec):
        opid = op.get("operationId")
        positive = POSITIVE_STATUSES + (["422"] if opid in ACCEPTS_422 else [])
        extra = {}
        if "501" in (op.get("responses") or {}):
            # EAM 0.1.0-alpha.1 documents Generic501 NOT_IMPLEMENTED on submitApp,
            # createAppInstance and createAppDeployment, and CAMARA's rule (in every spec's
            # description) is that "501 - NOT_IMPLEMENTED can be only a possible error response
            # if it is explicitly documented in the API": where it is, a server may leave the
            # optional part (status callbacks, deployments) unimplemented and say so, for a valid
            # request too. Only on those operations, and only 501.
            positive = positive + ["501"]
            extra["operations.checks.not_a_server_error"] = {"expected-statuses": ["2xx", "3xx", "4xx", "501"]}
        if positive != POSITIVE_STATUSES:
            extra["operations.checks.positive_data_acceptance"] = {"expected-statuses": positive}
        if opid in op_bindings:
            # The operation's own bindings replace the global ones of the same key; the global
            # ones it does not override still apply.
            extra["operations.parameters"] = {**global_bindings, **op_bindings.pop(opid)}
        if extra:
            tables.append(("[[operations]]", {"include-operation-id": opid}))
            tables.extend(extra.items())
    if op_bindings:
        raise SystemExit(f"contract.py: --known for operations the spec does not have: {sorted(op_bindings)}")
    return toml(tables)


def spec_operations(spec: dict) -> list[tuple[str, dict]]:
    return [
        (method, op)
        for item in spec.get("paths", {}).values()
        for method, op in item.items()
        if method in ("get", "put", "post", "delete", "patch") and isinstance(op, dict)
    ]


def operations(spec: dict) -> list[str]:
    return [
        f"{method.upper()} {path}"
        for path, item in spec.get("paths", {}).items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--feed", type=Path)
    parser.add_argument("--app-id", action="append", default=[], help="an appId for positive bodies (hooks.py)")
    parser.add_argument(
        "--known",
        action="append",
        default=[],
        metavar="LOCATION.NAME=VALUE",
        help="a value that exists, e.g. path.appId=UUID or body.edgeCloudZoneId=UUID (repeatable)",
    )
    parser.add_argument("--tls-verify", type=Path, help="the CA bundle for an https base URL")
    parser.add_argument("--max-examples", type=int, default=50)
    # CAMARA_SEED / CAMARA_MAX_EXAMPLES in the environment override the test's choice, to explore
    # other inputs: CAMARA_SEED=4 cargo test --test camara_contract.
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--timeout", type=int, default=300, help="seconds before schemathesis is stopped")
    parser.add_argument(
        "--expect-success",
        action="append",
        default=[],
        metavar="LABEL",
        help='an operation ("POST /path") that must answer 2xx to some positive case',
    )
    args = parser.parse_args()
    if os.environ.get("CAMARA_SEED"):
        args.seed = int(os.environ["CAMARA_SEED"])
    if os.environ.get("CAMARA_MAX_EXAMPLES"):
        args.max_examples = int(os.environ["CAMARA_MAX_EXAMPLES"])

    try:
        import schemathesis
        import yaml
    except ImportError as e:
        print(f"contract.py: {e}: run scripts/test.sh, which installs schemathesis {SCHEMATHESIS_VERSION}")
        return 2
    if schemathesis.__version__ != SCHEMATHESIS_VERSION:
        print(
            f"contract.py: schemathesis {schemathesis.__version__} is installed, this harness is for "
            f"{SCHEMATHESIS_VERSION}: run scripts/test.sh"
        )
        return 2
    if not os.environ.get("CAMARA_TOKEN"):
        print("contract.py: CAMARA_TOKEN (the bearer access token) is not set")
        return 2

    args.spec, args.workdir = args.spec.resolve(), args.workdir.resolve()
    if args.feed:
        args.feed = args.feed.resolve()
    if args.tls_verify:
        args.tls_verify = args.tls_verify.resolve()
    spec = yaml.safe_load(args.spec.read_text(encoding="utf-8"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    cfg = args.workdir / "schemathesis.toml"
    cfg.write_text(config(args, spec), encoding="utf-8")
    report = args.workdir / "report.json"
    stats = args.workdir / "stats.json"
    for old in (report, stats):
        old.unlink(missing_ok=True)
    print(f"--- {cfg}\n{cfg.read_text()}---", flush=True)

    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(cfg),
        "--no-color",
        "run",
        str(args.spec),
        "--url",
        args.base_url,
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    print("$ " + " ".join(cmd), flush=True)
    env = {
        **os.environ,
        "CAMARA_FEED": str(args.feed or ""),
        "CAMARA_APP_IDS": ",".join(args.app_id),
        "CAMARA_STATS": str(stats),
        "CAMARA_BASE_URL": args.base_url,
        "CAMARA_TLS_VERIFY": str(args.tls_verify or ""),
        "COLUMNS": "120",
    }
    try:
        # In the work directory: schemathesis and hypothesis leave caches where they run.
        code = subprocess.run(cmd, env=env, cwd=args.workdir, check=False, timeout=args.timeout).returncode
    except subprocess.TimeoutExpired:
        print(f"contract.py: schemathesis still running after {args.timeout} s: stopped")
        return 1
    print(f"schemathesis exited with {code}", flush=True)

    problems = coverage_problems(report, stats, operations(spec), args.expect_success)
    for p in problems:
        print(f"contract.py: {p}")
    if code != 0:
        return code
    return 1 if problems else 0


def coverage_problems(report: Path, stats: Path, expected: list[str], expect_success: list[str]) -> list[str]:
    """What the run's JSON report and the hooks' counts say was not exercised."""
    if not report.exists():
        return [f"schemathesis wrote no report at {report}"]
    data = json.loads(report.read_text(encoding="utf-8"))
    problems = []
    ops = data.get("operations", {})
    if ops.get("selected") != len(expected) or ops.get("tested") != len(expected):
        problems.append(f"the spec has {len(expected)} operations; schemathesis selected/tested: {ops}")
    if ops.get("errored") or ops.get("skipped"):
        problems.append(f"operations errored or skipped: {ops}")
    if data.get("errors"):
        problems.append(f"errors: {json.dumps(data['errors'])[:2000]}")
    if not data.get("complete"):
        problems.append(f"the run did not complete: {data.get('stop_reason')}")
    counts = json.loads(stats.read_text(encoding="utf-8")) if stats.exists() else {}
    print("--- requests sent per operation (mode, then mode and status):")
    for label in expected:
        c = counts.get(label, {})
        print(f"{label}: " + ", ".join(f"{k}: {v}" for k, v in sorted(c.items())))
        for mode in ("positive", "negative"):
            if not c.get(mode):
                problems.append(f"{label}: no {mode} case was sent")
        if label in expect_success and not any(
            k.startswith("positive 2") for k in c
        ):
            problems.append(f"{label}: no positive case was answered 2xx (known devices, apps: see hooks.py)")
    return problems


if __name__ == "__main__":
    sys.exit(main())
