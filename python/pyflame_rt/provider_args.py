"""The `providers` / `provider_options` arguments as ONNX Runtime accepts them.

    names, options = normalize_provider_args(
        [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"], None)
    # ["CUDAExecutionProvider", "CPUExecutionProvider"], [{"device_id": "0"}, {}]

Either a list of names with a parallel `provider_options` list of dicts, or a list of names and
(name, dict) tuples. Option values are kept as strings, as ONNX Runtime reports them from
get_provider_options(). Which providers are available and used is decided elsewhere.
"""

from .errors import InvalidArgument


def _options_of(name, options):
    if not isinstance(options, dict):
        raise InvalidArgument(f"provider options of '{name}': expected a dict, got {type(options).__name__}")
    return {str(key): str(value) for key, value in options.items()}


def normalize_provider_args(providers, provider_options=None):
    """(names, options) in priority order; a provider named twice keeps its first entry."""
    if providers is None:
        if provider_options:
            raise InvalidArgument("provider_options: given without providers")
        return [], []
    if isinstance(providers, str):
        providers = [providers]
    pairs = []
    if provider_options is not None:
        if len(provider_options) != len(providers):
            raise InvalidArgument(f"providers and provider_options must have the same length, got {len(providers)} "
                                  f"and {len(provider_options)}")
        for name, options in zip(providers, provider_options):
            if not isinstance(name, str):
                raise InvalidArgument(f"providers: with provider_options every entry must be a name (str), got {name!r}")
            pairs.append((name, _options_of(name, options)))
    else:
        for p in providers:
            if isinstance(p, str):
                pairs.append((p, {}))
            elif isinstance(p, (tuple, list)) and len(p) == 2 and isinstance(p[0], str):
                pairs.append((p[0], _options_of(p[0], p[1])))
            else:
                raise InvalidArgument(f"providers: expected a name (str) or a (name, dict) tuple, got {p!r}")
    names, options, seen = [], [], set()
    for name, opts in pairs:
        if name in seen:
            continue
        seen.add(name)
        names.append(name)
        options.append(opts)
    return names, options
