#!/usr/bin/env bash
# Run (or resume) the paper's sweeps whose cards docs/results/ publishes, one after another, in one
# run store, and keep a compressed snapshot of that store in docs/results/ as cells finish.
#
#   scripts/run-paper-sweeps.sh            # resumes where the store left off; Ctrl-C is safe
#   COMMIT=1 scripts/run-paper-sweeps.sh   # also `git commit` each changed snapshot (unattended runs)
#
# On a fresh machine the store is first rebuilt from docs/results/runs.sqlite.gz, so finished cells
# are skipped (adapters are not in git: a cell interrupted mid-training starts over).
set -uo pipefail
cd "$(dirname "$0")/.."
STORE=${STORE:-rho-audit-runs/paper/runs.sqlite}
OUT=${OUT:-rho-audit-runs/paper/sweeps}
SNAPSHOT=${SNAPSHOT:-docs/results/runs.sqlite.gz}
REPO=${REPO:-.}  # the checkout whose git history gets the snapshots
SWEEPS=${SWEEPS:-"paper-ablation paper-dose-response paper-margin"}
mkdir -p "$(dirname "$STORE")"
if [[ ! -e $STORE && -e $SNAPSHOT ]]; then
  echo "restoring $STORE from $SNAPSHOT"
  gunzip -c "$SNAPSHOT" > "$STORE"
fi

# A snapshot is ~1-4 MB gzipped, and git keeps every committed one: write and commit one only
# when a cell has finished since the last (the step log alone changes the bytes every minute).
LAST="$STORE.snapshot-summary"
snapshot() {
  local summary
  summary=$(python scripts/snapshot-store.py --summary "$STORE" 2>/dev/null) || return 0
  [[ -e $SNAPSHOT && -e $LAST && $(cat "$LAST") == "$summary" ]] && return 0
  python scripts/snapshot-store.py "$STORE" "$SNAPSHOT" || return 0
  echo "$summary" > "$LAST"
  [[ ${COMMIT:-0} == 1 ]] || return 0
  git -C "$REPO" add -- "$SNAPSHOT" && git -C "$REPO" diff --cached --quiet -- "$SNAPSHOT" && return 0
  for _ in 1 2 3 4 5 6; do  # another process may hold the index lock for a moment
    git -C "$REPO" commit -q -m "results: run store snapshot ($summary)" -- "$SNAPSHOT" && return 0
    sleep 10
  done
}

( while sleep "${SNAPSHOT_EVERY_S:-600}"; do snapshot; done ) &
watcher=$!
trap 'kill $watcher 2>/dev/null; snapshot' EXIT

status=0
for name in $SWEEPS; do
  rho-audit sweep "sweeps/$name.yaml" --store "$STORE" --out "$OUT" --display plain --wait || status=$?
  [[ $status -ge 128 ]] && exit "$status"  # Ctrl-C or a signal: stop here, resume later
done
exit "$status"
