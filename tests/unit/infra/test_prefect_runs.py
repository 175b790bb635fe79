"""The stack's in-process Prefect clients reach the stack's server even where Prefect was imported first."""

from __future__ import annotations

from churn_common.settings import get_settings
from infra.local.prefect_runs import on_stack_server


def test_inside_the_block_prefect_names_the_stacks_server_though_it_was_imported_before(env) -> None:  # type: ignore[no-untyped-def]
    # GIVEN Prefect imported before the stack's port is known, as in a test session or the chaos run
    from prefect.settings import get_current_settings

    before = get_current_settings().api.url
    env(LOCAL_PREFECT_PORT="4321", PREFECT_API_URL="http://127.0.0.1:4321/api")
    # WHEN the environment alone names the server THEN Prefect does not see it
    assert get_current_settings().api.url == before
    # WHEN inside the block THEN it names the stack's server, and after it the earlier setting again
    with on_stack_server(get_settings()):
        assert get_current_settings().api.url == "http://127.0.0.1:4321/api"
    assert get_current_settings().api.url == before
