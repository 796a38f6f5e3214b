#!/usr/bin/env bash
# Train every shipped grid (ablations/grids/*.yaml), then write the report.
#
#   ./run_all.sh                     full size, into results/
#   ./run_all.sh --smoke             every grid in seconds (CI), into results-smoke/
#   ./run_all.sh --scale gpu         every grid at research size, into results-gpu/
#   ./run_all.sh --workers 2 --results DIR -- --devices 0 1 2 3
#   ./run_all.sh --replicate         the catalogue, then each grid's replication
#                                    (`ablate replicate`: held-out seeds, second corpus)
#   ./run_all.sh --ladders           the catalogue, then the scale ladders
#                                    (ablations/grids/ladders/*.yaml); with --replicate,
#                                    the ladders' replications too
#
# Resumable: interrupt it at any point and run the same command again; finished runs
# are skipped and interrupted ones resume from their last checkpoint. Arguments after
# `--` go to every `ablate run` as they are. Exit status: 0 when every run finished or
# diverged (a divergence is a result), 1 when a run crashed or a grid is unfinished
# (the report still covers the rest), 2 on bad input.
set -euo pipefail
cd "$(dirname "$0")"

usage() { sed -n '2,18s/^# \{0,1\}//p' "$0"; }
scale=() workers=() extra=() results="" scale_name="" replicate=0 ladders=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --smoke) scale=(--scale smoke); scale_name=smoke; shift ;;
    --scale) [[ $# -ge 2 ]] || { echo "run_all.sh: --scale needs a name" >&2; exit 2; }
             scale=(--scale "$2"); scale_name=$2; shift 2 ;;
    --scale=*) scale=(--scale "${1#*=}"); scale_name=${1#*=}; shift ;;
    --workers) [[ $# -ge 2 ]] || { echo "run_all.sh: --workers needs a number" >&2; exit 2; }
               workers=(--workers "$2"); shift 2 ;;
    --workers=*) workers=(--workers "${1#*=}"); shift ;;
    --results) [[ $# -ge 2 ]] || { echo "run_all.sh: --results needs a folder" >&2; exit 2; }
               results=$2; shift 2 ;;
    --results=*) results=${1#*=}; shift ;;
    --replicate) replicate=1; shift ;;
    --ladders) ladders=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_all.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
# Other scales' results never mix with the committed CPU-size ones.
results=${results:-results${scale_name:+-$scale_name}}
source scripts/venv.sh                 # PY: the active venv, or the project's .venv
bash scripts/setup.sh

status=0
grids=(ablations/grids/*.yaml)
[[ $ladders -eq 1 ]] && grids+=(ablations/grids/ladders/*.yaml)
for grid in "${grids[@]}"; do
  echo "== $grid" >&2
  rc=0
  # ${a[@]+"${a[@]}"}: an empty array under `set -u` on bash 3.2 (macOS)
  "$PY" -m ablations run "$grid" --results "$results" ${scale[@]+"${scale[@]}"} \
    ${workers[@]+"${workers[@]}"} ${extra[@]+"${extra[@]}"} || rc=$?
  [[ $rc -eq 130 ]] && exit 130                  # Ctrl-C stops everything, resumable
  if [[ $rc -ne 0 ]]; then
    echo "run_all.sh: $grid exited $rc; going on with the other grids" >&2
    [[ $rc -gt $status ]] && status=$rc
  fi
done

# replications after the whole catalogue: a tuned grid's reuse its chosen values
if [[ $replicate -eq 1 ]]; then
  for grid in "${grids[@]}"; do
    echo "== replicate $grid" >&2
    rc=0
    "$PY" -m ablations replicate "$grid" --results "$results" ${scale[@]+"${scale[@]}"} \
      ${workers[@]+"${workers[@]}"} || rc=$?
    [[ $rc -eq 130 ]] && exit 130
    if [[ $rc -ne 0 ]]; then
      echo "run_all.sh: replicating $grid exited $rc; going on with the other grids" >&2
      [[ $rc -gt $status ]] && status=$rc
    fi
  done
fi

# the explorer before the report, so that REPORT.md links it
"$PY" -m ablations explore --results "$results" || echo "run_all.sh: explorer not written" >&2
"$PY" -m ablations report --results "$results"
echo "run_all.sh: report in $results/REPORT.md" >&2
exit "$status"
