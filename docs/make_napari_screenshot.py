"""The README's napari picture: strokes on a horse, the plugin's widget, its prediction.

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/make_napari_screenshot.py [--data PATH] [--horse horse200]

Needs the napari extra (``pip install ".[napari]"``) and a display (on a machine without one,
Debian's xvfb as above). Opens a Weizmann horse in colour (from ``--data``, ``$CHM_DATA`` or
``../shared/data``; resized to 512 px wide, its mask too) in napari, paints 20 strokes on it (:func:`chm.datasets.sample_strokes`: 10 on
the horse, 10 on the background), opens the plugin from its menu entry, clicks Train, waits, and
writes ``docs/napari.png`` (the whole window). Prints the widget's status line and the pixel
error of its prediction against the horse's mask.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.transform import resize

from chm.datasets import find_data_root, sample_strokes
from chm.io.images import read_image, read_mask

OUT = Path(__file__).resolve().parent / "napari.png"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--horse", default="horse200")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    if not os.environ.get("DISPLAY"):
        sys.exit("no display: run it under xvfb-run (see the docstring)")
    root = args.data or find_data_root(extra=[Path(__file__).resolve().parents[2] / "shared" / "data"])
    if root is None:
        sys.exit("Weizmann data not found: pass --data or set CHM_DATA")
    image = read_image(Path(root) / "rgb" / f"{args.horse}.jpg")
    shape = (round(image.shape[0] * 512 / image.shape[1]), 512)  # the colour originals are larger than the masks
    image = (resize(image, shape, anti_aliasing=True) * 255).round().astype(np.uint8)
    mask = resize(read_mask(Path(root) / "figure_ground" / f"{args.horse}.jpg", threshold=127).astype(float), shape,
                  order=0).astype(np.uint8)

    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(title="chm: segmentation from a few strokes")
    viewer.window.resize(1500, 900)
    viewer.add_image(image, name=args.horse, rgb=True)
    strokes = sample_strokes(mask, 10, rng=0, length=max(12, min(mask.shape) // 10))
    layer = viewer.add_labels((strokes + 1).astype(np.uint8), name="strokes")
    _, widget = viewer.window.add_plugin_dock_widget("chm", "Segment from a few strokes")
    widget.train_button.click()
    while widget.busy:
        QApplication.processEvents()
        time.sleep(0.02)
    prediction = next(l for l in viewer.layers if l.metadata.get("chm_result") == "prediction").data
    layer.brush_size = 3
    viewer.reset_view()
    QApplication.processEvents()
    time.sleep(0.5)
    QApplication.processEvents()
    shot = viewer.screenshot(canvas_only=False, flash=False)
    Image.fromarray(shot[..., :3]).quantize(256).save(args.out, optimize=True)  # a third of the size, same look
    print(widget.message)
    print(f"{int((strokes >= 0).sum())} labelled px; pixel error {100 * np.mean((prediction - 1) != mask):.2f} %; "
          f"wrote {args.out}")
    viewer.close()


if __name__ == "__main__":
    main()
