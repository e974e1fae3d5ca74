"""The dock widget: pick images and their Labels layers, train in the background, see the result as layers.

Training pairs each checked Image layer with a Labels layer of its shape (napari's 0 =
unlabelled, 1 .. K = classes). A stack (Z, H, W[, 3]) trains on its slices that hold labels and
is predicted slice by slice with the same model. Results are three layers per image, updated in
place on every retrain: ``<image> prediction`` (Labels: the decided class + 1, so its colours are
those of the strokes), ``<image> probability`` (Image: P(label 2), or one map per class along a
leading axis) and ``<image> uncertainty`` (Image: the entropy over log K), the last two hidden
until the user shows them.

Each row may also name another Image layer of the image's size as the image's feature channels
(another microscope channel, another model's output): its values join the filter bank
(:meth:`chm.CHM.fit`'s ``channels``), and the model then needs such a layer for every image it
predicts. A layer picked as channels is unchecked as a training image.
"""

import threading
import time

from napari.layers import Image, Labels
from napari.qt.threading import create_worker
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
                            QProgressBar, QPushButton, QVBoxLayout, QWidget)

from .layers import LayerError, as_slices, channel_slices, class_count, results, spatial_shape, training_slices
from .session import METHODS, Cancelled, Session

__all__ = ["ChmWidget"]

_NO_LABELS = "(no labels)"
_NO_CHANNELS = "(no channels)"


class ChmWidget(QWidget):
    """Train a CHM from strokes painted in napari, and predict with it.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    model_params : dict, optional
        Further :class:`chm.CHM` parameters for every fit (:class:`chm.napari.session.Session`).

    Attributes
    ----------
    session : chm.napari.session.Session
        The model and the feature cache.
    message : str
        The status line's text (what the last action did, or why it could not).
    """

    #: (stage, done, total) from the worker thread; Qt queues it to the widget's thread.
    progressed = Signal(str, int, object)

    def __init__(self, napari_viewer, model_params=None):
        super().__init__()
        self.viewer = napari_viewer
        self.session = Session(model_params)
        self.message = ""
        self._worker = None
        self._cancel = None
        self._rows = {}  # image layer name -> (checkbox, labels combo, feature-channels combo)
        # image layer name -> (checked or None if untouched, labels name or None, channel layer name or None)
        self._choice = {}
        self._notes = []

        self._table = QGridLayout()
        pairs = QGroupBox("Train on (image: its Labels layer, its feature channels)")
        pairs.setLayout(self._table)
        hint = QLabel("Paint a few strokes with label 1 on the background and 2, 3, ... on each kind of object.")
        hint.setWordWrap(True)
        self.method = QComboBox()
        self.method.addItems(list(METHODS))
        self.method.setToolTip("supervised: learns from the painted pixels only. semi-supervised (auto): also from "
                               "the unpainted ones (superpixels, then self-training): often more accurate, 10-30 "
                               "times slower (about a minute for a 512 x 512 image)")
        self.train_button = QPushButton("Train")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.target = QComboBox()
        self.predict_button = QPushButton("Predict")
        self.save_button = QPushButton("Save model...")
        self.load_button = QPushButton("Load model...")
        self.model_info = QLabel("no model")
        self.model_info.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(hint)
        layout.addWidget(pairs)
        layout.addWidget(QLabel("Method"))
        layout.addWidget(self.method)
        layout.addLayout(_row(self.train_button, self.cancel_button))
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(QLabel("Predict on"))
        layout.addLayout(_row(self.target, self.predict_button))
        layout.addLayout(_row(self.save_button, self.load_button))
        layout.addWidget(self.model_info)

        self.train_button.clicked.connect(self.train)
        self.cancel_button.clicked.connect(self.cancel)
        self.predict_button.clicked.connect(lambda: self.predict(self.target.currentText()))
        self.save_button.clicked.connect(self._ask_save)
        self.load_button.clicked.connect(self._ask_load)
        self.progressed.connect(self._on_progress)
        self.viewer.layers.events.inserted.connect(self._on_inserted)
        self.viewer.layers.events.removed.connect(self._refresh)
        for layer in self.viewer.layers:
            layer.events.name.connect(self._refresh)
        self._refresh()
        self._set_busy(False)

    # -- the layer lists ------------------------------------------------------------------
    def _on_inserted(self, event):
        event.value.events.name.connect(self._refresh)
        self._refresh()

    def _images(self):
        return [layer for layer in self.viewer.layers if isinstance(layer, Image) and not _is_result(layer)]

    def _labels(self):
        return [layer for layer in self.viewer.layers if isinstance(layer, Labels) and not _is_result(layer)]

    def _refresh(self, event=None):
        """Rebuild the training rows and the prediction target list from the viewer's layers."""
        for name, (check, combo, chans) in self._rows.items():
            self._choice[name] = (self._choice.get(name, (None, None, None))[0] if check.property("untouched")
                                  else check.isChecked(),
                                  None if combo.currentText() == _NO_LABELS else combo.currentText(),
                                  None if chans.currentText() == _NO_CHANNELS else chans.currentText())
            for w in (check, combo, chans):
                self._table.removeWidget(w)
                w.deleteLater()
        self._rows = {}
        labels = self._labels()
        images = self._images()
        for i, image in enumerate(images):
            shape = spatial_shape(image.data, image.rgb) if not image.multiscale else None
            fitting = [lab.name for lab in labels if lab.data.shape == shape]
            checked, chosen, channel = self._choice.get(image.name, (None, None, None))
            combo = QComboBox()
            combo.addItems([_NO_LABELS] + [lab.name for lab in labels])
            combo.setCurrentText(chosen if chosen in [lab.name for lab in labels] else
                                 fitting[0] if fitting else _NO_LABELS)
            check = QCheckBox(image.name)
            check.setChecked(bool(fitting) if checked is None else checked)
            check.setProperty("untouched", checked is None)
            check.clicked.connect(lambda _, c=check: c.setProperty("untouched", False))
            sized = [o.name for o in images if o is not image and shape is not None and not o.multiscale
                     and spatial_shape(o.data, o.rgb) == shape]
            chans = QComboBox()
            chans.addItems([_NO_CHANNELS] + sized)
            chans.setCurrentText(channel if channel in sized else _NO_CHANNELS)
            chans.setToolTip("feature channels: another layer of this image's size whose values join the filter "
                             "bank (another microscope channel, another model's output)")
            chans.textActivated.connect(lambda text, n=image.name: self.set_channels(n, None if text == _NO_CHANNELS
                                                                                  else text))
            self._table.addWidget(check, i, 0)
            self._table.addWidget(combo, i, 1)
            self._table.addWidget(chans, i, 2)
            self._rows[image.name] = (check, combo, chans)
        current = self.target.currentText()
        self.target.clear()
        self.target.addItems([image.name for image in self._images()])
        if current:
            self.target.setCurrentText(current)

    def pairs(self):
        """The checked (Image layer, Labels layer) pairs, as the rows show them."""
        out = []
        for name, (check, combo, _) in self._rows.items():
            if check.isChecked() and combo.currentText() != _NO_LABELS:
                out.append((self.viewer.layers[name], self.viewer.layers[combo.currentText()]))
        return out

    def set_pair(self, image, labels=None, checked=True):
        """Check or uncheck ``image``'s row and choose its Labels layer (layer names; a user's clicks, in code)."""
        check, combo, _ = self._rows[image]
        check.setChecked(checked)
        check.setProperty("untouched", False)
        if labels is not None:
            combo.setCurrentText(labels)

    def set_channels(self, image, layer=None):
        """Choose the Image layer ``layer`` as ``image``'s feature channels (None: none); that layer's
        own row is unchecked, as it is not a training image (layer names; a user's pick, in code)."""
        self._rows[image][2].setCurrentText(_NO_CHANNELS if layer is None else layer)
        if layer in self._rows and layer != image:
            self.set_pair(layer, checked=False)

    def channel_layer(self, image):
        """The Image layer chosen as ``image``'s feature channels, or None."""
        name = self._rows[image][2].currentText()
        return None if name == _NO_CHANNELS else self.viewer.layers[name]

    def _channels(self, image, model=None):
        """The feature channels of every slice of the Image layer ``image`` (None without); with a
        ``model``, raise :class:`LayerError` unless the choice matches what it reads."""
        source = self.channel_layer(image.name)
        if model is not None:
            needed = model.feature_channels_
            if needed and source is None:
                raise LayerError(f"the model reads {len(needed)} feature channel(s): choose the layer of "
                                 f"'{image.name}''s feature channels in its row above")
            if source is not None and not needed:
                raise LayerError(f"the model reads no feature channels: set '{image.name}''s feature channels to "
                                 f"{_NO_CHANNELS}")
        if source is None:
            return None
        return channel_slices(source.data, source.rgb, spatial_shape(image.data, image.rgb), source.name, image.name)

    # -- training and prediction ----------------------------------------------------------
    @property
    def busy(self):
        """A fit or a prediction is running."""
        return self._worker is not None

    def train(self):
        """Fit a model on the checked pairs' labelled slices in a worker thread, then predict those images."""
        if self.busy:
            return
        try:
            pairs = self.pairs()
            if not pairs:
                raise LayerError("nothing to train on: open an image, add a Labels layer of its size (Layers > New "
                                 "Labels Layer), paint a few strokes of each class, and check the image above")
            given = [self.channel_layer(image.name) is not None for image, _ in pairs]
            if any(given) and not all(given):
                raise LayerError("feature channels: choose a channel layer for every checked image, or for none "
                                 "(the model reads the same channels of every image)")
            images, labels, channels, where = [], [], [], []
            for image, lab in pairs:
                ims, labs, keep = training_slices(image.data, image.rgb, lab.data, image.name, lab.name)
                images += ims
                labels += labs
                if any(given):
                    chs = self._channels(image)
                    channels += [chs[z] for z in keep]
                where.append(lab.name)
            n_classes = class_count(labels, where)
            # Read here, not in the worker: strokes painted during the fit wait for the next one.
            targets = [(image, as_slices(image.data, image.rgb, image.name), _labelled_slices(lab.data), lab,
                        self._channels(image)) for image, lab in pairs]
        except LayerError as exc:
            self._say(str(exc), error=True)
            return
        semi = METHODS[self.method.currentText()]
        n_pixels = sum(int((lab >= 0).sum()) for lab in labels)
        self._say(f"training on {len(images)} slice(s), {n_pixels} labelled pixels, {n_classes} classes ...")
        self._start(self._train_and_predict, images, labels, channels or None, n_classes, semi, targets,
                    done=self._trained)

    def _train_and_predict(self, images, labels, channels, n_classes, semi, targets, cancel):
        t0 = time.perf_counter()
        hits, misses = self.session.cache.hits, self.session.cache.misses
        model = self.session.train(images, labels, n_classes, semi, self.progressed.emit, cancel, channels)
        t1 = time.perf_counter()
        out = {"fit": t1 - t0, "model": model, "read": self.session.cache.hits - hits,
               "computed": self.session.cache.misses - misses, "shown": []}
        try:
            for image, (slices, stack), labelled, lab, chs in targets:
                probas = self.session.predict(slices, labelled, self.progressed.emit, cancel, chs)
                out["shown"].append((image, results(probas, model.decide, stack), lab))
        except Cancelled:
            out["shown"] = None  # the model is new, its maps unfinished: show none of them
        out["predict"] = time.perf_counter() - t1
        return out

    def _trained(self, out):
        self._describe(out["model"])
        if out["shown"] is None:
            self._say("prediction cancelled: the new model is kept (Predict shows its maps), the layers are as "
                      "they were")
            return
        self._show(out["shown"], out["shown"][0][2])  # the first image's strokes: paint on
        self._say(f"trained in {out['fit']:.1f} s, predicted in {out['predict']:.1f} s; filter-bank features: "
                  f"{out['read']} read from the cache, {out['computed']} computed")

    def predict(self, name):
        """Predict the Image layer ``name`` (every slice of a stack) in a worker thread."""
        if self.busy:
            return
        if self.session.model is None:
            self._say("no model yet: train one, or load a saved one", error=True)
            return
        try:
            image = self.viewer.layers[name]
            slices, stack = as_slices(image.data, image.rgb, image.name)
            channels = self._channels(image, self.session.model)
        except (KeyError, LayerError) as exc:
            self._say(str(exc), error=True)
            return
        self._say(f"predicting '{name}' ...")
        self._start(self._predict, image, slices, stack, channels, done=self._predicted)

    def _predict(self, image, slices, stack, channels, cancel):
        t0 = time.perf_counter()
        probas = self.session.predict(slices, None, self.progressed.emit, cancel, channels)
        return image, results(probas, self.session.model.decide, stack), time.perf_counter() - t0

    def _predicted(self, out):
        image, layers, seconds = out
        self._show([(image, layers, None)], self.viewer.layers.selection.active)
        self._say(f"predicted '{image.name}' in {seconds:.1f} s")

    def cancel(self):
        """Stop the running fit or prediction at its next step; the model and layers stay as they were."""
        if self._cancel is not None:
            self._cancel.set()
            self._say("cancelling ...")

    def _start(self, fn, *args, done):
        self._cancel = threading.Event()
        self.destroyed.connect(self._cancel.set)  # the viewer closed mid-fit: stop, no widget to report to
        self._notes = []
        # Errors are the status line's to show, not re-raised in the main thread.
        worker = create_worker(fn, *args, cancel=self._cancel, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(done)
        worker.errored.connect(self._failed)
        worker.warned.connect(self._warned)
        worker.finished.connect(self._finished)
        self._worker = worker
        self._set_busy(True)
        worker.start()

    def _failed(self, exc):
        if isinstance(exc, Cancelled):
            self._say("cancelled: the model and the layers are as they were before")
        else:
            self._say(f"failed: {exc}", error=True)

    def _warned(self, warning):
        self._notes.append(str(warning[0]))

    def _finished(self):
        self._worker = None
        self._cancel = None
        self._set_busy(False)
        if self._notes:
            self._say(self.message + "\nnote: " + "\nnote: ".join(dict.fromkeys(self._notes)))

    def _on_progress(self, desc, done, total):
        self.progress.setRange(0, total or 0)  # no total: a busy indicator
        self.progress.setValue(done)
        if not self._cancel or not self._cancel.is_set():
            self.status.setText(f"{desc}: {done}/{total}" if total else desc)

    # -- models in files ------------------------------------------------------------------
    def save_model(self, path):
        """Write the model to ``path`` (chm's .npz; ``chm predict`` and :func:`chm.load` read it)."""
        try:
            written = self.session.save(path)
        except (RuntimeError, OSError) as exc:
            self._say(str(exc), error=True)
            return None
        self._say(f"model saved to {written}")
        return written

    def load_model(self, path):
        """Read a model file; Predict then uses it."""
        try:
            model = self.session.load(path)
        except (OSError, ValueError) as exc:
            self._say(f"cannot load {path}: {exc}", error=True)
            return None
        self._say(f"model loaded from {path}")
        self._describe(model)
        return model

    def _ask_save(self):
        path, _ = QFileDialog.getSaveFileName(self, "Save model", "model.npz", "chm model (*.npz)")
        if path:
            self.save_model(path)

    def _ask_load(self):
        path, _ = QFileDialog.getOpenFileName(self, "Load model", "", "chm model (*.npz)")
        if path:
            self.load_model(path)

    # -- what the user sees ---------------------------------------------------------------
    def _set_busy(self, busy):
        for button in (self.train_button, self.predict_button, self.save_button, self.load_button):
            button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        if not busy:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)

    def _say(self, text, error=False):
        self.message = text
        self.status.setText(text)
        self.status.setStyleSheet("color: #e55;" if error else "")

    def _describe(self, model):
        kind = "colour" if model.n_channels_ == 3 else "gray"
        semi = model.semi_supervised or "supervised"
        extra = len(model.feature_channels_)
        self.model_info.setText(f"model: {model.n_classes_} classes, {kind}, {semi}, levels {model.levels}"
                                + (f", {extra} feature channel(s)" if extra else ""))

    def _show(self, shown, active):
        """Put the result layers of ``shown`` ((image, layers, _) triples) in the viewer, replacing those of an
        earlier fit; then the stroke layers go back on top and ``active`` is selected again, so that the next
        stroke lands where it belongs, not in a new layer."""
        for image, (probability, prediction, uncertainty), _ in shown:
            scale, translate = tuple(image.scale), tuple(image.translate)
            lead = probability.ndim - prediction.ndim  # K classes: the class axis
            _put(self.viewer, image.name, "prediction", prediction, scale=scale, translate=translate, opacity=0.5)
            _put(self.viewer, image.name, "probability", probability, scale=(1.0,) * lead + scale,
                 translate=(0.0,) * lead + translate, colormap="magma", contrast_limits=(0.0, 1.0), visible=False)
            _put(self.viewer, image.name, "uncertainty", uncertainty, scale=scale, translate=translate,
                 colormap="inferno", contrast_limits=(0.0, 1.0), visible=False)
        for _, lab in self.pairs():
            self.viewer.layers.move(self.viewer.layers.index(lab), len(self.viewer.layers))
        if active is not None and active in self.viewer.layers:
            self.viewer.layers.selection.active = active


def _row(*widgets):
    row = QHBoxLayout()
    for w in widgets:
        row.addWidget(w)
    return row


def _is_result(layer):
    return "chm_result" in layer.metadata


def _labelled_slices(labels):
    """Per slice: does it hold labels (so its features are in the cache)?"""
    stack = labels if labels.ndim == 3 else labels[None]
    return [bool((s > 0).any()) for s in stack]


def _put(viewer, source, role, data, **kwargs):
    """Set the data of ``source``'s result layer ``role``, or add it (again, if its shape changed).

    Result layers are found by their metadata, not their names, so a user's layer of the same
    name is never touched (napari then numbers the new name).
    """
    key = {"chm_result": role, "chm_source": source}
    for layer in viewer.layers:
        if {k: layer.metadata.get(k) for k in key} == key:
            if layer.data.shape == data.shape:
                layer.data = data
                return layer
            viewer.layers.remove(layer)
            break
    add = viewer.add_labels if role == "prediction" else viewer.add_image
    return add(data, name=f"{source} {role}", metadata=key, **kwargs)
