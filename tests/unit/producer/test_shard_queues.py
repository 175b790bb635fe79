"""Which queued aggregates go into the next PutRecords call: at most one per shard, within the limits."""

from __future__ import annotations

from producer.kinesis_writer import MAX_BYTES_PER_PUT, MAX_RECORDS_PER_PUT, PutEntry, ShardQueues


def entry(shard: int, number: int = 0, *, size: int = 100) -> PutEntry:
    return PutEntry(
        data=b"x" * (size - 2),
        partition_key=f"{number:02d}",
        explicit_hash_key=str(shard),
        shard_id=f"shard-{shard}",
        user_records=1,
    )


def test_a_round_takes_the_oldest_entry_of_each_shard_and_keeps_the_rest_in_order() -> None:
    # GIVEN three entries for shard 0 and two for shard 1
    queues = ShardQueues()
    for number in range(3):
        queues.push(entry(0, number))
    for number in range(2):
        queues.push(entry(1, number))
    # WHEN rounds are taken until the queues are empty
    rounds = []
    while queues:
        rounds.append(sorted((e.shard_id, e.partition_key) for e in queues.next_round()))
    # THEN each round holds one entry per shard, oldest first
    assert rounds == [
        [("shard-0", "00"), ("shard-1", "00")],
        [("shard-0", "01"), ("shard-1", "01")],
        [("shard-0", "02")],
    ]
    assert queues.bytes == 0


def test_a_failed_entry_pushed_back_goes_before_the_newer_ones_of_its_shard() -> None:
    queues = ShardQueues()
    queues.push(entry(0, 1))
    (first,) = queues.next_round()
    queues.push(entry(0, 2))
    queues.push_front(first)
    assert [e.partition_key for e in queues.next_round()] == ["01"]
    assert [e.partition_key for e in queues.next_round()] == ["02"]


def test_a_round_never_exceeds_500_entries_and_every_shard_gets_its_turn() -> None:
    # GIVEN one entry for each of 1,200 shards
    queues = ShardQueues()
    for shard in range(1_200):
        queues.push(entry(shard))
    # WHEN rounds are taken THEN none holds more than 500, and all 1,200 shards are served in three rounds
    sizes = []
    served: set[str] = set()
    while queues:
        taken = queues.next_round()
        sizes.append(len(taken))
        served |= {e.shard_id for e in taken}
    assert sizes == [MAX_RECORDS_PER_PUT, MAX_RECORDS_PER_PUT, 200]
    assert len(served) == 1_200


def test_a_round_stays_within_the_request_size_limit() -> None:
    # GIVEN twelve shards each with one aggregate of 1 MB
    queues = ShardQueues()
    for shard in range(12):
        queues.push(entry(shard, size=1_000_000))
    # WHEN rounds are taken THEN each stays within 5 MiB, so five fit in one call
    sizes = []
    while queues:
        taken = queues.next_round()
        assert sum(e.size for e in taken) <= MAX_BYTES_PER_PUT
        sizes.append(len(taken))
    assert sizes == [5, 5, 2]


def test_shards_refilled_at_once_do_not_starve_the_others() -> None:
    # GIVEN 1,200 shards with one entry each, every served shard getting a new entry at once
    queues = ShardQueues()
    for shard in range(1_200):
        queues.push(entry(shard))
    served: list[str] = []
    # WHEN three full rounds are taken
    for _ in range(3):
        taken = queues.next_round()
        served += [e.shard_id for e in taken]
        for e in taken:
            queues.push(entry(int(e.shard_id.removeprefix("shard-"))))
    # THEN the first 1,200 entries served came from 1,200 different shards
    assert len(set(served[:1_200])) == 1_200
