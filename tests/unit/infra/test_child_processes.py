"""Which processes a starting stack may end for a dead one: decided from /proc facts alone, so that a
process whose pid merely equals a recorded one is never signalled."""

from __future__ import annotations

import json

import pytest

from infra.local.child_processes import ProcessStat, StackRecord, is_gone, leftovers, parse_stat

MARKER = "4242-abc"
SUPERVISOR = ["/venv/bin/python", "-m", "infra.local.child_processes", "4242", "--", "/venv/bin/prefect", "server"]
RECORD_JSON = json.dumps(
    {
        "pid": 4242,
        "start_time": 900,
        "marker": MARKER,
        "children": [{"pgid": 100, "command": SUPERVISOR, "start_time": 1000}],
    }
)


def stat(pid: int, *, pgid: int, start_time: int, state: str = "S") -> ProcessStat:
    return ProcessStat(pid=pid, state=state, ppid=1, pgid=pgid, start_time=start_time)


def test_a_stat_line_is_read_past_a_command_name_with_spaces_and_parentheses() -> None:
    line = "123 (odd) name (x)) S 1 99 99 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 55501 1000 10"
    assert parse_stat(123, line) == ProcessStat(pid=123, state="S", ppid=1, pgid=99, start_time=55501)


@pytest.mark.parametrize(
    ("now", "gone"),
    [
        (None, True),  # no process under the pid
        (stat(7, pgid=7, start_time=5, state="Z"), True),  # a zombie holds no port
        (stat(7, pgid=7, start_time=6), True),  # the pid was reused
        (stat(7, pgid=7, start_time=5), False),
    ],
)
def test_a_process_is_gone_unless_its_pid_still_runs_with_its_start_time(now: ProcessStat | None, gone: bool) -> None:
    assert is_gone(5, now) is gone


def decide(table: list[ProcessStat], *, cmdlines: dict[int, list[str]], markers: dict[int, str]) -> list[int]:
    record = StackRecord.from_json(RECORD_JSON)
    found = leftovers(record, table, cmdline_of=cmdlines.get, marker_of=markers.get)
    return sorted(p.pid for p in found)


def test_the_recorded_leader_makes_its_whole_group_a_leftover() -> None:
    # GIVEN the recorded supervisor still leading its group, with a member that dropped the marker
    table = [
        stat(100, pgid=100, start_time=1000),
        stat(101, pgid=100, start_time=1001),
        stat(300, pgid=300, start_time=5),
    ]
    # THEN both are leftovers; a process of another group is not
    assert decide(table, cmdlines={100: SUPERVISOR}, markers={100: MARKER}) == [100, 101]


def test_without_the_recorded_leader_only_marked_members_are_leftovers() -> None:
    # GIVEN the supervisor gone (killed with the stack): its command and a grandchild carry the marker
    table = [stat(101, pgid=100, start_time=1001), stat(102, pgid=100, start_time=1002)]
    assert decide(table, cmdlines={}, markers={101: MARKER, 102: MARKER}) == [101, 102]


@pytest.mark.parametrize(
    ("cmdline", "start_time", "marker"),
    [
        (["/bin/sleep", "600"], 1000, None),  # another program under the recorded pid
        (SUPERVISOR, 2000, None),  # the same command line, started again later by someone else
        (SUPERVISOR, 1000, "other-stack"),  # another stack's supervisor
    ],
)
def test_a_reused_pid_is_never_a_leftover(cmdline: list[str], start_time: int, marker: str | None) -> None:
    # GIVEN the recorded group id now naming a group that is not the recorded one, with an unmarked member
    table = [stat(100, pgid=100, start_time=start_time), stat(101, pgid=100, start_time=start_time + 1)]
    markers = {100: marker} if marker else {}
    # THEN nothing of it is a leftover
    assert decide(table, cmdlines={100: cmdline}, markers=markers) == []


def test_zombies_are_not_leftovers() -> None:
    table = [stat(100, pgid=100, start_time=1000, state="Z"), stat(101, pgid=100, start_time=1001, state="Z")]
    assert decide(table, cmdlines={100: SUPERVISOR}, markers={100: MARKER, 101: MARKER}) == []
