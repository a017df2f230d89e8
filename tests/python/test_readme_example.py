"""The README's Python example (between <!-- python-example:begin --> and
<!-- python-example:end -->) runs as it is and prints its result line. Skipped while the
README has no such block."""
import os
import re
import subprocess
import sys

import pytest

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def test_readme_python_example(tmp_path):
    text = open(README, encoding="utf-8").read()
    m = re.search(r"<!-- python-example:begin -->.*?```python\n(.*?)```.*?<!-- python-example:end -->", text, re.S)
    if not m:
        pytest.skip("README.md has no block between <!-- python-example:begin --> and <!-- python-example:end -->")
    script = tmp_path / "example.py"
    script.write_text(m.group(1))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "alpha" in r.stdout, r.stdout
