"""Where the simulators write: the running local stack by default, whatever AWS credentials the shell holds;
real AWS only with ``--aws``, after showing the account and a confirmation.

An emulator of the test's own (moto's threaded server on a free port) plays the local stack. In the ``--aws``
tests it also plays real AWS, reached through an ``AWS_ENDPOINT_URL`` set explicitly: no test here talks to
AWS itself.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from typer.testing import CliRunner, Result

import infra.local.simulate
from infra.local.simulate import SAMPLES_DIR, app
from tests.conftest import free_port

pytestmark = pytest.mark.integration

BUCKET = "churn-pipeline-data"
STREAM = "customer-records"
INPUT_PREFIX = "data/input/"
SAMPLE = SAMPLES_DIR / "sample_drifted.csv"
# Credentials as a user's shell may hold them for a real account (these are AWS's documentation examples).
REAL_LOOKING_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
}
REAL_LOOKING_PROFILE = "production"  # not even defined on this machine
FAIL_FAST_SECONDS = 3.0
STREAM_ARGS = ["--csv", str(SAMPLE), "--rate", "200", "--duration", "0.3", "--run-name", "target"]
COMMANDS = [["file-drops", str(SAMPLE), "--interval", "0"], ["stream", *STREAM_ARGS]]


@dataclass
class Emulator:
    """The test's emulator, read back with clients of its own (explicit endpoint and keys), made before the
    test changes the environment."""

    port: int
    region: str = "us-east-1"
    clients: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str) -> Any:
        if service not in self.clients:
            session = boto3.session.Session(
                aws_access_key_id="reader", aws_secret_access_key="reader", region_name=self.region
            )
            self.clients[service] = session.client(service, endpoint_url=self.url)
        return self.clients[service]

    def provision(self) -> None:
        """The bucket and stream the simulators write to, made here by hand."""
        if self.region == "us-east-1":
            self.client("s3").create_bucket(Bucket=BUCKET)
        else:
            self.client("s3").create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": self.region}
            )
        self.client("kinesis").create_stream(StreamName=STREAM, ShardCount=1)

    def input_keys(self) -> list[str]:
        listed = self.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=INPUT_PREFIX)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    def stream_records(self) -> int:
        kinesis = self.client("kinesis")
        (shard,) = kinesis.list_shards(StreamName=STREAM)["Shards"]
        iterator = kinesis.get_shard_iterator(
            StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        return len(kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"])


@pytest.fixture
def emulator() -> Iterator[Callable[..., Emulator]]:
    """Starts an emulator on a free port, emptied (the emulator's state is per process), provisioned in
    ``region``."""
    from moto.server import ThreadedMotoServer

    servers: list[ThreadedMotoServer] = []

    def start(*, region: str = "us-east-1") -> Emulator:
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        servers.append(server)
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset", method="POST"))
        started = Emulator(port=port, region=region)
        started.provision()
        return started

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def shell(env: Callable[..., None], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., None]:
    """A second shell's environment: no AWS_ENDPOINT_URL (only the stack's own process has it), credentials
    that look real, a state folder of its own; ``values`` on top."""

    def set_up(**values: str) -> None:
        for name in ("AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        env(**REAL_LOOKING_CREDENTIALS, LOCAL_STATE_DIR=str(tmp_path / "state"), **values)

    return set_up


def small_csv(path: Path) -> Path:
    path.write_text("\n".join(SAMPLE.read_text().splitlines()[:11]) + "\n")
    return path


def invoke(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=stdin)


def test_file_drops_go_to_the_local_stack_by_default(
    emulator: Callable[..., Emulator], shell: Callable[..., None], tmp_path: Path
) -> None:
    # GIVEN a local stack's emulator on LOCAL_AWS_PORT, and a shell without AWS_ENDPOINT_URL holding
    # credentials (and a profile) that look like a real account's
    local = emulator()
    shell(LOCAL_AWS_PORT=str(local.port), AWS_PROFILE=REAL_LOOKING_PROFILE)
    # WHEN a file is dropped without --aws
    result = invoke("file-drops", str(small_csv(tmp_path / "one.csv")), "--interval", "0")
    # THEN it is in the emulator's input prefix, and the command said where it wrote
    assert result.exit_code == 0, result.output
    assert local.input_keys() == [f"{INPUT_PREFIX}one.csv"]
    assert f"on the local stack at {local.url}" in result.output


def test_the_stream_goes_to_the_local_stack_by_default(
    emulator: Callable[..., Emulator], shell: Callable[..., None]
) -> None:
    local = emulator()
    shell(LOCAL_AWS_PORT=str(local.port), AWS_PROFILE=REAL_LOOKING_PROFILE)
    result = invoke("stream", *STREAM_ARGS)
    assert result.exit_code == 0, result.output
    assert local.stream_records() > 0


def test_the_local_stack_is_signed_for_with_its_key_never_the_shells(
    emulator: Callable[..., Emulator], shell: Callable[..., None], tmp_path: Path
) -> None:
    from churn_common.settings import get_settings
    from infra.local.simulate import local_target

    local = emulator()
    shell(LOCAL_AWS_PORT=str(local.port))
    # GIVEN no key file from the stack THEN the local fake credentials sign
    assert local_target(get_settings()).session.get_credentials().access_key == "local"
    # GIVEN the operator key a stack enforcing IAM writes for other shells THEN that key signs
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "aws-credentials").write_text(
        "[operator]\naws_access_key_id = AKIALOCALOPERATOR\naws_secret_access_key = operator-secret\n"
    )
    assert local_target(get_settings()).session.get_credentials().access_key == "AKIALOCALOPERATOR"


@pytest.mark.parametrize("command", COMMANDS, ids=["file-drops", "stream"])
def test_without_a_local_stack_the_simulators_fail_fast_saying_how_to_start_one(
    shell: Callable[..., None], command: list[str]
) -> None:
    # GIVEN nothing listening on LOCAL_AWS_PORT
    port = free_port()
    shell(LOCAL_AWS_PORT=str(port))
    started = time.monotonic()
    # WHEN a simulator runs
    result = invoke(*command)
    # THEN it stops at once, naming the address, the setting and `make stack`
    assert time.monotonic() - started < FAIL_FAST_SECONDS
    assert result.exit_code == 2
    assert f"no local stack answers at http://127.0.0.1:{port} (LOCAL_AWS_PORT={port}" in result.stderr
    assert "`make stack`" in result.stderr


def test_an_endpoint_elsewhere_is_not_taken_for_the_local_stack(shell: Callable[..., None]) -> None:
    shell(AWS_ENDPOINT_URL="https://kinesis.eu-west-1.amazonaws.com")
    result = invoke("stream", *STREAM_ARGS)
    assert result.exit_code == 2
    assert "not this machine" in result.stderr
    assert "--aws" in result.stderr


def test_aws_with_credentials_that_name_no_account_refuses(
    emulator: Callable[..., Emulator], shell: Callable[..., None]
) -> None:
    real = emulator()
    shell(AWS_ENDPOINT_URL=real.url, AWS_PROFILE=REAL_LOOKING_PROFILE)
    result = invoke("stream", *STREAM_ARGS, "--aws", "--yes")
    assert result.exit_code == 2
    assert "cannot tell which AWS account the credentials belong to" in result.stderr
    assert real.stream_records() == 0


def test_yes_alone_is_refused(emulator: Callable[..., Emulator], shell: Callable[..., None]) -> None:
    local = emulator()
    shell(LOCAL_AWS_PORT=str(local.port))
    result = invoke("stream", *STREAM_ARGS, "--yes")
    assert result.exit_code == 2
    assert "--yes only goes with --aws" in result.stderr
    assert local.stream_records() == 0


@pytest.mark.parametrize("command", COMMANDS, ids=["file-drops", "stream"])
def test_aws_without_a_terminal_or_yes_refuses_before_writing(
    emulator: Callable[..., Emulator], shell: Callable[..., None], command: list[str]
) -> None:
    # GIVEN "real AWS" (the emulator, reached through AWS_ENDPOINT_URL set explicitly)
    real = emulator()
    shell(AWS_ENDPOINT_URL=real.url)
    # WHEN a simulator runs with --aws, stdin not a terminal, no --yes
    result = invoke(*command, "--aws")
    # THEN it showed the account it would write to, refused, and wrote nothing
    assert result.exit_code == 2
    assert f"AWS account {DEFAULT_ACCOUNT_ID}" in result.stdout
    assert "stdin is not a terminal" in result.stderr
    assert "--yes" in result.stderr
    assert real.input_keys() == []
    assert real.stream_records() == 0


def test_aws_with_yes_shows_account_region_and_stream_then_writes(
    emulator: Callable[..., Emulator], shell: Callable[..., None]
) -> None:
    # GIVEN "real AWS" (the emulator through AWS_ENDPOINT_URL set explicitly) in another region
    real = emulator(region="eu-west-1")
    shell(AWS_ENDPOINT_URL=real.url, AWS_DEFAULT_REGION="eu-west-1")
    # WHEN the stream runs with --aws --yes
    result = invoke("stream", *STREAM_ARGS, "--aws", "--yes")
    # THEN the account, region, endpoint and stream were shown, and the records went there
    assert result.exit_code == 0, result.output
    assert (
        f"--aws: writing to Kinesis stream {STREAM} in AWS account {DEFAULT_ACCOUNT_ID} as "
        f"arn:aws:sts::{DEFAULT_ACCOUNT_ID}:user/moto, region eu-west-1, endpoint {real.url}"
    ) in result.stdout
    assert real.stream_records() > 0


@pytest.fixture
def terminal_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulator believes its stdin a terminal (the runner feeds it the typed answer)."""
    monkeypatch.setattr(infra.local.simulate, "_stdin_is_terminal", lambda: True)


@pytest.mark.usefixtures("terminal_stdin")
@pytest.mark.parametrize(("answer", "written"), [("yes", True), ("y", False), ("", False)])
def test_aws_on_a_terminal_writes_only_after_a_typed_yes(
    emulator: Callable[..., Emulator], shell: Callable[..., None], tmp_path: Path, answer: str, written: bool
) -> None:
    # GIVEN "real AWS" (the emulator through AWS_ENDPOINT_URL) and stdin a terminal
    real = emulator()
    shell(AWS_ENDPOINT_URL=real.url)
    # WHEN the user answers the question
    result = invoke("file-drops", str(small_csv(tmp_path / "one.csv")), "--interval", "0", "--aws", stdin=f"{answer}\n")
    # THEN only "yes" lets the file through
    assert "Type yes to write there" in result.output
    assert (result.exit_code, real.input_keys()) == ((0, [f"{INPUT_PREFIX}one.csv"]) if written else (2, []))
