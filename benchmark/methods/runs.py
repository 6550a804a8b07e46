"""Training runs: a method and the training data it sees (the suite's augmentation axis).

``train.methods`` lists runs, written ``<method>`` or ``<method>+<data>``:

- ``real``: the real training split only (with the method's own augmentation, e.g. ``train.unet.augmentation``
  "standard" or "none");
- ``noaug``: the real training split with the method's augmentation switched off
  (``augmentation: none``): the "no augmentation" level of the augmentation axis;
- ``diffaug``: the real training split plus the first ``synthesize.volume × n_train`` accepted DiffAug
  synthetic pairs.

A bare ``<method>`` uses the method's default (:data:`DEFAULT_DATA`): "diffaug" for DiffAug's segmenter,
"real" for every baseline. So ``unet+noaug`` / ``unet`` / ``unet+diffaug`` are the augmentation axis
none / standard / DiffAug for a U-Net, and
``diffaug+real`` is DiffAug's segmenter without synthetic data (Table 6). A run shares its seeds
with the other runs of the same method (common random numbers: paired comparisons).
"""

from __future__ import annotations

DATA = {"real": "real data only", "noaug": "real data, no augmentation", "diffaug": "real + DiffAug synthetic"}

#: training data of a bare ``<method>`` run when it is not "real": DiffAug's segmenter is defined by
#: its synthetic data. Kept here rather than on the method class so that a method's code (and the
#: fingerprints of its trained seeds) does not change with this choice.
DEFAULT_DATA = {"diffaug": "diffaug"}


def default_data(method: str) -> str:
    """Training data of the bare run ``method``."""
    return DEFAULT_DATA.get(method, "real")


def parse_run(run: str) -> tuple[str, str]:
    """``"unet+diffaug"`` -> ``("unet", "diffaug")``; ``"unet"`` -> ``("unet", <default data>)``.

    Raises:
        KeyError: unknown method (the message lists the registered ones) or unknown data suffix.
    """
    from benchmark.methods import get_method

    method, _, data = run.partition("+")
    cls = get_method(method)
    data = data or default_data(method)
    if data not in DATA:
        raise KeyError(f"run {run!r}: unknown training data {data!r}; write <method> or <method>+{'|'.join(DATA)}")
    return method, data


def run_display_name(run: str) -> str:
    """Table label: the method's display name, plus the training data when it is not the method's default."""
    from benchmark.methods import get_method

    method, data = parse_run(run)
    cls = get_method(method)
    return cls.display_name if data == default_data(method) else f"{cls.display_name} + {DATA[data]}"


def run_config(config, data: str):
    """The method config a run trains with: ``noaug`` switches the method's augmentation off."""
    import dataclasses

    if data != "noaug":
        return config
    if not any(field.name == "augmentation" for field in dataclasses.fields(config)):
        raise KeyError(f"{type(config).__name__} has no augmentation setting; '+noaug' does not apply to this method")
    return dataclasses.replace(config, augmentation="none")
