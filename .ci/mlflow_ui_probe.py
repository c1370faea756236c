"""The lowest-versions job's check of MLflow's server (the part of MLflow 3 that needs SQLAlchemy 2): `mlflow ui` on a
tracking store, on a free local port; its REST API must list the one run, named as given.

    python .ci/mlflow_ui_probe.py sqlite:///path/mlflow.db RUN_NAME
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

uri, run_name = sys.argv[1:]
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port)]
# its own process group: `mlflow ui` starts a web server with workers and a job runner, which outlive a bare
# terminate of the command itself
server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
api = f"http://127.0.0.1:{port}/api/2.0/mlflow"
try:
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{api}/experiments/get-by-name?experiment_name=makemore") as response:
                experiment = json.load(response)["experiment"]
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit("mlflow ui did not start:\n" + server.stderr.read().decode()[-3000:])
            time.sleep(0.5)
    body = json.dumps({"experiment_ids": [experiment["experiment_id"]]}).encode()
    request = urllib.request.Request(f"{api}/runs/search", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        (run,) = json.load(response)["runs"]
    assert run["info"]["run_name"] == run_name, run["info"]
    print(f"mlflow ui serves the run {run_name!r}")
finally:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)  # the server and every process it started
    server.wait(timeout=30)
