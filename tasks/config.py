"""Hydra's ``instantiate`` with the target's own error: a bad setting raises the ``ValueError`` (or
``OSError``) that names it, not Hydra's wrapper around it. Used by the data layer (task sources)
and by the engine (strategies, loggers)."""

from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate


def instantiate(node, **kwargs):
    try:
        return hydra_instantiate(node, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, ValueError | OSError):
            raise err.__cause__ from None
        raise
