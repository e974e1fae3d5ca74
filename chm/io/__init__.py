"""Files in and out: ``images`` (reading and the one image contract of every estimator),
``files`` (image folders, label files, atomic writes) and ``persistence`` (model files)."""
