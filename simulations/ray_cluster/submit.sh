#!/usr/bin/env bash
# Submit a fedunlearn run as a Ray job to a running cluster; extra arguments are Hydra overrides.
#
#   RAY_ADDRESS=http://<head>:8265 simulations/ray_cluster/submit.sh experiment=federaser_paper seed=1
#
# The job joins the cluster (ray=cluster: ray.address=auto) and writes its Hydra output directory
# under $FEDUNLEARN_RESULTS on the head node (default /tmp/fedunlearn-jobs/<timestamp>).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${RAY_ADDRESS:=http://127.0.0.1:8265}"
: "${FEDUNLEARN_RESULTS:=/tmp/fedunlearn-jobs/$(date +%Y-%m-%d_%H-%M-%S)}"
export RAY_ADDRESS
exec ray job submit \
    --runtime-env simulations/ray_cluster/runtime_env.yaml \
    --working-dir . \
    ${FEDUNLEARN_JOB_ID:+--submission-id "$FEDUNLEARN_JOB_ID"} \
    -- fedunlearn ray=cluster "hydra.run.dir=$FEDUNLEARN_RESULTS" "$@"
