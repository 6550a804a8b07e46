"""Training runs: a method and the training data it sees (the suite's augmentation axis).

``train.methods`` lists runs, written ``<method>`` or ``<method>+<data>``:

- ``real``: the real training split only (with the method's own augmentation, e.g. ``train.unet.augmentation``
  "standard" or "none");
- ``diffaug``: the real training split plus the first ``synthesize.volume × n_train`` accepted DiffAug
  synthetic pairs.

A bare ``<method>`` uses the method's default (``default_data``): "diffaug" for DiffAug's segmenter,
"real" for every baseline. So ``unet+diffaug`` answers whether DiffAug's data helps a U-Net, and
``diffaug+real`` is DiffAug's segmenter without synthetic data (Table 6). A run shares its seeds
with the other runs of the same method (common random numbers: paired comparisons).
"""

from __future__ import annotations

DATA = {"real": "real data", "diffaug": "real + DiffAug synthetic"}


def parse_run(run: str) -> tuple[str, str]:
    """``"unet+diffaug"`` -> ``("unet", "diffaug")``; ``"unet"`` -> ``("unet", <default data>)``.

    Raises:
        KeyError: unknown method (the message lists the registered ones) or unknown data suffix.
    """
    from benchmark.methods import get_method

    method, _, data = run.partition("+")
    cls = get_method(method)
    data = data or getattr(cls, "default_data", "real")
    if data not in DATA:
        raise KeyError(f"run {run!r}: unknown training data {data!r}; write <method> or <method>+{'|'.join(DATA)}")
    return method, data


def run_display_name(run: str) -> str:
    """Table label: the method's display name, plus the training data when it is not the method's default."""
    from benchmark.methods import get_method

    method, data = parse_run(run)
    cls = get_method(method)
    return cls.display_name if data == getattr(cls, "default_data", "real") else f"{cls.display_name} + {DATA[data]}"
