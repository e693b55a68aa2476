#!/usr/bin/env bash
# Re-creates the README's tracking screenshots from a tiny real search run here:
#   docs/img/tensorboard-hparams.png   TensorBoard's HParams dashboard: every trial of two studies
#   docs/img/tensorboard-phases.png    TensorBoard's scalars of two transfer trials: each phase its own run
#   docs/img/mlflow-runs.png           MLflow's charts of the scratch study: per-epoch metrics of every run
# Usage, from anywhere: docs/img/screenshots.sh   (needs chromium: apt-get install chromium; and mlflow:
# pip install -e '.[mlflow]'). About 5 minutes on 2 CPU cores. Everything else goes to a temporary
# folder, removed at the end (KEEP_WORK=1 keeps it); the servers it starts are stopped.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PY:-$REPO/.venv/bin/python}
OUT=$REPO/docs/img
WORK=$(mktemp -d)
GROUPS_STARTED=()
cleanup() {
    for group in "${GROUPS_STARTED[@]}"; do kill -- "-$group" 2>/dev/null || true; done
    if [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
cd "$WORK"  # runs/, runs/tensorboard/ and mlruns/ (MLflow's default place) all land here
unset MLFLOW_TRACKING_URI

cli() { "$PY" "$REPO/cli.py" "$@"; }
cli data sample sample --per-class 30
COMMON=(--data sample --backbone mini_xception --storage sqlite:///studies.db --track tensorboard --track mlflow)
cli search --regime scratch --trials 5 --max-epochs 5 "${COMMON[@]}"
cli train --from-study scratch-optuna --storage sqlite:///studies.db --track tensorboard --track mlflow
cli search --regime transfer --trials 4 --max-epochs 3 --weights runs/scratch-optuna/final-seed0 "${COMMON[@]}"

# each server in its own process group, so that stopping it stops its workers too
setsid "$PY" -m tensorboard.main --logdir runs/tensorboard --port 6006 --host 127.0.0.1 >tensorboard.log 2>&1 &
GROUPS_STARTED+=($!)
MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid "$PY" -m mlflow server --workers 1 \
    --backend-store-uri "sqlite:///$WORK/mlruns/mlflow.db" --host 127.0.0.1 --port 5000 >mlflow.log 2>&1 &
GROUPS_STARTED+=($!)
for url in http://127.0.0.1:6006 http://127.0.0.1:5000; do
    for _ in $(seq 90); do curl -fs "$url" >/dev/null && break; sleep 1; done
done
experiment=$("$PY" -c "
from mlflow.tracking import MlflowClient
print(MlflowClient('sqlite:///$WORK/mlruns/mlflow.db').get_experiment_by_name('scratch-optuna').experiment_id)")

shot() { "$PY" "$REPO/docs/img/capture.py" "$@"; }
shot "http://127.0.0.1:6006/#hparams" "$OUT/tensorboard-hparams.png" --size 1600x800
shot "http://127.0.0.1:6006/#scalars&_smoothingWeight=0&_ignoreYOutliers=false&regexInput=transfer-optuna%2Ftrial-%5B23%5D%2F&tagFilter=%5E(val_accuracy%7Closs%7Clearning_rate%7Cval_loss)%24" \
    "$OUT/tensorboard-phases.png" --size 1600x800
# MLflow: close the assistant panel a first visit opens, pick "Model training", open the charts of the
# study's runs and scroll to the per-epoch metrics (the section after the results)
shot "http://127.0.0.1:5000/#/experiments/$experiment/runs" "$OUT/mlflow-runs.png" --size 1600x1000 --then 5 --script "
new Promise(done => {
  const close = [...document.querySelectorAll('button')].find(b => b.getAttribute('aria-label') === 'Close');
  if (close) close.click();
  const training = [...document.querySelectorAll('*')].find(e => !e.children.length && e.textContent.trim() === 'Model training');
  if (training) training.click();
  setTimeout(() => {
    location.hash = '#/experiments/$experiment/runs?compareRunsMode=CHART';
    setTimeout(() => {
      const sections = [...document.querySelectorAll('*')].filter(e => !e.children.length && /^\(\d+\)$/.test(e.textContent.trim()));
      if (sections.length > 1) sections[1].scrollIntoView({block: 'start'});
      done([!!close, !!training, sections.length]);
    }, 6000);
  }, 1500);
})"
ls -l "$OUT"/*.png
