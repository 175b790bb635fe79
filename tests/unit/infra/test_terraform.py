"""Static checks of infra/terraform, parsed with python-hcl2.

Checked: encryption and privacy of the data stores, event source mappings taken from
infra/event_source_mappings.json (never copied) and equal to what the local stack runs with,
least-privilege IAM, documented variables and outputs, Lambda environment variables named as in
churn_common/settings.py, and a written reason for every skipped checkov check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import pytest

from churn_common.settings import Settings, get_settings
from infra.local.lambda_service import KinesisMappingConfig
from infra.local.resources import FILE_DROPS_DLQ, SCORER_DLQ, STREAM_SHARDS, event_source_mappings
from tests.terraform_hcl import clean

REPO_ROOT = Path(__file__).resolve().parents[3]
TERRAFORM_DIR = REPO_ROOT / "infra" / "terraform"
MAPPINGS_FILE = REPO_ROOT / "infra" / "event_source_mappings.json"
MAPPINGS = {key: value for key, value in json.loads(MAPPINGS_FILE.read_text()).items() if not key.startswith("_")}

# Settings of the mappings file that are arguments of aws_lambda_event_source_mapping.
ESM_ARGUMENTS = {
    "batch_size",
    "maximum_batching_window_in_seconds",
    "function_response_types",
    "starting_position",
    "bisect_batch_on_function_error",
    "maximum_retry_attempts",
    "maximum_record_age_in_seconds",
    "parallelization_factor",
}
DECODE_MAPPINGS = '${jsondecode(file("${path.module}/../event_source_mappings.json"))}'
# Environment variables that are not churn_common settings but are read by libraries or the image.
NON_SETTINGS_ENVIRONMENT = {
    "MLFLOW_DISABLE_TELEMETRY",
    "DO_NOT_TRACK",
    "DATABASE_SECRET_ARN",
    "DATABASE_HOST",
    "DATABASE_PORT",
    "DATABASE_NAME",
    "DATABASE_SSLMODE",
}


@dataclass(frozen=True)
class Block:
    path: Path
    kind: str  # resource, data, module, variable, output, locals, terraform
    labels: tuple[str, ...]
    body: dict[str, Any]


def _blocks_of(path: Path) -> Iterator[Block]:
    with path.open() as handle:
        parsed = clean(hcl2.load(handle))
    for kind, entries in parsed.items():
        for entry in entries:
            if kind in {"resource", "data"}:
                for type_, named in entry.items():
                    for name, body in named.items():
                        yield Block(path, kind, (type_, name), body)
            elif kind in {"module", "variable", "output"}:
                for name, body in entry.items():
                    yield Block(path, kind, (name,), body)
            else:
                yield Block(path, kind, (), entry)


@pytest.fixture(scope="module")
def blocks() -> list[Block]:
    return [block for path in sorted(TERRAFORM_DIR.rglob("*.tf")) for block in _blocks_of(path)]


def _of(blocks: list[Block], kind: str, type_: str | None = None) -> list[Block]:
    return [b for b in blocks if b.kind == kind and (type_ is None or b.labels[0] == type_)]


def _root(blocks: list[Block]) -> list[Block]:
    return [b for b in blocks if b.path.parent == TERRAFORM_DIR]


def _single(value: Any) -> Any:
    """A nested block is a list of one body."""
    if isinstance(value, list):
        assert len(value) == 1, value
        return value[0]
    return value


def _locals(blocks: list[Block]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in _of(_root(blocks), "locals"):
        merged.update(block.body)
    return merged


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------------------------------------------
# Data stores
# ---------------------------------------------------------------------------------------------------


def test_rds_is_private_encrypted_and_keeps_its_password_in_secrets_manager(blocks: list[Block]) -> None:
    instances = _of(blocks, "resource", "aws_db_instance")
    assert instances
    for instance in instances:
        assert instance.body["publicly_accessible"] is False
        assert instance.body["storage_encrypted"] is True
        assert instance.body["manage_master_user_password"] is True
        assert "password" not in instance.body


def test_kinesis_stream_is_kms_encrypted(blocks: list[Block]) -> None:
    streams = _of(blocks, "resource", "aws_kinesis_stream")
    assert streams
    for stream in streams:
        assert stream.body["encryption_type"] == "KMS"
        assert stream.body["kms_key_id"]


def test_every_bucket_has_encryption_and_a_full_public_access_block(blocks: list[Block]) -> None:
    buckets = _of(blocks, "resource", "aws_s3_bucket")
    assert buckets
    for bucket in buckets:
        ref = f"${{aws_s3_bucket.{bucket.labels[1]}.id}}"
        in_module = [b for b in blocks if b.path.parent == bucket.path.parent]
        encryption = [
            b for b in _of(in_module, "resource", "aws_s3_bucket_server_side_encryption_configuration")
            if b.body["bucket"] == ref
        ]  # fmt: skip
        assert encryption, f"no server-side encryption for {bucket.labels}"
        default = _single(_single(_single(encryption[0].body["rule"])["apply_server_side_encryption_by_default"]))
        assert default["sse_algorithm"] in {"aws:kms", "aws:kms:dsse", "AES256"}
        access_blocks = _of(in_module, "resource", "aws_s3_bucket_public_access_block")
        blocks_public = [b for b in access_blocks if b.body["bucket"] == ref]
        assert blocks_public, f"no public access block for {bucket.labels}"
        for setting in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
            assert blocks_public[0].body[setting] is True, (bucket.labels, setting)


def test_data_bucket_uses_kms_and_notifies_the_file_drops_queue(blocks: list[Block]) -> None:
    module_dir = TERRAFORM_DIR / "modules" / "s3_bucket"
    (encryption,) = [
        b for b in _of(blocks, "resource", "aws_s3_bucket_server_side_encryption_configuration")
        if b.path.parent == module_dir
    ]  # fmt: skip
    default = _single(_single(encryption.body["rule"])["apply_server_side_encryption_by_default"])
    assert default["sse_algorithm"] == "aws:kms"
    (notification,) = _of(blocks, "resource", "aws_s3_bucket_notification")
    queue = _single(notification.body["queue"])
    assert queue["filter_prefix"] == "${local.prefixes.input}"
    assert _locals(blocks)["prefixes"]["input"] == "data/input/"
    # every name is announced: the producer errors what it cannot read instead of never seeing it
    assert "filter_suffix" not in queue
    assert queue["queue_arn"] == "${module.file_drops_queue.arn}"


def test_processed_files_and_reports_expire_and_the_bucket_module_makes_a_rule_per_prefix(blocks: list[Block]) -> None:
    (data_bucket,) = [b for b in _of(blocks, "module") if b.labels[0] == "data_bucket"]
    expiring = {key.strip("${}()"): value for key, value in data_bucket.body["expiring_prefixes"].items()}
    assert expiring == {
        "local.prefixes.processed": "${var.processed_expiration_days}",
        "local.prefixes.reports": "${var.reports_expiration_days}",
    }
    assert _locals(blocks)["prefixes"]["reports"] == get_settings().reports_prefix
    (lifecycle,) = [
        b for b in _of(blocks, "resource", "aws_s3_bucket_lifecycle_configuration")
        if b.path.parent == TERRAFORM_DIR / "modules" / "s3_bucket"
    ]  # fmt: skip
    rule = next(r for r in _as_list(lifecycle.body["dynamic"]) if "rule" in r)["rule"]
    assert _single(rule)["for_each"] == "${var.expiring_prefixes}"


def test_queues_topics_and_logs_are_encrypted(blocks: list[Block]) -> None:
    for queue in _of(blocks, "resource", "aws_sqs_queue"):
        assert queue.body.get("kms_master_key_id"), queue.labels
    for topic in _of(blocks, "resource", "aws_sns_topic"):
        assert topic.body.get("kms_master_key_id"), topic.labels
    for group in _of(blocks, "resource", "aws_cloudwatch_log_group"):
        assert group.body.get("kms_key_id"), (group.path.name, group.labels)


# ---------------------------------------------------------------------------------------------------
# Event source mappings: values only by reference to infra/event_source_mappings.json
# ---------------------------------------------------------------------------------------------------


def _mapping_aliases(blocks: list[Block]) -> tuple[str, dict[str, str]]:
    """The local that decodes the mappings file, and function name -> expression of its mapping."""
    locals_ = _locals(blocks)
    decoded = [name for name, value in locals_.items() if value == DECODE_MAPPINGS]
    assert len(decoded) == 1, f"one local must be {DECODE_MAPPINGS}"
    base = f"local.{decoded[0]}"
    aliases: dict[str, str] = {}
    for function in MAPPINGS:
        direct = f"{base}.{function}"
        via = [name for name, value in locals_.items() if value == f"${{{direct}}}"]
        aliases[function] = f"local.{via[0]}" if via else direct
    return base, aliases


def test_event_source_mapping_settings_come_from_the_json_file(blocks: list[Block]) -> None:
    _, aliases = _mapping_aliases(blocks)
    mappings = {b.labels[1]: b.body for b in _of(_root(blocks), "resource", "aws_lambda_event_source_mapping")}
    assert set(mappings) == set(MAPPINGS), "one aws_lambda_event_source_mapping per function, named after it"
    for function, settings in MAPPINGS.items():
        resource = mappings[function]
        for key in ESM_ARGUMENTS & settings.keys():
            assert resource.get(key) == f"${{{aliases[function]}.{key}}}", f"{function}.{key} must reference the file"
        for key in ESM_ARGUMENTS - settings.keys():
            assert key not in resource, f"{function}.{key} is set but not in {MAPPINGS_FILE.name}"


def test_every_setting_of_the_json_file_is_used(blocks: list[Block]) -> None:
    _, aliases = _mapping_aliases(blocks)
    text = "\n".join(path.read_text() for path in TERRAFORM_DIR.glob("*.tf"))
    for function, settings in MAPPINGS.items():
        for key in settings:
            assert f"{aliases[function]}.{key}" in text, f"{function}.{key} of {MAPPINGS_FILE.name} is not used"


def test_queue_settings_and_failure_destination_follow_the_file(blocks: list[Block]) -> None:
    _, aliases = _mapping_aliases(blocks)
    modules = {b.labels[0]: b.body for b in _of(_root(blocks), "module")}
    producer = aliases["producer"]
    drops = modules["file_drops_queue"]
    assert drops["visibility_timeout_seconds"] == f"${{{producer}.visibility_timeout_seconds}}"
    assert drops["dead_letter_queue"]["max_receive_count"] == f"${{{producer}.max_receive_count}}"
    scorer = {b.labels[1]: b.body for b in _of(_root(blocks), "resource", "aws_lambda_event_source_mapping")}[
        "stream_scorer"
    ]
    on_failure = _single(_single(scorer["destination_config"])["on_failure"])
    assert on_failure["destination_arn"] == "${module.scorer_dlq.arn}"
    assert "on_failure_destination" in _locals(blocks)["scorer_dlq_name"]
    assert modules["scorer_dlq"]["name"] == "${local.scorer_dlq_name}"


# ---------------------------------------------------------------------------------------------------
# IAM
# ---------------------------------------------------------------------------------------------------


def _statements(blocks: list[Block]) -> Iterator[tuple[Block, dict[str, Any]]]:
    for document in _of(blocks, "data", "aws_iam_policy_document"):
        for statement in _as_list(document.body.get("statement", [])):
            yield document, statement


def test_no_statement_allows_every_action_on_every_resource(blocks: list[Block]) -> None:
    statements = list(_statements(blocks))
    assert statements
    for document, statement in statements:
        actions = [str(a) for a in _as_list(statement.get("actions", []))]
        resources = [str(r) for r in _as_list(statement.get("resources", []))]
        assert "not_actions" not in statement, document.labels
        assert "*" not in actions, f"{document.path.name} {document.labels}: Action '*'"
        if statement.get("effect", "Allow") == "Allow":
            assert not ({"*", "*:*"} & set(actions) and "*" in resources), document.labels


def test_no_inline_json_policy_grants_everything() -> None:
    for path in TERRAFORM_DIR.rglob("*.tf"):
        text = path.read_text()
        assert not re.search(r'Action\s*[=:]\s*\[?\s*"\*"', text), path
        assert "AdministratorAccess" not in text, path
        assert "PowerUserAccess" not in text, path


def test_each_function_and_service_has_its_own_role(blocks: list[Block]) -> None:
    sources = {"./modules/lambda_function", "./modules/ecs_service"}
    modules = [b for b in _of(_root(blocks), "module") if b.body["source"] in sources]
    names = [b.body.get("function_name", b.body.get("name")) for b in modules]
    assert len(modules) == 6  # producer, stream_scorer, mlflow, prefect_server, prefect_worker, grafana
    assert len(set(names)) == len(names)


# ---------------------------------------------------------------------------------------------------
# Conventions
# ---------------------------------------------------------------------------------------------------


def test_versions_and_partial_s3_backend(blocks: list[Block]) -> None:
    (block,) = _of(_root(blocks), "terraform")
    terraform = block.body
    assert terraform["required_version"].replace(" ", "").startswith(">=1.6")
    providers = _single(terraform["required_providers"])
    assert re.fullmatch(r"~>\s*5(\.\d+)*", providers["aws"]["version"])
    backend = _single(terraform["backend"])
    assert backend == {"s3": {}}


def test_variables_and_outputs_are_documented(blocks: list[Block]) -> None:
    for block in _of(blocks, "variable") + _of(blocks, "output"):
        where = f"{block.path.relative_to(TERRAFORM_DIR)}: {block.labels}"
        assert str(block.body.get("description", "")).strip(), where


def test_tfvars_template_lists_every_root_variable(blocks: list[Block]) -> None:
    template = (TERRAFORM_DIR / "vars" / "dev.tfvars.template").read_text()
    for variable in _of(_root(blocks), "variable"):
        assert re.search(rf"^#?\s*{variable.labels[0]}\s*=", template, re.MULTILINE), variable.labels[0]


def test_lambda_functions_are_container_images(blocks: list[Block]) -> None:
    (function,) = _of(blocks, "resource", "aws_lambda_function")
    assert function.body["package_type"] == "Image"
    assert function.body["image_uri"] == "${var.image_uri}"


def test_application_environment_uses_the_settings_names(blocks: list[Block]) -> None:
    aliases = {field.alias for field in Settings.model_fields.values() if field.alias}
    locals_ = _locals(blocks)
    names = set(locals_["common_environment"]) | set(locals_["database_environment"])
    unknown = names - aliases - NON_SETTINGS_ENVIRONMENT
    assert not unknown, f"not settings of churn_common/settings.py: {unknown}"
    required = {"CHURN_BUCKET", "KINESIS_STREAM", "MLFLOW_TRACKING_URI", "MODEL_NAME", "MODEL_ALIAS", "ALERT_TOPIC_ARN"}
    assert required <= names


# ---------------------------------------------------------------------------------------------------
# The deployed event source mappings equal the local stack's
# ---------------------------------------------------------------------------------------------------


def _resolve(expression: Any, locals_: dict[str, Any]) -> Any:
    """The value of a ``${local.a.b}`` reference, followed down to the mappings file as the local stack reads it."""
    if expression == DECODE_MAPPINGS:
        return event_source_mappings()
    match = re.fullmatch(r"\$\{local\.([\w.]+)\}", expression) if isinstance(expression, str) else None
    if match is None:
        return expression
    name, *path = match.group(1).split(".")
    value = _resolve(locals_[name], locals_)
    for key in path:
        value = value[key]
    return value


def _deployed_mapping(blocks: list[Block], function: str) -> dict[str, Any]:
    mappings = _of(_root(blocks), "resource", "aws_lambda_event_source_mapping")
    (resource,) = [b for b in mappings if b.labels[1] == function]
    locals_ = _locals(blocks)
    return {key: _resolve(resource.body[key], locals_) for key in ESM_ARGUMENTS & resource.body.keys()}


def test_scorer_mapping_deploys_what_the_local_lambda_service_runs_with(blocks: list[Block]) -> None:
    # GIVEN the settings the local Lambda service polls the stream with
    local = KinesisMappingConfig.from_mapping(event_source_mappings()["stream_scorer"], on_failure_queue_url=None)

    # WHEN the Terraform arguments of the scorer's mapping are evaluated
    deployed = _deployed_mapping(blocks, "stream_scorer")

    # THEN every setting the local service honours has the same value in AWS
    assert deployed["batch_size"] == local.batch_size
    assert deployed["maximum_batching_window_in_seconds"] == local.batching_window_seconds
    assert deployed["starting_position"] == local.starting_position
    assert deployed["bisect_batch_on_function_error"] is local.bisect_on_error
    assert deployed["maximum_retry_attempts"] == local.maximum_retry_attempts
    assert deployed["maximum_record_age_in_seconds"] == local.maximum_record_age_seconds
    assert ("ReportBatchItemFailures" in deployed["function_response_types"]) is local.report_batch_item_failures
    assert deployed["parallelization_factor"] == 1, "the local service runs one poller per shard"


def test_producer_mapping_and_queue_deploy_what_the_local_stack_runs_with(blocks: list[Block]) -> None:
    # GIVEN the producer settings the local stack reads (batch size of its SQS poller, queue attributes)
    local = event_source_mappings()["producer"]
    locals_ = _locals(blocks)
    drops = {b.labels[0]: b.body for b in _of(_root(blocks), "module")}["file_drops_queue"]

    # WHEN the Terraform arguments are evaluated
    deployed = _deployed_mapping(blocks, "producer")

    # THEN they are equal
    assert deployed["batch_size"] == local["batch_size"]
    assert deployed["maximum_batching_window_in_seconds"] == local["maximum_batching_window_in_seconds"]
    assert deployed["function_response_types"] == ["ReportBatchItemFailures"]
    assert _resolve(drops["visibility_timeout_seconds"], locals_) == local["visibility_timeout_seconds"]
    assert _resolve(drops["dead_letter_queue"]["max_receive_count"], locals_) == local["max_receive_count"]


def test_resource_names_and_shards_default_to_the_local_stack(blocks: list[Block]) -> None:
    # GIVEN the names the application and the local stack use when nothing is configured
    settings = get_settings()
    mappings = event_source_mappings()
    variables = {b.labels[0]: b.body for b in _of(_root(blocks), "variable")}

    # THEN the Terraform derives the same names from the mappings file (with an empty suffix) and
    # provisions as many shards as the local stack by default
    assert mappings["producer"]["source"] == f"sqs:{settings.file_drops_queue}"
    assert f"{settings.file_drops_queue}-dlq" == FILE_DROPS_DLQ
    assert mappings["stream_scorer"]["source"] == f"kinesis:{settings.stream_name}"
    assert mappings["stream_scorer"]["on_failure_destination"] == f"sqs:{SCORER_DLQ}"
    assert _locals(blocks)["alert_topic_name"] == f"{settings.alert_topic}${{var.resource_name_suffix}}"
    assert variables["resource_name_suffix"]["default"] == ""
    assert variables["kinesis_shard_count"]["default"] == STREAM_SHARDS


# ---------------------------------------------------------------------------------------------------
# Network exposure and encryption of the remaining stores
# ---------------------------------------------------------------------------------------------------


def test_only_the_load_balancer_accepts_traffic_from_cidr_blocks(blocks: list[Block]) -> None:
    rules = _of(blocks, "resource", "aws_vpc_security_group_ingress_rule")
    assert rules
    for rule in rules:
        if "cidr_ipv4" in rule.body or "cidr_ipv6" in rule.body:
            assert rule.body["security_group_id"] == '${aws_security_group.this["alb"].id}', rule.labels
        else:
            assert rule.body["referenced_security_group_id"], rule.labels
    allowed = {b.labels[0]: b.body for b in _of(_root(blocks), "variable")}["allowed_cidr_blocks"]
    assert "0.0.0.0/0" in _single(allowed["validation"])["condition"], "the validation must reject 0.0.0.0/0"


def test_secrets_images_and_function_environments_are_kms_encrypted(blocks: list[Block]) -> None:
    for secret in _of(blocks, "resource", "aws_secretsmanager_secret"):
        assert secret.body.get("kms_key_id"), secret.labels
    repositories = _of(blocks, "resource", "aws_ecr_repository")
    assert repositories
    for repository in repositories:
        encryption = _single(repository.body["encryption_configuration"])
        assert encryption["encryption_type"] == "KMS"
        assert repository.body["image_tag_mutability"] == "IMMUTABLE"
    (function,) = _of(blocks, "resource", "aws_lambda_function")
    assert function.body["kms_key_arn"]


def test_destroying_data_needs_an_explicit_opt_in(blocks: list[Block]) -> None:
    variables = {b.labels[0]: b.body for b in _of(_root(blocks), "variable")}
    assert variables["force_destroy"]["default"] is False
    assert variables["db_deletion_protection"]["default"] is True
    assert variables["alb_deletion_protection"]["default"] is True
    (instance,) = _of(blocks, "resource", "aws_db_instance")
    assert instance.body["skip_final_snapshot"] is False


# ---------------------------------------------------------------------------------------------------
# checkov skips carry their reason
# ---------------------------------------------------------------------------------------------------

SKIP_COMMENT = re.compile(r"checkov:skip=(?P<check>[^:\s]*)(?::(?P<reason>.*))?")
SCANNED_FILES = [*sorted(TERRAFORM_DIR.rglob("*.tf")), *sorted((REPO_ROOT / "infra" / "docker").glob("*.Dockerfile"))]
MIN_REASON_WORDS = 6


def test_every_checkov_skip_names_a_check_and_says_why() -> None:
    skips = [
        (path, match)
        for path in SCANNED_FILES
        for line in path.read_text().splitlines()
        if (match := SKIP_COMMENT.search(line))
    ]
    assert skips, "the scan found no skip comments at all: the pattern is wrong"
    for path, match in skips:
        where = f"{path.relative_to(REPO_ROOT)}: {match.group(0)}"
        assert re.fullmatch(r"CKV2?_[A-Z]+_\d+", match.group("check")), where
        assert len((match.group("reason") or "").split()) >= MIN_REASON_WORDS, f"no written reason: {where}"


def test_grafana_reads_the_database_with_its_own_read_only_login(blocks: list[Block]) -> None:
    modules = {b.labels[0]: b.body for b in _of(_root(blocks), "module")}
    grafana, worker = modules["grafana"], modules["prefect_worker"]
    reader_secret = "${aws_secretsmanager_secret.grafana_db_reader.arn}"
    # Grafana never sees the master user's secret
    assert grafana["secret_arns"] == ["${aws_secretsmanager_secret.grafana_admin.arn}", reader_secret]
    assert grafana["secrets"]["POSTGRES_PASSWORD"] == reader_secret
    assert grafana["environment"]["POSTGRES_USER"] == "${var.grafana_db_user}"
    # the schema owner (the worker) keeps that login under the same name and password
    assert "READONLY_ROLE_NAME = var.grafana_db_user" in worker["environment"]
    assert "READONLY_ROLE_PASSWORD = aws_secretsmanager_secret.grafana_db_reader.arn" in worker["secrets"]
    assert reader_secret in worker["secret_arns"]
