#!/bin/sh
# honeytrail CI canary: gives this CI run its own honey AWS key and closes the
# run's expected-activity window at its end (docs/ci.md).
#
#   honeytrail-ci.sh open    take a key for this run; write it to
#                            ~/.aws/credentials and the job's environment
#   honeytrail-ci.sh close   close this run's window: any use from now on,
#                            from anywhere, is an incident naming the run
#
# Needs curl and jq. Reads:
#   HONEYTRAIL_URL              the server, e.g. https://honeytrail.example.com
#   HONEYTRAIL_CI_SECRET        an enrolment secret (`honeytrail enrol create`); open only
#   HONEYTRAIL_CI_EXPECT        runner (default) | any | none: which uses inside the window are the run's own
#   HONEYTRAIL_CI_WINDOW_MINUTES  how long the window stays open if close never runs
#   HONEYTRAIL_CI_PROFILE       the profile written (default: default, or "ci" if default exists)
#   HONEYTRAIL_CI_STATE         where the run's close token is kept (default $RUNNER_TEMP or /tmp)
#   HONEYTRAIL_CA_FILE          a CA bundle for a server with a private certificate
#   HONEYTRAIL_CI_STRICT        1: fail the job when the server cannot be reached (default: warn, go on)
# The run is described from GitHub Actions' or GitLab CI's variables; elsewhere
# set HONEYTRAIL_CI_REPOSITORY and HONEYTRAIL_CI_RUN_ID (and optionally
# HONEYTRAIL_CI_WORKFLOW, _JOB, _COMMIT, _URL).
#
# It never replaces credentials the job already has: an existing profile of
# the same name or AWS_ACCESS_KEY_ID already set is left alone, and said so.
set -eu

say() { printf 'honeytrail-ci: %s\n' "$*" >&2; }

give_up() {
    say "$*"
    if [ "${HONEYTRAIL_CI_STRICT:-0}" = 1 ]; then exit 1; fi
    say "carrying on without a canary (set HONEYTRAIL_CI_STRICT=1 to fail the job instead)"
    exit 0
}

for tool in curl jq; do
    command -v "$tool" >/dev/null 2>&1 || give_up "$tool is needed and not installed"
done
[ -n "${HONEYTRAIL_URL:-}" ] || give_up "set HONEYTRAIL_URL to the honeytrail server"
url=${HONEYTRAIL_URL%/}
state_dir=${HONEYTRAIL_CI_STATE:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}}
state="$state_dir/honeytrail-ci.run"

# curl without the credential on its command line (other users can read
# that): the Authorization header comes from a private file.
post() { # PATH BEARER BODY
    header=$(mktemp)
    chmod 600 "$header"
    printf 'Authorization: Bearer %s\n' "$2" >"$header"
    set -- "$1" "$3" "$header"
    if [ -n "${HONEYTRAIL_CA_FILE:-}" ]; then set -- "$@" --cacert "$HONEYTRAIL_CA_FILE"; fi
    path=$1 body=$2 header=$3
    shift 3
    curl -sS --max-time 30 "$@" -X POST -H "@$header" -H 'Content-Type: application/json' \
        --data "$body" -w '\n%{http_code}' "$url$path" || true
    rm -f "$header"
}

# The status (last line) and the body (the rest) of what post printed.
status_of() { printf '%s\n' "$1" | tail -n 1; }
body_of() { printf '%s\n' "$1" | sed '$d'; }

# Only what a key, a secret, a region, an ID and a token look like is
# written to a file the shell reads.
matches() { printf '%s' "$1" | grep -Eqx "$2"; }

open_run() {
    [ -n "${HONEYTRAIL_CI_SECRET:-}" ] || give_up "set HONEYTRAIL_CI_SECRET to an enrolment secret (a masked CI variable)"
    if [ "${GITHUB_ACTIONS:-}" = true ]; then
        provider=github
        repository=${GITHUB_REPOSITORY:-}
        workflow=${GITHUB_WORKFLOW:-}
        job=${GITHUB_JOB:-}
        commit=${GITHUB_SHA:-}
        run_id=${GITHUB_RUN_ID:-}
        attempt=${GITHUB_RUN_ATTEMPT:-}
        link="${GITHUB_SERVER_URL:-https://github.com}/$repository/actions/runs/$run_id"
    elif [ "${GITLAB_CI:-}" = true ]; then
        provider=gitlab
        repository=${CI_PROJECT_PATH:-}
        workflow=${CI_PIPELINE_NAME:-}
        job="${CI_JOB_NAME:-} (job ${CI_JOB_ID:-?})"
        commit=${CI_COMMIT_SHA:-}
        run_id=${CI_PIPELINE_ID:-}
        attempt=""
        link=${CI_JOB_URL:-}
    else
        provider=other
        repository=${HONEYTRAIL_CI_REPOSITORY:-}
        workflow=${HONEYTRAIL_CI_WORKFLOW:-}
        job=${HONEYTRAIL_CI_JOB:-}
        commit=${HONEYTRAIL_CI_COMMIT:-}
        run_id=${HONEYTRAIL_CI_RUN_ID:-}
        attempt=""
        link=${HONEYTRAIL_CI_URL:-}
    fi
    case "$link" in https://*) ;; *) link="" ;; esac
    body=$(jq -nc --arg provider "$provider" --arg repository "$repository" --arg workflow "$workflow" \
        --arg job "$job" --arg commit "$commit" --arg run_id "$run_id" --arg attempt "$attempt" \
        --arg url "$link" --arg expect "${HONEYTRAIL_CI_EXPECT:-runner}" \
        --arg window "${HONEYTRAIL_CI_WINDOW_MINUTES:-}" '
        def opt: if . == "" then null else . end;
        {provider: $provider, repository: $repository, workflow: ($workflow|opt), job: ($job|opt),
         commit: ($commit|opt), run_id: $run_id, run_attempt: ($attempt|opt), url: ($url|opt),
         expect: $expect, window_minutes: (if $window == "" then null else ($window|tonumber) end)}')
    answer=$(post /api/v1/ci/runs "$HONEYTRAIL_CI_SECRET" "$body")
    status=$(status_of "$answer")
    answer=$(body_of "$answer")
    if [ "$status" != 201 ]; then
        why=$(printf '%s' "$answer" | jq -r '.error.message? // empty' 2>/dev/null | tr -cd '[:print:]' | cut -c1-300)
        give_up "the server refused the run (HTTP ${status:-none}): ${why:-no answer from $url}"
    fi
    id=$(printf '%s' "$answer" | jq -r '.run.id')
    key=$(printf '%s' "$answer" | jq -r '.access_key_id')
    secret=$(printf '%s' "$answer" | jq -r '.secret_access_key')
    region=$(printf '%s' "$answer" | jq -r '.region')
    close=$(printf '%s' "$answer" | jq -r '.close_token')
    matches "$id" '[0-9]{1,18}' && matches "$key" '[A-Z0-9]{16,128}' && matches "$secret" '[A-Za-z0-9/+=]{16,128}' &&
        matches "$region" '[a-z0-9-]{1,32}' && matches "$close" '[A-Za-z0-9._~+/=-]{16,256}' ||
        give_up "the server's answer does not look like a key; not writing it"

    mkdir -p "$state_dir"
    umask 077
    printf '%s %s\n' "$id" "$close" >"$state"

    profile=${HONEYTRAIL_CI_PROFILE:-}
    creds="$HOME/.aws/credentials"
    if [ -z "$profile" ]; then
        if [ -f "$creds" ] && grep -q '^\[default\]' "$creds"; then profile=ci; else profile=default; fi
    fi
    mkdir -p "$HOME/.aws"
    if [ -f "$creds" ] && grep -q "^\[$profile\]" "$creds"; then
        say "profile [$profile] exists in $creds; left alone (set HONEYTRAIL_CI_PROFILE to another name)"
    else
        {
            [ -s "$creds" ] && printf '\n'
            printf '[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\nregion = %s\n' \
                "$profile" "$key" "$secret" "$region"
        } >>"$creds"
    fi

    if [ -n "${AWS_ACCESS_KEY_ID:-}" ]; then
        say "AWS_ACCESS_KEY_ID is already set in this job; the environment is left alone"
    else
        if [ -n "${GITHUB_ENV:-}" ]; then
            printf '::add-mask::%s\n' "$secret"
            printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\nAWS_DEFAULT_REGION=%s\n' \
                "$key" "$secret" "$region" >>"$GITHUB_ENV"
        fi
        # For CI systems whose steps share no environment (GitLab): source it.
        printf 'export AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\nexport AWS_DEFAULT_REGION=%s\n' \
            "$key" "$secret" "$region" >"$state_dir/honeytrail-ci.env"
    fi
    say "CI run #$id has its canary (profile [$profile]); its window closes when 'honeytrail-ci.sh close' runs"
}

close_run() {
    [ -f "$state" ] || give_up "no run was opened here ($state is missing)"
    read -r id close <"$state"
    answer=$(post "/api/v1/ci/runs/$id/close" "$close" '{}')
    status=$(status_of "$answer")
    [ "$status" = 200 ] || give_up "the server did not close CI run #$id (HTTP ${status:-none}); its window ends at its bound"
    rm -f "$state" "$state_dir/honeytrail-ci.env"
    say "CI run #$id closed: any use of its key from now on is an incident"
}

case "${1:-}" in
    open) open_run ;;
    close) close_run ;;
    *) say "usage: honeytrail-ci.sh open|close"; exit 2 ;;
esac
