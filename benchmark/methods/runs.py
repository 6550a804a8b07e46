"""Training runs: a method and the training data it sees (the suite's augmentation axis).

``train.methods`` and ``ablation.runs`` list runs, written ``<method>`` or ``<method>+<data>``:

- ``real``: the real training split only, with the method's own augmentation (e.g.
  ``train.unet.augmentation``, "standard" or "none");
- ``noaug``: the real training split with augmentation switched off ("no augmentation");
- ``standard``: the real training split with standard augmentation switched on (rotation, flip,
  scale, elastic; Table 7's "standard augmentation only" for a method whose default is none);
- ``diffaug``: the real training split plus the first ``synthesize.volume × n_train`` accepted
  DiffAug synthetic pairs. Modifiers, joined by ``_``, change one thing at a time:

  - ``v<percent>``: another volume, e.g. ``diffaug_v200`` = 2 × n_train (Table 7);
  - ``t<percent>``: re-gate the same generated pool at another θ, e.g. ``diffaug_t90`` (accepted =
    validator IoU > 0.9; the θ sweep's downstream Dice);
  - ``unvalidated``: the first generated samples, accepted or not (Table 6, w/o validation loop);
  - ``notext`` / ``basic``: a synthetic set generated without text guidance / with the basic prompt
    (Table 6; ``ablation_synthesize@<dataset>-<set>``).

A bare ``<method>`` uses the method's default (:data:`DEFAULT_DATA`): "diffaug" for DiffAug's segmenter,
"real" for every baseline. So ``unet+noaug`` / ``unet`` / ``unet+diffaug`` are the augmentation axis
none / standard / DiffAug for a U-Net, and ``diffaug+real`` is DiffAug's segmenter without synthetic
data (Table 6). A run shares its seeds with the other runs of the same method (common random numbers:
paired comparisons).
"""

from __future__ import annotations

import dataclasses

DATA = {"real": "real data only", "noaug": "real data, no augmentation", "standard": "real data, standard augmentation",
        "diffaug": "real + DiffAug synthetic"}  # fmt: skip

#: synthetic sets besides the main one (``data/synthetic/<dataset>``): the prompt wording of the
#: generator that made them (``generator_<variant>``, trained and sampled with it) and a label
SYNTHETIC_SETS = {"notext": ("none", "w/o text guidance"), "basic": ("basic", "basic prompt only")}

#: training data of a bare ``<method>`` run when it is not "real": DiffAug's segmenter is defined by
#: its synthetic data. Kept here rather than on the method class so that a method's code (and the
#: fingerprints of its trained seeds) does not change with this choice.
DEFAULT_DATA = {"diffaug": "diffaug"}


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
    """Which synthetic pairs a ``+diffaug…`` run adds.

    Attributes:
        volume: multiple of n_train (None: ``synthesize.volume``).
        theta: acceptance threshold on the recorded validator IoU (None: ``synthesize.theta``).
        validated: False takes the first generated samples whatever their IoU.
        set: "main" (``data/synthetic/<dataset>``) or a key of :data:`SYNTHETIC_SETS`
            (``data/synthetic/<dataset>-<set>``).
    """

    volume: float | None = None
    theta: float | None = None
    validated: bool = True
    set: str = "main"

    def folder(self, dataset: str) -> str:
        """Where the synthesize stage wrote this set."""
        return f"data/synthetic/{dataset}" if self.set == "main" else f"data/synthetic/{dataset}-{self.set}"

    def label(self) -> str:
        parts = []
        if self.volume is not None:
            parts.append(f"{self.volume:g}×")
        if self.theta is not None:
            parts.append(f"θ {self.theta:g}")
        if not self.validated:
            parts.append("unvalidated")
        if self.set != "main":
            parts.append(SYNTHETIC_SETS[self.set][1])
        return ", ".join(parts)


def default_data(method: str) -> str:
    """Training data of the bare run ``method``."""
    return DEFAULT_DATA.get(method, "real")


def parse_synthetic(data: str) -> SyntheticSpec | None:
    """``"diffaug_v200_t90"`` -> ``SyntheticSpec(volume=2.0, theta=0.9)``; None for real-only data.

    Raises:
        KeyError: an unknown modifier (the message lists the grammar).
    """
    head, *modifiers = data.split("_")
    if head != "diffaug":
        if modifiers or head not in DATA:
            raise KeyError(f"unknown training data {data!r}; write <method>+{'|'.join(DATA)} "
                           f"(diffaug may carry _v<volume %>, _t<theta %>, _unvalidated, _{'/_'.join(SYNTHETIC_SETS)})")  # fmt: skip
        return None
    fields: dict = {}
    for modifier in modifiers:
        key = {"v": "volume", "t": "theta"}.get(modifier[:1])
        if key and modifier[1:].isdigit() and key not in fields:
            value = int(modifier[1:]) / 100
            if (key == "volume" and value <= 0) or (key == "theta" and not 0 <= value < 1):
                raise KeyError(f"training data {data!r}: {modifier!r} is out of range (volume > 0 %, theta in [0, 100) %)")
            fields[key] = value
        elif modifier == "unvalidated" and "validated" not in fields:
            fields["validated"] = False
        elif modifier in SYNTHETIC_SETS and "set" not in fields:
            fields["set"] = modifier
        else:
            raise KeyError(f"training data {data!r}: unknown or repeated modifier {modifier!r}; use v<volume %> (v200 = 2×), "
                           f"t<theta %> (t90 = θ 0.9), unvalidated, {', '.join(SYNTHETIC_SETS)}")  # fmt: skip
    if not fields.get("validated", True) and "theta" in fields:
        raise KeyError(f"training data {data!r}: 'unvalidated' takes samples whatever their IoU; drop the θ modifier")
    return SyntheticSpec(**fields)


def parse_run(run: str) -> tuple[str, str]:
    """``"unet+diffaug"`` -> ``("unet", "diffaug")``; ``"unet"`` -> ``("unet", <default data>)``.

    Raises:
        KeyError: unknown method (the message lists the registered ones) or unknown data suffix.
    """
    from benchmark.methods import get_method

    method, _, data = run.partition("+")
    get_method(method)
    data = data or default_data(method)
    try:
        parse_synthetic(data)
    except KeyError as error:
        raise KeyError(f"run {run!r}: {error.args[0]}") from None
    return method, data


def run_display_name(run: str) -> str:
    """Table label: the method's display name, plus the training data when it is not the method's default."""
    from benchmark.methods import get_method

    method, data = parse_run(run)
    cls = get_method(method)
    if data == default_data(method):
        return cls.display_name
    spec = parse_synthetic(data)
    if spec is None:
        return f"{cls.display_name} + {DATA[data]}"
    detail = spec.label()
    return f"{cls.display_name} + {DATA['diffaug']}" + (f" ({detail})" if detail else "")


def run_config(config, data: str):
    """The method config a run trains with: ``noaug`` / ``standard`` set the method's augmentation."""
    wanted = {"noaug": "none", "standard": "standard"}.get(data)
    if wanted is None:
        return config
    if not any(field.name == "augmentation" for field in dataclasses.fields(config)):
        raise KeyError(f"{type(config).__name__} has no augmentation setting; '+{data}' does not apply to this method")
    return dataclasses.replace(config, augmentation=wanted)


def budget_config(config, n_real: int, n_total: int, budget: str):
    """``config`` for a training set of ``n_total`` (real + synthetic) images.

    ``budget`` "equal_steps": ``epoch_size`` = ``n_real``, so the run takes exactly the optimizer
    steps of the real-only run (same epochs, steps per epoch, schedule and validation points), each
    epoch a fresh random draw of ``n_real`` samples from real + synthetic: synthetic data comes at no
    extra compute and the augmentation axis compares data, not training length. "equal_epochs":
    ``config`` unchanged (the paper's reading: more data, more steps).
    """
    import dataclasses

    if budget not in ("equal_steps", "equal_epochs"):
        raise ValueError(f"unknown budget {budget!r}; use equal_steps or equal_epochs")
    if budget == "equal_epochs" or n_total <= n_real:
        return config
    return dataclasses.replace(config, epoch_size=n_real)


def _percent(value: float) -> int:
    return int(round(100 * value))


def volume_run(segmenter: str, volume: float, default_volume: float) -> str:
    """The run of ``segmenter`` trained with ``volume`` × n_train synthetic pairs (Table 7):
    ``<segmenter>+diffaug`` at the default volume, else ``<segmenter>+diffaug_v<percent>``."""
    suffix = "diffaug" if abs(volume - default_volume) < 1e-9 else f"diffaug_v{_percent(volume)}"
    return run_name(segmenter, suffix)


def theta_run(segmenter: str, theta: float, default_theta: float) -> str:
    """The run of ``segmenter`` trained with synthetic pairs gated at ``theta`` (the θ sweep):
    ``<segmenter>+diffaug`` at the loop's θ, else ``<segmenter>+diffaug_t<percent>``."""
    suffix = "diffaug" if abs(theta - default_theta) < 1e-9 else f"diffaug_t{_percent(theta)}"
    return run_name(segmenter, suffix)


def run_name(method: str, data: str) -> str:
    """The run of ``method`` on ``data``: ``<method>`` when ``data`` is its default, else ``<method>+<data>``."""
    return method if default_data(method) == data else f"{method}+{data}"


def augmentation_runs(method: str, augmentation: str) -> dict[str, str]:
    """The augmentation axis of ``method`` whose configured augmentation is ``augmentation``:
    {"none": run, "standard": run, "DiffAug": run} (the bare run is whichever level it is)."""
    if method == "diffaug":  # DiffAug's segmenter: synthetic data is its default
        return {"none": "diffaug+real" if augmentation == "none" else "diffaug+noaug",
                "standard": "diffaug+standard" if augmentation == "none" else "diffaug+real", "DiffAug": "diffaug"}  # fmt: skip
    if augmentation == "none":
        return {"none": method, "standard": f"{method}+standard", "DiffAug": f"{method}+diffaug"}
    return {"none": f"{method}+noaug", "standard": method, "DiffAug": f"{method}+diffaug"}
