"""Builds guard._native, the C hot loops of a check, into the source tree (editable installs) and the wheel.

The extension is optional at run time (the guard runs on its Python twins without it), but a
build that cannot compile it says so loudly; set FRESHGUARD_REQUIRE_NATIVE=1 to make that an error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = "guard/_native.c"


class NativeBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Compiles guard/_native.c with setuptools' build_ext, in place."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":  # editable installs are wheels too (version "editable"); sdists carry the C
            return
        try:
            built = self._compile()
        except Exception as exc:  # a missing compiler or headers: the guard still works, only slower
            if os.environ.get("FRESHGUARD_REQUIRE_NATIVE") == "1":
                raise
            sys.stderr.write(f"freshguard: guard._native not built ({exc}); checks run on the Python code\n")
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        build_data["artifacts"].append(str(built.relative_to(self.root)))  # git ignores it; the wheel takes it

    def _compile(self) -> Path:
        from setuptools import Distribution, Extension
        from setuptools.command.build_ext import build_ext

        extension = Extension(
            "guard._native", [SOURCE], extra_compile_args=["-O2", "-Wall", "-Werror=implicit-function-declaration"]
        )
        command = build_ext(Distribution({"name": "freshguard", "ext_modules": [extension]}))
        command.inplace = True
        command.build_temp = str(Path(self.root) / "build" / "native")
        command.ensure_finalized()
        old = os.getcwd()
        os.chdir(self.root)
        try:
            command.run()
        finally:
            os.chdir(old)
        return Path(self.root) / command.get_ext_filename("guard._native")
