"""The local stack's Step Functions against what AWS does (tests/moto/lifeboat_moto.py): child
executions started by a task, the history and payload quotas, and task tokens of tasks that are
no longer waiting. Each test fails on plain moto."""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import boto3
import pytest
import requests

HERE = pathlib.Path(__file__).resolve().parent
ROLE = "arn:aws:iam::123456789012:role/sfn"
LIMIT = 2000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sfn():
    port = free_port()
    # A lower quota, so the quota test reaches it in seconds (the default is checked apart).
    env = dict(os.environ, MOTO_PORT=str(port), LIFEBOAT_SFN_MAX_HISTORY_EVENTS=str(LIMIT))
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "lifeboat_moto.py"), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            requests.get(f"{url}/moto-api/", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    requests.post(
        f"{url}/moto-api/config",
        json={"stepfunctions": {"execute_state_machine": True}},
        timeout=5,
    ).raise_for_status()
    client = boto3.client(
        "stepfunctions",
        endpoint_url=url,
        region_name="us-west-2",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    yield client
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def machine(sfn, name, states, start):
    definition = {"StartAt": start, "States": states}
    return sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]


def run(sfn, arn, doc=None, name=None, timeout=120):
    # Always named: moto names an unnamed execution `None`, and a second one collides.
    kwargs = {
        "stateMachineArn": arn,
        "input": json.dumps(doc or {}),
        "name": name or f"run-{time.time_ns()}",
    }
    execution = sfn.start_execution(**kwargs)["executionArn"]
    deadline = time.time() + timeout
    while time.time() < deadline:
        d = sfn.describe_execution(executionArn=execution)
        if d["status"] != "RUNNING":
            return d
        time.sleep(0.2)
    raise AssertionError(f"{execution} still running after {timeout} s")


@pytest.fixture(scope="module")
def child(sfn):
    return machine(
        sfn,
        "child",
        {"Echo": {"Type": "Pass", "Parameters": {"got.$": "$.value"}, "End": True}},
        "Echo",
    )


@pytest.mark.parametrize(
    "resource, output_is_json",
    [
        ("arn:aws:states:::states:startExecution.sync:2", True),
        ("arn:aws:states:::states:startExecution.sync", False),
    ],
)
def test_a_child_execution_runs_and_its_describe_shape_comes_back(sfn, child, resource, output_is_json):
    parent = machine(
        sfn,
        "parent-" + resource.rsplit(".", 1)[-1].replace(":", ""),
        {
            "Child": {
                "Type": "Task",
                "Resource": resource,
                "Parameters": {
                    "StateMachineArn": child,
                    "Name.$": "$.name",
                    "Input": {"value.$": "$.value"},
                },
                "End": True,
            }
        },
        "Child",
    )
    name = f"kid-{int(time.time() * 1000)}"
    d = run(sfn, parent, {"name": name, "value": 42})
    assert d["status"] == "SUCCEEDED", d
    out = json.loads(d["output"])
    assert out["Status"] == "SUCCEEDED" and out["Name"] == name, out
    assert out["StateMachineArn"] == child
    assert isinstance(out["StartDate"], int) and isinstance(out["StopDate"], int)
    got = out["Output"] if output_is_json else json.loads(out["Output"])
    assert got == {"got": 42}
    assert sfn.describe_execution(executionArn=out["ExecutionArn"])["status"] == "SUCCEEDED"


def test_a_plain_start_returns_the_arn_and_start_date(sfn, child):
    parent = machine(
        sfn,
        "parent-plain",
        {
            "Start": {
                "Type": "Task",
                "Resource": "arn:aws:states:::states:startExecution",
                "Parameters": {"StateMachineArn": child, "Input": {"value": 1}},
                "End": True,
            }
        },
        "Start",
    )
    d = run(sfn, parent)
    assert d["status"] == "SUCCEEDED", d
    out = json.loads(d["output"])
    assert set(out) == {"ExecutionArn", "StartDate"}, out


def test_the_quota_is_25000_events_unless_a_test_lowers_it():
    sys.path.insert(0, str(HERE))
    import lifeboat_moto

    assert os.environ.get("LIFEBOAT_SFN_MAX_HISTORY_EVENTS") is None
    assert lifeboat_moto.MAX_HISTORY_EVENTS == 25000


def test_an_execution_fails_at_the_history_quota(sfn):
    # Four events per loop (Pass and Choice, entered and exited).
    loop = machine(
        sfn,
        "endless",
        {
            "Count": {
                "Type": "Pass",
                "Parameters": {"n.$": "States.MathAdd($.n, 1)"},
                "Next": "Again",
            },
            "Again": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericLessThan": 100000, "Next": "Count"}],
                "Default": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
        "Count",
    )
    d = run(sfn, loop, {"n": 0}, timeout=300)
    assert d["status"] == "FAILED", d
    events = []
    kwargs = {"executionArn": d["executionArn"], "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events += page["events"]
        if not page.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextToken"]
    last = events[-1]
    assert last["type"] == "ExecutionFailed", last
    assert last["executionFailedEventDetails"]["error"] == "States.Runtime"
    assert str(LIMIT) in last["executionFailedEventDetails"]["cause"]
    assert LIMIT <= len(events) <= LIMIT + 5


def test_an_output_over_256_kib_fails_the_state(sfn):
    # Two 135 KB halves: the input is within the quota, the state's output (both) is not, and
    # the Catch does not catch it (terminal, as in AWS).
    grow = machine(
        sfn,
        "grow",
        {
            "Wrap": {
                "Type": "Parallel",
                "Branches": [{"StartAt": "Grow", "States": {"Grow": {
                    "Type": "Pass",
                    "Parameters": {"a.$": "$.half", "b.$": "$.half"},
                    "End": True}}}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "Next": "Caught",
            },
            "Caught": {"Type": "Pass", "End": True},
        },
        "Wrap",
    )
    d = run(sfn, grow, {"half": "x" * 135_000})
    assert d["status"] == "FAILED", d
    failed = [
        e for e in sfn.get_execution_history(executionArn=d["executionArn"], maxResults=1000)["events"]
        if e["type"] == "ExecutionFailed"
    ]
    assert failed and failed[0]["executionFailedEventDetails"]["error"] == "States.DataLimitExceeded"
    assert run(sfn, grow, {"half": "x" * 100_000})["status"] == "SUCCEEDED"


@pytest.fixture(scope="module")
def waiting(sfn):
    """A machine whose task waits for its token, published to an SQS queue (no Lambda needed),
    then waits 2 s more; the wait times out after 3 s."""
    sqs = boto3.client(
        "sqs",
        endpoint_url=sfn.meta.endpoint_url,
        region_name="us-west-2",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    queue = sqs.create_queue(QueueName="tokens")["QueueUrl"]
    arn = machine(
        sfn,
        "waiting",
        {
            "Wait": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                "TimeoutSeconds": 3,
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "After"}],
                "Next": "After",
            },
            "After": {"Type": "Wait", "Seconds": 2, "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
        "Wait",
    )
    return arn, sqs, queue


def wait_token(sfn, waiting, name):
    arn, sqs, queue = waiting
    execution = sfn.start_execution(stateMachineArn=arn, name=name, input="{}")["executionArn"]
    for _ in range(20):
        for m in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", []):
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
            return execution, json.loads(m["Body"])["token"]
    raise AssertionError("no token published")


def test_a_second_answer_to_a_task_is_refused_as_closed(sfn, waiting):
    _, token = wait_token(sfn, waiting, f"answered-{int(time.time() * 1000)}")
    sfn.send_task_success(taskToken=token, output="{}")
    with pytest.raises(sfn.exceptions.TaskTimedOut):
        sfn.send_task_success(taskToken=token, output="{}")
    with pytest.raises(sfn.exceptions.TaskTimedOut):
        sfn.send_task_failure(taskToken=token, error="Late")


def test_an_answer_after_the_wait_timed_out_or_the_run_ended_is_refused(sfn, waiting):
    execution, token = wait_token(sfn, waiting, f"late-{int(time.time() * 1000)}")
    # The wait times out; the execution goes on to its Wait state.
    for _ in range(100):
        events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
        if any(e["type"] == "TaskTimedOut" for e in events):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the wait never timed out")
    with pytest.raises(sfn.exceptions.TaskTimedOut):
        sfn.send_task_success(taskToken=token, output="{}")
    for _ in range(50):
        if sfn.describe_execution(executionArn=execution)["status"] != "RUNNING":
            break
        time.sleep(0.2)
    with pytest.raises(sfn.exceptions.TaskTimedOut):
        sfn.send_task_success(taskToken=token, output="{}")
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.send_task_success(taskToken="never-issued", output="{}")
