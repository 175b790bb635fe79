"""Static checks of infra/terraform (python-hcl2) for MLflow's login: the server runs the basic-auth app, its
passwords are generated into KMS-encrypted secrets, and each component gets the login it needs and no other:
the MLflow task the admin's and the pipeline's, the worker and the scorer the pipeline's."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

from churn_common.settings import Settings
from tests.terraform_hcl import clean

TERRAFORM_DIR = Path(__file__).resolve().parents[3] / "infra" / "terraform"
SECRETS = {"admin": "mlflow_admin", "pipeline": "mlflow_pipeline", "flask": "mlflow_flask_secret_key"}
# One `NAME = value` entry of an object literal inside an expression such as merge(..., {...}).
ENTRY = re.compile(r'(?P<name>[A-Z][A-Z0-9_]*) = (?P<value>"[^"]*"|[\w.\[\]"]+)')


@cache
def _parsed() -> list[dict[str, Any]]:
    documents = []
    for path in sorted(TERRAFORM_DIR.glob("*.tf")):
        with path.open() as handle:
            documents.append(clean(hcl2.load(handle)))
    return documents


def _named(kind: str, type_: str | None = None) -> dict[str, dict[str, Any]]:
    """name -> body of the root's blocks of ``kind`` (modules), or of ``kind`` ``type_`` (resources, data)."""
    found: dict[str, dict[str, Any]] = {}
    for document in _parsed():
        for entry in document.get(kind, []):
            bodies = entry.get(type_, {}) if type_ else entry
            found.update(bodies)
    return found


def _locals() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for document in _parsed():
        for block in document.get("locals", []):
            merged.update(block)
    return merged


def _resolved(expression: str) -> str:
    """``local.x`` references replaced by their values until none is left, interpolation braces dropped:
    ``"${local.a}:b"`` and ``"${aws_x.y.arn}:b"`` both read ``aws_x.y.arn:b``."""
    locals_ = _locals()
    expression = expression.replace("${", "").replace("}", "")
    for _ in range(5):
        expression = re.sub(
            r"(?<![\w.])local\.(\w+)",
            lambda m: str(locals_[m.group(1)]).replace("${", "").replace("}", ""),
            expression,
        )
    return expression


def _entries(expression: str | dict[str, str]) -> dict[str, str]:
    """The variables of an environment or secrets map written as merge(local.a, {...}), locals resolved."""
    if isinstance(expression, dict):
        return {name: _resolved(value) for name, value in expression.items()}
    entries: dict[str, str] = {}
    for local in re.findall(r"(?<![\w.])local\.(\w+)", expression.split("{", 1)[0] + expression):
        value = _locals().get(local)
        if isinstance(value, dict):
            entries |= {name: _resolved(item) for name, item in value.items()}
    for match in ENTRY.finditer(expression.replace("${", "").replace("}", "")):
        entries[match["name"]] = _resolved(match["value"].strip('"'))
    return entries


def _arn(secret: str) -> str:
    return f"aws_secretsmanager_secret.{SECRETS[secret]}.arn"


def _secret_of(reference: str) -> str:
    """``<arn>:<json key>::`` or ``<arn>`` -> the ARN's expression."""
    return _resolved(reference).split(":", 1)[0]


def test_the_mlflow_server_runs_the_basic_auth_app() -> None:
    command = _named("module")["mlflow"]["command"]
    assert command[:2] == ["mlflow", "server"]
    position = command.index("--app-name")
    assert command[position + 1] == "basic-auth"


def test_users_and_grants_are_kept_in_a_database_of_their_own_that_the_task_creates() -> None:
    environment = _entries(_named("module")["mlflow"]["environment"])
    assert environment["MLFLOW_AUTH_DATABASE"] == "mlflow_auth"
    assert "mlflow_auth" in environment["ENSURE_DATABASES"].split(",")
    assert environment["MODEL_NAME"] == "var.model_name"


def test_the_passwords_are_generated_into_kms_encrypted_secrets() -> None:
    secrets = _named("resource", "aws_secretsmanager_secret")
    versions = _named("resource", "aws_secretsmanager_secret_version")
    generated = _named("resource", "random_password")
    for resource in SECRETS.values():
        assert _resolved(secrets[resource]["kms_key_id"]) == "aws_kms_key.main.arn", resource
        value = versions[resource]["secret_string"]
        assert f"random_password.{resource}.result" in value, resource
        assert generated[resource]["length"] >= 32, resource
    for login in ("mlflow_admin", "mlflow_pipeline"):  # JSON: ECS takes single keys, the scorer both
        assert re.search(
            r"jsonencode\(\{\s*username = .*, password = random_password", versions[login]["secret_string"]
        )


def test_the_mlflow_task_gets_both_logins_and_the_csrf_key_from_secrets_manager() -> None:
    mlflow = _named("module")["mlflow"]
    secrets = _entries(mlflow["secrets"])
    environment = _entries(mlflow["environment"])
    expected = {
        "MLFLOW_AUTH_ADMIN_USERNAME": f"{_arn('admin')}:username::",
        "MLFLOW_AUTH_ADMIN_PASSWORD": f"{_arn('admin')}:password::",
        "MLFLOW_PIPELINE_USERNAME": f"{_arn('pipeline')}:username::",
        "MLFLOW_PIPELINE_PASSWORD": f"{_arn('pipeline')}:password::",
        "MLFLOW_FLASK_SERVER_SECRET_KEY": _arn("flask"),
    }
    assert {name: secrets.get(name) for name in expected} == expected
    assert not {name for name in environment if "PASSWORD" in name or "SECRET_KEY" in name}
    # the execution role may read exactly the secrets the definition references
    readable = {_secret_of(arn) for arn in mlflow["secret_arns"]}
    assert readable == {_secret_of(reference) for reference in secrets.values()}


def test_the_worker_logs_in_as_the_pipeline_user_through_ecs_secrets() -> None:
    worker = _named("module")["prefect_worker"]
    secrets = _entries(worker["secrets"])
    assert secrets["MLFLOW_TRACKING_USERNAME"] == f"{_arn('pipeline')}:username::"
    assert secrets["MLFLOW_TRACKING_PASSWORD"] == f"{_arn('pipeline')}:password::"
    readable = {_secret_of(arn) for arn in worker["secret_arns"]}
    assert _arn("pipeline") in readable
    assert not {_arn("admin"), _arn("flask")} & readable


def test_the_scorer_reads_the_pipeline_secret_by_arn_and_may_read_no_other_mlflow_secret() -> None:
    environment = _entries(_named("module")["stream_scorer"]["environment"])
    assert environment["MLFLOW_CREDENTIALS_SECRET_ARN"] == _arn("pipeline")
    settings = {field.alias for field in Settings.model_fields.values()}
    assert {"MLFLOW_CREDENTIALS_SECRET_ARN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"} <= settings
    statements = _named("data", "aws_iam_policy_document")["stream_scorer"]["statement"]
    reads = [s for s in statements if "secretsmanager:GetSecretValue" in s["actions"]]
    mlflow_reads = [s for s in reads if "mlflow" in _resolved(" ".join(s["resources"]))]
    assert len(mlflow_reads) == 1
    (statement,) = mlflow_reads
    assert statement["actions"] == ["secretsmanager:GetSecretValue"]
    assert [_secret_of(resource) for resource in statement["resources"]] == [_arn("pipeline")]
