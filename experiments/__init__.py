"""The paper's experiments, run from the repository root as modules: ``python -m experiments.weizmann``,
``python -m experiments.stanford``, ``python -m experiments.siftflow``, ``python -m experiments.synthetic``
and ``python -m experiments.screen`` (every held-out screen). Shared pieces: :mod:`experiments._common`
(data folders, atomic JSON, running a script given as a file) and :mod:`experiments.claims`."""
