"""An object that travels to another process as the call that built it, not as its state."""

from __future__ import annotations

from typing import Any


class Recipe:
    """`Recipe(factory, *args, **kwargs)` builds `factory(*args, **kwargs)` now and forwards calls
    and attributes to it; pickled (sent to a Ray worker), it is rebuilt there by the same call.

    For what cannot or should not be pickled: a scorer whose reward functions hold threads or
    worker processes, a reward model. `Recipe(job_scorer, config)` scores here as `job_scorer(config)`
    does, and each generation worker builds its own scorer from the config."""

    def __init__(self, factory, *args: Any, **kwargs: Any):
        self.factory, self.args, self.kwargs = factory, args, kwargs
        self.built = factory(*args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.built(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name == "built":  # not built yet (mid-unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.built, name)

    def __reduce__(self):
        return _rebuild, (self.factory, self.args, self.kwargs)

    def __repr__(self) -> str:
        return f"Recipe({getattr(self.factory, '__qualname__', self.factory)!r})"


def _rebuild(factory, args, kwargs) -> Recipe:
    return Recipe(factory, *args, **kwargs)
