#!/bin/bash
# digits, the same budget for every variant: 16 epochs of batch 64 (digits_dt.toml's).
. /work/main/.venv/bin/activate
export NOPROP_DISABLE_PLUGIN_AUTOLOAD=1 OMP_NUM_THREADS=1
cd /work/main
for r in digits_dt digits_ct digits_fm digits_diffusion_blocks digits_ct_noise; do
  noprop run recipes/$r.toml --set train.epochs=16 --set eval.every=16 --set train.batch_size=64 \
     --set tracker.name=none --set device=cpu --out /tmp/beyond/digits16/$r > /tmp/beyond/16_$r.log 2>&1
  echo "$r exit $?" >> /tmp/beyond/done16.txt
done
