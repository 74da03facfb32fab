"""`toolkit` with the test-only linear-q algorithm registered: python toolkit_with_linear_q.py ARGS..."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import linear_q  # noqa: E402

from toolkit.cli import main  # noqa: E402
from toolkit.plugins import get_registry  # noqa: E402

get_registry().add_plugin("linear-q-test", linear_q, "0", builtin=False)
sys.exit(main(sys.argv[1:]))
