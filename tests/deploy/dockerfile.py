"""Reading the project's Dockerfile and .dockerignore, for the tests of the image and of its wheel."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def dockerfile_instructions(name: str | None = None) -> list[str]:
    """The Dockerfile's instructions ('FROM x', ...), continuations joined, comments dropped; or one kind's args."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends in a continuation line"
    if name is None:
        return logical
    return [rest for keyword, _, rest in (item.partition(" ") for item in logical) if keyword.upper() == name]
