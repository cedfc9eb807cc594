"""The plain approach a user would script to fence a workspace, for `sweep_bench`.

Starts a fresh `large` emulator (real rate limits), then with the official Databricks Python SDK
lists all jobs and pauses each UNPAUSED schedule one by one (`jobs.update`), then terminates the
running all-purpose clusters (`clusters.delete`). Writes a JSON file with the start/end times,
the schedules it saw and the emulator's request log, from which `sweep_bench` computes the wall
time and the exposure window.

    .venv/bin/python tests/bench/plain_sweep.py --bin target/debug/databricks-emulator --out plain.json
"""

import argparse
import json
import secrets
import subprocess
import threading
import time
import urllib.request

from databricks.sdk import WorkspaceClient
from databricks.sdk.service import compute, jobs


def start_emulator(binary: str, fixture: str):
    token = "dapi" + secrets.token_hex(16)
    proc = subprocess.Popen(
        [binary, "--port", "0", "--fixture", fixture, "--token", token],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    result = {}
    reader = threading.Thread(target=lambda: result.update(line=proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(120)
    line = result.get("line", "")
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"emulator did not start: {line!r}")
    return proc, line.split()[-1], token


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--fixture", default="large")
    args = ap.parse_args()
    proc, url, token = start_emulator(args.bin, args.fixture)
    try:
        w = WorkspaceClient(host=url, token=token)
        t0 = time.time()
        schedules = []
        # The plain script: list every job, pause each unpaused schedule in listing order.
        for job in w.jobs.list():
            s = job.settings.schedule if job.settings else None
            if s is None or s.pause_status == jobs.PauseStatus.PAUSED:
                continue
            schedules.append(
                {"job_id": job.job_id, "cron": s.quartz_cron_expression, "tz": s.timezone_id}
            )
            w.jobs.update(
                job.job_id,
                new_settings=jobs.JobSettings(
                    schedule=jobs.CronSchedule(
                        quartz_cron_expression=s.quartz_cron_expression,
                        timezone_id=s.timezone_id,
                        pause_status=jobs.PauseStatus.PAUSED,
                    )
                ),
            )
        # Then terminate the running all-purpose clusters.
        for c in w.clusters.list():
            if c.state in (compute.State.RUNNING, compute.State.PENDING, compute.State.RESIZING):
                w.clusters.delete(c.cluster_id)
        t1 = time.time()
        with urllib.request.urlopen(f"{url}/__emulator/requests") as r:
            log = json.load(r)["requests"]
        with open(args.out, "w") as f:
            json.dump(
                {"t0_ms": int(t0 * 1000), "t1_ms": int(t1 * 1000), "schedules": schedules, "requests": log},
                f,
            )
        print(f"plain sweep: {t1 - t0:.1f} s, {len(log)} requests")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
