"""Suite-wide checks of how the suite itself runs (the tests' own fixtures are in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _run_in_its_xdist_group(request: pytest.FixtureRequest) -> None:
    """`make test` runs the Ray tests one after another in one worker (``xdist_group("ray")``
    with ``--dist loadgroup``): each starts a Ray sized to the whole machine. pytest-xdist
    groups a test by appending ``@group`` to its node id, which pytest 9.2 silently ignores
    (pytest-xdist#1386): the Ray tests then ran on both workers at once and a CI run hung. A
    grouped test that was not grouped fails here, at once, instead."""
    if (getattr(request.config.option, "loadgroup", False) and request.node.get_closest_marker("xdist_group")
            and "@" not in request.node.nodeid):
        pytest.fail("--dist loadgroup did not group this xdist_group test: this pytest-xdist does not work with "
                    "this pytest (pytest-xdist#1386); install the versions that pyproject.toml's test extra names",
                    pytrace=False)
