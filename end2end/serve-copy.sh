#!/usr/bin/env bash
# Runs a copy of ../target/release/chatroom alone in a fresh temporary folder, with no LEPTOS_*
# variables: a one-file deployment. Arguments go to the server; the folder is removed when it exits.
set -euo pipefail
bin="$(cd "$(dirname "$0")/.." && pwd)/target/release/chatroom"
dir="$(mktemp -d "${TMPDIR:-/tmp}/chatroom-release.XXXXXX")"
trap 'rm -rf "$dir"' EXIT
cp "$bin" "$dir/chatroom"
cd "$dir"
while read -r var; do unset "$var"; done < <(compgen -e | grep '^LEPTOS_' || true)
# SIGTERM or SIGINT reach the server too (same process group); wait until it has exited.
trap ':' TERM INT
./chatroom "$@" &
server=$!
status=0
wait "$server" || status=$?
while kill -0 "$server" 2>/dev/null; do wait "$server" || status=$?; done
exit "$status"
