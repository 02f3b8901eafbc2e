"""Running a case into table rows, and the outputs: text table, JSON, plot,
machine description."""
from __future__ import annotations

import json
import os
import platform
import sys

import numpy as np

from fastlogit.bench.registry import IMPL_ORDER, PEERS, import_peer

def machine_info() -> dict:
    import fastlogit
    info = {"python": sys.version.split()[0], "numpy": np.__version__,
            "platform": platform.platform(), "cpu": _cpu_model(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "fastlogit": fastlogit.__version__}
    info.update({f"fastlogit_{k}": v for k, v in fastlogit.build_info().items()
                 if k in ("math_isa", "compile_args", "openmp", "serial_below_elements")})
    for peer in PEERS:
        mod = import_peer(peer)
        if mod is not None:
            top = sys.modules[mod.__name__.split(".")[0]]
            info[peer] = getattr(top, "__version__", "?")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS"):
        if os.environ.get(var):
            info[var] = os.environ[var]
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fmt_time(s: float) -> str:
    if s >= 1:
        return f"{s:7.2f} s "
    if s >= 1e-3:
        return f"{s * 1e3:7.2f} ms"
    return f"{s * 1e6:7.1f} us"


def fmt_bytes(b) -> str:
    if b is None:
        return "     -"
    return f"{b / 2**20:6.1f}"


def format_table(rows: list) -> str:
    lines = []
    groups: dict = {}
    for r in rows:
        groups.setdefault((r.kernel, r.size, r.dtype), []).append(r)
    for (kernel, size, dtype), rs in groups.items():
        floors = {r.threads: r.floor_s for r in rs}
        floor_txt = ", ".join(f"{t} thr {fmt_time(f).strip()}" for t, f in sorted(floors.items()))
        lines.append(f"\n{kernel}  {size}  {dtype}   (bandwidth floor: {floor_txt}; "
                     f"outputs {rs[0].output_bytes / 2**20:.1f} MiB)")
        lines.append(f"  {'implementation':<16}{'thr':>4}{'median':>11}{'+-IQR':>7}{'Melem/s':>9}"
                     f"{'GB/s':>7}{'x ref':>7}{'% floor':>8}{'extra MiB':>10}  ok  note")
        order = {name: i for i, name in enumerate(IMPL_ORDER)}
        for r in sorted(rs, key=lambda r: (r.threads, order.get(r.impl, 99))):
            ok = "" if r.matches_reference is None else ("yes" if r.matches_reference else "NO")
            spread = 100 * r.iqr_s / r.median_s if r.median_s else 0
            lines.append(
                f"  {r.impl:<16}{r.threads:>4}{fmt_time(r.median_s):>11}{spread:>6.0f}%"
                f"{r.melem_per_s:>9.0f}{r.gb_per_s:>7.2f}{r.ratio_to_reference:>6.2f}x"
                f"{r.pct_of_floor:>7.0f}%{fmt_bytes(r.peak_extra_bytes):>10}  {ok:<3} {r.note}")
    return "\n".join(lines)


def plot(rows: list, path: str) -> None:
    """Bar chart: one panel per case, speed-up over the reference per
    implementation and thread count, the bandwidth floor as a dashed line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict = {}
    for r in rows:
        groups.setdefault((r.kernel, r.size, r.dtype), []).append(r)
    n = len(groups)
    cols = min(3, n)
    nrows = (n + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(5.2 * cols, 3.6 * nrows), squeeze=False)
    colours = {"reference": "#888888", "fastlogit": "#d62728", "fastlogit out=": "#ff9896",
               "scipy": "#1f77b4", "sklearn": "#ff7f0e", "numexpr": "#2ca02c", "torch": "#9467bd",
               "jax": "#8c564b"}
    order = {name: i for i, name in enumerate(IMPL_ORDER)}
    for ax, ((kernel, size, dtype), rs) in zip(axes.flat, groups.items()):
        rs = sorted(rs, key=lambda r: (r.threads, order.get(r.impl, 99)))
        labels = [f"{r.impl} {r.threads}t" for r in rs]
        speed = [r.ratio_to_reference for r in rs]
        ax.barh(range(len(rs)), speed, color=[colours.get(r.impl, "#17becf") for r in rs])
        for t in sorted({r.threads for r in rs}):
            # Speed-up the floor would give, per thread count.
            ref = next(r for r in rs if r.threads == t and r.impl == "reference")
            ax.axvline(ref.median_s / ref.floor_s, ls="--" if t == 1 else ":", color="k", lw=1,
                       label=f"memory floor, {t} thread{'s' if t > 1 else ''}: speed-up of "
                             "just reading the inputs and writing the outputs once")
        ax.set_yticks(range(len(rs)))
        ax.set_yticklabels(labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{kernel} {size} {dtype}", fontsize=9)
        ax.set_xlabel("speed-up over the NumPy reference (x)", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.legend(fontsize=6, loc="lower right")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle("fastlogit bench: speed-up over the NumPy reference, higher is faster (medians); "
                 "a bar at a floor line runs at memory speed", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)




def write_json(payload: dict, target: str) -> None:
    """``payload`` as JSON into ``target`` ('-': stdout)."""
    text = json.dumps(payload, indent=2, default=float)
    if target == "-":
        print(text)
    else:
        with open(target, "w") as f:
            f.write(text + "\n")
