"""The IAM a component is deployed with, checked against the AWS calls it really makes.

``render_policy`` (infra/local/policy_documents.py) renders a component's policy with the local ARNs;
``CallRecorder`` records every AWS call a client makes
(a botocore event hook), and ``required_permissions`` maps each call to the IAM actions, resources and
condition keys AWS authorises it against (per the Service Authorization Reference). ``is_allowed``
evaluates one permission as AWS does for identity policies: an Allow statement whose action and resource
patterns match and whose every condition holds (a condition on a key the request does not carry fails).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from infra.local.aws_call_log import CallLogFile
from infra.local.principals import OPERATOR

REGION = "us-east-1"


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
        case "kinesis", "GetShardIterator" | "GetRecords":
            # GetRecords names its stream only by StreamARN; a call without it cannot be checked here.
            stream = params.get("StreamARN") or f"arn:aws:kinesis:{region}:{account}:stream/{params['StreamName']}"
            yield Permission(f"kinesis:{operation}", stream)
        case "sqs", "GetQueueAttributes":
            yield Permission("sqs:GetQueueAttributes", _queue_arn(params["QueueUrl"], region=region, account=account))
        case "sns", "Publish":
            yield Permission("sns:Publish", params["TopicArn"])
        case "secretsmanager", "GetSecretValue":
            if not params["SecretId"].startswith("arn:"):
                raise LookupError(f"secret read by name {params['SecretId']!r}: its ARN (and suffix) is unknown here")
            yield Permission("secretsmanager:GetSecretValue", params["SecretId"])
        case "sts", "GetCallerIdentity":
            return  # needs no permission: AWS answers it even under an explicit deny
        case "sqs", "GetQueueUrl":
            yield Permission("sqs:GetQueueUrl", _queue_arn(params["QueueName"], region=region, account=account))
        case "sqs", "SendMessage" | "ReceiveMessage" | "DeleteMessage" | "ChangeMessageVisibility":
            yield Permission(f"sqs:{operation}", _queue_arn(params["QueueUrl"], region=region, account=account))
        case _:
            raise LookupError(
                f"no IAM mapping for {service}:{operation}: add it from the Service Authorization Reference"
            )


@dataclass(frozen=True, slots=True)
class Denial:
    principal: str
    service: str
    operation: str
    permission: Permission


def denials(log: CallLogFile, *, region: str, account: str) -> list[Denial]:
    """Every permission a component's recorded call needs that its exact deployed policy does not grant
    (calls of the operator, the harness, are not a component's)."""
    found = []
    for call in log.calls:
        principal = call["principal"]
        if principal == OPERATOR:
            continue
        policy = log.policies[principal]
        for permission in required_permissions(
            call["service"], call["operation"], call["params"], region=region, account=account
        ):
            if not is_allowed(policy, permission):
                found.append(Denial(principal, call["service"], call["operation"], permission))
    return found


def operations_by_principal(log: CallLogFile) -> dict[str, set[str]]:
    made: dict[str, set[str]] = {}
    for call in log.calls:
        made.setdefault(call["principal"], set()).add(f"{call['service']}:{call['operation']}")
    return made
