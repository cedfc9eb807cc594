"""The Python equivalent of a Lifeboat function, for the `cold_start` benchmark.

What a team would write in Python: a Lambda custom-runtime loop (the Runtime API, as the Rust
binaries speak it) whose init imports boto3 and the official Databricks SDK and builds the AWS
clients the Rust functions build at init (S3, SNS, Step Functions), then answers each
invocation. An event without `run` is refused with `InvalidInput`, as the Rust steps do, so the
first answer of both is the same work: process start, init, one event.

    .venv/bin/python tests/bench/cold_start_function.py   # under the Runtime API host only
"""

import json
import os
import urllib.request

import boto3
from databricks.sdk import WorkspaceClient

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = (API if API.startswith("http") else "http://" + API).rstrip("/") + "/2018-06-01/runtime"

session = boto3.session.Session()
clients = {name: session.client(name) for name in ("s3", "sns", "stepfunctions")}
# As the Rust functions do, the workspace client is built per run (its host and token come
# from the plan and Secrets Manager), not at init: building one resolves the host over the
# network. Importing the SDK is the init cost.
assert WorkspaceClient


def post(path: str, body: dict) -> None:
    req = urllib.request.Request(BASE + path, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    urllib.request.urlopen(req).read()


while True:
    with urllib.request.urlopen(BASE + "/invocation/next") as resp:
        request_id = resp.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(resp.read() or b"null")
    if not isinstance(event, dict) or "run" not in event:
        post(
            f"/invocation/{request_id}/error",
            {"errorType": "InvalidInput", "errorMessage": "field `run` is missing"},
        )
    else:
        post(f"/invocation/{request_id}/response", {"ok": True})
