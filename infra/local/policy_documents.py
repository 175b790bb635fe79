"""The IAM policies the Terraform grants each component, rendered for the local resources.

``render_policy`` turns a ``data.aws_iam_policy_document`` of infra/terraform into the IAM JSON Terraform
would produce, with the local ARNs substituted. The local stack creates one emulator principal per
component holding that policy (infra/local/principals.py), and the IAM tests evaluate every AWS call a
component made against the same rendering, conditions included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import hcl2

from infra.local.resources import StackResources

TERRAFORM_DIR = Path(__file__).resolve().parents[1] / "terraform"
LOCAL_ACCOUNT = "123456789012"
# Services the emulator authorises against the resource "*" instead of the request's ARN.
AUTHORISED_AGAINST_ANY_RESOURCE = frozenset({"kinesis", "sns", "secretsmanager", "kms"})
# Actions of other services it authorises against "*": GetQueueUrl names its queue by QueueName, which the
# emulator does not read.
ACTIONS_AUTHORISED_AGAINST_ANY = frozenset({"sqs:GetQueueUrl"})
_REFERENCE = re.compile(r"\$\{([^}]+)\}")
_FOR = re.compile(r'^\$\{\[for (\w+) in \[(.*?)\] : "(.*)"\]\}$')

Policy = dict[str, Any]
PRODUCER, STREAM_SCORER, MONITOR, MLFLOW = "producer", "stream_scorer", "monitor", "mlflow"


@dataclass(frozen=True, slots=True)
class DeployedRole:
    """Where a component's policy document is, and the function or service that runs under it."""

    file: str
    document: str


DEPLOYED_ROLES: dict[str, DeployedRole] = {
    PRODUCER: DeployedRole(file="lambda.tf", document="producer"),
    STREAM_SCORER: DeployedRole(file="lambda.tf", document="stream_scorer"),
    MONITOR: DeployedRole(file="ecs.tf", document="prefect_worker"),
    MLFLOW: DeployedRole(file="ecs.tf", document="mlflow"),
}


def _unquoted(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@lru_cache(maxsize=8)
def _parsed(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return dict(hcl2.load(handle))


@lru_cache(maxsize=1)
def bucket_prefixes() -> dict[str, str]:
    """``local.prefixes`` of the Terraform: one definition of the bucket layout the policies grant."""
    for block in _parsed(TERRAFORM_DIR / "locals.tf").get("locals", []):
        if "prefixes" in block:
            return {name: _unquoted(value) for name, value in block["prefixes"].items()}
    raise KeyError(f"no local.prefixes in {TERRAFORM_DIR / 'locals.tf'}")


def _substitute(text: str, references: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("local.prefixes."):
            return bucket_prefixes()[name.removeprefix("local.prefixes.")]
        if name not in references:
            raise KeyError(f"no local value for {name} (in {text!r})")
        return references[name]

    return _REFERENCE.sub(value, text)


def _values(raw: Any, references: dict[str, str]) -> list[str]:
    if isinstance(raw, str) and (loop := _FOR.match(raw)):
        variable, items, template = loop.groups()
        names = [item.strip().strip('"') for item in items.split(",")]
        return [
            _substitute(template.replace(f"local.prefixes[{variable}]", f"local.prefixes.{name}"), references)
            for name in names
        ]
    return [_substitute(str(_unquoted(item)), references) for item in (raw if isinstance(raw, list) else [raw])]


def render_policy(document: str, references: dict[str, str], *, path: Path = TERRAFORM_DIR / "lambda.tf") -> Policy:
    """The IAM JSON of ``data.aws_iam_policy_document.<document>`` with ``references`` substituted."""
    for entry in _parsed(path).get("data", []):
        body = entry.get('"aws_iam_policy_document"', entry.get("aws_iam_policy_document", {}))
        found = body.get(f'"{document}"', body.get(document))
        if found is not None:
            break
    else:
        raise KeyError(f"no aws_iam_policy_document {document} in {path}")
    statements = []
    for raw in found["statement"]:
        statement: dict[str, Any] = {
            "Sid": _unquoted(raw.get("sid", "")),
            "Effect": _unquoted(raw.get("effect", "Allow")),
            "Action": [_unquoted(a) for a in raw["actions"]],
            "Resource": _values(raw["resources"], references),
        }
        conditions: dict[str, dict[str, list[str]]] = {}
        for condition in raw.get("condition", []):
            test, variable = _unquoted(condition["test"]), _unquoted(condition["variable"])
            conditions.setdefault(test, {})[variable] = _values(condition["values"], references)
        if conditions:
            statement["Condition"] = conditions
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def deployed_policy(component: str, references: dict[str, str]) -> Policy:
    role = DEPLOYED_ROLES[component]
    return render_policy(role.document, references, path=TERRAFORM_DIR / role.file)


def local_references(
    resources: StackResources, *, database_secret_arn: str | None, region: str, account: str = LOCAL_ACCOUNT
) -> dict[str, str]:
    """What each Terraform reference in the policy documents names on the local stack; a secret the local
    stack does not keep is named by an ARN nothing holds."""
    absent = f"arn:aws:secretsmanager:{region}:{account}:secret:absent-locally"
    return {
        "local.mlflow_pipeline_secret_arn": absent,
        "module.data_bucket.arn": f"arn:aws:s3:::{resources.bucket}",
        "module.file_drops_queue.arn": resources.file_drops_queue_arn,
        "module.stream.arn": resources.stream_arn,
        "module.scorer_dlq.arn": resources.scorer_dlq_arn,
        "module.alerts.arn": resources.alert_topic_arn,
        "local.database_secret_arn": database_secret_arn or absent,
        "aws_kms_key.main.arn": f"arn:aws:kms:{region}:{account}:key/local",
    }


def _checked_against_any(action: str) -> bool:
    return action.split(":", 1)[0] in AUTHORISED_AGAINST_ANY_RESOURCE or action in ACTIONS_AUTHORISED_AGAINST_ANY


def for_emulator(policy: Policy) -> Policy:
    """The policy as the emulator can enforce it: it never lets a condition of an identity policy hold, and
    it authorises some services and actions against "*" only. Both changes only widen the grant; the
    call-by-call IAM tests evaluate the exact rendering, conditions and ARNs included."""
    statements = []
    for statement in policy["Statement"]:
        widened = {key: value for key, value in statement.items() if key != "Condition"}
        against_any = [action for action in statement["Action"] if _checked_against_any(action)]
        by_arn = [action for action in statement["Action"] if not _checked_against_any(action)]
        if by_arn:
            statements.append({**widened, "Action": by_arn})
        if against_any:
            sid = f"{widened['Sid']}AnyResource" if by_arn else widened["Sid"]
            statements.append({**widened, "Sid": sid, "Action": against_any, "Resource": ["*"]})
    return {**policy, "Statement": statements}
