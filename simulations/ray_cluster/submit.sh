#!/usr/bin/env bash
# Submit a fedunlearn run as a Ray job to a running cluster; extra arguments are Hydra overrides.
#
#   RAY_ADDRESS=http://<head>:8265 simulations/ray_cluster/submit.sh experiment=federaser_paper seed=1
#
# Token authentication is on by default (RAY_AUTH_MODE=token): the cluster must have been started with it, and the
# token is read from RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token (`ray get-auth-token --generate`).
# Without it Ray refuses the submission. RAY_AUTH_MODE=disabled turns this off (only on a trusted, closed network).
# A token file other users can read is refused (`ray get-auth-token --generate` writes it 0644): chmod 600 it.
#
# The job joins the cluster (ray=cluster: ray.address=auto, which inside a job is the cluster Ray sets) and writes
# its Hydra output directory under $FEDUNLEARN_RESULTS on the head node (default /tmp/fedunlearn-jobs/<timestamp>).
# The repository is the job's working directory (runtime_env.yaml). Ray's packaging notes (one line per ignored
# file) are filtered out so that the job's own output stays readable; errors and the job's log pass through.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${RAY_ADDRESS:=http://127.0.0.1:8265}"
: "${FEDUNLEARN_RESULTS:=/tmp/fedunlearn-jobs/$(date +%Y-%m-%d_%H-%M-%S)}"
: "${RAY_AUTH_MODE:=token}"
export RAY_ADDRESS RAY_AUTH_MODE
token_file="${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}"
if [[ "$RAY_AUTH_MODE" == token && -z "${RAY_AUTH_TOKEN:-}" && -f "$token_file" \
      && -n "$(find -L "$token_file" -maxdepth 0 -perm /077)" ]]; then
    echo "submit.sh: $token_file is readable by other users (mode $(stat -L -c %a "$token_file")): chmod 600 $token_file" >&2
    exit 2
fi
exec ray job submit \
    --runtime-env simulations/ray_cluster/runtime_env.yaml \
    ${FEDUNLEARN_JOB_ID:+--submission-id "$FEDUNLEARN_JOB_ID"} \
    -- fedunlearn ray=cluster "hydra.run.dir=$FEDUNLEARN_RESULTS" "$@" \
    2> >(grep -v -E "Ignoring upload to cluster for these files|is now ignored by default when packaging" >&2)
