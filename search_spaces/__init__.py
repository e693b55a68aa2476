"""What may be tried, per regime: pure descriptions with the paper's values as defaults.

``space_for(regime)`` gives a ``Space``; ``from_optuna``, ``from_keras_tuner`` and ``from_dict`` read
it; ``to_config`` turns sampled values into a ``TrainConfig``.
"""
from search_spaces.hp import (
    Choice,
    Fixed,
    Float,
    Int,
    Param,
    Space,
    When,
    active_names,
    cap_epochs,
    describe,
    distributions,
    from_dict,
    from_keras_tuner,
    from_optuna,
    grid_space,
    grid_values,
    pin,
)
from search_spaces.regimes import (
    EDGE_BACKBONES,
    SCRATCH,
    SPACES,
    TRANSFER,
    defaults_over,
    edge_backbones,
    space_for,
    to_config,
    with_backbones,
)

__all__ = [
    "EDGE_BACKBONES",
    "edge_backbones",
    "with_backbones",
    "Choice",
    "Fixed",
    "Float",
    "Int",
    "Param",
    "Space",
    "When",
    "defaults_over",
    "active_names",
    "SCRATCH",
    "SPACES",
    "TRANSFER",
    "cap_epochs",
    "describe",
    "distributions",
    "from_dict",
    "from_keras_tuner",
    "from_optuna",
    "grid_space",
    "grid_values",
    "pin",
    "space_for",
    "to_config",
]
