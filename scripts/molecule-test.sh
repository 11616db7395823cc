#!/usr/bin/env bash
# Runs `molecule test -s SCENARIO`, keeping its whole output in build/logs/molecule-SCENARIO.log.
# When it fails, the failed tasks are repeated at the end, after molecule's destroy output,
# followed by the failed sections of verify's report when there is one, so that the last lines
# of a long log still say what failed.
#
# Molecule keeps a scenario's state (whether its instance was created) under ~/.ansible/tmp,
# outside the clone: a run stopped before its destroy leaves "created", and the next
# `molecule test` would skip create (credentials, cluster-up) and fail in converge. Each run
# starts from a reset state; create and converge are idempotent, so an instance left running
# is taken over.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

scenario=${1:-default}
log=build/logs/molecule-$scenario.log
mkdir -p build/logs
touch "$log.start"
molecule reset -s "$scenario" >"$log" 2>&1 || { cat "$log"; exit 2; }
molecule test -s "$scenario" 2>&1 | tee -a "$log"
rc=${PIPESTATUS[0]}
if ((rc != 0)); then
    # The last failed tasks: earlier ones may be failures a check provokes and rescues.
    plain=$log.plain
    sed 's/\x1b\[[0-9;]*m//g' "$log" >"$plain"
    echo "=== molecule test -s $scenario failed (exit $rc); its last failed tasks (whole output: $log):"
    grep -a -n -E 'fatal: \[|failed: \[' "$plain" | cut -d: -f1 | tail -n 3 | while read -r line; do
        sed -n "$((line > 4 ? line - 4 : 1)),$((line + 30))p" "$plain"
        echo "---"
    done
    # The failed sections of the report verify wrote in this run say what each check saw.
    report=$(find reports -name report.md -newer "$log.start" -printf '%T@ %p\n' 2>/dev/null \
        | sort -n | tail -n 1 | cut -d' ' -f2)
    if [[ -n $report ]] && grep -q -E '^## .*: FAIL$' "$report"; then
        echo "=== the failed checks of $report:"
        awk '/^## / { show = /: FAIL$/ } show' "$report"
    fi
fi
exit "$rc"
