#!/bin/bash
. /work/main/.venv/bin/activate
export NOPROP_DISABLE_PLUGIN_AUTOLOAD=1 OMP_NUM_THREADS=1
cd /work/main
for r in digits_dt digits_ct digits_fm digits_diffusion_blocks digits_ct_noise digits_dt_vit; do
  start=$(date +%s)
  noprop run recipes/$r.toml --set tracker.name=none --set device=cpu --out /tmp/beyond/digits/$r > /tmp/beyond/$r.log 2>&1
  echo "$r exit $? $(( $(date +%s) - start )) s" >> /tmp/beyond/done.txt
done
