"""Shared test helpers. Real-node tests live in tests/integration and need root."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
