"""infra/terraform checked against the AWS provider's schema (infra/lint/provider_schema), and the checker
proven on hand-written Terraform with one planted error each.

The schema is the real one, for the pinned provider version: the session fixture obtains it through
`make provider-schema`, the target `make lint` uses, which is a no-op once it is cached (CI runs `make lint`
first) and otherwise fetches it. A failure to obtain it fails the tests with make's output and the target's
name: a checker tested against no schema proves nothing, so there is no skip.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from infra.lint.provider_schema.__main__ import main
from infra.lint.provider_schema.check import Finding, check_configuration
from infra.lint.provider_schema.pin import MAKE_TARGET, SCHEMA_FILE, Pin
from infra.lint.provider_schema.schema import ProviderSchema, SchemaUnavailableError, load_schema

REPO_ROOT = Path(__file__).resolve().parents[3]
TERRAFORM_DIR = REPO_ROOT / "infra" / "terraform"
MAKE_TIMEOUT_SECONDS = 300
# A sub-make must not try to join the jobserver of a `make test` that runs these tests.
MAKE_ENVIRONMENT = {key: value for key, value in os.environ.items() if key not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}


@pytest.fixture(scope="session")
def schema() -> ProviderSchema:
    result = subprocess.run(
        ["make", "--no-print-directory", MAKE_TARGET],
        cwd=REPO_ROOT,
        env=MAKE_ENVIRONMENT,
        capture_output=True,
        text=True,
        timeout=MAKE_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"`make {MAKE_TARGET}` could not provide the provider schema:\n{result.stdout}{result.stderr}")
    return load_schema()


def _check(schema: ProviderSchema, root: Path, files: dict[str, str]) -> list[Finding]:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return check_configuration(root, schema=schema)


def _messages(findings: list[Finding]) -> list[str]:
    return [str(finding) for finding in findings]


def _only(findings: list[Finding], fragment: str) -> None:
    """Exactly one finding, and it says ``fragment``: the planted error and nothing else is reported."""
    assert len(findings) == 1, _messages(findings)
    assert fragment in str(findings[0]), _messages(findings)


# --------------------------------------------------------------------------------------------------
# The repository's Terraform
# --------------------------------------------------------------------------------------------------


def test_the_repository_terraform_has_no_findings(schema: ProviderSchema) -> None:
    assert _messages(check_configuration(TERRAFORM_DIR, schema=schema)) == []


def test_the_schema_is_the_pinned_provider_version(schema: ProviderSchema) -> None:
    assert schema.package == "@cdktf/provider-aws@19.46.0"
    assert schema.provider_version == "5.80.0"
    assert schema.resource("aws_s3_bucket_lifecycle_configuration") is not None
    assert schema.data_source("aws_region") is not None


# --------------------------------------------------------------------------------------------------
# Types, arguments, blocks
# --------------------------------------------------------------------------------------------------

VALID_BUCKET = """
resource "aws_s3_bucket" "this" {
  bucket = "example"
}
"""


def test_a_valid_module_has_no_findings(schema: ProviderSchema, tmp_path: Path) -> None:
    findings = _check(
        schema,
        tmp_path,
        {
            "main.tf": """
            resource "aws_s3_bucket" "this" {
              count = 1

              bucket        = "example"
              force_destroy = true
              tags          = { Name = "example" }

              lifecycle {
                ignore_changes = [tags]
              }
            }

            resource "aws_s3_bucket_versioning" "this" {
              bucket = aws_s3_bucket.this[0].id

              versioning_configuration {
                status = "Enabled"
              }

              depends_on = [aws_s3_bucket.this]
            }

            data "aws_caller_identity" "current" {}

            output "arn" {
              value = "${aws_s3_bucket.this[0].arn}/${data.aws_caller_identity.current.account_id}"
            }
            """
        },
    )
    assert _messages(findings) == []


def test_unknown_resource_type(schema: ProviderSchema, tmp_path: Path) -> None:
    findings = _check(schema, tmp_path, {"main.tf": 'resource "aws_s3_buckets" "this" {\n  bucket = "b"\n}\n'})
    _only(findings, "unknown resource type aws_s3_buckets")
    assert "did you mean aws_s3_bucket" in str(findings[0])
    assert str(findings[0]).startswith("main.tf:1: aws_s3_buckets.this: ")


def test_unknown_data_source_type(schema: ProviderSchema, tmp_path: Path) -> None:
    _only(_check(schema, tmp_path, {"main.tf": 'data "aws_regoin" "this" {}\n'}), "unknown data source aws_regoin")


def test_types_of_other_providers_are_not_checked(schema: ProviderSchema, tmp_path: Path) -> None:
    findings = _check(schema, tmp_path, {"main.tf": 'resource "random_password" "this" {\n  length = 16\n}\n'})
    assert _messages(findings) == []


def test_unknown_argument(schema: ProviderSchema, tmp_path: Path) -> None:
    findings = _check(schema, tmp_path, {"main.tf": 'resource "aws_s3_bucket" "this" {\n  buckett = "b"\n}\n'})
    _only(findings, "aws_s3_bucket.this: unsupported argument buckett (did you mean bucket")


def test_missing_required_argument(schema: ProviderSchema, tmp_path: Path) -> None:
    findings = _check(
        schema, tmp_path, {"main.tf": 'resource "aws_s3_bucket_policy" "this" {\n  bucket = "example"\n}\n'}
    )
    _only(findings, "aws_s3_bucket_policy.this: missing required argument policy")


def test_missing_required_block(schema: ProviderSchema, tmp_path: Path) -> None:
    findings = _check(
        schema, tmp_path, {"main.tf": 'resource "aws_s3_bucket_versioning" "this" {\n  bucket = "example"\n}\n'}
    )
    _only(findings, "missing required block versioning_configuration")


def test_missing_required_argument_of_a_nested_block(schema: ProviderSchema, tmp_path: Path) -> None:
    text = """
    resource "aws_s3_bucket_versioning" "this" {
      bucket = "example"

      versioning_configuration {
        mfa_delete = "Disabled"
      }
    }
    """
    _only(
        _check(schema, tmp_path, {"main.tf": text}),
        "aws_s3_bucket_versioning.this.versioning_configuration: missing required argument status",
    )


def test_unknown_nested_block(schema: ProviderSchema, tmp_path: Path) -> None:
    text = """
    resource "aws_s3_bucket_lifecycle_configuration" "this" {
      bucket = "example"

      rule {
        id     = "all"
        status = "Enabled"

        filter {
          prefix = ""
        }

        expirations {
          days = 1
        }
      }
    }
    """
    _only(
        _check(schema, tmp_path, {"main.tf": text}),
        "aws_s3_bucket_lifecycle_configuration.this.rule: unsupported block expirations (did you mean expiration",
    )


def test_unknown_argument_deep_in_nested_blocks(schema: ProviderSchema, tmp_path: Path) -> None:
    text = """
    resource "aws_s3_bucket_lifecycle_configuration" "this" {
      bucket = "example"

      rule {
        id     = "tagged"
        status = "Enabled"

        filter {
          and {
            prefix   = "logs/"
            tag_name = "x"
          }
        }
      }
    }
    """
    _only(_check(schema, tmp_path, {"main.tf": text}), "this.rule.filter.and: unsupported argument tag_name")


def test_computed_only_attribute_written(schema: ProviderSchema, tmp_path: Path) -> None:
    text = """
    resource "aws_s3_bucket" "this" {
      bucket = "example"
      arn    = "arn:aws:s3:::example"
    }
    """
    _only(_check(schema, tmp_path, {"main.tf": text}), "aws_s3_bucket.this: arn is computed-only")


def test_computed_only_attribute_written_in_a_data_source(schema: ProviderSchema, tmp_path: Path) -> None:
    text = 'data "aws_region" "this" {\n  description = "x"\n}\n'
    _only(_check(schema, tmp_path, {"main.tf": text}), "data.aws_region.this: description is computed-only")


def test_block_written_as_an_argument(schema: ProviderSchema, tmp_path: Path) -> None:
    text = """
    resource "aws_s3_bucket_versioning" "this" {
      bucket                   = "example"
      versioning_configuration = { status = "Enabled" }
    }
    """
    findings = _check(schema, tmp_path, {"main.tf": text})
    assert any("versioning_configuration is a block" in message for message in _messages(findings)), findings


def test_argument_written_as_a_block(schema: ProviderSchema, tmp_path: Path) -> None:
    text = """
    resource "aws_s3_bucket" "this" {
      bucket = "example"

      tags {
        Name = "example"
      }
    }
    """
    _only(_check(schema, tmp_path, {"main.tf": text}), "tags is an argument: write `tags = ...`")


def test_a_single_block_repeated(schema: ProviderSchema, tmp_path: Path) -> None:
    text = """
    resource "aws_s3_bucket_versioning" "this" {
      bucket = "example"

      versioning_configuration {
        status = "Enabled"
      }

      versioning_configuration {
        status = "Suspended"
      }
    }
    """
    _only(_check(schema, tmp_path, {"main.tf": text}), "at most one versioning_configuration block is allowed, found 2")


def test_provider_block_arguments(schema: ProviderSchema, tmp_path: Path) -> None:
    text = """
    provider "aws" {
      alias   = "east"
      region  = "us-east-1"
      regoin  = "us-east-1"

      default_tags {
        tags = { Project = "x" }
      }
    }
    """
    _only(_check(schema, tmp_path, {"main.tf": text}), "provider.aws: unsupported argument regoin")


# --------------------------------------------------------------------------------------------------
# Dynamic blocks and meta-arguments
# --------------------------------------------------------------------------------------------------

LIFECYCLE_WITH_DYNAMIC_RULES = """
variable "prefixes" {
  type    = map(number)
  default = {}
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = "example"

  dynamic "rule" {
    for_each = var.prefixes

    content {
      id     = rule.key
      status = "Enabled"
      %s

      filter {
        prefix = rule.key
      }

      expiration {
        days = rule.value
      }
    }
  }
}
"""


def test_a_dynamic_block_satisfies_a_required_block(schema: ProviderSchema, tmp_path: Path) -> None:
    findings = _check(schema, tmp_path, {"main.tf": LIFECYCLE_WITH_DYNAMIC_RULES % ""})
    assert _messages(findings) == []


def test_the_content_of_a_dynamic_block_is_checked(schema: ProviderSchema, tmp_path: Path) -> None:
    findings = _check(schema, tmp_path, {"main.tf": LIFECYCLE_WITH_DYNAMIC_RULES % "enabled = true"})
    _only(findings, "aws_s3_bucket_lifecycle_configuration.this.rule: unsupported argument enabled")


def test_an_unknown_dynamic_block(schema: ProviderSchema, tmp_path: Path) -> None:
    text = """
    resource "aws_s3_bucket" "this" {
      bucket = "example"

      dynamic "rules" {
        for_each = []

        content {
          id = "x"
        }
      }
    }
    """
    _only(_check(schema, tmp_path, {"main.tf": text}), 'unsupported dynamic "rules"')


def test_a_dynamic_block_without_content(schema: ProviderSchema, tmp_path: Path) -> None:
    text = """
    resource "aws_s3_bucket_versioning" "this" {
      bucket = "example"

      dynamic "versioning_configuration" {
        for_each = [1]
      }
    }
    """
    findings = _check(schema, tmp_path, {"main.tf": text})
    assert any('needs exactly one "content" block' in message for message in _messages(findings)), findings


def test_labelled_meta_blocks_of_resources(schema: ProviderSchema, tmp_path: Path) -> None:
    text = """
    resource "aws_s3_bucket" "this" {
      bucket = "example"

      provisioner "local-exec" {
        command = "true"
      }

      connection {
        host = "example"
      }
    }
    """
    assert _messages(_check(schema, tmp_path, {"main.tf": text})) == []


def test_meta_arguments_of_data_sources(schema: ProviderSchema, tmp_path: Path) -> None:
    text = """
    data "aws_region" "this" {
      for_each   = toset(["a"])
      depends_on = []
      provider   = aws

      lifecycle {
        postcondition {
          condition     = true
          error_message = "never"
        }
      }
    }
    """
    assert _messages(_check(schema, tmp_path, {"main.tf": text})) == []


# --------------------------------------------------------------------------------------------------
# Module calls
# --------------------------------------------------------------------------------------------------

QUEUE_MODULE = {
    "modules/queue/variables.tf": """
    variable "name" {
      type = string
    }

    variable "retention_seconds" {
      type    = number
      default = 345600
    }
    """,
    "modules/queue/main.tf": """
    resource "aws_sqs_queue" "this" {
      name                      = var.name
      message_retention_seconds = var.retention_seconds
    }

    output "arn" {
      value = aws_sqs_queue.this.arn
    }
    """,
}


def test_a_valid_module_call(schema: ProviderSchema, tmp_path: Path) -> None:
    root = """
    module "queue" {
      source     = "./modules/queue"
      count      = 1
      name       = "jobs"
      depends_on = []
    }

    output "queue_arn" {
      value = module.queue[0].arn
    }
    """
    assert _messages(_check(schema, tmp_path, {**QUEUE_MODULE, "main.tf": root})) == []


def test_wrong_module_argument(schema: ProviderSchema, tmp_path: Path) -> None:
    root = """
    module "queue" {
      source          = "./modules/queue"
      name            = "jobs"
      retention_secs  = 60
    }
    """
    findings = _check(schema, tmp_path, {**QUEUE_MODULE, "main.tf": root})
    _only(findings, "module.queue: module has no variable retention_secs (did you mean retention_seconds")


def test_missing_required_module_variable(schema: ProviderSchema, tmp_path: Path) -> None:
    root = """
    module "queue" {
      source            = "./modules/queue"
      retention_seconds = 60
    }
    """
    _only(
        _check(schema, tmp_path, {**QUEUE_MODULE, "main.tf": root}),
        "module.queue: missing required variable name (it has no default)",
    )


def test_module_source_that_does_not_exist(schema: ProviderSchema, tmp_path: Path) -> None:
    root = 'module "queue" {\n  source = "./modules/queues"\n}\n'
    _only(_check(schema, tmp_path, {**QUEUE_MODULE, "main.tf": root}), "no such module directory")


def test_registry_module_calls_are_not_checked(schema: ProviderSchema, tmp_path: Path) -> None:
    root = 'module "vpc" {\n  source  = "terraform-aws-modules/vpc/aws"\n  version = "5.0.0"\n  anything = 1\n}\n'
    assert _messages(_check(schema, tmp_path, {"main.tf": root})) == []


def test_a_module_is_checked_against_the_schema_too(schema: ProviderSchema, tmp_path: Path) -> None:
    module = {**QUEUE_MODULE, "modules/queue/main.tf": 'resource "aws_sqs_queue" "this" {\n  nam = var.name\n}\n'}
    findings = _check(schema, tmp_path, {**module, "main.tf": ""})
    _only(findings, "modules/queue/main.tf:1: aws_sqs_queue.this: unsupported argument nam (did you mean name")


# --------------------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------------------


def test_reference_to_an_undeclared_resource(schema: ProviderSchema, tmp_path: Path) -> None:
    text = 'output "arn" {\n  value = aws_s3_bucket.missing.arn\n}\n'
    _only(_check(schema, tmp_path, {"main.tf": text}), "reference to undeclared aws_s3_bucket.missing")


def test_reference_to_an_attribute_the_type_does_not_have(schema: ProviderSchema, tmp_path: Path) -> None:
    text = VALID_BUCKET + 'output "arn" {\n  value = "${aws_s3_bucket.this.bucket_arn}/*"\n}\n'
    _only(_check(schema, tmp_path, {"main.tf": text}), "aws_s3_bucket has no attribute bucket_arn")


def test_references_to_undeclared_variables_locals_and_module_outputs(schema: ProviderSchema, tmp_path: Path) -> None:
    root = """
    locals {
      name = var.nmae
    }

    module "queue" {
      source = "./modules/queue"
      name   = local.nme
    }

    output "url" {
      value = module.queue.url
    }
    """
    messages = _messages(_check(schema, tmp_path, {**QUEUE_MODULE, "main.tf": root}))
    assert len(messages) == 3, messages
    assert "reference to undeclared variable nmae" in messages[0]
    assert "reference to undeclared local value nme" in messages[1]
    assert "module.queue.url: module queue has no output url" in messages[2]


def test_prose_in_a_string_is_not_a_reference(schema: ProviderSchema, tmp_path: Path) -> None:
    text = 'variable "x" {\n  description = "Like var.y or aws_s3_bucket.z.arn, but not those."\n  type = string\n}\n'
    assert _messages(_check(schema, tmp_path, {"main.tf": text})) == []


# --------------------------------------------------------------------------------------------------
# What the 6.x provider deprecates
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "data.aws_region.current.name",
        '"arn:aws:logs:${data.aws_region.current.name}:123456789012:*"',
        "upper(data.aws_region.current.name)",
    ],
)
def test_region_name_is_deprecated(schema: ProviderSchema, tmp_path: Path, expression: str) -> None:
    text = f'data "aws_region" "current" {{}}\n\noutput "region" {{\n  value = {expression}\n}}\n'
    findings = _check(schema, tmp_path, {"main.tf": text})
    _only(findings, "data.aws_region.current.name is deprecated (6.x provider): use data.aws_region.current.id")


def test_region_id_is_not_deprecated(schema: ProviderSchema, tmp_path: Path) -> None:
    text = 'data "aws_region" "current" {}\n\noutput "region" {\n  value = data.aws_region.current.id\n}\n'
    assert _messages(_check(schema, tmp_path, {"main.tf": text})) == []


LIFECYCLE_RULE = """
resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = "example"

  rule {
    id     = "everything"
    status = "Enabled"
    %s

    expiration {
      days = 30
    }
  }
}
"""


def test_an_empty_lifecycle_filter_is_deprecated(schema: ProviderSchema, tmp_path: Path) -> None:
    findings = _check(schema, tmp_path, {"main.tf": LIFECYCLE_RULE % "filter {}"})
    _only(findings, 'rule[0]: empty filter {} is deprecated (6.x provider): write `filter { prefix = "" }`')


def test_a_lifecycle_rule_without_filter_is_deprecated(schema: ProviderSchema, tmp_path: Path) -> None:
    _only(_check(schema, tmp_path, {"main.tf": LIFECYCLE_RULE % ""}), "rule[0]: no filter is deprecated")


def test_a_rule_level_prefix_is_deprecated(schema: ProviderSchema, tmp_path: Path) -> None:
    _only(_check(schema, tmp_path, {"main.tf": LIFECYCLE_RULE % 'prefix = "logs/"'}), "prefix of a rule is deprecated")


def test_an_empty_prefix_filter_is_the_replacement(schema: ProviderSchema, tmp_path: Path) -> None:
    findings = _check(schema, tmp_path, {"main.tf": LIFECYCLE_RULE % 'filter {\n      prefix = ""\n    }'})
    assert _messages(findings) == []


def test_an_empty_filter_in_a_dynamic_rule_is_deprecated(schema: ProviderSchema, tmp_path: Path) -> None:
    text = LIFECYCLE_WITH_DYNAMIC_RULES.replace("prefix = rule.key", "").replace("%s", "")
    _only(_check(schema, tmp_path, {"main.tf": text}), "rule[0] (dynamic): empty filter {} is deprecated")


# --------------------------------------------------------------------------------------------------
# Provider version requirements
# --------------------------------------------------------------------------------------------------

VERSIONS = """
terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "%s"
    }
  }
}
"""


def test_a_requirement_admitting_the_schema_version(schema: ProviderSchema, tmp_path: Path) -> None:
    assert _messages(_check(schema, tmp_path, {"versions.tf": VERSIONS % "~> 5.80"})) == []


def test_a_requirement_the_schema_version_does_not_meet(schema: ProviderSchema, tmp_path: Path) -> None:
    findings = _check(schema, tmp_path, {"versions.tf": VERSIONS % "~> 5.90"})
    _only(findings, "aws ~> 5.90 does not admit 5.80.0")


# --------------------------------------------------------------------------------------------------
# Command line and cache
# --------------------------------------------------------------------------------------------------


def test_the_command_reports_findings_and_fails(
    schema: ProviderSchema, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "main.tf").write_text('resource "aws_s3_buckets" "this" {}\n')
    assert main([str(tmp_path)]) == 1
    output = capsys.readouterr().out
    assert "unknown resource type aws_s3_buckets" in output
    assert "1 finding(s)" in output


def test_the_command_passes_on_the_repository(schema: ProviderSchema, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(TERRAFORM_DIR)]) == 0
    assert "0 finding(s)" in capsys.readouterr().out


def test_the_command_fails_on_a_file_it_cannot_parse(
    schema: ProviderSchema, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "main.tf").write_text('resource "aws_s3_bucket" "this" {\n  bucket = \n')
    assert main([str(tmp_path)]) == 1
    assert "main.tf: cannot parse" in capsys.readouterr().err


def test_the_command_fails_on_a_directory_without_terraform(
    schema: ProviderSchema, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path)]) == 1
    assert "no .tf files" in capsys.readouterr().err


def test_the_command_names_the_make_target_without_a_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(TERRAFORM_DIR), "--schema", str(tmp_path / "absent.json")]) == 2
    assert f"make {MAKE_TARGET}" in capsys.readouterr().err


def test_a_cache_built_from_another_pin_is_refused(schema: ProviderSchema) -> None:
    other = Pin(name="@cdktf/provider-aws", version="20.1.0", integrity="sha512-x")
    with pytest.raises(SchemaUnavailableError, match=f"make {MAKE_TARGET}"):
        load_schema(path=SCHEMA_FILE, pin=other)
