"""The controls beside DiffAug (copy-paste, oracle, shuffled labels): their data, grammar, checks and verdict."""

import numpy as np
import pandas as pd
import pytest
from prepared_fixtures import write_prepared

from benchmark.generators.controls import copy_paste, transform_patch, write_control_set
from benchmark.generators.jobs import draw_jobs
from benchmark.generators.loop import accepted_subset
from benchmark.generators.placement import donor_boxes, transform_component


def test_transform_patch_moves_pixels_exactly_like_the_mask():
    rng = np.random.default_rng(0)
    component = np.zeros((9, 13), bool)
    component[2:7, 3:11] = True
    component[4, 1:3] = True
    patch = rng.integers(0, 256, (9, 13, 3)).astype(np.uint8)
    for scale, angle in [(1.0, 0.0), (0.8, 30.0), (1.25, -170.0), (0.6, 90.0)]:
        rgb, mask = transform_patch(patch, component, scale, angle)
        np.testing.assert_array_equal(mask, transform_component(component, scale, angle))
        assert rgb.shape == (*mask.shape, 3) and rgb.min() >= 0 and rgb.max() <= 255
    rgb, _ = transform_patch(patch, component, 1.0, 0.0)  # identity: the lesion's own pixels
    assert np.allclose(rgb[transform_component(component, 1.0, 0.0)], patch[component].astype(np.float32))


@pytest.fixture(scope="module")
def real_polyps(tmp_path_factory):
    return write_prepared(tmp_path_factory.mktemp("cp"), "polyp", n=24, twins=False)


def test_copy_paste_puts_the_donor_lesion_at_the_placement_and_leaves_the_rest(real_polyps):
    jobs = draw_jobs(real_polyps, n_variants=2, seed=0)
    train = real_polyps.subset("train")
    images, masks = dict(zip(train.ids, train.images)), dict(zip(train.ids, train.masks))
    hard = copy_paste(jobs, images, masks, feather_px=0)
    soft = copy_paste(jobs, images, masks, feather_px=1.5)
    for j, row in enumerate(jobs.table.itertuples()):
        placed = jobs.masks[j].astype(bool)
        np.testing.assert_array_equal(
            hard[j][~placed], jobs.backgrounds[j][~placed]
        )  # hard edge: only the mask changes
        np.testing.assert_array_equal(
            soft[j][~placed], jobs.backgrounds[j][~placed]
        )  # feathering fades inside the mask
        # the fixture's lesions are red (+60 in R): the pasted region carries the donor's lesion colour
        box, component = donor_boxes(masks[row.donor_id])[row.donor_component]
        donor_red = images[row.donor_id][box][component][:, 0].mean()
        assert abs(hard[j][placed][:, 0].mean() - donor_red) < 12
        assert hard[j][placed][:, 0].mean() > jobs.backgrounds[j][placed][:, 0].mean() + 30
    # jobs of another dataset do not reproduce their masks: refused, not silently pasted
    shuffled = pd.DataFrame(jobs.table).assign(donor_component=0, scale=jobs.table["scale"] * 1.7)
    broken = type(jobs)(shuffled, jobs.backgrounds, jobs.masks, jobs.labels, jobs.scored)
    with pytest.raises(ValueError, match="does not reproduce the placed mask"):
        copy_paste(broken, images, masks, feather_px=0)


def test_shuffled_labels_never_keep_their_own_and_controls_read_like_synthetic_sets(tmp_path):
    images = np.arange(5, dtype=np.uint8).reshape(5, 1, 1, 1) * np.ones((5, 4, 4, 3), np.uint8)
    labels = np.zeros((5, 4, 4), np.uint8)
    for i in range(5):
        labels[i, i % 4, :] = 1  # each label differs from its neighbours
    write_control_set(tmp_path / "set", images, labels, pd.DataFrame({"donor_id": list("abcde")}), {"kind": "test"})
    plain = accepted_subset(tmp_path / "set", 1.0, 4)
    mixed = accepted_subset(tmp_path / "set", 1.0, 4, shuffle_labels=True)
    np.testing.assert_array_equal(mixed.images, plain.images)
    assert all(not np.array_equal(a, b) for a, b in zip(mixed.masks, plain.masks))
    np.testing.assert_array_equal(mixed.masks, np.roll(plain.masks, 1, axis=0))
    with pytest.raises(ValueError, match="at least 2"):
        accepted_subset(tmp_path / "set", 0.25, 4, shuffle_labels=True)
    # outside strict mode (the train stage) a set too small to shuffle is dropped with a warning, never kept unshuffled
    with pytest.warns(UserWarning, match="real data only"):
        lone = accepted_subset(tmp_path / "set", 0.25, 4, strict=False, shuffle_labels=True)
    assert len(lone.ids) == 0 and lone.images.shape[1:] == plain.images.shape[1:]
    write_control_set(tmp_path / "empty", images[:0], labels[:0], pd.DataFrame({"donor_id": []}), {"kind": "test"})
    with pytest.warns(UserWarning, match="real data only"):
        assert len(accepted_subset(tmp_path / "empty", 0.5, 4, strict=False, shuffle_labels=True).ids) == 0


def test_run_grammar_of_the_controls_and_the_budget_modifier():
    from benchmark.methods.runs import parse_run, parse_synthetic, run_display_name, volume_run

    spec = parse_synthetic(parse_run("unet+copypaste_v300")[1])
    assert (spec.source, spec.volume, spec.budget) == ("copypaste", 3.0, None)
    assert spec.folder("d") == "data/controls/d/copypaste" and spec.stage("d") == "controls@d"
    spec = parse_synthetic(parse_run("unet+oracle_epochs")[1])
    assert (spec.source, spec.budget) == ("oracle", "equal_epochs")
    spec = parse_synthetic(parse_run("unet+diffaug_v50_epochs")[1])
    assert (spec.source, spec.volume, spec.budget, spec.folder("d")) == (
        "diffaug",
        0.5,
        "equal_epochs",
        "data/synthetic/d",
    )
    assert parse_synthetic("shuffled").folder("d") == "data/synthetic/d"  # DiffAug's accepted images
    for bad in ("unet+copypaste_t90", "unet+oracle_unvalidated", "unet+shuffled_notext", "unet+diffaug_epochs_epochs"):
        with pytest.raises(KeyError):
            parse_run(bad)
    assert volume_run("unet", 3.0, 1.0, "oracle") == "unet+oracle_v300"
    assert volume_run("unet", 1.0, 1.0, "copypaste", epochs=True) == "unet+copypaste_epochs"
    assert run_display_name("unet+copypaste_v300") == "U-Net + real + copy-paste (3×)"
    assert run_display_name("unet+diffaug_epochs").endswith("(equal epochs)")


def test_budget_modifier_overrides_the_configured_budget():
    from benchmark.methods.runs import budget_config
    from benchmark.methods.unet import UNetConfig

    config = UNetConfig()
    assert budget_config(config, 100, 200, "equal_steps").epoch_size == 100
    assert budget_config(config, 100, 200, "equal_epochs") is config


def test_params_refuse_oracle_runs_on_real_data_and_a_shared_oracle_seed(tmp_path):
    import yaml

    from benchmark.config import ParamsError
    from benchmark.params import check_params

    base = yaml.safe_load(open("params.yaml"))
    base["ablation"]["runs"] = [
        *base["ablation"]["runs"],
        *(["unet+oracle"] if "unet+oracle" not in base["ablation"]["runs"] else []),
    ]
    same_seed = {**base, "controls": {**base.get("controls", {}), "oracle_seed": base["procedural"]["seed"]}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(same_seed))
    with pytest.raises(ParamsError, match="oracle_seed"):
        check_params(str(path))
    real = {
        **base,
        "prepare": {**base["prepare"], "datasets": {**base["prepare"]["datasets"], "cvc_clinicdb": "data/raw/cvc"}},
        "ablation": {**base["ablation"], "datasets": ["cvc_clinicdb"]},
    }
    path.write_text(yaml.safe_dump(real))
    with pytest.raises(ParamsError, match="oracle data exists only for procedural"):
        check_params(str(path))


def _curve(deltas: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
    rows = [
        {
            "label": "standard augmentation only",
            "delta": 0.0,
            "delta_ci_low": np.nan,
            "delta_ci_high": np.nan,
            "n_units": np.nan,
            "unit": "sequence",
        }
    ]
    for label, (delta, low, high) in deltas.items():
        rows.append(
            {
                "label": label,
                "delta": delta,
                "delta_ci_low": low,
                "delta_ci_high": high,
                "n_units": 100,
                "unit": "sequence",
            }
        )
    return pd.DataFrame(rows)


def test_control_verdict_places_diffaug_and_flags_an_insensitive_setting():
    from benchmark.reporting.studies import control_verdict

    curve = _curve(
        {
            "DiffAug + 1× synthetic": (0.01, -0.01, 0.03),
            "copy-paste + 1×": (-0.02, -0.04, 0.0),
            "oracle data + 1×": (0.04, 0.02, 0.06),
            "DiffAug images, shuffled labels + 1×": (-0.2, -0.25, -0.15),
        }
    )
    text = control_verdict(curve, 1.0)
    assert "between copy-paste and oracle data" in text and "n = 100 sequences" in text
    assert "cannot detect" not in text and "negative control failed" not in text
    curve = _curve(
        {
            "DiffAug + 1× synthetic": (-0.05, -0.07, -0.03),
            "copy-paste + 1×": (-0.01, -0.03, 0.01),
            "oracle data + 1×": (0.01, -0.01, 0.03),
            "DiffAug images, shuffled labels + 1×": (-0.01, -0.03, 0.01),
        }
    )
    text = control_verdict(curve, 1.0)
    assert (
        "below copy-paste" in text
        and "cannot detect an augmentation gain" in text
        and "negative control failed" in text
    )
    assert control_verdict(_curve({"DiffAug + 1× synthetic": (0.0, -0.01, 0.01)}), 1.0) == ""
    # the equal-epochs reading gets its own placement, and says what it mixes
    curve = _curve(
        {
            "DiffAug + 1× synthetic": (-0.06, -0.07, -0.05),
            "copy-paste + 1×": (-0.05, -0.06, -0.04),
            "oracle data + 1×": (-0.02, -0.03, -0.01),
            "DiffAug + 1×, equal epochs": (0.067, 0.058, 0.076),
            "copy-paste + 1×, equal epochs": (0.069, 0.059, 0.08),
            "oracle data + 1×, equal epochs": (0.115, 0.103, 0.127),
        }
    )
    text = control_verdict(curve, 1.0)
    assert "Under equal epochs" in text and "DiffAug +6.7 pp [+5.8, +7.6]" in text and "oracle data +11.5 pp" in text
    assert text.count("DiffAug lies below copy-paste") == 2 and "mix the value of the data with the extra steps" in text


def test_table7_control_rows_follow_the_params():
    from benchmark.reporting.studies import table7_control_runs

    available = {"unet+copypaste", "unet+oracle_v300", "unet+diffaug_epochs", "unet+shuffled"}
    rows = table7_control_runs("unet", [0.5, 1.0, 3.0], 1.0, available)
    assert rows == {
        "copy-paste + 1×": "unet+copypaste",
        "DiffAug images, shuffled labels + 1×": "unet+shuffled",
        "oracle data + 3×": "unet+oracle_v300",
        "DiffAug + 1×, equal epochs": "unet+diffaug_epochs",
    }


def test_oracle_images_come_from_a_fresh_world_prepared_like_the_dataset():
    from benchmark.data.prepare import PrepareOptions
    from benchmark.generators.controls import oracle_images
    from benchmark.params import ProceduralParams

    procedural = ProceduralParams()
    import dataclasses

    procedural = dataclasses.replace(
        procedural, synth_polyp=dataclasses.replace(procedural.synth_polyp, height=96, width=128, px_per_mm=2.0)
    )
    options = PrepareOptions(
        image_size=32,
        val_fraction=0.2,
        split_seed=0,
        fundus_target="cup",
        fundus_crop_scale=2.0,
        min_lesion_fraction=0.0005,
    )
    images, masks, attributes = oracle_images("synth_polyp", procedural, 12345, 6, options)
    assert images.shape == (6, 32, 32, 3) and masks.shape == (6, 32, 32) and set(np.unique(masks)) <= {0, 1}
    assert len(attributes) == 6 and masks.reshape(6, -1).any(axis=1).all()  # every procedural frame shows a polyp
    again, _, _ = oracle_images("synth_polyp", procedural, 12345, 6, options)
    other, _, _ = oracle_images("synth_polyp", procedural, 54321, 6, options)
    np.testing.assert_array_equal(again, images)  # a world is its seed
    assert not np.array_equal(other, images)
    with pytest.raises(ValueError, match="only for the procedural datasets"):
        oracle_images("cvc_clinicdb", procedural, 1, 2, options)
