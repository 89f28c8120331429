"""The wheel the image installs: built from what the Dockerfile copies, pure Python.

The Dockerfile's build stage copies a few files and runs `pip install .`; this builds the same wheel
from the same files (after .dockerignore), in a fresh folder, the way pip does, and opens it.
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.deploy.dockerfile import DOCKERIGNORE, ROOT, dockerfile_instructions


def build_context_copies() -> list[tuple[str, str]]:
    """(source, destination) of each COPY of the build stage (the first), as the Dockerfile writes them."""
    instructions = dockerfile_instructions()
    starts = [i for i, item in enumerate(instructions) if item.upper().startswith("FROM ")]
    stage = instructions[starts[0] : starts[1]]
    copies: list[tuple[str, str]] = []
    for item in stage:
        keyword, _, rest = item.partition(" ")
        if keyword.upper() == "COPY" and not rest.startswith("--from"):
            *sources, destination = rest.split()
            copies.extend((source, destination) for source in sources)
    return copies


def ignored(relative: str) -> bool:
    """Whether .dockerignore's exclusions (the lines after its allow-list) leave the file out of the context."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith(("#", "!")) and line.strip() != "*"
    ]
    parts = relative.split("/")
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        if fnmatch.fnmatch(relative, pattern) or any(fnmatch.fnmatch(part, bare) for part in parts):
            return True
    return False


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    context = tmp_path_factory.mktemp("context")
    for source, destination in build_context_copies():
        target = context / destination.rstrip("/") if not destination.endswith("/") else context / destination
        path = ROOT / source
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if ignored(relative):
                continue
            inside = target / file.name if path.is_file() else target / file.relative_to(path)
            inside.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, inside)
    assert not list(context.rglob("*.so")), "the build context carries a compiled extension from the host"
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(context)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (built,) = out.glob("freshguard-*.whl")
    return zipfile.ZipFile(built)


def test_the_images_wheel_is_pure_python_for_every_platform(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    metadata = wheel.read(next(name for name in names if name.endswith(".dist-info/WHEEL"))).decode()
    tags = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Tag:")]

    assert Path(wheel.filename or "").name.endswith("-py3-none-any.whl")
    assert tags == ["py3-none-any"]
    assert "Root-Is-Purelib: true" in metadata
    assert not [name for name in names if name.endswith((".so", ".pyd", ".c", ".pyi"))]
    assert not any(name.startswith(("build/", "tests/", "bench/")) for name in names)


def test_the_images_wheel_holds_the_service_and_its_pages(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())

    assert {"guard/engine.py", "api/app.py"} <= names
    assert "guard/cli/support-assistant.yaml" in names  # `freshguard demo` runs under the example policy
    assert any(name.startswith("api/dashboard/templates/") for name in names)
    assert any(name.startswith("guard/lineage/migrations/versions/") for name in names)
