"""The GitHub workflows and the deploy documentation: CI runs what `make` runs, CD deploys with OIDC.

CI must call the Makefile rather than repeat its commands, so that a green `make lint` / `make test`
on a laptop means a green CI. CD must never read static AWS keys.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
MAKEFILE = (REPO_ROOT / "Makefile").read_text()
PRE_COMMIT = yaml.safe_load((REPO_ROOT / ".pre-commit-config.yaml").read_text())
LINT_TOOLS = ("terraform", "hadolint", "actionlint", "shellcheck", "infra.docker.requirements --check")


def _workflow(name: str) -> dict[str, Any]:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as true
    return workflow


def _runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def _recipe(target: str) -> str:
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n?)+)", MAKEFILE, re.MULTILINE)
    assert match, f"no target {target} in the Makefile"
    return match.group(1)


def test_ci_runs_make_lint_and_make_test_on_pushes_and_pull_requests() -> None:
    ci = _workflow("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    assert _runs(ci["jobs"]["lint"]) == ["make lint"]
    assert _runs(ci["jobs"]["test"]) == ["make test"]


def test_ci_tests_against_a_postgres_service_container() -> None:
    job = _workflow("ci.yml")["jobs"]["test"]
    postgres = job["services"]["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert "5432:5432" in postgres["ports"]
    assert job["env"]["TEST_POSTGRES_ADMIN_URL"].startswith("postgresql://postgres@127.0.0.1:5432/")


def test_make_lint_runs_every_check_and_pre_commit_hooks_cover_the_tools() -> None:
    lint = _recipe("lint")
    assert "ruff check ." in lint
    assert "ruff format --check ." in lint
    assert "pre-commit run --all-files" in lint
    assert "$(CHECKOV_SCAN)" in lint
    assert re.search(r"^CHECKOV_SCAN := .*--framework terraform dockerfile github_actions", MAKEFILE, re.M | re.S)
    assert "--soft-fail" not in MAKEFILE
    hooks = [hook for repo in PRE_COMMIT["repos"] for hook in repo["hooks"]]
    assert all(repo["repo"] == "local" for repo in PRE_COMMIT["repos"]), "remote hook repos cannot be cloned offline"
    entries = " ".join(hook["entry"] for hook in hooks)
    for tool in LINT_TOOLS:
        assert tool in entries, tool
    assert all(hook["language"] == "system" for hook in hooks)


def test_cd_deploys_main_after_ci_with_oidc_and_no_static_keys() -> None:
    text = (WORKFLOWS / "cd.yml").read_text()
    cd = _workflow("cd.yml")
    assert cd["on"]["workflow_run"]["workflows"] == ["CI"]
    assert cd["on"]["workflow_run"]["branches"] == ["main"]
    assert cd["permissions"]["id-token"] == "write"
    assert "conclusion == 'success'" in cd["jobs"]["deploy"]["if"]
    (credentials,) = [s for s in cd["jobs"]["deploy"]["steps"] if "configure-aws-credentials" in s.get("uses", "")]
    assert set(credentials["with"]) == {"role-to-assume", "aws-region", "role-session-name"}
    assert "secrets." not in text
    assert not re.search(r"aws[-_]?(secret|access)[-_]?(access)?[-_]?key", text, re.IGNORECASE)


@pytest.mark.parametrize("step", ["terraform apply", "docker buildx build", 'prefect", "--no-prompt", "deploy'])
def test_cd_builds_images_applies_terraform_and_registers_the_prefect_deployment(step: str) -> None:
    runs = "\n".join(_runs(_workflow("cd.yml")["jobs"]["deploy"]))
    assert step in runs


# ---------------------------------------------------------------------------------------------------
# Deploy targets and documentation
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["plan", "apply", "destroy"])
def test_deploy_targets_check_backend_variables_and_credentials_first(target: str) -> None:
    recipe = _recipe(target)
    assert recipe.splitlines()[0].strip() == "$(deploy_preflight)"
    preflight = re.search(r"^define deploy_preflight\n(.*?)^endef", MAKEFILE, re.MULTILINE | re.DOTALL)
    assert preflight
    for needed in ("$(TF_BACKEND_CONFIG)", "$(TF_VAR_FILE)", "get_credentials()"):
        assert needed in preflight.group(1)


def _deploy_section() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    assert "\n## Deploy to AWS\n" in readme
    return readme.split("\n## Deploy to AWS\n", 1)[1].split("\n## ", 1)[0]


def test_readme_deploy_section_has_every_part_the_operator_needs() -> None:
    section = _deploy_section()
    for heading in (
        "Prerequisites",
        "IAM permissions",
        "Variables",
        "Commands",
        "Confirm the alert e-mail subscription",
        "Open MLflow, Prefect and Grafana",
        "Tear down",
    ):
        assert f"\n### {heading}" in section, heading
    assert "```mermaid" in section
    for command in ("make plan", "make apply", "make destroy CONFIRM_DESTROY="):
        assert command in section


def test_readme_variable_table_lists_every_root_variable() -> None:
    with (REPO_ROOT / "infra" / "terraform" / "variables.tf").open() as handle:
        variables = {name.strip('"') for entry in hcl2.load(handle)["variable"] for name in entry}
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", _deploy_section(), re.MULTILINE))
    assert variables <= documented, f"missing from the README table: {sorted(variables - documented)}"
