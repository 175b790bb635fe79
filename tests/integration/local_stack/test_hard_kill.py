"""A stack killed with SIGKILL leaves no server running: its children go with it (first line), and what a
stack could not take along is ended by the next stack starting in the same state folder (second line).

Processes are found here on their own, through /proc: a stack's are those started with its
``LOCAL_STATE_DIR`` in their environment (the stack hands its environment down).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.local.child_processes import end_leftovers
from infra.local.stack import LAMBDA_STOP_TIMEOUT_SECONDS, PREFECT_DRAIN_TIMEOUT_SECONDS, STACK_DUMP_SIGNAL
from tests.conftest import REPO_ROOT, free_port

pytestmark = pytest.mark.integration

STACK_START_SECONDS = 300  # two cores shared with other test runs: the Prefect server can take minutes to start
# A clean stop may take as long as the stack's own bounds allow (pollers ending, the Prefect server draining);
# on two cores shared with other test runs it came near 90 s once.
STACK_STOP_SECONDS = LAMBDA_STOP_TIMEOUT_SECONDS + PREFECT_DRAIN_TIMEOUT_SECONDS + 30
GONE_WITHIN_SECONDS = 30  # the supervisor's grace (10 s) and its SIGKILL wait, with room to spare
POLL_SECONDS = 0.05
READY_LINE = "Ctrl-C to stop"
# Variables of the test session that would point a stack's processes at the session's databases.
SESSION_VARIABLES = ("AWS_ENDPOINT_URL", "DATABASE_URL", "MLFLOW_TRACKING_URI", "PREFECT_HOME", "PREFECT_API_URL")


# --- /proc, read here independently of the code under test ---------------------------------------


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time) of ``pid``, or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[2]), int(fields[19])


def _running(pid: int, start_time: int | None = None) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in "ZX" and (start_time is None or stat[2] == start_time)


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def _environ_has(pid: int, entry: str) -> bool:
    try:
        return entry.encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    start_time: int
    cmdline: tuple[str, ...]

    @property
    def running(self) -> bool:
        return _running(self.pid, self.start_time)


def started_with(state_dir: Path, *, excluding: int | None = None) -> list[Proc]:
    """Running processes whose environment holds ``LOCAL_STATE_DIR=<state_dir>``."""
    entry = f"LOCAL_STATE_DIR={state_dir}"
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in (excluding, os.getpid()):
            continue
        pid = int(name)
        stat = _stat(pid)
        if stat is not None and stat[0] not in "ZX" and _environ_has(pid, entry):
            found.append(Proc(pid, stat[2], tuple(_cmdline(pid))))
    return found


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def seconds_until(condition: Callable[[], bool], *, within: float, what: str, since: float | None = None) -> float:
    """Seconds from ``since`` (default: now) until ``condition`` holds, polled; fails after ``within``."""
    started = time.monotonic() if since is None else since
    while not condition():
        if time.monotonic() - started > within:
            raise AssertionError(f"not within {within:.0f} s: {what}")
        time.sleep(POLL_SECONDS)
    return time.monotonic() - started


# --- stacks in processes of their own, as `make stack` runs them -----------------------------------


@dataclass(frozen=True, slots=True)
class StackPorts:
    aws: int
    prefect: int


@dataclass
class StackProcess:
    process: subprocess.Popen[bytes]
    output: Path

    @property
    def pid(self) -> int:
        return self.process.pid


@pytest.fixture
def stacks(tmp_path: Path) -> Iterator[Callable[[StackPorts], StackProcess]]:
    """Starts ``python -m infra.local.stack`` in ``tmp_path/state`` until it is ready; afterwards anything
    started there that still runs is killed, so a failing test leaves nothing behind."""
    state_dir = (tmp_path / "state").resolve()
    started: list[StackProcess] = []

    def start(ports: StackPorts) -> StackProcess:
        output = tmp_path / f"stack-{len(started)}.out"
        environment = {k: v for k, v in os.environ.items() if k not in SESSION_VARIABLES}
        environment |= {
            "LOCAL_STATE_DIR": str(state_dir),
            "LOCAL_AWS_PORT": str(ports.aws),
            "LOCAL_PREFECT_PORT": str(ports.prefect),
            "PYTHONUNBUFFERED": "1",
            # The process tree is the same either way; without IAM the stack starts faster.
            "LOCAL_IAM_ENFORCED": "false",
        }
        with output.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "infra.local.stack"],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=REPO_ROOT,
                start_new_session=True,
            )
        stack = StackProcess(process, output)
        started.append(stack)
        seconds_until(
            lambda: READY_LINE in output.read_text() or process.poll() is not None,
            within=STACK_START_SECONDS,
            what="the stack to start",
        )
        assert process.poll() is None, output.read_text()[-3000:]
        return stack

    yield start
    for stack in started:
        if stack.process.poll() is None:
            stack.process.kill()
            stack.process.wait()
    for leftover in started_with(state_dir):
        os.kill(leftover.pid, signal.SIGKILL)


def prefect_processes(state_dir: Path, port: int) -> list[Proc]:
    return [p for p in started_with(state_dir) if "server" in p.cmdline and str(port) in p.cmdline]


def health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2):
            return True
    except OSError:
        return False


def stop_cleanly(stack: StackProcess, state_dir: Path) -> None:
    """Ctrl-C, as in the terminal: the stack stops its children and exits 0, leaving nothing running."""
    stack.process.send_signal(signal.SIGINT)
    try:
        returncode = stack.process.wait(timeout=STACK_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        stack.process.send_signal(STACK_DUMP_SIGNAL)  # its threads' stacks, to see where the stop hangs
        time.sleep(2)
        pytest.fail(f"the stack did not stop in {STACK_STOP_SECONDS} s:\n{stack.output.read_text()[-12000:]}")
    assert returncode == 0, stack.output.read_text()[-3000:]
    assert started_with(state_dir) == []


def test_a_stack_killed_hard_takes_its_prefect_server_along_and_the_next_starts_on_its_ports(
    stacks: Callable[[StackPorts], StackProcess], tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    # GIVEN a stack as `make stack` runs it (Prefect server and the served monitor) on free ports
    state_dir = (tmp_path / "state").resolve()
    ports = StackPorts(aws=free_port(), prefect=free_port())
    first = stacks(ports)
    server = prefect_processes(state_dir, ports.prefect)
    children = started_with(state_dir, excluding=first.pid)
    assert server, "no Prefect server found"
    assert health(ports.prefect)
    assert any("batch_monitor.serve" in p.cmdline for p in children)
    # WHEN the stack is killed with SIGKILL
    killed = time.monotonic()
    os.kill(first.pid, signal.SIGKILL)
    first.process.wait()

    # THEN within a bounded wait the Prefect port is released, the server's processes are gone, and so is
    # everything else the stack started (each time counted from the kill)
    def after_kill(condition: Callable[[], bool], what: str) -> float:
        return seconds_until(condition, within=GONE_WITHIN_SECONDS, what=what, since=killed)

    port_released = after_kill(lambda: port_free(ports.prefect), "port released")
    server_gone = after_kill(lambda: not any(p.running for p in server), "Prefect server gone")
    all_gone = after_kill(lambda: not any(p.running for p in children), "every child gone")
    timings = {"port_released_s": port_released, "server_gone_s": server_gone, "all_children_gone_s": all_gone}
    for key, value in timings.items():
        record_property(key, round(value, 2))
    print(f"after SIGKILL of the stack: {timings}")
    # AND a new stack starts on the same ports, and stops cleanly
    second = stacks(ports)
    assert health(ports.prefect)
    stop_cleanly(second, state_dir)


def test_a_starting_stack_ends_what_a_stack_killed_with_its_supervisors_left_running(
    stacks: Callable[[StackPorts], StackProcess], tmp_path: Path
) -> None:
    # GIVEN a stack killed together with the supervisors of its children (the first line of defence gone):
    # its Prefect server keeps running and holds the port
    state_dir = (tmp_path / "state").resolve()
    ports = StackPorts(aws=free_port(), prefect=free_port())
    first = stacks(ports)
    supervisors = [p for p in started_with(state_dir) if "infra.local.child_processes" in p.cmdline]
    assert len(supervisors) == 2, supervisors
    for supervisor in supervisors:
        os.kill(supervisor.pid, signal.SIGKILL)
    os.kill(first.pid, signal.SIGKILL)
    first.process.wait()
    orphans = started_with(state_dir)
    assert prefect_processes(state_dir, ports.prefect)
    assert health(ports.prefect)
    # WHEN a new stack starts in the same state folder on the same ports
    second = stacks(ports)
    # THEN it runs, and none of the orphans does
    assert not [p for p in orphans if p.running]
    assert health(ports.prefect)
    stop_cleanly(second, state_dir)


# --- the pieces on their own, with short-lived processes ------------------------------------------

SLEEP = "import time; time.sleep(600)"
TREE = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {SLEEP!r}]); time.sleep(600)"


def _group_of(pgid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and (stat := _stat(int(name))) is not None and stat[1] == pgid and stat[0] not in "ZX":
            found.append(int(name))
    return found


def test_the_supervisor_ends_its_group_when_the_parent_process_dies_not_when_the_starting_thread_does(
    tmp_path: Path,
) -> None:
    # GIVEN a parent that starts a supervised process tree from a thread, which ends once the supervisor has
    # started its command (and so asked for its parent-death signal, which a thread's end also sends)
    parent_code = textwrap.dedent(
        f"""
        import os, subprocess, sys, threading, time
        def group_size(pgid):
            size = 0
            for name in filter(str.isdigit, os.listdir("/proc")):
                try:
                    size += open(f"/proc/{{name}}/stat").read().rsplit(")", 1)[1].split()[2] == str(pgid)
                except OSError:
                    pass
            return size
        def start():
            command = [sys.executable, "-m", "infra.local.child_processes", str(os.getpid()), "--",
                       sys.executable, "-c", {TREE!r}]
            child = subprocess.Popen(command, start_new_session=True)
            while group_size(child.pid) < 2:
                time.sleep(0.05)
            print(child.pid, flush=True)
        thread = threading.Thread(target=start)
        thread.start()
        thread.join()
        time.sleep(600)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], stdout=subprocess.PIPE, cwd=REPO_ROOT, start_new_session=True
    )
    try:
        assert parent.stdout is not None
        pgid = int(parent.stdout.readline())
        seconds_until(lambda: len(_group_of(pgid)) == 3, within=30, what="supervisor, command and grandchild")
        # WHEN the starting thread has ended THEN the tree runs on, for as long as the parent lives
        time.sleep(1.5)
        assert len(_group_of(pgid)) == 3
        # WHEN the parent process is killed with SIGKILL THEN the whole group goes, grandchild included
        parent.kill()
        parent.wait()
        took = seconds_until(lambda: not _group_of(pgid), within=GONE_WITHIN_SECONDS, what="the group gone")
        assert took < 5
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def _record(path: Path, *, pid: int, start_time: int, marker: str, groups: list[subprocess.Popen[bytes]]) -> None:
    """A record as the stack writes it, written here by hand: the contract the sweep reads."""
    children = []
    for group in groups:
        stat = _stat(group.pid)
        assert stat is not None
        children.append({"pgid": group.pid, "command": _cmdline(group.pid), "start_time": stat[2]})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": pid, "start_time": start_time, "marker": marker, "children": children}))


def test_the_sweep_ends_a_dead_stacks_group_and_never_a_reused_pid_nor_a_live_stacks_child(tmp_path: Path) -> None:
    records = tmp_path / "stack-children"
    python = sys.executable

    def spawn(code: str, *, marker: str | None = None) -> subprocess.Popen[bytes]:
        env = dict(os.environ) | ({"CHURN_LOCAL_STACK_RUN": marker} if marker else {})
        return subprocess.Popen([python, "-c", code], env=env, start_new_session=True)

    # GIVEN a stack that is dead, whose record names a group still running with its marker (a leader and the
    # child it started), and a group whose id now belongs to an unrelated process (no marker, other command)
    gone = subprocess.Popen([python, "-c", "pass"])
    gone.wait()
    leftover = spawn(TREE, marker="dead-stack")
    unrelated = spawn(SLEEP)
    seconds_until(lambda: len(_group_of(leftover.pid)) == 2, within=30, what="leftover leader and child")
    _record(records / "dead.json", pid=gone.pid, start_time=1, marker="dead-stack", groups=[leftover])
    reused = json.loads((records / "dead.json").read_text())
    reused["children"].append({"pgid": unrelated.pid, "command": [python, "-c", TREE], "start_time": 1})
    (records / "dead.json").write_text(json.dumps(reused))
    # AND a live stack (this process) whose child runs
    own_start = _stat(os.getpid())
    assert own_start is not None
    live_child = spawn(SLEEP, marker="live-stack")
    _record(records / "live.json", pid=os.getpid(), start_time=own_start[2], marker="live-stack", groups=[live_child])
    leftover_pids = _group_of(leftover.pid)
    try:
        # WHEN a stack starting in that folder sweeps it
        ended = end_leftovers(tmp_path, grace=5)
        # THEN the dead stack's group is gone, its record too; the unrelated process and the live stack's child run
        assert sorted(p.pid for p in ended) == sorted(leftover_pids)
        leftover.wait(timeout=10)
        assert not _group_of(leftover.pid)
        assert unrelated.poll() is None
        assert live_child.poll() is None
        assert sorted(p.name for p in records.iterdir()) == ["live.json"]
    finally:
        for process in (leftover, unrelated, live_child):
            if process.poll() is None:
                process.kill()
                process.wait()
