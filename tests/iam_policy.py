"""The IAM a component is deployed with, checked against the AWS calls it really makes.

``render_policy`` turns an ``aws_iam_policy_document`` of infra/terraform into the IAM JSON Terraform would
produce, with the ARNs of the local resources. ``CallRecorder`` records every AWS call a client makes
(a botocore event hook), and ``required_permissions`` maps each call to the IAM actions, resources and
condition keys AWS authorises it against (per the Service Authorization Reference). ``is_allowed``
evaluates one permission as AWS does for identity policies: an Allow statement whose action and resource
patterns match and whose every condition holds (a condition on a key the request does not carry fails).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import hcl2

TERRAFORM_DIR = Path(__file__).resolve().parent.parent / "infra" / "terraform"
PREFIXES = {
    "input": "data/input/",
    "rejected": "data/rejected/",
    "manifests": "data/manifests/",
    "processed": "data/processed/",
    "errored": "data/errored/",
    "reports": "reports/",
    "mlflow": "mlflow-artifacts/",
}
_REFERENCE = re.compile(r"\$\{([^}]+)\}")
_FOR = re.compile(r'^\$\{\[for (\w+) in \[(.*?)\] : "(.*)"\]\}$')


def _unquoted(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _substitute(text: str, references: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("local.prefixes."):
            return PREFIXES[name.removeprefix("local.prefixes.")]
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


def render_policy(document: str, references: dict[str, str], *, path: Path = TERRAFORM_DIR / "lambda.tf") -> dict:
    """The IAM JSON of ``data.aws_iam_policy_document.<document>`` with ``references`` substituted."""
    with path.open() as handle:
        parsed = hcl2.load(handle)
    for entry in parsed.get("data", []):
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


@dataclass(frozen=True, slots=True)
class Permission:
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()


_CONDITION_TESTS = {
    "StringLike": fnmatch.fnmatchcase,
    "StringEquals": lambda value, pattern: value == pattern,
}


def is_allowed(policy: dict, permission: Permission) -> bool:
    context = dict(permission.context)
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        if not any(fnmatch.fnmatch(permission.action.lower(), a.lower()) for a in statement["Action"]):
            continue
        if not any(fnmatch.fnmatchcase(permission.resource, r) for r in statement["Resource"]):
            continue
        conditions = statement.get("Condition", {})
        if all(
            key in context and any(_CONDITION_TESTS[test](context[key], pattern) for pattern in patterns)
            for test, keys in conditions.items()
            for key, patterns in keys.items()
        ):
            return True
    return False


@dataclass
class CallRecorder:
    """Every call the clients it is attached to make while it records: (service, operation, parameters)."""

    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    active: bool = False

    @contextmanager
    def recording(self) -> Iterator[None]:
        self.active = True
        try:
            yield
        finally:
            self.active = False

    def attach(self, client: Any) -> None:
        client.meta.events.register("provide-client-params.*.*", self._record)

    def detach(self, client: Any) -> None:
        client.meta.events.unregister("provide-client-params.*.*", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.active:
            self.calls.append((model.service_model.service_name, model.name, dict(params)))


def _object(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _queue_arn(url_or_name: str, *, region: str, account: str) -> str:
    name = urlparse(url_or_name).path.rsplit("/", 1)[-1] if "/" in url_or_name else url_or_name
    return f"arn:aws:sqs:{region}:{account}:{name}"


def required_permissions(
    service: str, operation: str, params: dict[str, Any], *, region: str, account: str
) -> Iterator[Permission]:
    """What AWS checks for one call (Service Authorization Reference); unknown calls raise, so a new call
    in the code cannot pass unexamined."""
    bucket = params.get("Bucket", "")
    versioned = bool(params.get("VersionId"))
    match service, operation:
        case "s3", "GetObject" | "HeadObject":
            yield Permission("s3:GetObjectVersion" if versioned else "s3:GetObject", _object(bucket, params["Key"]))
        case "s3", "PutObject" | "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload":
            yield Permission("s3:PutObject", _object(bucket, params["Key"]))
        case "s3", "AbortMultipartUpload":
            yield Permission("s3:AbortMultipartUpload", _object(bucket, params["Key"]))
        case "s3", "DeleteObject":
            action = "s3:DeleteObjectVersion" if versioned else "s3:DeleteObject"
            yield Permission(action, _object(bucket, params["Key"]))
        case "s3", "CopyObject":
            source = params["CopySource"]
            source_versioned = bool(source.get("VersionId"))
            source_arn = _object(source["Bucket"], source["Key"])
            yield Permission("s3:GetObjectVersion" if source_versioned else "s3:GetObject", source_arn)
            yield Permission("s3:GetObjectVersionTagging" if source_versioned else "s3:GetObjectTagging", source_arn)
            yield Permission("s3:PutObject", _object(bucket, params["Key"]))
            yield Permission("s3:PutObjectTagging", _object(bucket, params["Key"]))
        case "s3", "ListObjectsV2" | "ListObjects":
            prefix = (("s3:prefix", params["Prefix"]),) if "Prefix" in params else ()
            yield Permission("s3:ListBucket", f"arn:aws:s3:::{bucket}", prefix)
        case "s3", "ListObjectVersions":
            prefix = (("s3:prefix", params["Prefix"]),) if "Prefix" in params else ()
            yield Permission("s3:ListBucketVersions", f"arn:aws:s3:::{bucket}", prefix)
        case "kinesis", "PutRecords" | "PutRecord" | "ListShards" | "DescribeStreamSummary" | "DescribeStream":
            stream = params.get("StreamARN") or f"arn:aws:kinesis:{region}:{account}:stream/{params['StreamName']}"
            yield Permission(f"kinesis:{operation}", stream)
        case "sqs", "GetQueueUrl":
            yield Permission("sqs:GetQueueUrl", _queue_arn(params["QueueName"], region=region, account=account))
        case "sqs", "SendMessage" | "ReceiveMessage" | "DeleteMessage" | "ChangeMessageVisibility":
            yield Permission(f"sqs:{operation}", _queue_arn(params["QueueUrl"], region=region, account=account))
        case _:
            raise LookupError(
                f"no IAM mapping for {service}:{operation}: add it from the Service Authorization Reference"
            )
