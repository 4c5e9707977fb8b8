#!/bin/sh
# A toy simulation model for the quickstart. It keeps the container contract of the real
# model images: it reads inputs/{FILE_SET_NAME}_{index}.xml of the dated folder and writes
# {series}_{key}_{seed:04}.{extension} files into outputs/.
#
# Locally simseries also passes the real paths (SIMSERIES_INPUT, SIMSERIES_OUTPUTS_DIR, ...);
# in a container the dated folder is /mnt.
set -eu
index="${JOB_ARRAY_INDEX:-${AWS_BATCH_JOB_ARRAY_INDEX:-0}}"
input="${SIMSERIES_INPUT:-/mnt/inputs/${FILE_SET_NAME}_${index}.xml}"
outputs="${SIMSERIES_OUTPUTS_DIR:-/mnt/outputs/}"
workdir="${SIMSERIES_WORKING_DIR:-/mnt/}"

# The value of attribute $1 of the <run> element.
attr() { sed -n "s/.*<run[^>]* $1=\"\([^\"]*\)\".*/\1/p" "$input" | head -n 1; }

series=$(attr series)
key=$(attr key)
seed=$(attr seed)
steps=$(attr steps)
pause=$(attr sleep)
fail=$(attr fail)
flaky=$(attr flaky)
extensions=$(attr extensions)
run=$(printf '%s_%s_%04d' "$series" "$key" "$seed")

# Asked to (record="True" in its input), it writes down what it sees: its environment and the
# dated folder (the container-mode tests check the contract with it).
if [ "$(attr record)" = "True" ]; then
    { env | sort; echo "--- ${workdir}"; ls "$workdir"; } > "${workdir}seen-$run.txt"
fi

echo "toy-model: $run: starting ($steps steps, seed $seed)"
echo "$run" >> "${workdir}executions.log"
sleep "$pause"

if [ "$fail" = "True" ]; then
    echo "toy-model: ERROR $run: told to fail" >&2
    exit 3
fi
if [ "$flaky" = "True" ] && [ ! -e "${workdir}flaky-$run" ]; then
    touch "${workdir}flaky-$run"
    echo "toy-model: ERROR $run: flaky failure (succeeds next time)" >&2
    exit 4
fi

for extension in $extensions; do
    printf 'run=%s seed=%s steps=%s\n' "$run" "$seed" "$steps" > "$outputs$run.$extension"
done
echo "toy-model: $run: wrote $extensions"
