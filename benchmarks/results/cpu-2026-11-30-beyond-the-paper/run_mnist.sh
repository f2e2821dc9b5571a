#!/bin/bash
# MNIST at the budget this CPU allows, the same for every variant: the first 10 000 training
# images, 2 epochs, evaluated once at the end on the full test set.
. /work/main/.venv/bin/activate
export NOPROP_DISABLE_PLUGIN_AUTOLOAD=1 OMP_NUM_THREADS=1 NOPROP_DATA=/tmp/mnistdata
cd /work/main
while [ "$(wc -l < /tmp/beyond/done.txt 2>/dev/null || echo 0)" -lt 6 ]; do sleep 10; done
for r in mnist_dt mnist_ct mnist_fm mnist_diffusion_blocks mnist_ct_noise; do
  recipe=recipes/$r.toml; extra=()
  if [ $r = mnist_ct_noise ]; then recipe=recipes/mnist_ct.toml; extra=(--set 'variant.target="noise"'); fi
  start=$(date +%s)
  noprop run $recipe "${extra[@]}" --set data.subset=10000 --set train.epochs=2 --set eval.every=2 \
     --set tracker.name=none --set device=cpu --out /tmp/beyond/mnist/$r > /tmp/beyond/$r.log 2>&1
  echo "$r exit $? $(( $(date +%s) - start )) s" >> /tmp/beyond/done_mnist.txt
done
