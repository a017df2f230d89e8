#!/bin/bash
# CI smoke test of the issue-19 training pipeline (tools/train/): a few tiny CPU steps with
# the built-in corpus (/usr/share/common-licenses), interrupted and resumed, then export and
# the reload check; the resumed run must give the same exported file as an uninterrupted one.
# Needs Debian's python3-torch and python3-numpy (run with /usr/bin/python3). ~1 minute.
set -euo pipefail
PY=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
"$PY" "$HERE/train.py" --smoke --out "$TMP/a" > "$TMP/a.log" 2>&1 || { cat "$TMP/a.log"; exit 1; }
"$PY" "$HERE/train.py" --smoke --out "$TMP/b" --stop-after 5 > "$TMP/b1.log" 2>&1 || { cat "$TMP/b1.log"; exit 1; }
"$PY" "$HERE/train.py" --smoke --out "$TMP/b" > "$TMP/b2.log" 2>&1 || { cat "$TMP/b2.log"; exit 1; }
grep -q "resumed from .* at step 5" "$TMP/b2.log" || { echo "FAIL: second run did not resume"; cat "$TMP/b2.log"; exit 1; }
grep -q "exported file matches the in-memory model" "$TMP/a.log" || { echo "FAIL: export check"; cat "$TMP/a.log"; exit 1; }
ha=$(cut -d' ' -f1 "$TMP/a/model.bin.sha256"); hb=$(cut -d' ' -f1 "$TMP/b/model.bin.sha256")
[ "$ha" = "$(sha256sum "$TMP/a/model.bin" | cut -d' ' -f1)" ] || { echo "FAIL: sha256 sidecar"; exit 1; }
[ "$ha" = "$hb" ] || { echo "FAIL: resumed run differs from uninterrupted run ($ha vs $hb)"; exit 1; }
"$PY" "$HERE/tasks.py" --heldout /usr/share/common-licenses/GPL-3 --lengths 512 --depths 0.5 --per-cell 2 > "$TMP/p.jsonl"
[ "$(wc -l < "$TMP/p.jsonl")" = 2 ] || { echo "FAIL: prompt generator"; exit 1; }
echo "smoke test OK (model sha256 $ha)"
