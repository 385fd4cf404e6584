#!/usr/bin/env bash
# Execute the experiment notebooks (notebooks/NN_*.ipynb) with papermill for one profile, then write
# results/<profile>/README.md (steelnb.study.readme.write_results_readme) from what they wrote.
#
#   ./reproduce.sh [--profile ci|cpu|paper] [--data-root DIR] [--only NAME]... [--jobs N]
#
#   --profile    run settings of steelnb.profiles (default: cpu, the committed results/cpu/)
#   --data-root  folder holding the real data sets (neu/, dagm/, ...); passed as the notebooks' data_root.
#                Without it the notebooks read $STEELNB_DATA; a set found in neither falls back to
#                the synthetic set, and every caption says so.
#   --only NAME  run only this notebook: its file name without .ipynb (01_clusterers) or its number (01);
#                repeat it or give a comma-separated list for several
#   --jobs N     run N notebooks at a time (xargs -P); each then gets nproc/N BLAS/OpenMP threads unless
#                OMP_NUM_THREADS is set
#
# Each notebook writes its tables, figures and run.json to results/<profile>/<name>/. The executed copy
# (with outputs) and its log go to results/<profile>/executed/<name>.{ipynb,log}: that folder is
# git-ignored, as executed notebooks carry images and can be large; the tables and figures are what is kept.
# Progress: a line when each notebook starts and one when it ends (ok / failed, seconds, how many of the run
# are done); each notebook's own progress lines go to its log.
# A failing notebook does not stop the others; the failures are named at the end and the exit status is 1.
# Python: $PYTHON, else .venv/bin/python of the repository, else python3.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROFILE="cpu"
DATA_ROOT=""
ONLY=()
JOBS=1

usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "reproduce.sh: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --profile) [[ $# -ge 2 ]] || die "--profile needs a value"; PROFILE="$2"; shift 2 ;;
        --profile=*) PROFILE="${1#*=}"; shift ;;
        --data-root) [[ $# -ge 2 ]] || die "--data-root needs a value"; DATA_ROOT="$2"; shift 2 ;;
        --data-root=*) DATA_ROOT="${1#*=}"; shift ;;
        --only) [[ $# -ge 2 ]] || die "--only needs a value"; IFS=, read -ra names <<< "$2"; ONLY+=("${names[@]}"); shift 2 ;;
        --only=*) IFS=, read -ra names <<< "${1#*=}"; ONLY+=("${names[@]}"); shift ;;
        --jobs|-j) [[ $# -ge 2 ]] || die "--jobs needs a value"; JOBS="$2"; shift 2 ;;
        --jobs=*) JOBS="${1#*=}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

case "$PROFILE" in ci|cpu|paper) ;; *) die "--profile must be ci, cpu or paper, not '$PROFILE'" ;; esac
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive integer, not '$JOBS'"
if [[ -n "$DATA_ROOT" ]]; then
    [[ -d "$DATA_ROOT" ]] || die "--data-root $DATA_ROOT is not a folder"
    DATA_ROOT="$(cd "$DATA_ROOT" && pwd)"
fi

PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[[ -x "$PYTHON" ]] || PYTHON="$(command -v python3)"
"$PYTHON" -c "import papermill, steelnb" 2>/dev/null \
    || die "$PYTHON cannot import papermill and steelnb: pip install -e '.[dev]' first"

# The notebooks to run, in order.
shopt -s nullglob
ALL=("$ROOT"/notebooks/[0-9][0-9]_*.ipynb)
[[ ${#ALL[@]} -gt 0 ]] || die "no notebooks/NN_*.ipynb found"
NOTEBOOKS=()
if [[ ${#ONLY[@]} -eq 0 ]]; then
    NOTEBOOKS=("${ALL[@]}")
else
    for want in "${ONLY[@]}"; do
        want="${want%.ipynb}"; want="${want##*/}"
        found=""
        for nb in "${ALL[@]}"; do
            name="$(basename "$nb" .ipynb)"
            if [[ "$name" == "$want" || "$name" == "${want}_"* ]]; then found="$nb"; NOTEBOOKS+=("$nb"); fi
        done
        [[ -n "$found" ]] || die "--only $want matches no notebook (have: $(cd "$ROOT/notebooks" && ls [0-9][0-9]_*.ipynb | tr '\n' ' '))"
    done
fi

RESULTS="$ROOT/results/$PROFILE"
EXECUTED="$RESULTS/executed"
mkdir -p "$EXECUTED"
if [[ "$JOBS" -gt 1 && -z "${OMP_NUM_THREADS:-}" ]]; then
    threads=$(( $(nproc) / JOBS )); (( threads >= 1 )) || threads=1
    export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
fi
FINISHED="$(mktemp -d)"  # one file per finished notebook of this run: the "k/N done" count
trap 'rm -rf "$FINISHED"' EXIT
TOTAL=${#NOTEBOOKS[@]}
export ROOT PROFILE DATA_ROOT PYTHON EXECUTED FINISHED TOTAL

run_one() {
    local nb="$1" name args started status
    name="$(basename "$nb" .ipynb)"
    args=(-p profile "$PROFILE")
    [[ -n "$DATA_ROOT" ]] && args+=(-p data_root "$DATA_ROOT")
    rm -f "$EXECUTED/$name.failed" "$EXECUTED/$name.ok"
    echo "[$(date +%T)] $name: started"
    started=$SECONDS
    if "$PYTHON" -m papermill "$nb" "$EXECUTED/$name.ipynb" "${args[@]}" --cwd "$ROOT/notebooks" \
            --no-progress-bar > "$EXECUTED/$name.log" 2>&1; then
        status=ok
    else
        status=failed
    fi
    echo "$(( SECONDS - started ))" > "$EXECUTED/$name.$status"
    touch "$FINISHED/$name"
    echo "[$(date +%T)] $name: $status in $(( SECONDS - started )) s, $(ls "$FINISHED" | wc -l)/$TOTAL done" \
        "(log: ${EXECUTED#"$ROOT"/}/$name.log)"
}
export -f run_one

echo "profile $PROFILE, ${#NOTEBOOKS[@]} notebook(s), $JOBS at a time, data root: ${DATA_ROOT:-(notebook default)}"
printf '%s\0' "${NOTEBOOKS[@]}" | xargs -0 -n 1 -P "$JOBS" bash -c 'run_one "$1"' _

FAILED=()
for nb in "${NOTEBOOKS[@]}"; do
    name="$(basename "$nb" .ipynb)"
    [[ -f "$EXECUTED/$name.ok" ]] || FAILED+=("$name")
done

if ! (cd "$ROOT" && "$PYTHON" -c 'import sys; from steelnb.study.readme import write_results_readme
print("wrote", write_results_readme(sys.argv[1], sys.argv[2]))' "$RESULTS" "$PROFILE"); then
    echo "reproduce.sh: writing $RESULTS/README.md failed" >&2
    FAILED+=("README")
fi

if [[ ${#FAILED[@]} -gt 0 ]]; then
    echo "FAILED (${#FAILED[@]} of ${#NOTEBOOKS[@]}): ${FAILED[*]}; see $EXECUTED/<name>.log" >&2
    exit 1
fi
echo "all ${#NOTEBOOKS[@]} notebook(s) ran in $SECONDS s"
