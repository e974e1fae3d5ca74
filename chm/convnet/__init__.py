"""The paper's ConvNet (PyTorch, the ``convnet`` extra): ``estimator`` holds :class:`ConvNet`,
``patchnet`` the network; importing this package imports torch (``import chm`` does not)."""

from .estimator import (CONTRAST_ALPHA, EPOCHS, IMAGE_EPOCHS, MIN_STEPS, RECOMMENDED_ALPHA, SEMI_SUPERVISED, TRAINING,
                        ConvNet)

__all__ = ["ConvNet", "CONTRAST_ALPHA", "EPOCHS", "IMAGE_EPOCHS", "MIN_STEPS", "RECOMMENDED_ALPHA", "SEMI_SUPERVISED",
           "TRAINING"]
