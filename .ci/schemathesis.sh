#!/usr/bin/env bash
# Schemathesis (PyPI schemathesis 4.32.5, in .ci/venv) against a running, throwaway Haven server's
# /openapi.json, as three callers: anonymous, a freshly registered user's JWT, and an admin API key.
#
#   HAVEN_ADMIN_API_KEY=sk_haven_… bash .ci/schemathesis.sh http://127.0.0.1:PORT [role ...]
#
# Roles: anonymous user admin (default: all three). Every check (set in .ci/schemathesis.toml), a bounded number of
# examples per operation (ST_EXAMPLES, default 10), a fixed seed, two workers. The anonymous
# caller runs the coverage and fuzzing phases with half the examples: nearly every operation answers
# it with the documented 401, and the stateful phase has nothing it could create to follow. Operations that end
# the caller's own session or identity are excluded (the stateful phase follows links to the
# caller's own id and would log it out, archive it, or change its password or role), and so are
# the SSE streams. .ci/st_hooks.py keeps generated stay dates in the future and in order (rules
# the schema cannot express; the document names them in its 400s); .ci/schemathesis.toml turns off
# the valid-request-accepted check for agent definitions (checked against the registry). Reports go
# to .ci/out/schemathesis/<role>/ (JUnit and NDJSON); the step fails when any role has a failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.ci/venv"
OUT="$ROOT/.ci/out/schemathesis"
ST_VERSION=4.32.5
EXAMPLES=${ST_EXAMPLES:-10}
# Seconds one role may take (each took 250-320 s on the 2-core CI machine; a timeout is a failure).
ROLE_TIMEOUT=${ST_ROLE_TIMEOUT:-600}
# Operations that end the caller's session or identity (createGdprAction files erasures of the
# caller), the localization settings (a generated setting narrows the languages and currencies
# every other operation accepts, so later valid-looking listings would be refused), then the
# long-lived streams (they would hold every example until the request timeout), and the Stripe
# webhook (CI runs the local payment provider, which has no webhooks: every call is a documented
# 400). One regex: Schemathesis ANDs separate filters.
EXCLUDE='^(logout|relogin|archiveProfile|updateUserPassword|updateUserPasswordByAdmin|updateUserRole|deleteUser|updateApiKey|createGdprAction|createLocalizationSetting|updateLocalizationSetting|mcpLegacySse|events|streamAgentRoute|streamDynamicAgentRoute|stripeWebhook)$'

install() {
    [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
    if ! "$VENV/bin/python" -c 'import schemathesis, sys; sys.exit(schemathesis.__version__ != sys.argv[1])' "$ST_VERSION" 2>/dev/null; then
        timeout 300 "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$ST_VERSION"
    fi
    echo "schemathesis: $("$VENV/bin/st" --version)"
}

# A fresh user's access token: registerUser, then login (the body is what the OpenAPI documents).
user_token() {
    local base=$1 email password
    email="st-$(date +%s)-$RANDOM@example.com"
    password="st-pass-$RANDOM-$RANDOM"
    "$VENV/bin/python" - "$base" "$email" "$password" <<'PY'
import json, sys, urllib.request
base, email, password = sys.argv[1:]
def post(path, body):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=20))
post("/auth-api/v1/registeruser", {"email": email, "password": password, "fullname": "Schemathesis Caller"})
print(post("/auth-api/login", {"username": email, "password": password})["accessToken"])
PY
}

run_role() {
    local base=$1 role=$2 token="" rc=0 started=$SECONDS
    case $role in
        anonymous) ;;
        user) token=$(user_token "$base") || { echo "schemathesis: could not register and log in a user"; return 1; } ;;
        admin)
            token=${HAVEN_ADMIN_API_KEY:-}
            [[ -n $token ]] || { echo "schemathesis: HAVEN_ADMIN_API_KEY is not set"; return 1; }
            ;;
        *) echo "schemathesis: unknown role '$role'"; return 2 ;;
    esac
    local dir="$OUT/$role" auth=() examples=$EXAMPLES phases=examples,coverage,fuzzing,stateful
    mkdir -p "$dir"
    [[ -n $token ]] && auth=(-H "Authorization: Bearer $token")
    if [[ $role == anonymous ]]; then
        examples=$(((EXAMPLES + 1) / 2))
        phases=examples,coverage,fuzzing
    fi
    echo "=== schemathesis as $role: -n $examples, phases $phases, at most ${ROLE_TIMEOUT}s ==="
    # From $dir, so Schemathesis's crash cache (.schemathesis/) starts empty with every run.
    (
        cd "$dir" &&
            SCHEMATHESIS_HOOKS=st_hooks PYTHONPATH="$ROOT/.ci" timeout "$ROLE_TIMEOUT" \
                "$VENV/bin/st" --config-file "$ROOT/.ci/schemathesis.toml" run "$base/openapi.json" \
                -n "$examples" --phases "$phases" --seed 1 --workers 2 --request-timeout 20 --no-color \
                --exclude-operation-id-regex "$EXCLUDE" \
                --report junit,ndjson --report-dir "$dir" \
                "${auth[@]}"
    ) >"$dir/st.log" 2>&1 || rc=$?
    # Each failure with its reproduction (capped), then the summary; the whole log stays in $dir/st.log.
    sed -n '/^=* *\(FAILURES\|ERRORS\) *=*$/,/^=* *\(WARNINGS\|SUMMARY\) *=*$/p' "$dir/st.log" | head -n 150
    sed -n '/^=* *SUMMARY/,$p' "$dir/st.log" | head -n 60
    if ((rc == 124)); then
        echo "schemathesis: $role ran out of its ${ROLE_TIMEOUT}s; the log's last lines:"
        tail -n 15 "$dir/st.log"
    fi
    echo "schemathesis: $role finished in $((SECONDS - started))s, exit $rc; log $dir/st.log"
    return "$rc"
}

main() {
    local base=${1%/}
    shift
    local roles=("$@")
    ((${#roles[@]})) || roles=(anonymous user admin)
    install
    rm -rf "$OUT"
    mkdir -p "$OUT"
    # One role after the other: side by side they only compete for the same two cores.
    local r failed=() started=$SECONDS
    for r in "${roles[@]}"; do
        run_role "$base" "$r" || failed+=("$r")
    done
    echo "schemathesis: all roles finished in $((SECONDS - started))s"
    echo "schemathesis: roles with failures: ${failed[*]:-none}"
    ((${#failed[@]} == 0))
}

case ${1:-} in
    install) install ;;
    http://* | https://*) main "$@" ;;
    *)
        echo "usage: $0 install | $0 BASE_URL [anonymous|user|admin ...]" >&2
        exit 2
        ;;
esac
