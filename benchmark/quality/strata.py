"""What the gate selects (Table 5): acceptance and IoU of the generated samples by lesion stratum.

The strata come from each job (``manifest.csv`` of a synthesize folder) and the donor's attributes:

- ``size``: tertiles of the intended lesion's area (``mask_area_px``), edges stated in the label;
- ``type``: the donor lesion's Paris type (``paris_type`` attribute, e.g. procedural polyps) or
  its flatness (``flat``, e.g. Kvasir-Sessile membership), where the dataset records one;
- ``vcdr``: the band of the intended label's vertical cup-to-disc ratio (fundus: normal < 0.5,
  early 0.5–0.6, advanced ≥ 0.6, the bands of ``benchmark.data.procedural.fundus``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: vertical CDR bands (upper edges exclusive)
VCDR_BANDS = ((0.0, 0.5, "normal (< 0.5)"), (0.5, 0.6, "early (0.5–0.6)"), (0.6, 1.01, "advanced (≥ 0.6)"))


def strata(table: pd.DataFrame, attributes: pd.DataFrame | None = None) -> pd.DataFrame:
    """One column per stratum kind for every generated sample (same index as ``table``).

    Args:
        table: a synthesize manifest: ``mask_area_px``, ``donor_id``, optionally ``target_vcdr``.
        attributes: the prepared dataset's attribute table (``id`` column), for the donor's type.

    Returns:
        DataFrame with ``size`` and, where known, ``type`` and ``vcdr`` (strings; NaN where unknown).
    """
    out = pd.DataFrame(index=table.index)
    area = table["mask_area_px"].astype(float)
    edges = np.unique(np.quantile(area, [0, 1 / 3, 2 / 3, 1]))
    if len(edges) >= 3:
        bins = pd.cut(area, edges, include_lowest=True, duplicates="drop")
        out["size"] = [f"area {interval.left:.0f}–{interval.right:.0f} px" for interval in bins]
    else:
        out["size"] = f"area {area.min():.0f}–{area.max():.0f} px"
    if attributes is not None and "donor_id" in table:
        donors = attributes.assign(id=attributes["id"].astype(str)).set_index("id")
        ids = table["donor_id"].astype(str)
        for column, describe in (
            ("paris_type", lambda v: f"Paris {v}"),
            ("flat", lambda v: "flat" if str(v).lower() in ("true", "1", "1.0") else "not flat"),
        ):
            if column in donors and donors[column].notna().any():
                out["type"] = [
                    describe(donors.at[i, column]) if i in donors.index and pd.notna(donors.at[i, column]) else np.nan
                    for i in ids
                ]
                break
    if "target_vcdr" in table and table["target_vcdr"].notna().any():
        vcdr = table["target_vcdr"].astype(float)
        out["vcdr"] = [
            next((label for low, high, label in VCDR_BANDS if low <= v < high), np.nan) if pd.notna(v) else np.nan
            for v in vcdr
        ]
    return out


def acceptance_by_stratum(table: pd.DataFrame, attributes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Acceptance rate and mean gate IoU of accepted / rejected samples per stratum.

    Returns:
        One row per (``kind``, ``stratum``): ``n``, ``n_accepted``, ``acceptance_rate``,
        ``iou_accepted``, ``iou_rejected`` (NaN where a group is empty), ``iou_union_rejected``
        where the manifest records the union IoU. Rows in stratum order (sizes ascending).
    """
    groups = strata(table, attributes)
    accepted = table["accepted"].astype(bool).to_numpy()
    rows = []
    for kind in groups.columns:
        labels = groups[kind]
        order = sorted(
            labels.dropna().unique(), key=lambda s: (float(s.split()[1].split("–")[0]) if kind == "size" else 0, s)
        )
        for stratum in order:
            member = labels.eq(stratum).to_numpy()
            row = {
                "kind": kind,
                "stratum": stratum,
                "n": int(member.sum()),
                "n_accepted": int((member & accepted).sum()),
                "acceptance_rate": float(accepted[member].mean()),
                "iou_accepted": float(table.loc[member & accepted, "iou"].mean())
                if (member & accepted).any()
                else np.nan,
                "iou_rejected": float(table.loc[member & ~accepted, "iou"].mean())
                if (member & ~accepted).any()
                else np.nan,
            }
            if "iou_union" in table:
                row["iou_union_rejected"] = (
                    float(table.loc[member & ~accepted, "iou_union"].mean()) if (member & ~accepted).any() else np.nan
                )
            rows.append(row)
    return pd.DataFrame(rows)
