#!/usr/bin/env bash
# Set-up command 1: install dependencies, build (Release), and run the main job:
# `sparq roofline` on its default problem (a few minutes the first time, most of it
# the build; about a minute after that on 2 cores).
# Extra arguments are passed to `sparq roofline`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target sparq_cli
exec ./build/apps/sparq/sparq roofline "$@"
