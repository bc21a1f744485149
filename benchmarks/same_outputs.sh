#!/bin/bash
# same_outputs.sh CODE_DIR OUT_DIR: the runs whose outputs must stay bit-identical across a
# redesign (issue 22): train VJE and SimSiam on digits, one-class on class 0, score with OOD shifts.
# Run it on a checkout before and after, then: python benchmarks/same_outputs.py OUT_BEFORE OUT_AFTER
set -e
export PYTHONPATH=$1 OMP_NUM_THREADS=1
out=$(realpath -m "$2")
if [ -e "$out" ]; then echo "$out exists: give a new folder" >&2; exit 2; fi
mkdir -p "$out"
cd "$(mktemp -d)"
python -m pyro_vje train --epochs 3 --threads 1 --no-progress --seed 0 --out $out/train-vje > $out/train-vje.txt 2>&1
python -m pyro_vje train --method simsiam --epochs 2 --threads 1 --no-progress --seed 0 --out $out/train-simsiam > $out/train-simsiam.txt 2>&1
python -m pyro_vje one-class --classes 0 --epochs 2 --threads 1 --no-progress --out $out/oc > $out/oc.txt 2>&1
python -m pyro_vje score $out/train-vje --ood gaussian_noise --ood invert --ood blur --no-progress --out $out/score-vje > $out/score-vje.txt 2>&1
python -m pyro_vje score $out/train-simsiam --ood gaussian_noise --ood invert --no-progress --out $out/score-simsiam > $out/score-simsiam.txt 2>&1
echo done
