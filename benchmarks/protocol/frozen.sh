#!/usr/bin/env bash
# The protocol's test-split grid, run from a checkout of the commit at which the selection
# defaults were frozen, so that no later edit can reach the reported numbers. Resumable:
# every finished step is cached under benchmarks/.cache/ (shared with this checkout), and
# each finished pair is merged into this checkout's benchmarks/results/protocol_compare.json.
#
#   bash benchmarks/protocol/frozen.sh            # all 20 pairs, about 45 minutes each
#   PAIRS="0 1" bash benchmarks/protocol/frozen.sh    # the first two pairs of the order
#
# Pairs run in an order that varies both the data draw and the training seed from the
# first pair on: (d0,s0) (d1,s1) (d2,s2) (d3,s3) (d4,s0) (d0,s1) ...
set -euo pipefail
FROZEN=${FROZEN:-dcfa4df}
ARMS=${ARMS:-full random oracle guard seal seal+safeinstr}
root=$(git rev-parse --show-toplevel)
tree="$root/../sealft-frozen-$FROZEN"
[ -d "$tree" ] || git -C "$root" worktree add --detach "$tree" "$FROZEN"
[ -e "$tree/benchmarks/.cache" ] || ln -s "$root/benchmarks/.cache" "$tree/benchmarks/.cache"
results="benchmarks/results/protocol_compare.json"
for k in ${PAIRS:-$(seq 0 19)}; do
  j=$((k / 5)); d=$((k % 5)); s=$(((d + j) % 4))
  echo "pair $k: draw $d, seed $s ($(date +%H:%M))"
  # shellcheck disable=SC2086  # ARMS is a list of words
  (cd "$tree" && PYTHONPATH="$tree/src:$tree" "$root/.venv/bin/python" -m benchmarks.protocol.compare \
    --split test --draws "$d" --seeds "$s" --arms $ARMS > /dev/null)
  "$root/.venv/bin/python" - "$tree/$results" "$root/$results" <<'PY'
import json, os, sys
frozen, mine = (json.load(open(p)) if os.path.exists(p) else {} for p in sys.argv[1:])
for key, arms in frozen.get("pairs", {}).items():
    mine.setdefault("pairs", {}).setdefault(key, {}).update(arms)
mine.setdefault("seconds", {}).update(frozen.get("seconds", {}))
tmp = sys.argv[2] + ".tmp"
with open(tmp, "w") as fh:
    json.dump(mine, fh, indent=1, sort_keys=True)
    fh.write("\n")
os.replace(tmp, sys.argv[2])
PY
done
"$root/.venv/bin/python" -m benchmarks.protocol.compare --split test --summary
