"""Where the declarative model files live: inside the wheel (ttlbsim/_models) or, in a source
checkout, the repository's models/ directory."""

from __future__ import annotations

from pathlib import Path


def models_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_models", here.parent / "models"):
        if candidate.is_dir():
            return candidate
    return here.parent / "models"
