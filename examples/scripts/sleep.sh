#!/bin/sh
# Sleeps SECONDS seconds, in a child process: a timeout kills the whole
# process group, the child too.
printf 'sleeping %s seconds\n' "$1"
sleep "$1" &
wait
printf 'woke up\n'
