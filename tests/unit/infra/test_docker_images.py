"""The images of infra/docker: per-image requirement files generated from Pipfile.lock, and Dockerfiles.

The generated files must equal what the generator makes from the current lock and code, hold only
what each image needs, and pin everything with hashes so that an image build resolves nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.docker import requirements
from infra.docker.requirements import IMAGES, ImageSpec, LockMismatchError, generate, imported_names, read_lock

REPO_ROOT = Path(__file__).resolve().parents[3]
DOCKER_DIR = REPO_ROOT / "infra" / "docker"
LAMBDA_IMAGES = ("producer", "stream_scorer")
LAMBDA_RUNTIME_FILE = DOCKER_DIR / "requirements-lambda-runtime.txt"
PIN = re.compile(r"^(?P<requirement>[A-Za-z0-9][\w.\-\[\],]*==[\w.+!\-]+) \\$")


def _pins(path: Path) -> dict[str, tuple[Requirement, list[str]]]:
    """name -> (requirement, hashes) of a hash-pinned requirement file."""
    pins: dict[str, tuple[Requirement, list[str]]] = {}
    current: list[str] | None = None
    for line in path.read_text().splitlines():
        if match := PIN.match(line):
            requirement = Requirement(match.group("requirement"))
            current = pins.setdefault(canonicalize_name(requirement.name), (requirement, []))[1]
        elif line.strip().startswith("--hash=sha256:") and current is not None:
            current.append(line.strip().removeprefix("--hash=").removesuffix(" \\"))
        elif line.strip() and not line.lstrip().startswith("#"):
            pytest.fail(f"{path.name}: unexpected line {line!r}")
    return pins


@pytest.fixture(scope="module")
def lock() -> dict:
    return read_lock()


# ---------------------------------------------------------------------------------------------------
# Generated requirement files
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("image", IMAGES)
def test_requirement_file_is_up_to_date_with_the_lock_and_the_code(image: str) -> None:
    path = requirements.output_path(image)
    assert path.read_text() == generate(image), f"run `python -m infra.docker.requirements` ({path.name} is stale)"


@pytest.mark.parametrize("image", IMAGES)
def test_every_pin_is_the_locked_version_with_its_hashes(image: str, lock: dict) -> None:
    pins = _pins(requirements.output_path(image))
    assert pins
    for name, (requirement, hashes) in pins.items():
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", name
        assert specifier.version == lock[name].version, name
        assert hashes, f"{name} has no hash"
        assert set(hashes) == set(lock[name].hashes), name


def test_producer_gets_no_model_database_or_monitoring_packages() -> None:
    pins = _pins(requirements.output_path("producer"))
    assert {"boto3", "pydantic", "pydantic-settings", "orjson", "aws-kinesis-agg", "six", "protobuf"} <= pins.keys()
    heavy = {"numpy", "xgboost-cpu", "mlflow", "mlflow-skinny", "sqlalchemy", "pandas", "prefect", "evidently"}
    assert not heavy & pins.keys()


def test_scorer_gets_the_mlflow_client_and_xgboost_but_no_server_or_monitoring() -> None:
    pins = _pins(requirements.output_path("stream_scorer"))
    assert {"xgboost-cpu", "numpy", "mlflow-skinny", "sqlalchemy", "psycopg", "psycopg-binary", "six"} <= pins.keys()
    assert not {"mlflow", "pandas", "prefect", "evidently", "scikit-learn", "moto"} & pins.keys()
    assert pins["mlflow-skinny"][0].specifier == _pins(requirements.output_path("batch_monitor"))["mlflow"][0].specifier


def test_monitor_image_runs_the_flow_and_the_mlflow_and_prefect_servers() -> None:
    pins = _pins(requirements.output_path("batch_monitor"))
    assert {"prefect", "evidently", "mlflow", "pandas", "pyarrow", "psycopg", "asyncpg", "boto3"} <= pins.keys()
    assert "xgboost-cpu" in pins  # the retraining flow trains challengers in the worker
    assert not {"moto", "localstack-client", "pytest"} & pins.keys()


@pytest.mark.parametrize("image", IMAGES)
def test_readme_image_table_gives_each_image_its_number_of_pinned_packages(image: str) -> None:
    table_row = re.compile(rf"^\| `{image.replace('_', '-')}` \|[^|]*\| (?P<count>\d+)\b", re.MULTILINE)
    match = table_row.search((REPO_ROOT / "README.md").read_text())
    assert match, f"README.md has no image table row for {image}"
    assert int(match.group("count")) == len(_pins(requirements.output_path(image)))


def test_lambda_runtime_client_is_pinned_with_hashes() -> None:
    pins = _pins(LAMBDA_RUNTIME_FILE)
    assert "awslambdaric" in pins
    for name, (requirement, hashes) in pins.items():
        assert next(iter(requirement.specifier)).operator == "==", name
        assert hashes, name


# ---------------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------------


def test_imports_inside_functions_count_and_type_checking_imports_do_not() -> None:
    source = """
from __future__ import annotations
from typing import TYPE_CHECKING
import orjson
from .sibling import thing
if TYPE_CHECKING:
    import pandas
def load():
    from mlflow import MlflowClient
"""
    names = set(imported_names(source))
    assert {"orjson", "mlflow", "mlflow.MlflowClient"} <= names
    assert "pandas" not in names
    assert not any(name.startswith("sibling") for name in names)


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_generator_follows_project_imports_and_pins_their_dependencies(tmp_path: Path, lock: dict) -> None:
    # GIVEN a component whose handler imports a shared module that imports orjson lazily
    root = _project(
        tmp_path,
        {
            "producer/__init__.py": "",
            "producer/handler.py": "from churn_common.wire import encode\n",
            "churn_common/__init__.py": "",
            "churn_common/wire.py": "def encode():\n    import orjson\n",
        },
    )
    spec = ImageSpec(modules=("producer.handler",), copied_packages=frozenset({"producer", "churn_common"}))

    # WHEN its requirement file is generated
    text = generate("producer", lock, spec=spec, root=root)

    # THEN orjson is pinned from the lock, and nothing else
    assert f"orjson=={lock['orjson'].version} \\" in text
    assert text.count("==") == 1


def test_generator_refuses_an_import_the_dockerfile_does_not_copy(tmp_path: Path, lock: dict) -> None:
    root = _project(
        tmp_path,
        {
            "producer/__init__.py": "",
            "producer/handler.py": "from data.synthetic import generate\n",
            "data/__init__.py": "",
            "data/synthetic.py": "",
        },
    )
    spec = ImageSpec(modules=("producer.handler",), copied_packages=frozenset({"producer", "churn_common"}))
    with pytest.raises(LockMismatchError, match="data"):
        generate("producer", lock, spec=spec, root=root)


def test_generator_refuses_a_package_missing_from_the_lock(tmp_path: Path, lock: dict) -> None:
    root = _project(tmp_path, {"producer/__init__.py": "", "producer/handler.py": "import pytest\n"})
    spec = ImageSpec(modules=("producer.handler",), copied_packages=frozenset({"producer"}))
    with pytest.raises(LockMismatchError, match="pytest"):
        generate("producer", lock, spec=spec, root=root)


def test_check_mode_reports_a_stale_file_and_write_mode_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN output files of which one is stale
    monkeypatch.setattr(requirements, "OUTPUT_DIR", tmp_path)
    for image in IMAGES:
        requirements.output_path(image).write_text(generate(image))
    requirements.output_path("producer").write_text("boto3==0.0.1\n")

    # WHEN checking, THEN it fails and names the file
    assert requirements.main(["--check"]) == 1
    assert "requirements-producer.txt is out of date" in capsys.readouterr().err

    # WHEN writing, THEN the check passes again
    assert requirements.main([]) == 0
    assert requirements.main(["--check"]) == 0


# ---------------------------------------------------------------------------------------------------
# Dockerfiles
# ---------------------------------------------------------------------------------------------------


def _instructions(image: str) -> str:
    return (DOCKER_DIR / f"{image}.Dockerfile").read_text()


@pytest.mark.parametrize("image", IMAGES)
def test_dockerfile_installs_only_its_generated_file_with_hashes_and_copies_only_its_code(image: str) -> None:
    dockerfile = _instructions(image)
    copied = set(re.findall(r"^COPY ([a-z_]+)/ \./\1/$", dockerfile, re.MULTILINE))
    assert copied == set(IMAGES[image].copied_packages)
    assert f"infra/docker/requirements-{image}.txt" in dockerfile
    other = {f"requirements-{name}.txt" for name in IMAGES if name != image}
    assert not any(name in dockerfile for name in other)
    assert "--require-hashes" in dockerfile
    assert re.search(r"^USER (?!root|0\b)\S+", dockerfile, re.MULTILINE), "the image must not run as root"


@pytest.mark.parametrize("image", LAMBDA_IMAGES)
def test_lambda_images_run_the_handler_through_the_runtime_interface_client(image: str) -> None:
    dockerfile = _instructions(image)
    assert LAMBDA_RUNTIME_FILE.name in dockerfile
    assert '"-m", "awslambdaric"]' in dockerfile
    (cmd,) = re.findall(r"^CMD \[(.*)\]$", dockerfile, re.MULTILINE)
    assert json.loads(f"[{cmd}]") == [f"{image}.handler.lambda_handler"]
    assert (REPO_ROOT / image / "handler.py").is_file()


def test_every_image_has_a_dockerfile_and_an_ecr_repository_and_cd_builds_them_all() -> None:
    dockerfiles = {path.name.removesuffix(".Dockerfile") for path in DOCKER_DIR.glob("*.Dockerfile")}
    assert dockerfiles == {*IMAGES, "grafana"}
    locals_tf = (REPO_ROOT / "infra" / "terraform" / "locals.tf").read_text()
    (repositories,) = re.findall(r"image_repositories\s*=\s*\[(.*)\]", locals_tf)
    assert set(json.loads(f"[{repositories}]")) == dockerfiles
    cd = (REPO_ROOT / ".github" / "workflows" / "cd.yml").read_text()
    (built,) = re.findall(r"for image in ([a-z_ ]+); do\n\s+repository=", cd)
    assert set(built.split()) == dockerfiles


def test_a_name_from_a_lazy_package_face_brings_its_modules_imports(tmp_path: Path) -> None:
    # GIVEN a package whose face loads ``fit`` lazily from a module importing xgboost, and an entry using it
    package = tmp_path / "training"
    package.mkdir()
    (package / "__init__.py").write_text('_EXPORTS = {"fit": "training.model", "other": "training.unused"}\n')
    (package / "model.py").write_text("import xgboost\n\n\ndef fit(): ...\n")
    (package / "unused.py").write_text("import torch\n")
    (tmp_path / "producer").mkdir()
    (tmp_path / "producer" / "__init__.py").write_text("")
    (tmp_path / "producer" / "entry.py").write_text("from training import fit\n")
    # WHEN the entry's imports are scanned
    found = requirements.scan_imports(ImageSpec(modules=("producer.entry",)), root=tmp_path)
    # THEN the module behind the name is followed, and only that one
    assert "training.model" in found.project_modules
    assert found.third_party == {"xgboost"}
