#!/usr/bin/env python3
"""Runs the README's main command (the first code block) the way a newcomer would, until the DME
it starts answers FindCloudlet over REST, then stops it. Fails, naming what broke, when the
command no longer starts the region.

The command runs as written except for `--release`, which is dropped to reuse the test build's
debug artifacts: cargo resolves which binary `cargo run` starts the same way on every profile.
The store goes to a temporary directory (EDGEPLANE_DATA_DIR), so a developer's ./edgeplane-data
is left alone. Bounded: a cold build gets BUILD_SECS, the region READY_SECS once running.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BUILD_SECS = 1200
READY_SECS = 60
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fail(msg, log=None):
    print(f"check_readme_main: FAILED: {msg}", file=sys.stderr)
    if log:
        print("---- last output of the command ----", file=sys.stderr)
        print(log[-4000:], file=sys.stderr)
    sys.exit(1)


def main_command(readme):
    blocks = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", readme, re.S)
    if not blocks:
        fail("README.md has no code block")
    lines = [l for l in blocks[0].splitlines() if l.strip() and not l.startswith("#")]
    if len(lines) != 1:
        fail(f"the README's first code block should be one command, found {lines!r}")
    return lines[0]


def rest_addr(readme):
    m = re.search(r"DME REST\s+(\d+\.\d+\.\d+\.\d+:\d+)", readme)
    if not m:
        fail("the README does not say where the DME's REST endpoint is ('DME REST <addr>')")
    return m.group(1)


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=3) as r:
        return json.loads(r.read())


def find_cloudlet(addr):
    """The README's own query: RegisterClient, then FindCloudlet near Potsdam."""
    reg = post(
        f"http://{addr}/v1/registerclient",
        {"org_name": "NimbusGames", "app_name": "arena-shooter", "app_vers": "2.3"},
    )
    cookie = reg.get("session_cookie")
    if not cookie:
        raise ValueError(f"registerclient gave no cookie: {reg}")
    return post(
        f"http://{addr}/v1/findcloudlet",
        {
            "session_cookie": cookie,
            "carrier_name": "26201",
            "gps_location": {"latitude": 52.3906, "longitude": 13.0645},
        },
    )


def main():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    command = main_command(readme)
    addr = rest_addr(readme)
    argv = [a for a in shlex.split(command) if a != "--release"]
    print(f"check_readme_main: running {' '.join(argv)!r} (README: {command!r})")
    env = dict(os.environ)
    env.pop("EDGEPLANE_STORE_ETCD", None)
    with tempfile.TemporaryDirectory() as data, tempfile.TemporaryFile("w+") as out:
        env["EDGEPLANE_DATA_DIR"] = data
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

        def log():
            out.seek(0)
            return out.read()

        try:
            started = time.monotonic()
            running_since = None
            last_error = None
            while True:
                if proc.poll() is not None:
                    fail(f"the command exited with status {proc.returncode}", log())
                if running_since is None and "Ctrl-C stops the region" in log():
                    running_since = time.monotonic()
                try:
                    reply = find_cloudlet(addr)
                    if reply.get("status") == "FIND_FOUND":
                        print(f"check_readme_main: ok, FindCloudlet -> {reply.get('fqdn')}")
                        return
                    # While the region is being applied the DME may know the app before its
                    # instances are READY; once the command says it is ready, it must find.
                    if running_since is not None:
                        fail(f"FindCloudlet did not find the example's instance: {reply}", log())
                    last_error = f"FindCloudlet answered {reply} before the region was ready"
                except (urllib.error.URLError, ConnectionError, ValueError, OSError) as e:
                    last_error = e
                now = time.monotonic()
                if now - started > BUILD_SECS:
                    fail(f"no answer on {addr} after {BUILD_SECS} s ({last_error})", log())
                if running_since is not None and now - running_since > READY_SECS:
                    fail(f"the region started but {addr} gave no FindCloudlet ({last_error})", log())
                time.sleep(0.5)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


if __name__ == "__main__":
    main()
