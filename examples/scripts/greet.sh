#!/bin/sh
# Greets NAME, TIMES times. Each argument arrives as exactly one word,
# whatever it holds: the registry never passes it through a shell.
name=$1
times=${2:-1}
i=0
while [ "$i" -lt "$times" ]; do
    printf 'hello, %s\n' "$name"
    i=$((i + 1))
done
