"""The paper's ConvNet (PyTorch, the ``convnet`` extra): ``estimator`` holds :class:`ConvNet`,
``patchnet`` the network; importing this package imports torch (``import chm`` does not)."""

from .estimator import (CONTRAST_ALPHA, EPOCHS, IMAGE_EPOCHS, LR_SCHEDULES, MIN_STEPS, MOMENTUM, OPTIMIZERS,
                        RECOMMENDED_ALPHA, SEMI_SUPERVISED, SUPERVISED_LOSSES, TRAINING, ConvNet)

__all__ = ["ConvNet", "CONTRAST_ALPHA", "EPOCHS", "IMAGE_EPOCHS", "LR_SCHEDULES", "MIN_STEPS", "MOMENTUM", "OPTIMIZERS",
           "RECOMMENDED_ALPHA", "SEMI_SUPERVISED", "SUPERVISED_LOSSES", "TRAINING"]
