"""Transformation of the game's run-data strings into the extension's run object."""

from __future__ import annotations

from argus.transform.problems import Problem
from argus.transform.run import TransformResult
from argus.transform.run import transform_run_data

__all__ = ["Problem", "TransformResult", "transform_run_data"]
