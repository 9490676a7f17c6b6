"""README.md's configuration reference is the one generated from the settings class."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from gateway import config_reference
from gateway.settings import Settings
from tests.servers import REPO_ROOT, child_env, run_cli

FIX = "run `chat-gateway config reference --write README.md`"


def test_readme_holds_the_generated_reference() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")

    assert config_reference.current_block(readme) == config_reference.block(), FIX


def test_every_setting_has_a_row_with_its_default() -> None:
    rows = config_reference.table().splitlines()[2:]

    assert [row.split(" | ")[0].strip("|` ") for row in rows] == [
        name.upper() for name in Settings.model_fields
    ]
    assert "| `PORT` | `8000` |" in config_reference.table()
    assert "| `CORS_ORIGINS` | empty |" in config_reference.table()
    assert "| `MODEL_PROVIDERS` | `echo,openai` |" in config_reference.table()


def test_a_setting_without_a_description_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fields = dict(Settings.model_fields)
    fields["new_setting"] = Field(1)  # type: ignore[assignment]
    monkeypatch.setattr(Settings, "model_fields", fields)

    with pytest.raises(config_reference.MissingDescription, match="new_setting"):
        config_reference.table()


def test_the_command_prints_and_rewrites_between_the_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        f"intro\n{config_reference.START}\nstale\n{config_reference.END}\nafter\n",
        encoding="utf-8",
    )

    printed = run_cli("config", "reference", env=child_env(), cwd=tmp_path)
    written = run_cli("config", "reference", "--write", str(readme), env=child_env(), cwd=tmp_path)

    assert printed.returncode == 0 and written.returncode == 0, written.stderr
    assert printed.stdout == config_reference.table()
    assert readme.read_text(encoding="utf-8") == f"intro\n{config_reference.block()}\nafter\n"
