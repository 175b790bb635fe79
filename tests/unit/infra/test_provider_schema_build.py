"""How the provider schema is obtained (infra/lint/provider_schema: pin, jsii, fetch, versions), on a small
hand-written assembly laid out as cdktf lays out the real one, and a stand-in `npm` on PATH: no network.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest

from infra.lint.provider_schema import fetch
from infra.lint.provider_schema.jsii import AssemblyError, build_schema
from infra.lint.provider_schema.pin import Pin, PinError, parse_pin
from infra.lint.provider_schema.schema import Kind, load_schema
from infra.lint.provider_schema.versions import ConstraintError, admits

PACKAGE = "@cdktf/provider-aws"
VERSION = "1.2.3"
PROVIDER_VERSION = "5.80.0"
REGISTRY = "https://registry.terraform.io/providers/hashicorp/aws/5.80.0/docs"
CONSTRUCT_PARAMETERS = [{"name": "scope", "type": {"fqn": "constructs.Construct"}}, {"name": "id"}]


def _fqn(name: str) -> str:
    return f"{PACKAGE}.widget.{name}"


def _argument(
    name: str, anchor: str, type_ref: dict[str, Any], *, block: bool = False, optional: bool = True
) -> dict[str, Any]:
    link = f"Docs at Terraform Registry: {{@link {REGISTRY}/resources/widget#{anchor} Widget#{anchor}}}"
    docs = {"summary": f"{anchor} block.", "remarks": link} if block else {"summary": link + "."}
    prop: dict[str, Any] = {"name": name, "docs": docs, "type": type_ref}
    if optional:
        prop["optional"] = True
    return prop


def _list_of(name: str) -> dict[str, Any]:
    return {
        "union": {
            "types": [
                {"fqn": "cdktf.IResolvable"},
                {"collection": {"kind": "array", "elementtype": {"fqn": _fqn(name)}}},
            ]
        }
    }


STRING = {"primitive": "string"}
ASSEMBLY: dict[str, Any] = {
    "name": PACKAGE,
    "version": VERSION,
    "types": {
        f"{PACKAGE}.provider.AwsProvider": {
            "kind": "class",
            "base": "cdktf.TerraformProvider",
            "fqn": f"{PACKAGE}.provider.AwsProvider",
            "docs": {"summary": f"Represents a {{@link {REGISTRY} aws}}."},
            "initializer": {
                "parameters": [
                    *CONSTRUCT_PARAMETERS,
                    {"name": "config", "type": {"fqn": f"{PACKAGE}.provider.AwsProviderConfig"}},
                ]
            },
        },
        f"{PACKAGE}.provider.AwsProviderConfig": {
            "kind": "interface",
            "datatype": True,
            "properties": [
                {
                    "name": "region",
                    "optional": True,
                    "docs": {"summary": "Region.", "remarks": f"Docs: {{@link {REGISTRY}#region AwsProvider#region}}"},
                    "type": STRING,
                }
            ],
        },
        _fqn("Widget"): {
            "kind": "class",
            "base": "cdktf.TerraformResource",
            "fqn": _fqn("Widget"),
            "docs": {"summary": f"Represents a {{@link {REGISTRY}/resources/widget aws_widget}}."},
            "initializer": {
                "parameters": [*CONSTRUCT_PARAMETERS, {"name": "config", "type": {"fqn": _fqn("WidgetConfig")}}]
            },
            "properties": [
                {"name": "tfResourceType", "static": True, "type": STRING},
                {"name": "arn", "type": STRING},
                {"name": "lastModifiedTime", "type": STRING},
                {"name": "name", "type": STRING},
                {"name": "nameInput", "type": STRING, "optional": True},
                {"name": "selfAttribute", "type": STRING},
                {"name": "rule", "type": {"fqn": _fqn("WidgetRuleList")}},
            ],
        },
        _fqn("WidgetConfig"): {
            "kind": "interface",
            "datatype": True,
            "interfaces": ["cdktf.TerraformMetaArguments"],
            "properties": [
                _argument("name", "name", STRING, optional=False),
                _argument("selfAttribute", "self", STRING),
                _argument("rule", "rule", _list_of("WidgetRule"), block=True),
                _argument("setting", "setting", {"fqn": _fqn("WidgetSetting")}, block=True, optional=False),
                _argument("ingress", "ingress", _list_of("WidgetIngress")),
                _argument("definition", "definition", {"primitive": "any"}, block=True),
            ],
        },
        _fqn("WidgetRule"): {
            "kind": "interface",
            "datatype": True,
            "properties": [_argument("id", "id", STRING, optional=False)],
        },
        _fqn("WidgetRuleOutputReference"): {
            "kind": "class",
            "base": "cdktf.ComplexObject",
            "properties": [
                {"name": "id", "type": STRING},
                {"name": "idInput", "type": STRING},
                {"name": "internalValue", "type": {"fqn": _fqn("WidgetRule")}},
                {"name": "createdAt", "type": STRING},
            ],
        },
        _fqn("WidgetSetting"): {
            "kind": "interface",
            "datatype": True,
            "properties": [_argument("value", "value", STRING)],
        },
        _fqn("WidgetIngress"): {
            "kind": "interface",
            "datatype": True,
            "properties": [_argument("port", "port", STRING)],
        },
        _fqn("DataAwsWidget"): {
            "kind": "class",
            "base": "cdktf.TerraformDataSource",
            "fqn": _fqn("DataAwsWidget"),
            "docs": {"summary": f"Represents a {{@link {REGISTRY}/data-sources/widget aws_widget}}."},
            "initializer": {
                "parameters": [*CONSTRUCT_PARAMETERS, {"name": "config", "type": {"fqn": _fqn("DataAwsWidgetConfig")}}]
            },
            "properties": [{"name": "arn", "type": STRING}],
        },
        _fqn("DataAwsWidgetConfig"): {"kind": "interface", "datatype": True, "properties": []},
    },
}


# --------------------------------------------------------------------------------------------------
# jsii: the assembly read as cdktf lays it out
# --------------------------------------------------------------------------------------------------


def test_types_are_named_by_their_registry_page() -> None:
    schema = build_schema(ASSEMBLY, provider_version=PROVIDER_VERSION)
    assert schema["resources"] == {"aws_widget": "widget.WidgetConfig"}
    assert schema["data_sources"] == {"aws_widget": "widget.DataAwsWidgetConfig"}
    assert schema["provider"] == "provider.AwsProviderConfig"
    assert schema["package"] == f"{PACKAGE}@{VERSION}"
    assert schema["provider_version"] == PROVIDER_VERSION


def test_arguments_blocks_and_computed_attributes() -> None:
    structs = build_schema(ASSEMBLY, provider_version=PROVIDER_VERSION)["structs"]
    widget = structs["widget.WidgetConfig"]
    assert widget["arguments"] == {
        "name": {"kind": "attribute", "required": True},
        "self": {"kind": "attribute"},
        "rule": {"kind": "block", "struct": "widget.WidgetRule", "repeatable": True},
        "setting": {"kind": "block", "struct": "widget.WidgetSetting", "required": True},
        "ingress": {"kind": "nested_attribute", "struct": "widget.WidgetIngress", "repeatable": True},
        "definition": {"kind": "block"},
    }
    # Getters with no argument behind them; selfAttribute, nameInput and the static type name are not.
    assert widget["computed"] == ["arn", "last_modified_time"]
    assert structs["widget.WidgetRule"] == {
        "arguments": {"id": {"kind": "attribute", "required": True}},
        "computed": ["created_at"],
    }
    assert structs["widget.WidgetSetting"]["computed"] == []
    assert structs["widget.DataAwsWidgetConfig"] == {"arguments": {}, "computed": ["arn"]}
    assert structs["provider.AwsProviderConfig"]["arguments"] == {"region": {"kind": "attribute"}}


def test_a_property_without_registry_anchor_is_refused() -> None:
    broken = json.loads(json.dumps(ASSEMBLY))
    broken["types"][_fqn("WidgetSetting")]["properties"][0]["docs"] = {"summary": "The value."}
    with pytest.raises(AssemblyError, match=r"WidgetSetting\.value"):
        build_schema(broken, provider_version=PROVIDER_VERSION)


# --------------------------------------------------------------------------------------------------
# pin
# --------------------------------------------------------------------------------------------------


def test_the_pin_line_between_comments() -> None:
    pin = parse_pin(f"# why\n\n{PACKAGE}@{VERSION} sha512-abc+/=\n# more\n")
    assert pin == Pin(name=PACKAGE, version=VERSION, integrity="sha512-abc+/=")
    assert pin.spec == f"{PACKAGE}@{VERSION}"


@pytest.mark.parametrize(
    "text",
    ["", f"{PACKAGE}@{VERSION}\n", f"{PACKAGE}@^1.2 sha512-x\n", f"{PACKAGE}@1 sha512-x\n{PACKAGE}@2 sha512-y\n"],
)
def test_a_pin_that_is_not_one_exact_version_with_integrity(text: str) -> None:
    with pytest.raises(PinError):
        parse_pin(text)


def test_the_repository_pin_is_exact() -> None:
    pin = parse_pin((Path(__file__).resolve().parents[3] / "infra" / "lint" / "provider-schema.txt").read_text())
    assert pin.name == PACKAGE
    assert all(part.isdigit() for part in pin.version.split("."))


# --------------------------------------------------------------------------------------------------
# versions
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("constraint", "version", "admitted"),
    [
        ("~> 5.80", "5.80.0", True),
        ("~> 5.80", "5.100.0", True),
        ("~> 5.80", "6.0.0", False),
        ("~> 5.80", "5.79.9", False),
        ("~> 5.80.1", "5.80.9", True),
        ("~> 5.80.1", "5.81.0", False),
        (">= 5.80", "6.3.0", True),
        (">= 5.80, < 6.0", "6.0.0", False),
        ("5.80.0", "5.80.0", True),
        ("!= 5.80.0", "5.80.0", False),
    ],
)
def test_version_constraints(constraint: str, version: str, admitted: bool) -> None:
    assert admits(constraint, version) is admitted


def test_a_version_constraint_that_is_not_one() -> None:
    with pytest.raises(ConstraintError):
        admits("latest", "5.80.0")


# --------------------------------------------------------------------------------------------------
# fetch, with a stand-in npm
# --------------------------------------------------------------------------------------------------


def _tarball(path: Path, *, version: str = VERSION) -> str:
    """A package tarball as npm packs one; returns its npm integrity."""
    manifest = {"name": PACKAGE, "version": version, "cdktf": {"provider": {"version": PROVIDER_VERSION}}}
    with tarfile.open(path, "w:gz") as archive:
        for name, content in (("package/package.json", manifest), ("package/.jsii", ASSEMBLY)):
            data = json.dumps(content).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


@pytest.fixture
def fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `npm` whose `pack` copies a prepared tarball into the working directory, as npm names it."""
    tarball = tmp_path / "prepared.tgz"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "npm"
    packed = f"provider-aws-{VERSION}.tgz"
    script.write_text(f'#!/bin/sh\ncp "{tarball}" ./{packed}\necho \'[{{"filename": "{packed}"}}]\'\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tarball


def test_fetch_writes_a_schema_the_loader_accepts(fake_npm: Path, tmp_path: Path) -> None:
    pin = Pin(name=PACKAGE, version=VERSION, integrity=_tarball(fake_npm))
    output = tmp_path / "cache" / "schema.json"
    fetch.fetch(pin=pin, output=output)
    schema = load_schema(path=output, pin=pin)
    widget = schema.resource("aws_widget")
    assert widget is not None
    assert widget.arguments["setting"].kind is Kind.BLOCK
    assert widget.is_computed("last_modified_time")
    assert not widget.is_computed("name")
    assert [path.name for path in output.parent.iterdir()] == ["schema.json"]


def test_fetch_refuses_a_tarball_whose_integrity_is_not_the_pinned_one(fake_npm: Path, tmp_path: Path) -> None:
    _tarball(fake_npm)
    pin = Pin(name=PACKAGE, version=VERSION, integrity="sha512-" + base64.b64encode(b"0" * 64).decode())
    with pytest.raises(fetch.FetchError, match="is not the pinned"):
        fetch.fetch(pin=pin, output=tmp_path / "cache" / "schema.json")
    assert not (tmp_path / "cache" / "schema.json").exists()


def test_fetch_refuses_a_tarball_of_another_version(fake_npm: Path, tmp_path: Path) -> None:
    pin = Pin(name=PACKAGE, version=VERSION, integrity=_tarball(fake_npm, version="9.9.9"))
    with pytest.raises(fetch.FetchError, match=f"holds {PACKAGE}@9.9.9"):
        fetch.fetch(pin=pin, output=tmp_path / "cache" / "schema.json")


def test_fetch_without_npm_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    pin = Pin(name=PACKAGE, version=VERSION, integrity="sha512-x")
    with pytest.raises(fetch.FetchError, match="npm is not on PATH"):
        fetch.fetch(pin=pin, output=tmp_path / "cache" / "schema.json")
