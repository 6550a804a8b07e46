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
- the controls (``benchmark.generators.controls``; stage ``controls@<dataset>``), each as many
  pairs as the same DiffAug volume and taking the ``v<percent>`` modifier:

  - ``copypaste``: real lesions pasted (feathered) at the placements DiffAug's jobs use;
  - ``oracle``: fresh procedural frames from the dataset's own generator (procedural datasets only);
  - ``shuffled``: DiffAug's accepted images with the labels of other accepted samples (must hurt).

Any synthetic data may carry ``epochs``: train under the "equal_epochs" budget (more data, more
steps) whatever ``train.synthetic_budget`` says, e.g. ``unet+diffaug_epochs``.

A bare ``<method>`` uses the method's default (:data:`DEFAULT_DATA`): "diffaug" for DiffAug's segmenter,
"real" for every baseline. So ``unet+noaug`` / ``unet`` / ``unet+diffaug`` are the augmentation axis
none / standard / DiffAug for a U-Net, and ``diffaug+real`` is DiffAug's segmenter without synthetic
data (Table 6). A run shares its seeds with the other runs of the same method (common random numbers:
paired comparisons).
"""

from __future__ import annotations

import dataclasses

DATA = {
    "real": "real data only",
    "noaug": "real data, no augmentation",
    "standard": "real data, standard augmentation",
    "diffaug": "real + DiffAug synthetic",
    "copypaste": "real + copy-paste",
    "oracle": "real + oracle data",
    "shuffled": "real + DiffAug images, shuffled labels",
}

#: synthetic sources: DiffAug's own and the controls that calibrate it
SOURCES = ("diffaug", "copypaste", "oracle", "shuffled")

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
        source: one of :data:`SOURCES`: DiffAug's samples or a control.
        budget: "equal_epochs" to override ``train.synthetic_budget`` for this run (None: that setting).
    """

    volume: float | None = None
    theta: float | None = None
    validated: bool = True
    set: str = "main"
    source: str = "diffaug"
    budget: str | None = None

    def folder(self, dataset: str) -> str:
        """Where the synthesize (or controls) stage wrote this set."""
        if self.source in ("copypaste", "oracle"):
            return f"data/controls/{dataset}/{self.source}"
        return f"data/synthetic/{dataset}" if self.set == "main" else f"data/synthetic/{dataset}-{self.set}"

    def stage(self, dataset: str) -> str:
        """The DVC stage that writes :meth:`folder`."""
        if self.source in ("copypaste", "oracle"):
            return f"controls@{dataset}"
        return f"synthesize@{dataset}" if self.set == "main" else f"ablation_synthesize@{dataset}-{self.set}"

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
        if self.budget == "equal_epochs":
            parts.append("equal epochs")
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
    if head not in SOURCES:
        if modifiers or head not in DATA:
            raise KeyError(
                f"unknown training data {data!r}; write <method>+{'|'.join(DATA)} "
                f"(diffaug may carry _v<volume %>, _t<theta %>, _unvalidated, _{'/_'.join(SYNTHETIC_SETS)}, _epochs; "
                f"{', '.join(SOURCES[1:])} _v<volume %> and _epochs)"
            )
        return None
    fields: dict = {"source": head}
    for modifier in modifiers:
        key = {"v": "volume", "t": "theta"}.get(modifier[:1])
        if head != "diffaug" and not (key == "volume" or modifier == "epochs"):
            raise KeyError(f"training data {data!r}: {head} takes only v<volume %> and epochs, not {modifier!r}")
        if modifier == "epochs" and "budget" not in fields:
            fields["budget"] = "equal_epochs"
        elif key and modifier[1:].isdigit() and key not in fields:
            value = int(modifier[1:]) / 100
            if (key == "volume" and value <= 0) or (key == "theta" and not 0 <= value < 1):
                raise KeyError(
                    f"training data {data!r}: {modifier!r} is out of range (volume > 0 %, theta in [0, 100) %)"
                )
            fields[key] = value
        elif modifier == "unvalidated" and "validated" not in fields:
            fields["validated"] = False
        elif modifier in SYNTHETIC_SETS and "set" not in fields:
            fields["set"] = modifier
        else:
            raise KeyError(
                f"training data {data!r}: unknown or repeated modifier {modifier!r}; use v<volume %> (v200 = 2×), "
                f"t<theta %> (t90 = θ 0.9), unvalidated, {', '.join(SYNTHETIC_SETS)}, epochs"
            )
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
    return f"{cls.display_name} + {DATA[spec.source]}" + (f" ({detail})" if detail else "")


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


def volume_run(
    segmenter: str, volume: float, default_volume: float, source: str = "diffaug", *, epochs: bool = False
) -> str:
    """The run of ``segmenter`` trained with ``volume`` × n_train pairs of ``source`` (Table 7):
    ``<segmenter>+<source>`` at the default volume, else ``<segmenter>+<source>_v<percent>``;
    ``_epochs`` appended under the equal-epochs budget."""
    if source not in SOURCES:
        raise KeyError(f"unknown synthetic source {source!r}; known: {', '.join(SOURCES)}")
    suffix = source if abs(volume - default_volume) < 1e-9 else f"{source}_v{_percent(volume)}"
    return run_name(segmenter, suffix + ("_epochs" if epochs else ""))


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
        return {
            "none": "diffaug+real" if augmentation == "none" else "diffaug+noaug",
            "standard": "diffaug+standard" if augmentation == "none" else "diffaug+real",
            "DiffAug": "diffaug",
        }
    if augmentation == "none":
        return {"none": method, "standard": f"{method}+standard", "DiffAug": f"{method}+diffaug"}
    return {"none": f"{method}+noaug", "standard": method, "DiffAug": f"{method}+diffaug"}
