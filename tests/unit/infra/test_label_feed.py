"""The simulator's label feed without AWS: which records' labels are held back, when each is due, and the
files that deliver them (read back with the csv module, as the monitor's contract states them)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from infra.local.label_feed import LabelDropError, LabelFeed, LabelFeedOptions, LabelHoldback
from infra.local.simulate import app, drain_labels, labels_text

START = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
PREFIX = "data/labels/"
SOURCE_ID = "0123456789ab"
HEADER = ["record_id", "churned", "observed_at"]


class FakeWallClock:
    """Wall-clock time that moves only when the code under test sleeps or the test advances it."""

    def __init__(self, start: datetime = START) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, "slept for nothing"
        self.current += timedelta(seconds=seconds)


@dataclass
class RecordingDrop:
    """Keeps every file written; the first ``failures`` writes fail."""

    failures: int = 0
    files: dict[str, bytes] = field(default_factory=dict)
    attempts: int = 0

    def put(self, *, key: str, body: bytes) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise LabelDropError(f"{key}: refused")
        assert key not in self.files, f"{key} written twice"
        self.files[key] = body

    def rows(self) -> list[dict[str, str]]:
        return [row for body in self.files.values() for row in csv.DictReader(io.StringIO(body.decode()))]


@pytest.fixture
def make_holdback() -> Callable[..., LabelHoldback]:
    def make(*, share: float = 0.5, delay_seconds: float = 10.0, seed: int = 7) -> LabelHoldback:
        return LabelHoldback(share=share, delay_seconds=delay_seconds, seed=seed)

    return make


@pytest.fixture
def make_feed(make_holdback: Callable[..., LabelHoldback]) -> Callable[..., tuple[LabelFeed, RecordingDrop]]:
    def make(
        *, share: float = 0.5, delay_seconds: float = 10.0, file_seconds: float = 5.0, failures: int = 0
    ) -> tuple[LabelFeed, RecordingDrop]:
        drop = RecordingDrop(failures=failures)
        feed = LabelFeed(
            holdback=make_holdback(share=share, delay_seconds=delay_seconds),
            drop=drop,
            prefix=PREFIX,
            source_id=SOURCE_ID,
            started=START,
            file_seconds=file_seconds,
        )
        return feed, drop

    return make


def stream(feed: LabelFeed, clock: FakeWallClock, *, records: int, per_second: int) -> dict[str, datetime]:
    """``records`` offered at ``per_second`` (churned alternating), ticking after each; returns send times."""
    sent_at = {}
    for row in range(1, records + 1):
        record_id = f"{SOURCE_ID}:{row}"
        sent_at[record_id] = clock.now()
        feed.offer(record_id=record_id, churned=row % 2, sent_at=clock.now())
        clock.sleep(1 / per_second)
        feed.tick(now=clock.now())
    return sent_at


def test_the_share_of_held_back_labels_follows_the_seeded_draw(make_holdback) -> None:  # type: ignore[no-untyped-def]
    # GIVEN two holdbacks with one seed and one with another, a share of 0.3
    first, twin, other = make_holdback(share=0.3, seed=3), make_holdback(share=0.3, seed=3), make_holdback(share=0.3)
    # WHEN 10,000 labelled records are offered to each
    choices = [
        [h.offer(record_id=f"s:{n}", churned=1, sent_at=START) for n in range(10_000)] for h in (first, twin, other)
    ]
    # THEN about 30 % are held back (the binomial's standard deviation is 0.46 %), the same records for one seed
    assert first.held == sum(choices[0]) == first.pending
    assert first.held / 10_000 == pytest.approx(0.3, abs=0.02)
    assert choices[0] == choices[1]
    assert choices[0] != choices[2]


@pytest.mark.parametrize(("share", "held"), [(0.0, 0), (1.0, 500)])
def test_the_bounds_of_the_share_hold_none_or_all(make_holdback, share: float, held: int) -> None:  # type: ignore[no-untyped-def]
    holdback = make_holdback(share=share)
    for n in range(500):
        holdback.offer(record_id=f"s:{n}", churned=0, sent_at=START)
    assert holdback.held == held


def test_a_record_without_a_true_label_has_none_to_hold(make_holdback) -> None:  # type: ignore[no-untyped-def]
    holdback = make_holdback(share=1.0)
    assert not holdback.offer(record_id="s:1", churned=None, sent_at=START)
    assert (holdback.held, holdback.unlabelled, holdback.pending) == (0, 1, 0)


def test_nothing_is_due_before_its_delay(make_holdback) -> None:  # type: ignore[no-untyped-def]
    # GIVEN every label held back with a 10 s delay, records sent one second apart
    holdback = make_holdback(share=1.0, delay_seconds=10.0)
    for n in range(5):
        holdback.offer(record_id=f"s:{n}", churned=1, sent_at=START + timedelta(seconds=n))
    # THEN none is due a microsecond before the first one's delay has passed, then one a second
    assert holdback.due(now=START + timedelta(seconds=10, microseconds=-1)) == []
    assert [label.record_id for label in holdback.due(now=START + timedelta(seconds=10))] == ["s:0"]
    assert len(holdback.due(now=START + timedelta(seconds=12.5))) == 3
    # AND being due takes none out of the queue: only a confirmed write does
    assert holdback.pending == 5


def test_a_wall_clock_stepping_back_delays_later_labels_but_never_releases_one_early(make_holdback) -> None:  # type: ignore[no-untyped-def]
    holdback = make_holdback(share=1.0, delay_seconds=10.0)
    holdback.offer(record_id="s:1", churned=1, sent_at=START + timedelta(seconds=5))
    holdback.offer(record_id="s:2", churned=1, sent_at=START)
    assert holdback.due(now=START + timedelta(seconds=12)) == []
    assert [label.record_id for label in holdback.due(now=START + timedelta(seconds=15))] == ["s:1", "s:2"]


def test_every_held_label_is_delivered_exactly_once_after_its_delay(make_feed) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a feed holding back half the labels for 10 s, files every 5 s, and 600 records sent at 20/s
    feed, drop = make_feed(share=0.5, delay_seconds=10.0, file_seconds=5.0)
    clock = FakeWallClock()
    sent_at = stream(feed, clock, records=600, per_second=20)
    delivered_while_streaming = len(drop.rows())
    # WHEN the run ends and the feed waits out the delay of the labels still held
    feed.drain(now=clock.now, sleep=clock.sleep)
    # THEN every held label was delivered once, none lost, and the wait took about the delay, no more
    rows = drop.rows()
    summary = feed.summary()
    assert 0 < delivered_while_streaming < len(rows)
    assert (summary.delivered, summary.not_delivered, summary.files) == (summary.held, 0, len(drop.files))
    assert len(rows) == summary.held
    assert summary.held / 600 == pytest.approx(0.5, abs=0.08)
    assert max(Counter(row["record_id"] for row in rows).values()) == 1
    assert {row["record_id"] for row in rows} <= set(sent_at)
    assert clock.now() - (START + timedelta(seconds=30)) <= timedelta(seconds=10)
    # AND each label carries its record's true label and the moment it became known, delay after its send
    for row in rows:
        observed = datetime.fromisoformat(row["observed_at"])
        assert observed.utcoffset() == timedelta(0)
        assert observed == sent_at[row["record_id"]] + timedelta(seconds=10)
        assert row["churned"] == str(int(row["record_id"].rsplit(":", 1)[1]) % 2)


def test_files_have_the_contract_header_and_unique_keys_under_the_labels_prefix(make_feed) -> None:  # type: ignore[no-untyped-def]
    feed, drop = make_feed(share=1.0, delay_seconds=1.0, file_seconds=2.0)
    clock = FakeWallClock()
    stream(feed, clock, records=100, per_second=10)
    feed.drain(now=clock.now, sleep=clock.sleep)
    assert len(drop.files) >= 4
    for key, body in drop.files.items():
        assert key.startswith(f"{PREFIX}stream-labels-{SOURCE_ID}-20261206T120000000000Z-")
        assert key.endswith(".csv")
        header, *rows = list(csv.reader(io.StringIO(body.decode())))
        assert header == HEADER
        assert rows
    assert sorted(drop.files) == [
        f"{PREFIX}stream-labels-{SOURCE_ID}-20261206T120000000000Z-{n:05d}.csv" for n in range(1, len(drop.files) + 1)
    ]


def test_a_failed_write_keeps_its_labels_for_the_next_file(make_feed) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a drop whose first write fails
    feed, drop = make_feed(share=1.0, delay_seconds=1.0, file_seconds=1.0, failures=1)
    clock = FakeWallClock()
    # WHEN records are streamed and the rest drained
    stream(feed, clock, records=50, per_second=10)
    feed.drain(now=clock.now, sleep=clock.sleep)
    # THEN the labels of the failed file were delivered by a later one, each once
    ids = [row["record_id"] for row in drop.rows()]
    assert sorted(ids) == sorted(f"{SOURCE_ID}:{n}" for n in range(1, 51))
    assert feed.summary().not_delivered == 0


def test_a_drain_that_cannot_write_gives_up_and_reports_what_was_not_delivered(make_feed) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a drop that refuses every write
    feed, drop = make_feed(share=1.0, delay_seconds=1.0, file_seconds=1.0, failures=1_000)
    clock = FakeWallClock()
    stream(feed, clock, records=20, per_second=10)
    # WHEN the run drains
    feed.drain(now=clock.now, sleep=clock.sleep)
    # THEN it stops, the labels counted as not delivered with the reason
    summary = feed.summary()
    assert (summary.held, summary.delivered, summary.not_delivered) == (20, 0, 20)
    assert summary.last_error is not None
    assert "refused" in summary.last_error
    assert drop.files == {}


def test_ctrl_c_while_waiting_reports_the_labels_still_held_as_not_delivered(make_feed) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a run that ended with every label still held for 10 s
    feed, drop = make_feed(share=1.0, delay_seconds=10.0, file_seconds=5.0)
    clock = FakeWallClock()
    stream(feed, clock, records=30, per_second=10)

    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt

    # WHEN Ctrl-C comes while the end of the run waits out the delay
    drain_labels(feed, delay=10.0, now=clock.now, sleep=interrupted)
    # THEN nothing more was written and the summary line counts them as not delivered
    summary = feed.summary()
    assert (summary.held, summary.delivered, summary.not_delivered, drop.files) == (30, 0, 30, {})
    options = LabelFeedOptions(share=1.0, delay_seconds=10.0, seed=7)
    text = labels_text(summary, on_record=False, rows=30, options=options, labels_at="s3://b/data/labels/")
    assert "30 of 30 records held back" in text
    assert "0 delivered in 0 files" in text
    assert text.endswith("30 not delivered")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--label", "--label-share", "0.5"], "use one"),
        (["--label-share", "1.5"], "--label-share"),
        (["--label-share", "0.5", "--label-delay", "-1"], "--label-delay"),
        (["--label-share", "0.5", "--label-file-seconds", "0"], "--label-file-seconds"),
    ],
)
def test_the_stream_command_refuses_contradictory_or_impossible_label_options(args: list[str], message: str) -> None:
    # WHEN the command is given them THEN it ends before writing anything, naming the option
    result = CliRunner().invoke(app, ["stream", "--duration", "1", *args])
    assert result.exit_code != 0
    assert message in result.output
