"""The napari plugin: paint a few strokes, train, look, paint more, retrain (``pip install "chm[napari]"``).

``chm.napari.widget`` holds the dock widget (Qt, napari); ``chm.napari.session`` the model and
feature cache it keeps between clicks; ``chm.napari.layers`` the conversions between layer data
and chm's arrays. The core (``import chm``) never imports this subpackage, napari or Qt.
"""
