#!/bin/sh
# Every view of the window at 1280x800 and 1920x1080, on the demo model and on a model with
# long layer names (the fer Keras model from ../shared/models), into docs/gui/ (issue 16).
# Run from the repository root: sh benchmarks/gui_screenshots.sh [PYTHON]
# (pictures already there are kept; AGAIN=1 redraws them all)
set -e
PY=${1:-python}
OUT=docs/gui
FER=${FER:-../shared/models/keras-h5-fer-emotion/emotion_model.hdf5}
mkdir -p "$OUT"
for size in 1280x800 1920x1080; do
  for model in demo fer; do
    if [ "$model" = demo ]; then
      args="resources/digits_depthwise/digits_depthwise.h5 --format safetensors"
      tensor="block2_dw/depthwise_kernel:0"
      dense="block3_expand/kernel:0"
    else
      [ -f "$FER" ] || continue
      args="$FER --format keras"
      tensor="separable_conv2d_1_1/depthwise_kernel:0"
      dense="conv2d_2_1/kernel:0"
    fi
    for view in histogram curve sine error output rounding; do
      extra=""
      tab=$view
      pick=$tensor
      case $view in
        sine) tab=curve; extra="--sine" ;;
        output) extra="--analyse"
          # fer: 185 tensors make the front slow on a shared machine; the demo shows it
          [ "$model" = fer ] && extra="--analyse --sensitivity-only --samples 32" ;;
        rounding) extra="--scheme affine4:round=gptq"; pick=$dense ;;
      esac
      out="$OUT/$model-$view-$size.png"
      [ -f "$out" ] && [ -z "$AGAIN" ] && continue
      $PY benchmarks/screenshot.py $args --tab $tab --tensor "$pick" --size $size $extra \
        -o "$out"
    done
  done
done
