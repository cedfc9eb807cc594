"""moto as Lifeboat's local stack runs it: `moto_server`, with the Step Functions semantics moto
does not have and a DR orchestrator depends on. Each patch is small, names what AWS does, and is
checked by `tests/moto/test_lifeboat_moto.py` (worth offering upstream):

1. `states:startExecution` tasks (plain, `.sync`, `.sync:2`) run: moto's parser hands the
   task's PascalCase parameters (`StateMachineArn`, `Input`, `Name`) to boto3 unconverted and
   reads boto3's camelCase answer as if it were the integration's PascalCase one, so every such
   task failed with `States.Runtime` (a KeyError). AWS answers `{"ExecutionArn", "StartDate"}`
   for a plain start and the DescribeExecution shape in PascalCase, dates in epoch
   milliseconds, for `.sync`/`.sync:2` (`:2` with JSON `Input`/`Output`).
2. A Standard execution fails at 25,000 history events (AWS: "the execution fails"; the error
   name is not documented, `States.Runtime` is used) and times out after one year.
3. `SendTaskSuccess`/`SendTaskFailure`/`SendTaskHeartbeat` for a task that is no longer waiting
   — answered already, left by its state (timed out), or of an execution that ended — is
   refused with `TaskTimedOut`, as AWS refuses it ("the task associated with the token has
   already been closed"); moto accepted a second answer and said `TaskDoesNotExist` or
   `InvalidToken` otherwise.

   A state's output over the 256 KiB payload quota fails the execution with the terminal
   `States.DataLimitExceeded` (moto checks a task's service result only).

Usage: python lifeboat_moto.py [moto_server arguments]
"""

import datetime
import os
import sys

# Step Functions service quotas (Standard workflows).
MAX_HISTORY_EVENTS = int(os.environ.get("LIFEBOAT_SFN_MAX_HISTORY_EVENTS", "25000"))
MAX_EXECUTION_SECONDS = 365 * 24 * 3600
MAX_PAYLOAD_BYTES = 262_144
# AWS's message for a token whose task is closed.
CLOSED = "Task Timed Out: 'Provided task does not exist anymore'"


def _epoch_ms(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return int(value.timestamp() * 1000)
    return value


def _pascal(key: str) -> str:
    return key[:1].upper() + key[1:]


def patch_start_execution_integration():
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_sfn as sfn,
    )

    cls = sfn.StateTaskServiceSfn
    original_parameters = cls._normalise_parameters

    def _normalise_parameters(self, parameters, boto_service_name=None, service_action_name=None):
        original_parameters(self, parameters, boto_service_name, service_action_name)
        action = service_action_name or self._get_boto_service_action()
        if action == "start_execution":
            for member in ("StateMachineArn", "Input", "Name", "TraceHeader"):
                if member in parameters:
                    parameters[member[:1].lower() + member[1:]] = parameters.pop(member)

    def _normalise_response(self, response, boto_service_name=None, service_action_name=None):
        if not isinstance(response, dict):
            return
        for key in list(response):
            value = _epoch_ms(response.pop(key))
            if key in ("inputDetails", "outputDetails") and isinstance(value, dict):
                value = {_pascal(k): v for k, v in value.items()}
            response[_pascal(key)] = value

    cls._normalise_parameters = _normalise_parameters
    cls._normalise_response = _normalise_response

    # `.sync:2` turns `input`/`output` into JSON before the response is normalised; keep it
    # working on the camelCase names it was written for (the response is normalised after).


def patch_history_limits():
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails
    from moto.stepfunctions.parser.asl.component.state import state as state_module
    from moto.stepfunctions.parser.asl.eval import environment as env_module

    original_init = env_module.Environment.__init__

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        # The root environment of an execution: its frames (Parallel branches, Map
        # iterations) share its event manager.
        self.event_manager._lifeboat_root = self
        self.event_manager._lifeboat_started = datetime.datetime.now(tz=datetime.timezone.utc)

    env_module.Environment.__init__ = __init__

    # The first terminal error is the execution's: a state interrupted by it may fail on its
    # way out, and that later error must not replace the cause.
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramError

    original_set_error = env_module.Environment.set_error

    def set_error(self, error):
        if isinstance(self._program_state, ProgramError):
            return
        original_set_error(self, error)

    env_module.Environment.set_error = set_error

    original_eval = state_module.CommonStateField.eval

    def eval(self, env):
        # Checked where a state begins, the one place an execution can end cleanly: a state
        # interrupted half-way would fail for the wrong reason. Not catchable, as in AWS.
        manager = env.event_manager
        root = getattr(manager, "_lifeboat_root", None)
        if root is not None and root.is_running():
            events = len(manager.get_event_history())
            age = datetime.datetime.now(tz=datetime.timezone.utc) - manager._lifeboat_started
            if events >= MAX_HISTORY_EVENTS:
                root.set_error(
                    ExecutionFailedEventDetails(
                        error="States.Runtime",
                        cause=(
                            f"The execution reached the maximum number of history events "
                            f"({MAX_HISTORY_EVENTS}): Step Functions fails it."
                        ),
                    )
                )
                return None
            if age.total_seconds() > MAX_EXECUTION_SECONDS:
                root.set_timed_out()
                return None
        return original_eval(self, env)

    state_module.CommonStateField.eval = eval

    # A state's output (or a task's result) over the payload quota is a terminal error:
    # `States.ALL` does not catch it, so it fails the execution (moto raised it as a catchable
    # state error).
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service,
    )
    from moto.stepfunctions.parser.quotas import is_within_size_quota

    def _verify_size_quota(self, env, value):
        if is_within_size_quota(value):
            return
        root = getattr(env.event_manager, "_lifeboat_root", env)
        root.set_error(
            ExecutionFailedEventDetails(
                error="States.DataLimitExceeded",
                cause=(
                    f"The state/task '{self.name}' returned a result with a size exceeding "
                    f"the maximum number of bytes service limit ({MAX_PAYLOAD_BYTES})."
                ),
            )
        )

    state_module.CommonStateField._verify_size_quota = _verify_size_quota
    state_task_service.StateTaskService._verify_size_quota = _verify_size_quota


def patch_closed_task_tokens():
    from moto.stepfunctions.parser import models
    from moto.stepfunctions.parser import api
    from moto.stepfunctions.parser.asl.eval.callback import callback

    class TaskTimedOut(api.TaskTimedOut):
        # moto's own TaskTimedOut has no `TYPE`, so it answered with an empty error code.
        TYPE = "TaskTimedOut"
        STATUS = 400

    original_notify = callback.CallbackPoolManager.notify
    original_heartbeat = callback.CallbackPoolManager.heartbeat

    original_interrupt = callback.CallbackEndpoint.interrupt_all

    def interrupt_all(self):
        # Called once the task's state is done with its token (answered, timed out, failed).
        self._lifeboat_closed = True
        original_interrupt(self)

    callback.CallbackEndpoint.interrupt_all = interrupt_all

    def _closed(pool, callback_id):
        endpoint = pool.get(callback_id)
        return endpoint is not None and (
            endpoint.get_outcome() is not None
            or endpoint.consumer_error is not None
            or getattr(endpoint, "_lifeboat_closed", False)
        )

    def notify(self, callback_id, outcome):
        if _closed(self, callback_id):
            raise TaskTimedOut(CLOSED)
        return original_notify(self, callback_id, outcome)

    def heartbeat(self, callback_id):
        if _closed(self, callback_id):
            raise TaskTimedOut(CLOSED)
        return original_heartbeat(self, callback_id)

    callback.CallbackPoolManager.notify = notify
    callback.CallbackPoolManager.heartbeat = heartbeat

    backend = models.StepFunctionsParserBackend

    def refuse_closed(original):
        def answer(self, task_token, *args, **kwargs):
            try:
                return original(self, task_token, *args, **kwargs)
            except models.InvalidToken:
                # Not waiting in any running execution: a token of an execution that ended.
                for execution in self._get_executions():
                    worker = getattr(execution, "exec_worker", None)
                    env = getattr(worker, "env", None)
                    if env is not None and env.callback_pool_manager.get(task_token):
                        raise TaskTimedOut(CLOSED)
                raise

        return answer

    backend.send_task_success = refuse_closed(backend.send_task_success)
    backend.send_task_failure = refuse_closed(backend.send_task_failure)
    backend.send_task_heartbeat = refuse_closed(backend.send_task_heartbeat)


def apply():
    patch_start_execution_integration()
    patch_history_limits()
    patch_closed_task_tokens()


if __name__ == "__main__":
    apply()
    from moto.server import main

    sys.exit(main())
