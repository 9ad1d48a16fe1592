"""Shared by the CLI tests: the demo's working folder, made once per test process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cli.test_cli import run


@pytest.fixture(scope="session")
def demo_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working folder after `mykey migrate` and `mykey demo` (its database in var/, the demo
    cards and log keys beside it), made by the real commands once per test process: loading the
    demo takes seconds, and nine tests start from it."""
    work = tmp_path_factory.mktemp("demo-work")
    db = work / "var" / "mykey.db"
    assert run(db, "migrate").returncode == 0
    loaded = run(db, "demo")
    assert loaded.returncode == 0, loaded.stderr
    return work


@pytest.fixture
def demo_db(demo_work: Path, tmp_path: Path) -> Path:
    """This test's own copy of the demo's working folder; its database's path."""
    shutil.copytree(demo_work, tmp_path, dirs_exist_ok=True)
    return tmp_path / "var" / "mykey.db"
