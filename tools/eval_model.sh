#!/bin/sh
# Accuracy of SparQ against dense attention on the tiny trained model, end to end in
# C++ (`sparq perplexity`, `sparq generate`), plus a decode trace replayed by
# `sparq eval` (SparQ variants and the baselines at equal bytes).
#
#   tools/eval_model.sh SPARQ_BINARY MODEL.bin OUT_DIR [RATIOS]
#
# RATIOS defaults to "2,4,8,16". Writes OUT_DIR/perplexity.json, OUT_DIR/gen/*.json,
# OUT_DIR/trace/, OUT_DIR/eval.json and prints the results table
# (tools/summarize_eval.py). Environment: CONTEXT (default 1024), PREFIX (default
# CONTEXT/2), WINDOWS (default 6), LENGTHS (default 256,512,1024,2048), TRIALS (2).
set -eu
SPARQ=$1
MODEL=$2
OUT=$3
RATIOS=${4:-2,4,8,16}
HERE=$(cd "$(dirname "$0")" && pwd)
HELDOUT=$HERE/model/heldout.txt
CONTEXT=${CONTEXT:-1024}
PREFIX=${PREFIX:-$((CONTEXT / 2))}
WINDOWS=${WINDOWS:-6}
LENGTHS=${LENGTHS:-256,512,1024,2048}
TRIALS=${TRIALS:-2}
METHODS=dense
for c in $(echo "$RATIOS" | tr ',' ' '); do METHODS="$METHODS,sparq:$c"; done
mkdir -p "$OUT/gen"

echo "== perplexity ($HELDOUT, context $CONTEXT, prefix $PREFIX, $WINDOWS windows, $METHODS)" >&2
"$SPARQ" perplexity --model "$MODEL" --text "$HELDOUT" --context "$CONTEXT" --prefix "$PREFIX" \
  --max-windows "$WINDOWS" --method "$METHODS" --json --trace "$OUT/trace" >"$OUT/perplexity.json"

SPARQ_ONLY=${METHODS#dense,}
echo "== perplexity, SparQ variants: per-head GQA selection; reallocation on" >&2
"$SPARQ" perplexity --model "$MODEL" --text "$HELDOUT" --context "$CONTEXT" --prefix "$PREFIX" \
  --max-windows "$WINDOWS" --method "$SPARQ_ONLY" --gqa per-head --json >"$OUT/perplexity_per_head.json"
"$SPARQ" perplexity --model "$MODEL" --text "$HELDOUT" --context "$CONTEXT" --prefix "$PREFIX" \
  --max-windows "$WINDOWS" --method "$SPARQ_ONLY" --reallocation on --json >"$OUT/perplexity_realloc.json"

echo "== passkey and repetition prompts" >&2
/usr/bin/python3 "$HERE/make_eval_prompts.py" --heldout "$HELDOUT" --out "$OUT/prompts" \
  --lengths "$LENGTHS" --trials "$TRIALS" >&2
/usr/bin/python3 -c 'import json,sys; [print(p["name"], p["tokens"]) for p in json.load(open(sys.argv[1]))]' \
  "$OUT/prompts/index.json" | while read -r name tokens; do
  "$SPARQ" generate --model "$MODEL" --prompt-file "$OUT/prompts/$name.txt" --tokens "$tokens" \
    --method "$METHODS" --json >"$OUT/gen/$name.json"
done

echo "== sparq eval on the dense trace (first perplexity window)" >&2
"$SPARQ" eval "$OUT/trace" --ratios "$RATIOS" --steps "${EVAL_STEPS:-128}" --json >"$OUT/eval.json"

/usr/bin/python3 "$HERE/summarize_eval.py" "$OUT"
