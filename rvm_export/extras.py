"""Optional dependencies: which pip extra each command needs, and the one-line message when it is missing.

For the three commands: an ``rvm-export`` target, a runner (``rvm-verify``, ``rvm-bench`` and
``rvm-convert --artifact``) or ``rvm-convert`` itself. Which extra a target needs is in its spec
(``rvm_export/targets.py``), with the modules each of its extras installs; an extra of no target is
in :data:`OTHER_EXTRAS`. Every extra is also in pyproject.toml.
"""

import importlib.util
from typing import Dict, Optional, Tuple

from rvm_export.contract.errors import MissingExtraError
from rvm_export.targets import TARGETS

DISTRIBUTION = "rvm-export"

# Extras that belong to no target; each target's spec names the modules of its own extras.
OTHER_EXTRAS: Dict[str, Tuple[str, ...]] = {
    "video": ("av", "tqdm"),
    "plot": ("matplotlib",),
    "ray": ("ray",),
    "sign": ("model_signing", "OpenSSL", "cryptography"),
}
# extra (pyproject.toml [project.optional-dependencies]) -> the top-level modules it installs
EXTRA_MODULES: Dict[str, Tuple[str, ...]] = {
    **{extra: modules for spec in TARGETS.values() for extra, modules in spec.extras.items()},
    **OTHER_EXTRAS,
}


def needs(command: str, what: str) -> Optional[str]:
    """The extra ``command what`` needs: an ``rvm-export`` target's or a runner's (from the target registry),
    ``video`` for ``rvm-convert``; None: nothing beyond the base install."""
    if command == "rvm-convert":
        return "video"
    spec = TARGETS.get(what)
    if spec is None:
        return None
    return spec.export_extra if command == "rvm-export" else spec.runner_extra


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # an import hook refusing it, or a half-removed package
        return False


def message(command: str, what: str, extra: str, module: Optional[str] = None) -> str:
    """'rvm-export tensorflow needs the tensorflow extra: pip install 'rvm-export[tensorflow]''."""
    missing = f" (no module named {module!r})" if module else ""
    subject = f"running {what} artifacts" if command == "runner" else f"{command} {what}".strip()
    return f"{subject} needs the {extra} extra{missing}: pip install '{DISTRIBUTION}[{extra}]'"


def require(command: str, what: str = "") -> None:
    """Raise MissingExtraError unless every module of the extra ``command what`` needs is importable."""
    extra = needs(command, what)
    for module in EXTRA_MODULES.get(extra or "", ()):
        if not _installed(module):
            raise MissingExtraError(message(command, what, extra, module))  # type: ignore[arg-type]


def explain(command: str, what: str, exc: ImportError) -> Optional[str]:
    """The one-line message for ``exc`` if it is a module of one of our extras, else None (a real bug).

    Prefers the extra ``command what`` is listed with (``tensorflow`` is in two extras)."""
    if isinstance(exc, MissingExtraError):
        return str(exc)
    top = (exc.name or "").split(".")[0]
    own = needs(command, what)
    candidates = ([own] if own else []) + list(EXTRA_MODULES)
    extra = next((e for e in candidates if top in EXTRA_MODULES[e]), None)
    return None if extra is None else message(command, what, extra, top)


__all__ = ["EXTRA_MODULES", "MissingExtraError", "explain", "needs", "require"]
