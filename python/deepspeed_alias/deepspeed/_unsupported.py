"""DeepSpeed features zshard does not have, as names a script can import:
using one (constructing the class, calling the function) raises a
ConfigError naming the feature, so nothing half-works silently."""
from zshard import _C


def _refusal(name, feature):
    return (f"{name}: {feature} is not supported by zshard, which is a data-parallel ZeRO runtime "
            "(stages 0-2); run this script with DeepSpeed, or drop the feature")


def refused_class(name, feature):
    """A class whose construction raises, naming `name` and `feature`."""
    def __init__(self, *args, **kwargs):
        raise _C.ConfigError(_refusal(name, feature))

    return type(name.rsplit(".", 1)[-1], (), {"__init__": __init__, "__doc__": _refusal(name, feature)})


def refused_function(name, feature):
    """A function that raises, naming `name` and `feature`."""
    def refused(*args, **kwargs):
        raise _C.ConfigError(_refusal(name, feature))

    refused.__name__ = name.rsplit(".", 1)[-1]
    refused.__doc__ = _refusal(name, feature)
    return refused
