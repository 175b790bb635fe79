"""What a chaos run feeds the pipeline: CSV files to drop (each with the malformed rows the producer must
reject) and the rows of the record simulator, all generated from the seed."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from churn_common.schema import CustomerRow
from infra.local.chaos.plan import MALFORMED_ROWS_PER_FILE, Workload
from infra.local.simulate import generated_rows

FILE_SEED_OFFSET = 10_000  # file rows never reuse a seed of the simulator's blocks
SIM_RUN_PREFIX = "chaos"


@dataclass(frozen=True, slots=True)
class DropFile:
    path: Path
    rows: int  # data lines, malformed ones included
    malformed: int

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True, slots=True)
class DropFiles:
    """The scheduled drops, the file uploaded over one of their keys, the file dropped after the restart."""

    scheduled: list[DropFile]
    overwrite: DropFile
    after_restart: DropFile

    @property
    def all(self) -> list[DropFile]:
        return [*self.scheduled, self.overwrite, self.after_restart]


def write_drop_files(workload: Workload, *, folder: Path, seed: int) -> DropFiles:
    from data.bundled import MALFORMED_ROWS
    from data.churn_csv import write_churn_csv
    from data.generator import generate

    assert len(MALFORMED_ROWS) == MALFORMED_ROWS_PER_FILE
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for index, rows in enumerate((*workload.file_rows, *workload.extra_file_rows)):
        valid = generate(n_rows=rows - MALFORMED_ROWS_PER_FILE, seed=seed + FILE_SEED_OFFSET + index)
        path = write_churn_csv(valid, folder / f"chaos-{seed}-{index + 1}.csv", original_headers=True)
        with path.open("a", newline="") as handle:
            handle.write("".join(f"{line}\n" for line in MALFORMED_ROWS))
        files.append(DropFile(path=path, rows=rows, malformed=MALFORMED_ROWS_PER_FILE))
    *scheduled, overwrite, after_restart = files
    return DropFiles(scheduled=scheduled, overwrite=overwrite, after_restart=after_restart)


def simulated_rows(workload: Workload, *, seed: int) -> Iterator[CustomerRow]:
    return itertools.islice(generated_rows(seed=seed), workload.simulated_records)


def simulator_run_name(seed: int) -> str:
    return f"{SIM_RUN_PREFIX}-{seed}"
