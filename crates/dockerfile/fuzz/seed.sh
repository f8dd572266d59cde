#!/bin/sh
# Seeds corpus/parse and corpus/expand from the BuildKit conformance files at run time
# (the corpus is git-ignored, so no copies of the conformance files are committed).
# Usage: crates/dockerfile/fuzz/seed.sh [path/to/shared/conformance]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$here
while [ ! -f "$root/Cargo.lock" ] && [ "$root" != / ]; do root=$(dirname "$root"); done
conf=${1:-$root/../shared/conformance}
[ -d "$conf/buildkit-shell" ] || { echo "conformance corpus not found at $conf" >&2; exit 1; }

mkdir -p "$here/corpus/parse" "$here/corpus/expand"

# parse: every Dockerfile of the parser corpora, byte for byte.
n=0
for f in "$conf"/buildkit-parser*/*/Dockerfile "$conf"/buildkit-parser*/Dockerfile \
         "$conf"/buildkit-parser-extra/*.Dockerfile "$conf"/buildkit-parser-extra/heredoc/*.Dockerfile; do
  [ -f "$f" ] || continue
  n=$((n + 1))
  cp "$f" "$here/corpus/parse/seed-$n"
done
echo "parse: $n seeds"

# expand: byte 0 = mode (0 = backslash escape, 1 = backtick), then the word, then
# NAME=value lines. envVarTest inputs get both escape modes; wordsTest inputs carry the
# ENV lines seen so far; process_word_cases.json inputs are taken raw (JSON escapes kept).
m=0
emit() { m=$((m + 1)); printf "$1" > "$here/corpus/expand/seed-$m"; printf '%s' "$2" >> "$here/corpus/expand/seed-$m"; }
while IFS= read -r line; do
  case $line in '#'*|'') continue ;; esac
  word=$(printf '%s' "$line" | awk -F'|' '{ gsub(/^[ \t]+|[ \t]+$/, "", $2); print $2 }')
  [ -n "$word" ] || continue
  emit '\000' "$word"
  emit '\001' "$word"
done < "$conf/buildkit-shell/envVarTest"
envs=""
while IFS= read -r line; do
  case $line in
    '#'*|'') continue ;;
    'ENV '*) envs="$envs
${line#ENV }" ;;
    *) emit '\000' "$(printf '%s' "$line" | awk -F' [|] ' '{ print $1 }')$envs" ;;
  esac
done < "$conf/buildkit-shell/wordsTest"
grep -o '"input": *"[^"]*\(\\"[^"]*\)*"' "$conf/buildkit-shell/process_word_cases.json" \
  | sed 's/^"input": *"//; s/"$//' | while IFS= read -r w; do
  m=$((m + 1)); printf '\000%s\nFOO=bar\nBAR=\n' "$w" > "$here/corpus/expand/json-$m"
done
echo "expand: $(ls "$here/corpus/expand" | wc -l) seeds"
