"""Fidelity of the Databricks emulator, checked with the official Databricks Python SDK.

The SDK (`databricks-sdk` from PyPI) is a client we did not write: if it works unmodified
against the emulator — paging, waiters, error mapping, OAuth M2M, 429 retries — the emulator
speaks the real wire protocol closely enough for Lifeboat's own client.

Run: cargo build -p databricks-emulator && \
     DATABRICKS_EMULATOR_BIN=target/debug/databricks-emulator .venv/bin/pytest -q tests/fidelity
"""

import json
import os
import secrets
import subprocess
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk import errors
from databricks.sdk.service import catalog, compute, iam, jobs, sql
from databricks.sdk.service import pipelines as pl
from databricks.sdk.service import workspace as ws

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = timedelta(seconds=30)


def _bin() -> str:
    path = os.environ.get("DATABRICKS_EMULATOR_BIN", "target/debug/databricks-emulator")
    p = Path(path)
    if not p.is_absolute():
        p = REPO / p
    if not p.exists():
        pytest.skip(f"emulator binary not built: {p}")
    return str(p)


def _serve(args):
    """Starts the emulator binary with `args`; returns (process, URL from its first line)."""
    proc = subprocess.Popen(
        [_bin(), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    result = {}
    reader = threading.Thread(target=lambda: result.update(line=proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(20)
    line = result.get("line", "")
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"emulator did not start: {line!r}")
    return proc, line.split()[-1]


def _stop(proc):
    proc.terminate()
    assert proc.wait(10) == 0


@pytest.fixture(scope="module")
def emulator():
    token = "dapi" + secrets.token_hex(16)
    proc, url = _serve(["--fixture", "demo", "--token", token, "--lifecycle-delay-ms", "200"])
    yield {"url": url, "token": token}
    _stop(proc)


@pytest.fixture(scope="module")
def w(emulator):
    return WorkspaceClient(host=emulator["url"], token=emulator["token"])


def admin(emulator, path, body=None):
    req = urllib.request.Request(
        emulator["url"] + path,
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


def job_named(w, name):
    return next(j for j in w.jobs.list(name=name))


def test_current_user_me(w):
    me = w.current_user.me()
    assert me.user_name == "dr-admin@example.com"
    assert me.active
    assert {g.display for g in me.groups} >= {"admins"}


def test_clusters_list_filters_and_pages(w, emulator):
    admin(emulator, "/__emulator/requests/clear", {})
    ui_api = list(
        w.clusters.list(
            filter_by=compute.ListClustersFilterBy(
                cluster_sources=[compute.ClusterSource.UI, compute.ClusterSource.API]
            ),
            page_size=2,
        )
    )
    assert len(ui_api) == 5
    assert "Ops Break-Glass" in {c.cluster_name for c in ui_api}
    pages = [r for r in admin(emulator, "/__emulator/requests")["requests"] if r["path"].endswith("clusters/list")]
    assert len(pages) == 3
    assert "filter_by.cluster_sources=UI" in pages[0]["query"]
    job_clusters = list(
        w.clusters.list(filter_by=compute.ListClustersFilterBy(cluster_sources=[compute.ClusterSource.JOB]))
    )
    assert len(job_clusters) >= 1
    assert all(c.cluster_source == compute.ClusterSource.JOB for c in job_clusters)


def test_jobs_list_across_pages(w, emulator):
    admin(emulator, "/__emulator/requests/clear", {})
    all_jobs = list(w.jobs.list(limit=5))
    assert len(all_jobs) == 23
    assert len({j.job_id for j in all_jobs}) == 23
    assert all(not j.settings.tasks for j in all_jobs)  # omitted without expand_tasks
    reqs = [r for r in admin(emulator, "/__emulator/requests")["requests"] if r["path"].endswith("jobs/list")]
    assert len(reqs) == 5
    expanded = next(iter(w.jobs.list(limit=1, expand_tasks=True)))
    assert expanded.settings.tasks


def test_pause_schedule_via_update_preserves_settings(w):
    j = job_named(w, "Marketing Attribution")
    full = w.jobs.get(j.job_id)
    assert full.settings.schedule.pause_status == jobs.PauseStatus.PAUSED
    j = job_named(w, "Hourly Inventory Sync")
    before = w.jobs.get(j.job_id)
    s = before.settings.schedule
    assert s.pause_status == jobs.PauseStatus.UNPAUSED
    w.jobs.update(
        j.job_id,
        new_settings=jobs.JobSettings(
            schedule=jobs.CronSchedule(
                quartz_cron_expression=s.quartz_cron_expression,
                timezone_id=s.timezone_id,
                pause_status=jobs.PauseStatus.PAUSED,
            )
        ),
    )
    after = w.jobs.get(j.job_id)
    assert after.settings.schedule.pause_status == jobs.PauseStatus.PAUSED
    assert after.settings.schedule.quartz_cron_expression == s.quartz_cron_expression
    assert after.settings.schedule.timezone_id == "America/New_York"
    assert after.settings.name == before.settings.name
    assert [t.task_key for t in after.settings.tasks] == [t.task_key for t in before.settings.tasks]
    assert after.settings.tags == before.settings.tags


def test_cluster_terminate_and_start_with_waiters(w):
    c = next(
        c for c in w.clusters.list(
            filter_by=compute.ListClustersFilterBy(cluster_states=[compute.State.RUNNING])
        ) if c.cluster_name == "Shared Analytics"
    )
    done = w.clusters.delete(c.cluster_id).result(timeout=TIMEOUT)
    assert done.state == compute.State.TERMINATED
    assert done.termination_reason.code == compute.TerminationReasonCode.USER_REQUEST
    running = w.clusters.start(c.cluster_id).result(timeout=TIMEOUT)
    assert running.state == compute.State.RUNNING
    running = w.clusters.wait_get_cluster_running(c.cluster_id, timeout=TIMEOUT)
    assert running.state == compute.State.RUNNING


def test_warehouse_stop_start_with_waiters(w):
    wh = next(x for x in w.warehouses.list() if x.name == "Shared BI")
    assert wh.state == sql.State.RUNNING
    stopped = w.warehouses.stop(wh.id).result(timeout=TIMEOUT)
    assert stopped.state == sql.State.STOPPED
    started = w.warehouses.start(wh.id).result(timeout=TIMEOUT)
    assert started.state == sql.State.RUNNING


def test_pipeline_stop_with_waiter(w):
    p = next(x for x in w.pipelines.list_pipelines() if x.name == "Orders Bronze-Silver")
    full = w.pipelines.get(p.pipeline_id)
    assert full.spec.continuous is True
    idle = w.pipelines.stop(p.pipeline_id).result(timeout=TIMEOUT)
    assert idle.state.value == "IDLE"


def test_cancel_run_with_waiter(w):
    j = job_named(w, "Customer 360 Refresh")
    runs = list(w.jobs.list_runs(job_id=j.job_id, active_only=True))
    assert len(runs) == 1
    run = w.jobs.cancel_run(runs[0].run_id).result(timeout=TIMEOUT)
    assert run.state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED
    assert run.state.result_state == jobs.RunResultState.CANCELED


def test_run_now_with_idempotency(w):
    j = job_named(w, "Sandbox Notebook Job")
    a = w.jobs.run_now(j.job_id, idempotency_token="fidelity-1")
    b = w.jobs.run_now(j.job_id, idempotency_token="fidelity-1")
    assert a.run_id == b.run_id
    run = w.jobs.get_run(a.run_id)
    assert run.trigger == jobs.TriggerType.ONE_TIME


def test_pool_edit_read_back(w):
    p = next(x for x in w.instance_pools.list() if x.instance_pool_name == "Memory Optimized Pool")
    assert p.min_idle_instances == 1
    w.instance_pools.edit(
        p.instance_pool_id,
        p.instance_pool_name,
        p.node_type_id,
        min_idle_instances=0,
        max_capacity=p.max_capacity,
        idle_instance_autotermination_minutes=p.idle_instance_autotermination_minutes,
        custom_tags=p.custom_tags,
    )
    back = w.instance_pools.get(p.instance_pool_id)
    assert back.min_idle_instances == 0
    assert back.custom_tags == p.custom_tags
    assert back.max_capacity == p.max_capacity


def test_statement_execution(w):
    wh = next(x for x in w.warehouses.list() if x.name == "Shared BI")
    r = w.statement_execution.execute_statement(statement="SELECT 1", warehouse_id=wh.id, wait_timeout="10s")
    assert r.status.state == sql.StatementState.SUCCEEDED
    assert r.result.data_array == [["1"]]
    r = w.statement_execution.execute_statement(
        statement="SELECT customer_id, name FROM main.sales.customers WHERE country = :c ORDER BY customer_id",
        warehouse_id=wh.id,
        parameters=[sql.StatementParameterListItem(name="c", value="US", type="STRING")],
    )
    assert r.status.state == sql.StatementState.SUCCEEDED
    assert r.manifest.total_row_count == 6
    assert [c.name for c in r.manifest.schema.columns] == ["customer_id", "name"]
    assert r.result.data_array[0] == ["1", "Acme Corp"]
    again = w.statement_execution.get_statement(r.statement_id)
    assert again.result.data_array == r.result.data_array


def test_error_mapping(w):
    with pytest.raises(errors.ResourceDoesNotExist) as e:
        w.clusters.get("0000-000000-nothere0")
    assert "does not exist" in str(e.value)
    with pytest.raises(errors.ResourceDoesNotExist):
        w.jobs.get(1)
    with pytest.raises(errors.NotFound):
        w.warehouses.get("nope")
    with pytest.raises(errors.InvalidParameterValue):
        w.jobs.list(limit=500).__next__()


def test_bad_token_is_permission_denied(emulator):
    bad = WorkspaceClient(host=emulator["url"], token="not-the-token")
    with pytest.raises(errors.PermissionDenied):
        bad.current_user.me()


def test_oauth_m2m(emulator):
    sp = WorkspaceClient(host=emulator["url"], client_id="lifeboat-sp", client_secret="emulator-secret")
    me = sp.current_user.me()
    assert me.user_name == "lifeboat-sp"
    assert me.display_name == "lifeboat-sp"
    assert len(list(sp.clusters.list())) >= 5


def test_permissions(w):
    j = job_named(w, "Nightly Sales ETL")
    acl = w.permissions.get("jobs", str(j.job_id))
    assert acl.object_id == f"/jobs/{j.job_id}"
    sps = [a for a in acl.access_control_list if a.service_principal_name == "lifeboat-sp"]
    assert sps and sps[0].all_permissions[0].permission_level.value == "CAN_MANAGE"


def test_burst_of_updates_absorbed_by_429_retries(w, emulator):
    before = admin(emulator, "/__emulator/stats")["rate_limited_total"]
    targets = [j for j in w.jobs.list() if (j.settings.tags or {}).get("lifeboat") != "exclude"][:20]

    def bump(i):
        j = targets[i % len(targets)]
        w.jobs.update(j.job_id, new_settings=jobs.JobSettings(tags={"team": "burst", "n": str(i)}))
        return j.job_id

    with ThreadPoolExecutor(max_workers=40) as pool:
        ids = list(pool.map(bump, range(40)))
    assert len(ids) == 40
    stats = admin(emulator, "/__emulator/stats")
    assert stats["rate_limited_total"] > before
    ok = [r for r in admin(emulator, "/__emulator/requests")["requests"]
          if r["path"].endswith("/jobs/update") and r["status"] == 200]
    assert len(ok) >= 40


# --- The configuration objects of the per-object drift check ---------------------------------


def test_cluster_policies_list_get_edit(w):
    policies = list(w.cluster_policies.list())
    assert [p.name for p in policies] == ["Job Compute Policy", "Shared Compute Policy"]
    shared = w.cluster_policies.get(policies[1].policy_id)
    assert json.loads(shared.definition)["autotermination_minutes"]["maxValue"] == 120
    assert shared.max_clusters_per_user == 2
    assert shared.creator_user_name == "dr-admin@example.com"
    new = json.dumps({"spark_version": {"type": "fixed", "value": "16.4.x-scala2.12"}})
    w.cluster_policies.edit(shared.policy_id, name=shared.name, definition=new,
                            description=shared.description, max_clusters_per_user=3)
    back = w.cluster_policies.get(shared.policy_id)
    assert (back.definition, back.max_clusters_per_user, back.description) == (new, 3, shared.description)
    with pytest.raises(errors.NotFound):
        w.cluster_policies.get("0000000000000000")
    with pytest.raises(errors.InvalidParameterValue) as e:
        w.cluster_policies.edit(shared.policy_id, name=shared.name, definition="[1]")
    assert "definition" in str(e.value)


def test_secrets_scopes_keys_acls(w):
    scopes = list(w.secrets.list_scopes())
    assert [(s.name, s.backend_type) for s in scopes] == [
        ("etl", ws.ScopeBackendType.DATABRICKS), ("ml", ws.ScopeBackendType.DATABRICKS)]
    assert [k.key for k in w.secrets.list_secrets("etl")] == ["api-token", "db-password"]
    assert all(k.last_updated_timestamp > 0 for k in w.secrets.list_secrets("etl"))
    acls = {a.principal: a.permission for a in w.secrets.list_acls("etl")}
    assert acls == {"admins": ws.AclPermission.MANAGE, "data-engineers": ws.AclPermission.READ}
    w.secrets.put_acl("etl", "analysts", ws.AclPermission.READ)
    acls = {a.principal: a.permission for a in w.secrets.list_acls("etl")}
    assert acls["analysts"] == ws.AclPermission.READ
    w.secrets.put_secret("ml", "fidelity-key", string_value="fidelity-secret-value")
    assert "fidelity-key" in [k.key for k in w.secrets.list_secrets("ml")]
    with pytest.raises(errors.NotFound):
        list(w.secrets.list_secrets("nope"))
    with pytest.raises(errors.ResourceAlreadyExists):
        w.secrets.create_scope("etl")


def test_repos_list_pages_get_update(w, emulator):
    assert len(list(w.repos.list())) == 14
    for i in range(10):
        w.repos.create(url=f"https://github.com/acme/fidelity-{i:02}.git", provider="gitHub",
                       path=f"/Repos/fidelity/fidelity-{i:02}")
    admin(emulator, "/__emulator/requests/clear", {})
    repos = list(w.repos.list())
    assert len(repos) == 24 and len({r.id for r in repos}) == 24
    pages = [r for r in admin(emulator, "/__emulator/requests")["requests"] if r["path"] == "/api/2.0/repos"]
    assert len(pages) == 2 and "next_page_token=" in pages[1]["query"]
    sales = next(r for r in repos if r.path == "/Repos/sales/pipelines")
    assert (sales.url, sales.provider, sales.branch) == (
        "https://github.com/acme/sales-pipelines", "gitHub", "main")
    assert len(sales.head_commit_id) == 40
    assert [r.path for r in w.repos.list(path_prefix="/Repos/fidelity")] == [
        f"/Repos/fidelity/fidelity-{i:02}" for i in range(10)]
    w.repos.update(sales.id, branch="release")
    moved = w.repos.get(sales.id)
    assert moved.branch == "release" and moved.head_commit_id != sales.head_commit_id
    with pytest.raises(errors.NotFound):
        w.repos.get(1)


def test_workspace_list_and_get_status(w):
    notebooks = list(w.workspace.list("/Repos/sales/pipelines/nightly_sales_etl"))
    assert [o.path.rsplit("/", 1)[1] for o in notebooks] == ["ingest", "publish", "transform"]
    assert all(o.object_type == ws.ObjectType.NOTEBOOK and o.language == ws.Language.PYTHON
               for o in notebooks)
    repo = w.workspace.get_status("/Repos/sales/pipelines")
    assert repo.object_type == ws.ObjectType.REPO and repo.object_id > 0
    nb = w.workspace.get_status(notebooks[0].path)
    assert nb.object_id == notebooks[0].object_id
    assert "/Shared/dr/validation" in [o.path for o in w.workspace.list("/Shared", recursive=True)]
    with pytest.raises(errors.NotFound):
        w.workspace.get_status("/Repos/nope")
    with pytest.raises(errors.NotFound):
        list(w.workspace.list("/Repos/nope"))
    w.workspace.mkdirs("/Shared/fidelity/empty")
    assert list(w.workspace.list("/Shared/fidelity/empty")) == []


def test_unity_catalog_catalogs_schemas_grants(w):
    assert [c.name for c in w.catalogs.list()] == ["dr_meta", "main"]
    assert [c.name for c in w.catalogs.list(max_results=1)] == ["dr_meta", "main"]
    main = next(c for c in w.catalogs.list() if c.name == "main")
    assert main.catalog_type == catalog.CatalogType.MANAGED_CATALOG
    schemas = [s.full_name for s in w.schemas.list(catalog_name="main")]
    assert schemas == ["main.default", "main.finance", "main.information_schema", "main.ops", "main.sales"]

    def grants():
        g = w.grants.get("catalog", "main")
        return {a.principal: sorted(p.value for p in a.privileges) for a in g.privilege_assignments}

    assert grants() == {"analysts": ["USE_CATALOG"],
                        "data-engineers": ["SELECT", "USE_CATALOG", "USE_SCHEMA"]}
    r = w.grants.update("catalog", "main", changes=[
        catalog.PermissionsChange(principal="analysts", add=[catalog.Privilege.USE_SCHEMA]),
        catalog.PermissionsChange(principal="data-engineers", remove=[catalog.Privilege.SELECT])])
    expected = {"analysts": ["USE_CATALOG", "USE_SCHEMA"], "data-engineers": ["USE_CATALOG", "USE_SCHEMA"]}
    assert {a.principal: sorted(p.value for p in a.privileges) for a in r.privilege_assignments} == expected
    assert grants() == expected
    with pytest.raises(errors.NotFound):
        w.grants.get("catalog", "nope")
    with pytest.raises(errors.InvalidParameterValue):
        w.grants.update("schema", "main.sales", changes=[
            catalog.PermissionsChange(principal="analysts", add=[catalog.Privilege.USE_CATALOG])])


def test_job_permissions_update_and_set(w):
    j = job_named(w, "Weekly Model Retrain")
    jid = str(j.job_id)

    def levels(acl):
        out = {}
        for a in acl.access_control_list:
            who = a.user_name or a.group_name or a.service_principal_name
            out[who] = sorted((p.permission_level.value, bool(p.inherited)) for p in a.all_permissions)
        return out

    updated = w.permissions.update("jobs", jid, access_control_list=[
        iam.AccessControlRequest(group_name="analysts", permission_level=iam.PermissionLevel.CAN_MANAGE_RUN)])
    assert levels(updated)["analysts"] == [("CAN_MANAGE_RUN", False)]
    assert levels(w.permissions.get("jobs", jid)) == levels(updated)
    replaced = w.permissions.set("jobs", jid, access_control_list=[
        iam.AccessControlRequest(group_name="data-engineers", permission_level=iam.PermissionLevel.CAN_MANAGE)])
    assert levels(replaced) == {
        "dr-admin@example.com": [("IS_OWNER", False)],
        "data-engineers": [("CAN_MANAGE", False)],
        "admins": [("CAN_MANAGE", True)],
    }
    assert levels(w.permissions.get("jobs", jid)) == levels(replaced)
    with pytest.raises(errors.InvalidParameterValue):
        w.permissions.update("jobs", jid, access_control_list=[
            iam.AccessControlRequest(group_name="analysts", permission_level=iam.PermissionLevel.CAN_ATTACH_TO)])


def test_pipeline_spec_libraries_and_edit(w):
    p = next(x for x in w.pipelines.list_pipelines() if x.name == "Customer CDC")
    spec = w.pipelines.get(p.pipeline_id).spec
    assert spec.libraries[0].notebook.path == "/Repos/crm/pipelines/dlt/customer_cdc"
    assert (spec.catalog, spec.target, spec.continuous) == ("main", "sales", False)
    assert spec.clusters[0].label == "default" and spec.clusters[0].num_workers == 2
    assert spec.configuration["source_path"] == "s3://acme-landing/crm/customer_cdc/"
    assert w.workspace.get_status(spec.libraries[0].notebook.path).language == ws.Language.SQL
    w.pipelines.update(
        p.pipeline_id, id=p.pipeline_id, name=spec.name, catalog=spec.catalog, target="crm",
        libraries=[pl.PipelineLibrary(notebook=pl.NotebookLibrary(path="/Repos/crm/pipelines/dlt/v2"))],
        clusters=[pl.PipelineCluster(label="default", num_workers=3)],
        configuration={"mode": "full"}, continuous=True, channel=spec.channel, edition=spec.edition)
    back = w.pipelines.get(p.pipeline_id).spec
    assert back.libraries[0].notebook.path == "/Repos/crm/pipelines/dlt/v2"
    assert (back.target, back.continuous, back.clusters[0].num_workers) == ("crm", True, 3)
    assert back.configuration == {"mode": "full"}


def test_warehouse_edit(w):
    wh = next(x for x in w.warehouses.list() if x.name == "Analysts")
    assert wh.warehouse_type is not None and wh.enable_serverless_compute is True
    w.warehouses.edit(wh.id, cluster_size="Medium", auto_stop_mins=30, min_num_clusters=1,
                      max_num_clusters=4, enable_serverless_compute=True,
                      spot_instance_policy=sql.SpotInstancePolicy.RELIABILITY_OPTIMIZED,
                      tags=sql.EndpointTags(custom_tags=[sql.EndpointTagPair(key="team", value="bi")]))
    back = w.warehouses.get(wh.id)
    assert (back.cluster_size, back.auto_stop_mins, back.max_num_clusters) == ("Medium", 30, 4)
    assert back.spot_instance_policy == sql.SpotInstancePolicy.RELIABILITY_OPTIMIZED
    assert back.tags.custom_tags[0].value == "bi"
    assert back.state == wh.state
    with pytest.raises(errors.InvalidParameterValue):
        w.warehouses.edit(wh.id, cluster_size="Enormous")


# --- The account-level Managed DR API (failover groups, stable URLs) -------------------------


@pytest.fixture(scope="module")
def account():
    proc, url = _serve(["--account-id", "acc-fidelity", "--client-id", "admin-sp",
                        "--client-secret", "s3cret", "--account-workspace", "1234567890123456:us-east-1",
                        "--account-workspace", "6543210987654321:us-west-2", "--failover-ms", "300"])
    yield url
    _stop(proc)


def test_the_sdk_fails_a_group_over_with_oauth_an_etag_and_a_stable_url(account):
    from databricks.sdk import AccountClient
    from databricks.sdk.service import disasterrecovery as dr

    a = AccountClient(host=account, account_id="acc-fidelity", client_id="admin-sp",
                      client_secret="s3cret", auth_type="oauth-m2m")
    parent = "accounts/acc-fidelity"
    url = a.disaster_recovery.create_stable_url(
        parent=parent, stable_url_id="prod",
        stable_url=dr.StableUrl(initial_workspace_id="1234567890123456"))
    assert url.effective_workspace_id == "1234567890123456"
    group = a.disaster_recovery.create_failover_group(
        parent=parent, failover_group_id="sales",
        failover_group=dr.FailoverGroup(
            initial_primary_region="us-east-1", regions=["us-east-1", "us-west-2"],
            workspace_sets=[dr.WorkspaceSet(name="prod",
                                            workspace_ids=["1234567890123456", "6543210987654321"],
                                            stable_url_names=[url.name])]))
    assert group.state == dr.FailoverGroupState.ACTIVE
    assert group.replication_point is not None
    assert [g.name for g in a.disaster_recovery.list_failover_groups(parent=parent)] == [group.name]

    # A stale etag maps to the SDK's 409 error; nothing moved.
    with pytest.raises(errors.Aborted):
        a.disaster_recovery.failover_failover_group(
            name=group.name, target_primary_region="us-west-2",
            failover_type=dr.FailoverFailoverGroupRequestFailoverType.FORCED, etag="stale")
    moving = a.disaster_recovery.failover_failover_group(
        name=group.name, target_primary_region="us-west-2",
        failover_type=dr.FailoverFailoverGroupRequestFailoverType.FORCED, etag=group.etag)
    assert moving.state == dr.FailoverGroupState.FAILING_OVER
    import time
    deadline = time.time() + 10
    while a.disaster_recovery.get_failover_group(name=group.name).state != dr.FailoverGroupState.ACTIVE:
        assert time.time() < deadline
        time.sleep(0.1)
    done = a.disaster_recovery.get_failover_group(name=group.name)
    assert done.effective_primary_region == "us-west-2"
    assert a.disaster_recovery.get_stable_url(name=url.name).effective_workspace_id == "6543210987654321"
    with pytest.raises(errors.NotFound):
        a.disaster_recovery.get_failover_group(name=f"{parent}/failover-groups/nope")
