"""The committed schema.graphql is the schema the code serves, and the CLI writes it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import httpx
from graphql import (
    IntrospectionQuery,
    build_client_schema,
    build_schema,
    get_introspection_query,
    lexicographic_sort_schema,
    print_schema,
)

from schema import sdl
from tests.schema.gql import ok
from tests.servers import REPO_ROOT, child_env, run_cli

COMMITTED = REPO_ROOT / "schema.graphql"
HOW_TO_FIX = "schema.graphql is stale: run `chat-gateway schema export` and commit the file"


def test_the_committed_file_is_the_codes_schema() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == sdl(), HOW_TO_FIX


async def test_schema_export_writes_the_same_text(tmp_path: Path) -> None:
    target = tmp_path / "exported.graphql"

    done = await asyncio.to_thread(
        run_cli, "schema", "export", "-o", str(target), env=child_env(), cwd=tmp_path
    )

    assert done.returncode == 0, done.stderr
    assert target.read_text(encoding="utf-8") == COMMITTED.read_text(encoding="utf-8")
    assert not (tmp_path / "schema.graphql").exists()


async def test_the_file_describes_what_the_server_answers(client: httpx.AsyncClient) -> None:
    introspection = get_introspection_query(specified_by_url=True)
    served = build_client_schema(cast(IntrospectionQuery, await ok(client, introspection)))
    committed = build_schema(COMMITTED.read_text(encoding="utf-8"))

    assert print_schema(lexicographic_sort_schema(served)) == print_schema(
        lexicographic_sort_schema(committed)
    )
