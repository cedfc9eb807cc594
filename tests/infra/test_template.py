"""Static checks of the SAM template against the code: every function is deployed as built, every
state machine substitution is defined, and each function's policy grants exactly the AWS calls
its code declares (`[package.metadata.lifeboat] aws-actions` in its Cargo.toml) — no wildcard
actions, no wildcard resources where the service allows scoping."""

import json
import pathlib
import re
import tomllib

import pytest
from cfnlint.decode import decode

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE, _ = decode(str(ROOT / "infra" / "template.yaml"))
RESOURCES = TEMPLATE["Resources"]
FUNCTION_DIRS = sorted(
    p.name for p in (ROOT / "functions").iterdir() if (p / "src" / "main.rs").is_file()
)
# Services whose log-delivery APIs cannot be scoped to a resource (AWS documents "*").
UNSCOPABLE = {
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    # SNS defines no subscription resource type.
    "sns:GetSubscriptionAttributes",
    # The Health API's DescribeEvents takes no resource.
    "health:DescribeEvents",
    # Route 53 defines no resource type for TestDNSAnswer.
    "route53:TestDNSAnswer",
}


def functions():
    out = {}
    for name, res in RESOURCES.items():
        if res["Type"] == "AWS::Serverless::Function":
            out[res["Metadata"]["BuildProperties"]["Binary"]] = (name, res)
    return out


def statements(res):
    """Every statement a function may be granted (both arms of an `Fn::If`)."""
    for policy in res["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            for st in policy["Statement"]:
                if "Fn::If" in st:
                    _, then, otherwise = st["Fn::If"]
                    yield from (
                        s for s in (then, otherwise) if s != {"Ref": "AWS::NoValue"}
                    )
                else:
                    yield st


def as_list(v):
    return v if isinstance(v, list) else [v]


def test_every_function_directory_is_deployed_as_built():
    deployed = functions()
    assert sorted(deployed) == FUNCTION_DIRS
    globals_ = TEMPLATE["Globals"]["Function"]
    assert globals_["Runtime"] == "provided.al2023"
    assert globals_["Architectures"] == ["arm64"]
    for binary, (name, res) in deployed.items():
        assert res["Metadata"]["BuildMethod"] == "rust-cargolambda", name
        assert "Runtime" not in res["Properties"] or res["Properties"]["Runtime"] == "provided.al2023"
        timeout = res["Properties"]["Timeout"]
        assert timeout <= 900, name
    assert deployed["shutdown-sweep"][1]["Properties"]["Timeout"] == 900, "the sweep uses the full Lambda budget"


def test_state_machine_substitutions_are_all_defined():
    machines = {
        res["Properties"]["DefinitionUri"]: res
        for res in RESOURCES.values()
        if res["Type"] == "AWS::Serverless::StateMachine"
    }
    files = sorted((ROOT / "statemachine").glob("*.asl.json"))
    assert files, "no state machines"
    for f in files:
        uri = f"../statemachine/{f.name}"
        assert uri in machines, f"{f.name} is not deployed"
        used = set(re.findall(r"\$\{(\w+)\}", f.read_text()))
        defined = set(machines[uri]["Properties"].get("DefinitionSubstitutions", {}))
        assert used <= defined, f"{f.name}: undefined {used - defined}"
        assert defined <= used, f"{f.name}: unused {defined - used}"
        json.loads(f.read_text())


def test_no_wildcard_actions_or_resources():
    for name, res in RESOURCES.items():
        if res["Type"] not in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            continue
        for st in statements(res):
            actions = as_list(st["Action"])
            for a in actions:
                assert "*" not in a, f"{name}: wildcard action {a}"
            if st.get("Resource") == "*":
                assert set(actions) <= UNSCOPABLE, f"{name}: '*' resource for {actions}"


@pytest.mark.parametrize("binary", FUNCTION_DIRS)
def test_policy_covers_exactly_the_declared_calls(binary):
    meta = tomllib.loads((ROOT / "functions" / binary / "Cargo.toml").read_text())
    declared = set(meta["package"]["metadata"]["lifeboat"]["aws-actions"])
    name, res = functions()[binary]
    granted = {a for st in statements(res) for a in as_list(st["Action"])}
    assert declared <= granted, f"{name} lacks {declared - granted}"
    assert granted <= declared, f"{name} grants more than it uses: {granted - declared}"


def test_approval_links_travel_only_on_a_filtered_per_approver_topic():
    """Each approver's subscription is filtered to their own messages; the broadcast topic
    (notifications, requests without links) is a different topic; the callback can resume
    every machine that waits for approval; the API is throttled and its function capped."""
    slots = sorted(n for n in RESOURCES if n.startswith("ApproverSubscription"))
    assert slots == [f"ApproverSubscription{i}" for i in range(8)], slots
    for i, name in enumerate(slots):
        res = RESOURCES[name]
        assert res["Condition"] == f"HasApprover{i}"
        props = res["Properties"]
        assert props["TopicArn"] == {"Ref": "ApprovalTopic"}
        assert props["FilterPolicyScope"] == "MessageAttributes"
        # The subscription's address and its filter are the same slot of the list.
        assert props["FilterPolicy"] == {"approver": [props["Endpoint"]]}
        assert props["Endpoint"]["Fn::Select"][0] == i
        assert TEMPLATE["Conditions"][f"HasApprover{i}"] == {
            "Fn::Not": [{"Fn::Equals": [props["Endpoint"], ""]}]
        }
    for name, res in RESOURCES.items():
        if res["Type"] == "AWS::SNS::Subscription":
            if name.startswith("ApproverSubscription"):
                continue
            assert res["Properties"]["TopicArn"] != {"Ref": "ApprovalTopic"}, (
                f"{name}: an unfiltered subscription to the approval topic"
            )
    env = RESOURCES["RequestApprovalFunction"]["Properties"]["Environment"]["Variables"]
    assert env["APPROVAL_TOPIC_ARN"] == {"Ref": "ApprovalTopic"}
    assert TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["TOPIC_ARN"] == {"Ref": "EventsTopic"}
    assert TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["STACK_ID"] == {"Ref": "AWS::StackId"}
    callback = RESOURCES["ApprovalCallbackFunction"]["Properties"]
    assert 1 <= callback["ReservedConcurrentExecutions"] <= 10
    resumable = [
        r
        for st in statements(RESOURCES["ApprovalCallbackFunction"])
        if "states:SendTaskSuccess" in as_list(st["Action"])
        for r in as_list(st["Resource"])
    ]
    granted = {r["Fn::Sub"].split("${AWS::StackName}-")[-1] for r in resumable}
    for res in RESOURCES.values():
        if res["Type"] != "AWS::Serverless::StateMachine":
            continue
        text = (ROOT / "infra" / res["Properties"]["DefinitionUri"]).read_text()
        if "waitForTaskToken" in text and '"stage": "failover"' in text:
            name = res["Properties"]["Name"]["Fn::Sub"].split("${AWS::StackName}-")[-1]
            assert name in granted, f"approval-callback cannot resume {name}"
    route = RESOURCES["ApprovalApi"]["Properties"]["DefaultRouteSettings"]
    assert route["ThrottlingRateLimit"] <= 10 and route["ThrottlingBurstLimit"] <= 50


def test_forwarder_sends_primary_health_events_to_the_dr_bus_only():
    fwd, _ = decode(str(ROOT / "infra" / "forwarder.yaml"))
    res = fwd["Resources"]
    rule = res["ForwardHealthEvents"]["Properties"]
    assert rule["EventPattern"]["source"] == ["aws.health"]
    (target,) = rule["Targets"]
    bus = "arn:${AWS::Partition}:events:${DrRegion}:${AWS::AccountId}:event-bus/default"
    assert target["Arn"] == {"Fn::Sub": bus}
    (policy,) = res["ForwardRole"]["Properties"]["Policies"]
    (st,) = policy["PolicyDocument"]["Statement"]
    assert st["Action"] == "events:PutEvents" and st["Resource"] == {"Fn::Sub": bus}
    # The DR stack's rule takes every Health event about the primary: no service filter that
    # would drop MULTIPLE_SERVICES.
    pattern = RESOURCES["HealthIngestFunction"]["Properties"]["Events"]["AwsHealth"]["Properties"]["Pattern"]
    assert "service" not in pattern["detail"] and "eventTypeCategory" not in pattern["detail"]


@pytest.mark.parametrize("binary", FUNCTION_DIRS)
def test_each_binary_links_only_its_own_step(binary):
    """A function's main.rs names its own step's entry (`dispatch::entry::NOTIFY` for `notify`),
    so the binary links that step alone; `lambda::run` also refuses a mismatch at init."""
    main = (ROOT / "functions" / binary / "src" / "main.rs").read_text()
    entries = re.findall(r"dispatch::entry::([A-Z_]+)", main)
    assert entries == [binary.upper().replace("-", "_")], f"{binary}: {entries}"
    assert "Step::" not in main, f"{binary}: dispatches on a Step value (links every step)"
