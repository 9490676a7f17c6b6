"""Every module of the packages imports on its own, as the first module of its package.

An import cycle can hide behind the order in which the app happens to import things
(`gateway.errors` once worked only because `gateway.app` imported `gateway.rest` first).
Each module is imported in a fresh interpreter state: a process forked from one that has
loaded only third-party and standard modules, so no module of ours is loaded before it.
(A fresh interpreter per module would take minutes: the third-party imports cost about
two seconds each time.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.servers import REPO_ROOT

PACKAGES = ("db", "schema", "gateway")

# Run in a child interpreter: preload the given third-party modules, then import each
# module of ours in a process forked for it; print {module: traceback} of the failures.
_CHECK = r"""
import importlib, json, os, sys, traceback

ours, preload = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for name in preload:
    try:
        importlib.import_module(name)
    except Exception:
        pass  # a module that needs something absent here; the child imports it if needed
failures = {}
for name in ours:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        status = 0
        try:
            importlib.import_module(name)
        except BaseException:
            os.write(write, traceback.format_exc().encode())
            status = 1
        os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        output = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        failures[name] = output.decode(errors="replace")
print(json.dumps(failures))
"""

# Run in a child interpreter: import every module of ours, print the others loaded.
_THIRD_PARTY = r"""
import importlib, json, sys

ours, packages = json.loads(sys.argv[1]), tuple(json.loads(sys.argv[2]))
for name in ours:
    importlib.import_module(name)
print(json.dumps(sorted(
    name for name in sys.modules
    if name.partition(".")[0] not in packages and name != "__main__"
)))
"""


def modules_of(root: Path, packages: tuple[str, ...]) -> list[str]:
    """Every module of `packages` under `root`, by dotted name (a `__main__` runs a
    program when imported, so it is left out)."""
    names = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__main__":
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names.append(".".join(parts))
    return names


def _run(script: str, root: Path, *args: object) -> object:
    done = subprocess.run(
        [sys.executable, "-c", script, *(json.dumps(arg) for arg in args)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def failing_imports(root: Path, packages: tuple[str, ...], *, preload: bool) -> dict[str, str]:
    """{module: traceback} of the modules of `packages` that fail to import first."""
    ours = modules_of(root, packages)
    third_party = _run(_THIRD_PARTY, root, ours, packages) if preload else []
    failures = _run(_CHECK, root, ours, third_party)
    assert isinstance(failures, dict)
    return failures


def test_every_module_imports_on_its_own() -> None:
    failures = failing_imports(REPO_ROOT, PACKAGES, preload=True)

    assert not failures, "\n".join(f"{name}:\n{trace}" for name, trace in failures.items())
    assert len(modules_of(REPO_ROOT, PACKAGES)) > 80


def test_a_cycle_that_the_import_order_hides_is_found(tmp_path: Path) -> None:
    """The check itself, on the cycle gateway.errors once had: `errors` needs `rest`,
    whose `streaming` needs `errors` back. Importing `app` (which imports `rest` first)
    works; importing `errors` first does not."""
    files = {
        "shop/__init__.py": "",
        "shop/app.py": "import shop.rest\nimport shop.errors\n",
        "shop/errors.py": "from shop.rest.envelope import STATUS\n\ndef refusal(): return STATUS\n",
        "shop/rest/__init__.py": "from shop.rest import streaming\n",
        "shop/rest/envelope.py": "STATUS = 400\n",
        "shop/rest/streaming.py": "from shop.errors import refusal\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)

    failures = failing_imports(tmp_path, ("shop",), preload=False)

    assert set(failures) == {"shop.errors"}
    assert "cannot import name 'refusal'" in failures["shop.errors"]
