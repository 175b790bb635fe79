"""One run of the local stack in a process of its own: start it (a new emulator, new stream), drop one file,
wait until the scorer has stored as many predictions of it as the test expects, stop. Exit 0 when they
were stored, 1 on timeout. ``python -m tests.e2e.stack_run FILE KEY EXPECTED``; settings from the environment."""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

TIMEOUT_SECONDS = 120


def main(path: Path, key: str, expected: int) -> int:
    from churn_common.aws import client
    from churn_common.database import get_engine, predictions
    from churn_common.settings import get_settings
    from infra.local.stack import LocalStack

    with LocalStack(with_prefect=False):
        settings = get_settings()
        etag = client("s3").put_object(Bucket=settings.bucket, Key=key, Body=path.read_bytes())["ETag"].strip('"')
        # The record contract's source id, derived here on its own: sha1 of "<uri>#<etag>", first 12 hex digits.
        source_id = hashlib.sha1(f"s3://{settings.bucket}/{key}#{etag}".encode()).hexdigest()[:12]
        engine = get_engine(settings.resolved_database_url)
        deadline = time.monotonic() + TIMEOUT_SECONDS
        stored = 0
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                stored = connection.execute(
                    select(func.count()).select_from(predictions).where(predictions.c.source_id == source_id)
                ).scalar_one()
            if stored >= expected:
                break
            time.sleep(0.3)
        print(f"source {source_id}: {stored}/{expected} stored")
        return 0 if stored == expected else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
