"""The Python programs behind scripts/, loaded as modules (they are files, not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from types import ModuleType

SCRIPTS: Final = Path(__file__).resolve().parent.parent.parent / "scripts"


def load_script(name: str, module_name: str | None = None) -> ModuleType:
    """scripts/<name>.py as a module, registered under `module_name` (default: `name`)."""
    spec = importlib.util.spec_from_file_location(module_name or name, SCRIPTS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up while the class body is built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
