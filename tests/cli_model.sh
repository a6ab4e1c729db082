#!/usr/bin/env bash
# `uniadc train` and `uniadc predict` end to end on the tiny dataset of
# tests/data/model (scripts/make_model_testdata.py): train zero- and
# few-shot, predict single images and the dataset with --raw, and check
# that `uniadc eval --maps` reads the raw maps with no conversion.
#   tests/cli_model.sh BINARY SOURCE_DIR
set -u
bin=$1
src=$2
data=$src/tests/data/model
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
small=(--size 64 --width 8 --epochs 4 --batch 4 --threads 1)

# usage errors
expect_rc 0 "train --help" "$bin" train --help
expect_rc 2 "train without --out" "$bin" train --data "$data/ds" \
  --priors "$data/ds/priors.yaml" --setting zero --kn 2 --synth "$data/synth"
expect_rc 2 "zero-shot without --synth" "$bin" train --data "$data/ds" \
  --priors "$data/ds/priors.yaml" --setting zero --kn 2 --out "$tmp/m"
expect_rc 2 "bad backbone" "$bin" train --backbone vit --data x
expect_rc 2 "size not a multiple of 32" "$bin" train --data "$data/ds" \
  --priors "$data/ds/priors.yaml" --setting zero --kn 2 \
  --synth "$data/synth" --out "$tmp/m" --size 50
expect_rc 2 "predict without --model" "$bin" predict x.png
expect_rc 2 "predict --dir without --out" "$bin" predict --model m --dir d

# zero-shot training writes a model; the same seed writes the same bytes
"$bin" train --data "$data/ds" --priors "$data/ds/priors.yaml" \
  --setting zero --kn 2 --synth "$data/synth" --out "$tmp/zero.st" \
  "${small[@]}" --seed 3 2> "$tmp/train.err"
[ $? -eq 0 ] && ok || bad "zero-shot train: $(cat "$tmp/train.err")"
grep -q "train (loss" "$tmp/train.err" && ok || bad "no loss in progress"
grep -q "ETA" "$tmp/train.err" && ok || bad "no ETA in progress"
"$bin" train --data "$data/ds" --priors "$data/ds/priors.yaml" \
  --setting zero --kn 2 --synth "$data/synth" --out "$tmp/zero2.st" \
  "${small[@]}" --seed 3 -q
cmp -s "$tmp/zero.st" "$tmp/zero2.st" && ok || bad "same seed, different model"

# few-shot, with calibration: tau above every normal support pixel
"$bin" train --data "$data/ds" --priors "$data/ds/priors.yaml" \
  --setting few --kn 2 --ka 1 --synth "$data/synth" --out "$tmp/few.st" \
  "${small[@]}" --calibrate -q
[ $? -eq 0 ] && ok || bad "few-shot train"
for i in 000 001; do
  "$bin" predict --model "$tmp/few.st" "$data/ds/train/good/$i.png" \
    | grep -q '"anomalous":false' && ok || bad "calibration image $i flagged"
done

# single images: one JSON line each, views in <out>/<folder>/
out=$("$bin" predict --model "$tmp/zero.st" --out "$tmp/views" \
  "$data/ds/test/hole/000.png" "$data/ds/test/good/001.png")
[ "$(echo "$out" | wc -l)" -eq 2 ] && ok || bad "two JSON lines"
echo "$out" | head -1 | grep -Eq '^\{"path":"[^"]*hole/000.png","score":[0-9.e-]+,"anomalous":(true|false),"class":"[a-z]+","class_id":[0-2],"area":\{"hole":[0-9]+,"line":[0-9]+\},"width":48,"height":40\}$' \
  && ok || bad "JSON line: $(echo "$out" | head -1)"
[ -s "$tmp/views/hole/000_view.png" ] && ok || bad "view PNG missing"

# the dataset with --raw, then eval reads the maps as they are
"$bin" predict --model "$tmp/zero.st" --dir "$data/ds" --out "$tmp/raw" \
  --raw > "$tmp/raw.jsonl"
[ $? -eq 0 ] && ok || bad "predict --dir --raw"
[ "$(wc -l < "$tmp/raw.jsonl")" -eq 12 ] && ok || bad "12 test images"
[ -s "$tmp/raw/line/003.tiff" ] && [ -s "$tmp/raw/line/003.png" ] && ok \
  || bad "raw maps missing"
head -1 "$tmp/raw/scores.csv" | grep -qx "path,score" && ok || bad "csv header"
grep -q "^test/hole/002.png," "$tmp/raw/scores.csv" && ok || bad "csv path"
"$bin" eval --data "$data/ds" --maps "$tmp/raw" --class-maps "$tmp/raw" \
  --priors "$data/ds/priors.yaml" --json "$tmp/eval.json" -q > "$tmp/eval.md"
[ $? -eq 0 ] && ok || bad "eval on the raw maps"
grep -q "I-AUROC" "$tmp/eval.md" && ok || bad "eval table"

# damaged model files: clear errors, format exit code 4
head -c 300 "$tmp/zero.st" > "$tmp/cut.st"
expect_rc 4 "truncated model" "$bin" predict --model "$tmp/cut.st" \
  "$data/ds/test/good/000.png"
"$bin" predict --model "$tmp/cut.st" "$data/ds/test/good/000.png" 2>&1 \
  | grep -q "cut.st" && ok || bad "error names the file"
expect_rc 3 "missing model" "$bin" predict --model "$tmp/none.st" x.png
# every unreadable image named, nothing predicted
out=$("$bin" predict --model "$tmp/zero.st" "$tmp/nope1.png" \
  "$data/ds/test/good/000.png" "$tmp/nope2.png" 2>"$tmp/err.txt")
rc=$?
[ $rc -eq 3 ] && [ -z "$out" ] && grep -q "nope1.png: cannot open" "$tmp/err.txt" \
  && grep -q "nope2.png: cannot open" "$tmp/err.txt" && ok \
  || bad "predict names every missing image (exit $rc)"

# a frozen ViT backbone (tiny random DINOv2) with CLIP text embeddings
vit=$src/tests/data/vit/dinov2
text=clip:$src/tests/data/clip_text
vsmall=(--size 64 --epochs 2 --batch 4 --threads 1)
expect_rc 2 "ViT without folder" "$bin" train --backbone dinov2 --data x
expect_rc 2 "built-in with folder" "$bin" train --backbone gabor:x --data x
expect_rc 2 "--text of no known kind" "$bin" train --data "$data/ds" \
  --priors "$data/ds/priors.yaml" --setting zero --kn 2 \
  --synth "$data/synth" --out "$tmp/v" --text dino:x
expect_rc 3 "--text folder missing" "$bin" train --data "$data/ds" \
  --priors "$data/ds/priors.yaml" --setting zero --kn 2 \
  --synth "$data/synth" --out "$tmp/v" --text "dinotxt:$tmp/none" -q
expect_rc 2 "--width against --text" "$bin" train --data "$data/ds" \
  --priors "$data/ds/priors.yaml" --setting zero --kn 2 \
  --synth "$data/synth" --out "$tmp/v" --text "$text" --width 8
cp -r "$vit" "$tmp/vitcopy"
for k in 1 2; do
  "$bin" train --data "$data/ds" --priors "$data/ds/priors.yaml" \
    --setting zero --kn 2 --synth "$data/synth" --out "$tmp/vit$k.st" \
    "${vsmall[@]}" --backbone "dinov2:$tmp/vitcopy" --text "$text" \
    --seed 3 -q
  [ $? -eq 0 ] && ok || bad "ViT train $k"
done
cmp -s "$tmp/vit1.st" "$tmp/vit2.st" && ok || bad "ViT: same seed, different model"
img=$data/ds/test/hole/000.png
"$bin" predict --model "$tmp/vit1.st" "$img" > "$tmp/vit.json"
[ $? -eq 0 ] && ok || bad "ViT predict"
grep -q '"width":48,"height":40' "$tmp/vit.json" && ok || bad "ViT JSON"
# the recorded folder gone: exit 3 naming it; given again: same output
rm -rf "$tmp/vitcopy"
expect_rc 3 "recorded ViT folder missing" "$bin" predict \
  --model "$tmp/vit1.st" "$img"
"$bin" predict --model "$tmp/vit1.st" "$img" 2>&1 | grep -qF \
  "cannot load its dinov2 backbone from '$tmp/vitcopy' (the folder recorded in the model file; give it with --backbone dinov2:DIR)" \
  && ok || bad "missing-folder message"
"$bin" predict --model "$tmp/vit1.st" --backbone "dinov2:$vit" "$img" \
  | cmp -s - "$tmp/vit.json" && ok || bad "--backbone given again"
# dino.txt category embeddings (tiny random text tower, width 40)
"$bin" train --data "$data/ds" --priors "$data/ds/priors.yaml" \
  --setting zero --kn 2 --synth "$data/synth" --out "$tmp/vitdt.st" \
  "${vsmall[@]}" --backbone "dinov2:$vit" \
  --text "dinotxt:$src/tests/data/dinotxt" --seed 3 -q
[ $? -eq 0 ] && ok || bad "ViT train with dino.txt"
grep -aq '"text":"dinotxt:' "$tmp/vitdt.st" && ok || bad "dino.txt recorded"
"$bin" predict --model "$tmp/vitdt.st" "$img" | grep -q '"class"' \
  && ok || bad "predict with dino.txt embeddings"
expect_rc 5 "other kind" "$bin" predict --model "$tmp/vit1.st" \
  --backbone "dinov3:$src/tests/data/vit/dinov3" "$img"
expect_rc 5 "other shape" "$bin" predict --model "$tmp/vit1.st" \
  --backbone "dinov2:$src/tests/data/vit/dinov2_reg" "$img"
expect_rc 2 "--backbone for a built-in model" "$bin" predict \
  --model "$tmp/zero.st" --backbone "dinov2:$vit" "$img"

finish cli_model
