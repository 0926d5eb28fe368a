#!/usr/bin/env bash
# examples/sine_mpi: 150 meta-iterations on 2 ranks, saved by rank 0 and resumed on 3 ranks for
# 150 more, must end where 300 meta-iterations in one process end (θ's hash and the evaluation),
# and a bad flag must end the job with the message, not hang.
#   sine_mpi_resume.sh <sine_mpi> <mpirun and its flags...>
set -euo pipefail
bin="$1"; shift
dir="$(mktemp -d)"; trap 'rm -rf "$dir"' EXIT
"$@" -np 2 "$bin" --iterations 150 --save "$dir/run.ckpt" > "$dir/a.txt"
"$@" -np 3 "$bin" --iterations 150 --resume "$dir/run.ckpt" > "$dir/b.txt"
"$@" -np 1 "$bin" --iterations 300 > "$dir/c.txt"
b="$(grep -E '^(theta|MSE)' "$dir/b.txt")"; c="$(grep -E '^(theta|MSE)' "$dir/c.txt")"
echo "resumed on 3 ranks: $b"; echo "one process:        $c"
[ -n "$b" ] && [ "$b" = "$c" ] || { echo "sine_mpi_resume: the resumed run differs" >&2; exit 1; }
if "$@" -np 2 "$bin" --bogus 1 > "$dir/d.txt" 2>&1; then echo "sine_mpi_resume: a bad flag passed" >&2; exit 1; fi
grep -q "unknown flag --bogus" "$dir/d.txt" || { echo "sine_mpi_resume: no message for a bad flag" >&2; exit 1; }
echo "sine_mpi: resumed on another number of ranks, bit-identical; a bad flag ends the job with its message"
