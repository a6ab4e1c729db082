#!/bin/sh
# MTD zero-shot run of the discriminator: train on Kn normal images and the
# synthetic samples in SYNTH (from `uniadc synth`), predict the test set
# with --raw, score with `uniadc eval`. Prints the training summary (time,
# loss) and the metrics table; peak memory comes from /usr/bin/time -v.
#   scripts/mtd_discriminator.sh UNIADC DATA SYNTH OUTDIR KN [train options]
set -eu
bin=$1 data=$2 synth=$3 out=$4 kn=$5
shift 5
mkdir -p "$out"
/usr/bin/time -v "$bin" train --data "$data" --priors "$data/priors.yaml" \
    --setting zero --kn "$kn" --synth "$synth" --out "$out/model.safetensors" \
    "$@" 2> "$out/train.log"
grep -E "uniadc train:|Maximum resident|Elapsed \(wall" "$out/train.log"
rm -rf "$out/pred"
/usr/bin/time -v "$bin" predict --model "$out/model.safetensors" \
    --dir "$data" --out "$out/pred" --raw > "$out/pred.jsonl" \
    2> "$out/predict.log"
grep -E "Elapsed \(wall" "$out/predict.log"
"$bin" eval --data "$data" --maps "$out/pred" --class-maps "$out/pred" \
    --priors "$data/priors.yaml" --setting zero --kn "$kn" \
    --json "$out/eval.json" -q
