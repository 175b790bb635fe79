"""Server processes of the local stack that do not outlive it, even when it is killed with SIGKILL.

Two lines of defence:

1. Every child runs under a small supervisor, ``python -m infra.local.child_processes PARENT_PID -- COMMAND``,
   the leader of a process group of its own. The kernel signals the supervisor when the stack dies
   (``prctl(PR_SET_PDEATHSIG)``); it then stops its whole group: the command and whatever the command started
   (the served monitor's flow runs and resource tracker). ``PR_SET_PDEATHSIG`` alone on the command would
   not do: it is cleared on fork, so grandchildren would survive, and set in a ``preexec_fn`` it runs between
   fork and exec of a process that has threads (the emulator, the Lambda pollers), which Python warns may
   deadlock. The supervisor sets it on itself after exec.
2. The stack records each group (id, leader's command line and start time) under
   ``$LOCAL_STATE_DIR/stack-children/``. A stack starting in that folder ends the groups of a recorded stack
   that is dead: only processes that are provably the recorded ones (the leader by command line, start time
   and marker, other members by the marker, a variable unique to each stack run), so a reused pid is never
   signalled.

Linux only (``prctl``, ``/proc``); elsewhere the supervisor still stops its group when it notices its parent
is gone (it polls), and the start-up sweep does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

SUPERVISOR_MODULE = "infra.local.child_processes"  # this module, also when it runs as __main__
STACK_RUN_VARIABLE = "CHURN_LOCAL_STACK_RUN"
RECORDS_DIRECTORY = "stack-children"
TERMINATE_GRACE_SECONDS = 10.0  # below the 15 s LocalStack.stop() waits before it kills a group itself
KILL_WAIT_SECONDS = 5.0
POLL_SECONDS = 0.1
PARENT_DEATH_SIGNAL = signal.SIGHUP  # nothing else sends it: the supervisor's session has no terminal
PARENT_GONE_EXIT_CODE = 3
SIGNAL_EXIT_BASE = 128
PR_SET_PDEATHSIG = 1
PROC = Path("/proc")
GONE_STATES = frozenset({"Z", "X"})  # zombie or dead: holds no port, runs no code
STAT_STATE, STAT_PPID, STAT_PGID, STAT_START_TIME = 0, 1, 2, 19  # fields after "pid (comm) "
SEPARATOR = "--"


# ---------------------------------------------------------------------------------------------------
# /proc


@dataclass(frozen=True, slots=True)
class ProcessStat:
    """What identifies a process over time: a pid is reused, (pid, start time) is not."""

    pid: int
    state: str
    ppid: int
    pgid: int
    start_time: int

    @property
    def running(self) -> bool:
        return self.state not in GONE_STATES


def parse_stat(pid: int, text: str) -> ProcessStat:
    """``/proc/<pid>/stat``; the command name in parentheses may hold spaces and parentheses itself."""
    fields = text[text.rindex(")") + 2 :].split()
    return ProcessStat(
        pid=pid,
        state=fields[STAT_STATE],
        ppid=int(fields[STAT_PPID]),
        pgid=int(fields[STAT_PGID]),
        start_time=int(fields[STAT_START_TIME]),
    )


def read_stat(pid: int, *, proc: Path = PROC) -> ProcessStat | None:
    try:
        return parse_stat(pid, (proc / str(pid) / "stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def read_cmdline(pid: int, *, proc: Path = PROC) -> list[str] | None:
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode(errors="surrogateescape").split("\0")[:-1] if raw else None


def read_marker(pid: int, *, proc: Path = PROC) -> str | None:
    """The stack-run marker a process was started with (only that variable is looked at; processes of
    other users cannot be read and have none)."""
    try:
        raw = (proc / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    prefix = f"{STACK_RUN_VARIABLE}=".encode()
    for entry in raw.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix) :].decode(errors="replace")
    return None


def processes(*, proc: Path = PROC) -> Iterator[ProcessStat]:
    try:
        names = os.listdir(proc)
    except OSError:
        return
    for name in names:
        if name.isdigit() and (stat := read_stat(int(name), proc=proc)) is not None:
            yield stat


def signal_process(target: ProcessStat, signal_number: int, *, proc: Path = PROC) -> bool:
    """Signal ``target`` only if it is still that very process. A pidfd taken before the check pins the
    process, so one that exits and whose pid is reused between check and signal is not hit."""
    try:
        pidfd: int | None = os.pidfd_open(target.pid)
    except ProcessLookupError:
        return False
    except (AttributeError, OSError):
        pidfd = None
    try:
        now = read_stat(target.pid, proc=proc)
        if now is None or not now.running or (now.start_time, now.pgid) != (target.start_time, target.pgid):
            return False
        if pidfd is None:
            os.kill(target.pid, signal_number)
        else:
            signal.pidfd_send_signal(pidfd, signal_number)
        return True
    except ProcessLookupError:
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)


# ---------------------------------------------------------------------------------------------------
# The supervisor (runs as the child)


def supervised_command(command: Sequence[str], *, parent_pid: int) -> list[str]:
    return [sys.executable, "-m", SUPERVISOR_MODULE, str(parent_pid), SEPARATOR, *command]


def die_with_parent(signal_number: int) -> bool:
    """Ask the kernel for ``signal_number`` when the parent dies; False where there is no ``prctl``."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal_number), 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))
    return True


@dataclass
class _StopRequest:
    parent_pid: int
    reason: str | None = None

    def on_signal(self, signal_number: int, _frame: Any) -> None:
        # The death signal also comes when the parent's *thread* that started us ends: only a changed parent
        # means the stack is gone.
        if signal_number == PARENT_DEATH_SIGNAL:
            self.poll()
        else:
            self.reason = self.reason or signal.Signals(signal_number).name

    def poll(self) -> str | None:
        if self.reason is None and os.getppid() != self.parent_pid:
            self.reason = f"parent {self.parent_pid} gone"
        return self.reason


def supervise(command: Sequence[str], *, parent_pid: int, grace: float = TERMINATE_GRACE_SECONDS) -> int:
    """Run ``command`` until it exits, a stop is asked for (SIGTERM, SIGINT) or the parent dies; then stop the
    whole group. The exit code is the command's (128 + signal when a signal ended it)."""
    request = _StopRequest(parent_pid)
    for signal_number in (signal.SIGTERM, signal.SIGINT, PARENT_DEATH_SIGNAL):
        signal.signal(signal_number, request.on_signal)
    die_with_parent(PARENT_DEATH_SIGNAL)
    if request.poll() is not None:  # the parent died before the death signal was armed
        return PARENT_GONE_EXIT_CODE
    child = subprocess.Popen(list(command))
    while child.poll() is None and request.poll() is None:
        time.sleep(POLL_SECONDS)
    if request.reason is not None:
        print(f"supervisor: {request.reason}: stopping {command[0]} (pid {child.pid})", file=sys.stderr, flush=True)
    _end_own_group(child, grace=grace)
    code = child.wait()
    return SIGNAL_EXIT_BASE - code if code < 0 else code


def _end_own_group(child: subprocess.Popen[bytes], *, grace: float) -> None:
    """SIGTERM to the group, then SIGKILL to whatever of it is left after ``grace``; the supervisor itself
    exits on its own. Outside a group of its own (started by hand) only its child is signalled."""
    leader = os.getpgrp() == os.getpid()

    def members() -> list[ProcessStat]:
        return [p for p in processes() if p.pgid == os.getpid() and p.pid != os.getpid() and p.running]

    with contextlib.suppress(ProcessLookupError):
        if leader:
            os.killpg(os.getpid(), signal.SIGTERM)
        elif child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and (child.poll() is None or (leader and members())):
        time.sleep(POLL_SECONDS)
    if child.poll() is None:
        child.kill()
    deadline = time.monotonic() + KILL_WAIT_SECONDS
    while leader and (left := members()) and time.monotonic() < deadline:
        for member in left:
            signal_process(member, signal.SIGKILL)
        time.sleep(POLL_SECONDS)


# ---------------------------------------------------------------------------------------------------
# The record of a stack's groups, and the sweep of dead stacks' leftovers (run in the stack)


@dataclass(frozen=True, slots=True)
class ChildRecord:
    pgid: int
    command: list[str]
    start_time: int


@dataclass(frozen=True, slots=True)
class StackRecord:
    pid: int
    start_time: int
    marker: str
    children: list[ChildRecord] = field(default_factory=list)

    @classmethod
    def from_json(cls, text: str) -> StackRecord:
        data = json.loads(text)
        return cls(
            pid=int(data["pid"]),
            start_time=int(data["start_time"]),
            marker=str(data["marker"]),
            children=[
                ChildRecord(
                    pgid=int(c["pgid"]), command=[str(a) for a in c["command"]], start_time=int(c["start_time"])
                )
                for c in data["children"]
            ],
        )


def is_gone(start_time: int, now: ProcessStat | None) -> bool:
    """Whether the process that started at ``start_time`` is gone; ``now`` is what runs under its pid today:
    nothing, a zombie (it holds no port and runs no code), or another process that reused the pid."""
    return now is None or not now.running or now.start_time != start_time


def leftovers(
    record: StackRecord,
    table: Iterable[ProcessStat],
    *,
    cmdline_of: Callable[[int], list[str] | None],
    marker_of: Callable[[int], str | None],
) -> list[ProcessStat]:
    """The processes of ``table`` that belong to the recorded groups. A group whose leader is the recorded
    one (start time, command line and marker) is ours whole: its id cannot have been reused while the
    leader lives. Otherwise only members carrying the dead stack's marker are: the id may now name an
    unrelated group."""
    running = [p for p in table if p.running]
    found: list[ProcessStat] = []
    for child in record.children:
        members = [p for p in running if p.pgid == child.pgid]
        leader = next((p for p in members if p.pid == child.pgid), None)
        whole = (
            leader is not None
            and leader.start_time == child.start_time
            and cmdline_of(leader.pid) == child.command
            and marker_of(leader.pid) == record.marker
        )
        found.extend(p for p in members if whole or marker_of(p.pid) == record.marker)
    return found


def end_leftovers(state_dir: Path, *, grace: float = TERMINATE_GRACE_SECONDS, proc: Path = PROC) -> list[ProcessStat]:
    """End what stacks that died in ``state_dir`` left running, and forget their records; returns the
    processes signalled. Records of stacks still alive are left alone."""
    directory = state_dir / RECORDS_DIRECTORY
    if not proc.is_dir() or not directory.is_dir():
        return []
    ended: list[ProcessStat] = []
    for path in sorted(directory.glob("*.json")):
        try:
            record = StackRecord.from_json(path.read_text())
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("unreadable record of stack children %s removed", path.name)
            path.unlink(missing_ok=True)
            continue
        if not is_gone(record.start_time, read_stat(record.pid, proc=proc)):
            continue
        found = leftovers(
            record,
            processes(proc=proc),
            cmdline_of=lambda pid: read_cmdline(pid, proc=proc),
            marker_of=lambda pid: read_marker(pid, proc=proc),
        )
        if found:
            groups = sorted({p.pgid for p in found})
            log.warning(
                "stack %d died without stopping its children: ending %d process(es) of group(s) %s",
                record.pid,
                len(found),
                ", ".join(map(str, groups)),
            )
            _terminate(found, grace=grace, proc=proc)
            ended.extend(found)
        path.unlink(missing_ok=True)
    return ended


def _terminate(targets: list[ProcessStat], *, grace: float, proc: Path) -> None:
    def alive() -> list[ProcessStat]:
        return [t for t in targets if not is_gone(t.start_time, read_stat(t.pid, proc=proc))]

    for target in targets:
        signal_process(target, signal.SIGTERM, proc=proc)
    deadline = time.monotonic() + grace
    while alive() and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    for target in alive():
        signal_process(target, signal.SIGKILL, proc=proc)
    deadline = time.monotonic() + KILL_WAIT_SECONDS
    while alive() and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)


class ChildRegistry:
    """Starts the stack's children under the supervisor and keeps the record the next stack's sweep reads."""

    def __init__(self, state_dir: Path) -> None:
        stat = read_stat(os.getpid())
        # Without /proc a record could never be checked nor swept: none is written.
        self._recording = stat is not None
        self._record = StackRecord(
            pid=os.getpid(), start_time=stat.start_time if stat else 0, marker=f"{os.getpid()}-{uuid.uuid4().hex}"
        )
        self._path = state_dir / RECORDS_DIRECTORY / f"{self._record.marker}.json"

    @property
    def path(self) -> Path:
        return self._path

    def spawn(
        self, command: Sequence[str], *, stdout: IO[bytes], cwd: Path, env: Mapping[str, str]
    ) -> subprocess.Popen[bytes]:
        """``command`` under the supervisor, leader of a new session and group, recorded before returning."""
        supervised = supervised_command(command, parent_pid=os.getpid())
        process = subprocess.Popen(
            supervised,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            env={**env, STACK_RUN_VARIABLE: self._record.marker},
            cwd=cwd,
            start_new_session=True,
        )
        stat = read_stat(process.pid)
        self._record.children.append(
            ChildRecord(pgid=process.pid, command=supervised, start_time=stat.start_time if stat else 0)
        )
        self._write()
        return process

    def forget(self) -> None:
        """Called once the children were stopped: nothing is left for a sweep."""
        self._path.unlink(missing_ok=True)

    def _write(self) -> None:
        if not self._recording:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        partial = self._path.with_suffix(".tmp")
        partial.write_text(json.dumps(asdict(self._record)))
        partial.replace(self._path)


def main(argv: Sequence[str]) -> int:
    if len(argv) < 3 or argv[1] != SEPARATOR or not argv[0].isdigit():
        print(f"usage: python -m {SUPERVISOR_MODULE} PARENT_PID {SEPARATOR} COMMAND...", file=sys.stderr)
        return 2
    return supervise(argv[2:], parent_pid=int(argv[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
