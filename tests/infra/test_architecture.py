"""The layering of the code, checked from the code itself (docs/development.md, "Floors"):

- the modules of `functions/core/src` and of `cli/src` form no import circle: at the level of
  top-level modules in the core (`kernel`, `ledger`, `fence`, `approval`, `steps`, `dispatch`,
  ...) and of files in the CLI;
- no module below `steps` imports a step, and no step imports another step;
- the kernel, the ledger, the plan and the run import nothing from the floors above them;
- no ledger key is formatted outside `ledger/keys.rs` (CLI and tests included);
- every Task of a state machine is named after the function crate it calls, or its Comment
  names it; every function crate is called by a state machine or triggered by an event of the
  template.

Imports are read as text (`use crate::…`, `crate::a::b` paths, `super::`), which is what a
reviewer reads too; a `#[cfg(test)] mod tests` block is left out (tests may reach anywhere).
"""

import json
import pathlib
import re

import pytest
from cfnlint.decode import decode

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORE = ROOT / "functions" / "core" / "src"
CLI = ROOT / "cli" / "src"

# Lower floors first. A module may import from its own floor or below, never above.
FLOORS = [
    {"aws", "databricks", "delta", "health_api", "html", "http", "identity", "metrics", "retry", "schedule",
     "secret", "test_support"},
    {"plan"},
    {"run"},
    {"ledger"},
    {"kernel"},
    # the domain: one floor, its modules may use each other as long as no circle forms
    {"announce", "approval", "clients", "drift", "events", "fence", "incident", "intervention",
     "managed_dr", "probe", "readiness", "replication", "report", "sources", "state", "switch",
     "trend_html", "validation", "verdict"},
    {"steps"},
    {"dispatch"},
    {"lambda"},
]


def strip(src: str) -> str:
    src = re.sub(r"//[^\n]*", "", src)
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    src = re.sub(r'"(?:\\.|[^"\\])*"', '""', src)
    cut = re.search(r"#\[cfg\(test\)\]\s*mod \w+\s*\{", src)
    return src[: cut.start()] if cut else src


def module_path(root: pathlib.Path, file: pathlib.Path) -> tuple:
    parts = list(file.relative_to(root).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def expand_use(tree: str) -> list:
    """`a::{b, c::{d, e}}` → [[a, b], [a, c, d], [a, c, e]]."""
    tree = tree.strip()
    if not tree:
        return []
    if tree.startswith("{") and tree.endswith("}"):
        out, depth, cur = [], 0, ""
        for ch in tree[1:-1]:
            depth += ch == "{"
            depth -= ch == "}"
            if ch == "," and depth == 0:
                out += expand_use(cur)
                cur = ""
            else:
                cur += ch
        return out + expand_use(cur)
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*|\*)\s*(?:::\s*(.*))?$", tree, re.S)
    if not m:
        return []
    head, rest = m.group(1), m.group(2)
    if rest is None:
        return [[head]]
    return [[head] + p for p in expand_use(rest)]


def imports(root: pathlib.Path, crate_word: str = "crate"):
    """{module path: {imported module path, ...}} for every file below `root`."""
    files = {module_path(root, f): f for f in root.rglob("*.rs")}
    edges = {}
    for mod, file in files.items():
        src = strip(file.read_text())
        paths = []
        for m in re.finditer(r"\buse\s+((?:crate|self|super)\s*::[^;]*);", src):
            paths += expand_use(m.group(1))
        for m in re.finditer(r"\b((?:crate|super)(?:\s*::\s*[A-Za-z_][A-Za-z0-9_]*)+)", src):
            paths.append([p.strip() for p in m.group(1).split("::")])
        targets = set()
        for p in paths:
            p = [x for x in p if x != "*"]
            if p[0] == "crate":
                full = p[1:]
            elif p[0] == "self":
                full = list(mod) + p[1:]
            else:
                base = list(mod)
                while p and p[0] == "super":
                    base, p = base[:-1], p[1:]
                full = base + p
            for i in range(len(full), -1, -1):
                if tuple(full[:i]) in files:
                    if tuple(full[:i]) != mod:
                        targets.add(tuple(full[:i]))
                    break
        edges[mod] = targets
    return edges


def cycles(graph: dict) -> list:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(set(graph) | {w for ws in graph.values() for w in ws}):
        if v not in index:
            visit(v)
    return out


def top_level(edges: dict) -> dict:
    graph = {}
    for a, bs in edges.items():
        top_a = a[:1] or ("lib",)
        for b in bs:
            if b[:1] and b[:1] != top_a:
                graph.setdefault(top_a, set()).add(b[:1])
    return graph


def test_no_import_circle_between_the_core_modules():
    assert cycles(top_level(imports(CORE))) == []


def test_no_import_circle_between_the_cli_files():
    assert cycles(imports(CLI)) == []


def floor_of(module: str) -> int:
    for i, floor in enumerate(FLOORS):
        if module in floor:
            return i
    raise AssertionError(
        f"module `{module}` of functions/core/src is on no floor: add it to FLOORS in {__file__}"
    )


def test_no_import_runs_upward():
    upward = []
    for a, bs in top_level(imports(CORE)).items():
        if a == ("lib",):
            continue
        for b in bs:
            if floor_of(b[0]) > floor_of(a[0]):
                upward.append(f"{a[0]} -> {b[0]}")
    assert upward == []


def test_no_step_imports_another_step():
    edges = imports(CORE)
    wrong = sorted(
        f"{'::'.join(a)} -> {'::'.join(b)}"
        for a, bs in edges.items()
        if a[:1] == ("steps",) and len(a) == 2
        for b in bs
        if b[:1] == ("steps",) and b != a
    )
    assert wrong == []
    # steps/mod.rs is the list of steps, nothing else.
    body = strip((CORE / "steps" / "mod.rs").read_text())
    assert set(re.findall(r"^\s*(\S.*)$", body, re.M)) <= {
        m for m in re.findall(r"^\s*(pub mod \w+;)$", body, re.M)
    }


# A ledger key starts with one of these folders (ledger/keys.rs documents the layout).
LEDGER_ROOTS = ("runs", "locks", "sites", "events", "monitor", "readiness", "audit", "plans")
KEY_FORMAT = re.compile(
    r'format!\(\s*"((?:' + "|".join(LEDGER_ROOTS) + r')/[^"]*|\{[a-z_.()]*prefix[a-z_.()]*\}[a-z-]*/?[a-z-]+(?:\.json|\.md|\.html|\.txt|/)[^"]*)"'
)


def test_no_ledger_key_is_formatted_outside_the_keys_module():
    found = []
    for base in (ROOT / "functions", ROOT / "cli"):
        for f in base.rglob("*.rs"):
            if f == CORE / "ledger" / "keys.rs" or "target" in f.parts:
                continue
            for n, line in enumerate(f.read_text().splitlines(), 1):
                if KEY_FORMAT.search(line):
                    found.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()}")
    assert found == []


def test_the_key_check_sees_a_key():
    assert KEY_FORMAT.search('let k = format!("runs/{run}/report.json");')
    assert KEY_FORMAT.search('format!("{prefix}/steps/")')
    assert not KEY_FORMAT.search('format!("{}/{}", host, path)')
    assert not KEY_FORMAT.search('format!("{}/api/2.0/sql/warehouses", url)')


TEMPLATE, _ = decode(str(ROOT / "infra" / "template.yaml"))
FUNCTIONS = {
    name: res["Metadata"]["BuildProperties"]["Binary"]
    for name, res in TEMPLATE["Resources"].items()
    if res["Type"] == "AWS::Serverless::Function"
}


def tasks(states: dict):
    for name, state in states.items():
        if state["Type"] == "Task":
            yield name, state
        for branch in state.get("Branches", []):
            yield from tasks(branch["States"])
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from tasks(processor["States"])


def kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def crate_of(task: dict):
    ref = task["Resource"]
    if not ref.startswith("${"):
        ref = task.get("Parameters", {}).get("FunctionName", "")
    m = re.fullmatch(r"\$\{(\w+)Arn\}", ref)
    return FUNCTIONS.get(m.group(1)) if m else None


MACHINES = sorted((ROOT / "statemachine").glob("*.asl.json"))


@pytest.mark.parametrize("machine", MACHINES, ids=lambda p: p.name)
def test_every_task_leads_to_its_crate(machine):
    definition = json.loads(machine.read_text())
    for name, task in tasks(definition["States"]):
        if task["Resource"].startswith("arn:aws:states:::states:startExecution"):
            params = task["Parameters"]
            files = re.findall(r"[\w-]+\.asl\.json", task.get("Comment", ""))
            assert files and all((ROOT / "statemachine" / f).is_file() for f in files), (
                f"{machine.name} {name}: its Comment must name the child machine's file"
            )
            if "StateMachineArn.$" in params:
                # Continue-as-new: the machine starts itself.
                assert params["StateMachineArn.$"] == "$$.StateMachine.Id", name
                assert files == [machine.name], name
            else:
                assert re.fullmatch(r"\$\{\w+StateMachineArn\}", params["StateMachineArn"]), name
            continue
        crate = crate_of(task)
        assert crate, f"{machine.name} {name}: calls no function of the template"
        assert (ROOT / "functions" / crate / "Cargo.toml").is_file(), crate
        assert kebab(name) == crate or task.get("Comment", "").startswith(f"{crate}:"), (
            f"{machine.name} {name} calls {crate}: name the Task after it or start its Comment "
            f"with `{crate}:`"
        )


def test_every_function_crate_is_called_or_triggered():
    called = set()
    for machine in MACHINES:
        for _, task in tasks(json.loads(machine.read_text())["States"]):
            if (crate := crate_of(task)) is not None:
                called.add(crate)
    triggered = {
        crate
        for name, crate in FUNCTIONS.items()
        if TEMPLATE["Resources"][name]["Properties"].get("Events")
    }
    crates = {p.name for p in (ROOT / "functions").iterdir() if (p / "src" / "main.rs").is_file()}
    assert crates - called - triggered == set()
