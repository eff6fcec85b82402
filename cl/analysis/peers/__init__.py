"""Whole-run comparisons with peers (``python -m cl.analysis.bench --peers``): the same four tasks,
written once as CSV files, run by this framework, by an independent plain PyTorch loop
(``plain.py``) and by Avalanche 0.6.0 (``avalanche_run.py``, in its own virtual environment), each in
its own process, timed whole, with its peak memory.

``plain.py`` and ``avalanche_run.py`` import nothing of this project (they run where it is not
installed) and share only this package's ``common.py``, copied beside them when run elsewhere."""
