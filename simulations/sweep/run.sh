#!/usr/bin/env bash
# Every method x 3 seeds x 2 forgotten (and backdoored) clients, then one mean ± std table per method.
set -euo pipefail
out=${1:-multirun/sweep}
fedunlearn -m experiment=sweep seed=1,2,3 'forget.clients=[0],[3]' "hydra.sweep.dir=$out"
fedunlearn-report "$out"
