"""What the 6.x AWS provider deprecates and the pinned 5.x already accepts in its replacement form.

Refused now so that the move to 6.x is a version bump. ``data.aws_region.<x>.name``: 6.x reads the region
from ``region``, which no 5.x schema up to 5.100 has; ``id`` names the region in both and is suggested
until the pinned schema has ``region``. Lifecycle rules meaning 'every object' by an empty ``filter {}``
or by no filter, on which the provider warns since 5.90 that it "will be an error in a future version"
(``filter { prefix = "" }`` means the same in every version), or by the rule-level ``prefix`` the
provider documents as deprecated.
"""

from __future__ import annotations

from collections.abc import Iterator

from infra.lint.provider_schema.findings import Finding, finding_in
from infra.lint.provider_schema.hcl import TopBlock
from infra.lint.provider_schema.references import Reference
from infra.lint.provider_schema.schema import Struct

LIFECYCLE_CONFIGURATION = "aws_s3_bucket_lifecycle_configuration"
REGION_DATA_SOURCE = "aws_region"
DEPRECATED_REGION = "name"
REGION_ATTRIBUTE_6X = "region"
REGION_ATTRIBUTE_5X = "id"
WHOLE_BUCKET_FILTER = 'filter { prefix = "" }'


def deprecated_reference(reference: Reference, *, struct: Struct | None) -> str | None:
    """The message for a deprecated attribute reference; ``struct`` is the referenced type's schema."""
    if (reference.kind, reference.type, reference.attribute) != ("data", REGION_DATA_SOURCE, DEPRECATED_REGION):
        return None
    has_region = struct is not None and struct.has_attribute(REGION_ATTRIBUTE_6X)
    replacement = REGION_ATTRIBUTE_6X if has_region else REGION_ATTRIBUTE_5X
    return f"{reference} is deprecated (6.x provider): use {reference.address}.{replacement}"


def check_deprecated_arguments(block: TopBlock) -> Iterator[Finding]:
    if block.keyword != "resource" or block.labels[0] != LIFECYCLE_CONFIGURATION:
        return
    for index, rule in enumerate(block.body.blocks_named("rule")):
        path = f"rule[{index}]" + (" (dynamic)" if rule.dynamic else "")
        filters = rule.body.blocks_named("filter")
        if "prefix" in rule.body.attributes:
            yield finding_in(block, "prefix of a rule is deprecated: write `filter { prefix = ... }`", path=path)
        elif not filters and "filter" not in rule.body.attributes:
            message = f"no filter is deprecated: write `{WHOLE_BUCKET_FILTER}` for every object"
            yield finding_in(block, message, path=path)
        for found in filters:
            if not found.body.attributes and not found.body.blocks:
                message = f"empty filter {{}} is deprecated (6.x provider): write `{WHOLE_BUCKET_FILTER}`"
                yield finding_in(block, message, path=path)
