#!/bin/sh
# Fails with exit code CODE after saying why on standard error.
code=$1
printf 'about to fail\n'
printf 'failing on purpose with exit code %d\n' "$code" >&2
exit "$code"
