#!/bin/bash
# The GPU side of issue 19's training run (see docs/model-card.md for how it was used).
#
# The lent GPU machine gets the repository's working tree plus a folder DIR (default
# .devtrain) holding: tools/train/*.py, corpus.tar.xz (train.txt, heldout.txt), COMMIT
# (git commit of the scripts) and, only if the machine was lost, init/model.bin + .json.
# One command may run 10 minutes, and the machine stays while calls follow each other, so
# the trainer runs detached (setsid) in /root/run with one time budget, and each call
# waits for it, then copies the newest exported model (15 MiB shards), logs and JSON to $OUT.
#
#   device_train.sh start SECONDS_BUDGET WAIT_SECONDS [extra train.py args]
#       unpack, start training in the background, follow its log for WAIT_SECONDS
#   device_train.sh follow WAIT_SECONDS
#       follow the running trainer (or its finished log) for up to WAIT_SECONDS
# Both end by copying the current outputs to $OUT.
set -u
DIR=${DEVTRAIN_DIR:-.devtrain}
RUN=${DEVTRAIN_RUN:-/root/run}
CORPUS=${DEVTRAIN_CORPUS:-/root/corpus}
mode=$1; shift

collect() {
    [ -n "${OUT:-}" ] || return 0
    cp -f $RUN/train.log $RUN/loss.csv $RUN/evals.csv $OUT/ 2>/dev/null
    if [ -f $RUN/model.bin ]; then
        # a consistent copy: model.bin is replaced atomically by the trainer
        cp -f $RUN/model.bin /root/model.copy && cp -f $RUN/model.json $RUN/model.bin.sha256 $OUT/ 2>/dev/null
        (cd /root && rm -f model.part.* && split -b 15M -d model.copy model.part.) && mv /root/model.part.* $OUT/
    fi
    ls -la $OUT
}

follow() {
    local until=$(( $(date +%s) + $1 ))
    local pid; pid=$(cat $RUN/pid 2>/dev/null)
    while [ "$(date +%s)" -lt $until ] && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; do
        sleep 5
    done
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        echo "== trainer still running (pid $pid)"
    else
        echo "== trainer finished: rc $(cat $RUN/rc 2>/dev/null)"
    fi
    grep -E "eval|final|check|stopped|schedule|compile|memory|Error|error" $RUN/train.log | tail -40
    tail -5 $RUN/train.log
}

case "$mode" in
start)
    budget=$1; wait_s=$2; shift 2
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    mkdir -p $RUN $CORPUS
    t0=$(date +%s)
    tar -xJf $DIR/corpus.tar.xz -C $CORPUS || exit 1
    echo "corpus unpacked in $(( $(date +%s) - t0 )) s: $(ls -la $CORPUS | tr '\n' ' ')"
    init=()
    [ -f $DIR/init/model.bin ] && [ ! -f $RUN/ckpt.pt ] && init=(--init-from $DIR/init/model.bin)
    export PYTHONUNBUFFERED=1 SPARQ_TRAIN_COMMIT=$(cat $DIR/COMMIT 2>/dev/null)
    setsid bash -c "python3 $DIR/tools/train/train.py --corpus-dir $CORPUS --out $RUN --device cuda \
        --time-budget $budget ${init[*]} $* > $RUN/train.log 2>&1; echo \$? > $RUN/rc" < /dev/null &
    echo $! > $RUN/pid  # the detached bash, which ends when the trainer does
    echo "trainer pid $(cat $RUN/pid), budget $budget s"
    follow "$wait_s"
    collect
    ;;
follow)
    follow "$1"
    collect
    ;;
*)
    echo "usage: $0 start BUDGET WAIT [args] | follow WAIT" >&2
    exit 2
    ;;
esac
