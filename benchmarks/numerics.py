"""What the pinned CPU code path (benchmark/numerics.py) costs: micro-timings and the whole default, per stage.

    python benchmarks/numerics.py                     # time the kernels pinned vs native, in fresh processes
    python benchmarks/numerics.py --profiles results/benchmarks/profile_A.json results/benchmarks/profile_B.json
                                                      # per-stage wall time of two profiled `dvc repro` runs

Kernel timings (default): for each mode (``pinned`` and ``native``, i.e. ``BENCHMARK_NUMERICS``),
a fresh process times, at one torch thread as the train workers run,

- a U-Net training step of the default (MONAI, 64 px, batch 16; median of 15 after 3 warm-ups);
- a latent denoiser training step (diffusers UNet2DConditionModel, 9 x 16 x 16 latents, batch 16);
- generating 24 synth_polyp frames and 8 synth_fundus images (NumPy, SciPy).

It prints a table with the ratio pinned / native and writes ``results/benchmarks/numerics_cost.json``
(machine, CPU level, versions). ``--profiles A B`` prints the per-stage and per-family wall times of
two ``benchmarks/profile_repro.py`` outputs side by side (B / A), e.g. the unpinned default against
the pinned one. Figures from different machines are not comparable. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import benchmark  # pins first
import json, statistics, sys, tempfile, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from benchmark import numerics


def median_step(step, repeats=15, warmup=3):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def unet_step():
    from monai.networks.nets import UNet
    torch.manual_seed(0)
    net = UNet(spatial_dims=2, in_channels=3, out_channels=1, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2)
    optimizer = torch.optim.AdamW(net.parameters(), 1e-3)
    x, y = torch.rand(16, 3, 64, 64), (torch.rand(16, 1, 64, 64) > 0.7).float()
    def step():
        optimizer.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(net(x), y).backward()
        optimizer.step()
    return median_step(step)


def denoiser_step():
    from diffusers import UNet2DConditionModel
    torch.manual_seed(0)
    net = UNet2DConditionModel(sample_size=16, in_channels=9, out_channels=4, block_out_channels=(32, 64, 64), layers_per_block=1,
                               down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                               up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                               cross_attention_dim=384, attention_head_dim=8, norm_num_groups=16)
    optimizer = torch.optim.AdamW(net.parameters(), 1e-4)
    x, noise, text = torch.randn(16, 9, 16, 16), torch.randn(16, 4, 16, 16), torch.randn(16, 16, 384)
    t = torch.randint(0, 1000, (16,))
    def step():
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(net(x, t, encoder_hidden_states=text).sample, noise).backward()
        optimizer.step()
    return median_step(step, repeats=8, warmup=2)


def procedural():
    from benchmark.data.procedural import fundus, polyp
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        polyp.generate(polyp.SynthPolypConfig(n_images=24), 0, Path(folder) / "p", progress=False)
        fundus.generate(fundus.SynthFundusConfig(n_train=4, n_validation=2, n_test=2), 0, Path(folder) / "f", progress=False)
        return time.perf_counter() - started


result = {"unet_step_s": unet_step(), "denoiser_step_s": denoiser_step(), "procedural_s": procedural(),
          "numerics": numerics.describe()}
print(json.dumps(result, default=str))
"""


def time_mode(mode: str) -> dict:
    from benchmark import numerics

    # this process is pinned (it imported benchmark): a native child must not inherit the pinned variables
    inherited = set(numerics.NUMPY_ENVIRONMENT) | set(numerics.TORCH_ENVIRONMENT)
    environment = {key: value for key, value in os.environ.items() if key not in inherited}
    environment[numerics.SWITCH] = mode
    output = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True, cwd=ROOT, env=environment
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def kernels(out: Path) -> None:
    from benchmark.utils.provenance import environment_record

    timings = {mode: time_mode(mode) for mode in ("native", "pinned")}
    rows = [
        ("U-Net training step (64 px, batch 16)", "unet_step_s", 1000, "ms"),
        ("latent denoiser training step (batch 16)", "denoiser_step_s", 1000, "ms"),
        ("24 polyp frames + 8 fundus images", "procedural_s", 1, "s"),
    ]
    print(f"{'workload (1 torch thread)':<42} {'native':>10} {'pinned':>10} {'pinned/native':>14}")
    summary = {}
    for label, key, scale, unit in rows:
        native, pinned = timings["native"][key], timings["pinned"][key]
        summary[key] = {"native": native, "pinned": pinned, "ratio": pinned / native}
        print(f"{label:<42} {native * scale:>8.1f}{unit:>2} {pinned * scale:>8.1f}{unit:>2} {pinned / native:>14.3f}")
    print(
        f"native: {timings['native']['numerics'].get('torch_cpu_capability')}; pinned: {timings['pinned']['numerics']['level']}"
    )
    record = {
        "workloads": summary,
        "native": timings["native"]["numerics"],
        "pinned": timings["pinned"]["numerics"],
        "environment": environment_record(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1, default=str) + "\n")
    print(f"-> {out}")


def profiles(a_path: Path, b_path: Path) -> None:
    a, b = json.loads(a_path.read_text()), json.loads(b_path.read_text())
    print(f"A = {a_path.name}, B = {b_path.name} (process wall seconds per stage)")
    stages_a, stages_b = dict(a["stages"]), dict(b["stages"])
    print(f"{'stage':<44} {'A s':>8} {'B s':>8} {'B/A':>6}")
    for name in sorted(set(stages_a) & set(stages_b), key=lambda n: -stages_a[n]["process_seconds"]):
        sa, sb = stages_a[name]["process_seconds"], stages_b[name]["process_seconds"]
        print(f"{name:<44} {sa:>8.1f} {sb:>8.1f} {sb / sa:>6.2f}")
    print(f"{'family':<44} {'A s':>8} {'B s':>8} {'B/A':>6}")
    for name in sorted(set(a["families"]) & set(b["families"]), key=lambda n: -a["families"][n]["process_seconds"]):
        sa, sb = a["families"][name]["process_seconds"], b["families"][name]["process_seconds"]
        print(f"{name:<44} {sa:>8.1f} {sb:>8.1f} {sb / sa:>6.2f}")
    ta, tb = a["totals"]["process_seconds"], b["totals"]["process_seconds"]
    print(f"{'all stage processes':<44} {ta:>8.1f} {tb:>8.1f} {tb / ta:>6.2f}")
    if a.get("dvc_repro_seconds") and b.get("dvc_repro_seconds"):
        ra, rb = a["dvc_repro_seconds"], b["dvc_repro_seconds"]
        print(f"{'whole dvc repro (wall)':<44} {ra:>8.1f} {rb:>8.1f} {rb / ra:>6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--profiles", nargs=2, type=Path, metavar=("A", "B"), help="compare two profile_*.json files per stage"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "benchmarks" / "numerics_cost.json")
    args = parser.parse_args()
    if args.profiles:
        profiles(*args.profiles)
    else:
        kernels(args.output)


if __name__ == "__main__":
    main()
