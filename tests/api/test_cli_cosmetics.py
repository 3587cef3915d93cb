"""What a new user noticed first: the version, the counts, the cents."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

from pantry.api.tables import cell as _fmt


def test_version_is_printed_not_called_a_bug() -> None:
    done = subprocess.run([sys.executable, "-m", "pantry.api.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"pantry {metadata.version('pantry')}"
    assert "bug" not in done.stderr


def test_numbers_keep_their_cents_and_lose_float_noise() -> None:
    assert _fmt(135145.27) == "135,145.27"  # was 135,145 at six significant digits
    assert _fmt(140718.5100000002) == "140,718.51"
    assert _fmt(13719.38) == "13,719.38"
    assert _fmt(2.0) == "2"
    assert _fmt(0.123456789) == "0.123457"  # a ratio keeps six significant digits
    assert _fmt(-1234.5) == "-1,234.5"
    assert _fmt(float("nan")) == "nan"
