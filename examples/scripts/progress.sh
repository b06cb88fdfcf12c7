#!/bin/sh
# Works through STEPS steps, DELAY seconds each, reporting progress on
# standard error as `::progress PERCENT MESSAGE` lines, which the service
# turns into progress reports and keeps out of the captured output.
steps=$1
delay=$2
i=1
while [ "$i" -le "$steps" ]; do
    sleep "$delay"
    printf '::progress %d step %d of %d\n' $((i * 100 / steps)) "$i" "$steps" >&2
    printf 'step %d done\n' "$i"
    i=$((i + 1))
done
