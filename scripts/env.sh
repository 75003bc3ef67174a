# Sourced by the scripts: puts the project's tools on PATH.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$ROOT/scripts/node/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }
# A clean CI build gains nothing from incremental caches but their disk space.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
