"""AT-4: `config validate` passes a valid config, names problems, points at `init`."""

from __future__ import annotations

from pytest_bdd import scenarios

scenarios("features/at4_validation.feature")
