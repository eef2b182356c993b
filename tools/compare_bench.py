"""compare_bench.py: the last step of `make bench-gpu`: one table of our figures (build/bench_gpu
--json) against the PyTorch reference's (tools/reference/bench_reference.py --json), with the
ratios, then issue 5's targets, each met or MISSED. Either file may be missing or partial (a
crashed run): its cells read n/a.

  python3 tools/compare_bench.py OURS.json PYTORCH.json

Ratios: step "x faster" = PyTorch ms / our ms; sampling = our images/s / PyTorch's; memory = ours /
PyTorch's. Exit status 0 even when a target is missed (a benchmark reports, it does not fail).
"""
import json
import sys

GIB = 2 ** 30
# (what, configuration, field, bound, "le" or "ge"); the painter is checked separately.
TARGETS = [("training step paper-rgb64-T64 batch 20 <= 20 ms", "rgb64-T64-b20", "ms_per_step", 20.0, "le"),
           ("sampling T=64 batch 256 >= 100,000 images/s", "rgb64-T64-b20", "sample_images_per_s", 1e5, "ge"),
           ("peak memory at batch 20 <= 2 GiB", "rgb64-T64-b20", "peak_bytes", 2 * GIB, "le")]
PAINTER_TARGET_MS = 0.2
# FPA_REFERENCE.md section 7: the official code, PyTorch eager on an H200 (ms/step, peak GiB).
OFFICIAL = {"rgb64-T64-b20": (202, 8.0), "rgb64-T16-b20": (171, None), "grey32-T32-b32": (202, 11.9),
            "rgb64-T64-unet-b20": (252, None), "rgb64-T64-b64": (454, 24), "rgb64-T64-b128": (834, 48)}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"({path}: {e})")
        return {"configs": [], "painter": None}


def cell(v, spec):
    width = spec.split(".")[0]
    return format(v, spec) if v is not None else "n/a".rjust(int(width) if width else 0)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def mib(v):
    return None if v is None else v / 2 ** 20


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: compare_bench.py OURS.json PYTORCH.json")
    ours, ref = load(sys.argv[1]), load(sys.argv[2])
    print(f"ours:    {ours.get('device_name', 'n/a')}\nPyTorch: {ref.get('device_name', 'n/a')}")
    by_name = {c["name"]: c for c in ref["configs"]}
    names = [c["name"] for c in ours["configs"]] + [n for n in by_name if n not in {c["name"] for c in ours["configs"]}]
    ours_by = {c["name"]: c for c in ours["configs"]}
    head = (f"{'config':20s} {'ours ms':>9s} {'torch ms':>9s} {'x faster':>8s} {'ours img/s':>11s} {'torch img/s':>11s}"
            f" {'ratio':>6s} {'ours MiB':>9s} {'torch MiB':>9s} {'mem ratio':>9s} {'official ms':>11s}")
    print(head + "\n" + "-" * len(head))
    errors = []
    for n in names:
        o, r = ours_by.get(n, {}), by_name.get(n, {})
        for who, c in (("ours", o), ("PyTorch", r)):
            if c.get("error"):
                errors.append(f"  {n} ({who}): {c['error']}")
        om, rm = o.get("ms_per_step"), r.get("ms_per_step")
        oi, ri = o.get("sample_images_per_s"), r.get("sample_images_per_s")
        op, rp = mib(o.get("peak_bytes")), mib(r.get("peak_bytes"))
        print(f"{n:20s} {cell(om, '9.2f')} {cell(rm, '9.2f')} {cell(ratio(rm, om), '8.2f')} {cell(oi, '11.0f')}"
              f" {cell(ri, '11.0f')} {cell(ratio(oi, ri), '6.2f')} {cell(op, '9.0f')} {cell(rp, '9.0f')}"
              f" {cell(ratio(op, rp), '9.2f')} {cell(OFFICIAL.get(n, (None,))[0], '11.0f')}")
    op, rp = ours.get("painter") or {}, ref.get("painter") or {}
    po, pr_ms = op.get("ms_fwd_bwd"), rp.get("ms_fwd_bwd")
    geom = ", ".join(f"{k} {op.get(k, rp.get(k))}" for k in "BCST")
    print(f"painter fwd+bwd ({geom}): ours {cell(po, '.4f')} ms, PyTorch {cell(pr_ms, '.4f')} ms,"
          f" x faster {cell(ratio(pr_ms, po), '.1f')}")
    oi, ri = ours.get("inception") or {}, ref.get("inception") or {}
    io, ir = oi.get("images_per_s"), ri.get("images_per_s")
    print(f"FID Inception (batch {oi.get('batch', ri.get('batch'))}): ours {cell(io, '.1f')} images/s, PyTorch"
          f" {cell(ir, '.1f')} images/s, ratio {cell(ratio(io, ir), '.2f')}")
    fp32 = [(c["name"], c["sample_images_per_s_fp32"]) for c in ours["configs"]
            if c.get("sample_images_per_s_fp32")]
    if fp32:
        print("ours, sampling with TF32 off everywhere (the table: the LSTM in TF32, as PyTorch's cuDNN LSTM)"
              " (images/s): " + ", ".join(f"{n} {v:,.0f}" for n, v in fp32))
    held = [(n, mib(ours_by.get(n, {}).get("peak_reserved_bytes")), mib(by_name.get(n, {}).get("peak_reserved_bytes")))
            for n in names]
    if any(o is not None or r is not None for _, o, r in held):
        print("device memory held at most (reserved: in use + cached, our graphs' pools included), MiB: "
              + ", ".join(f"{n} ours {cell(o, '.0f')} / torch {cell(r, '.0f')}" for n, o, r in held))
    if errors:
        print("errors:\n" + "\n".join(errors))

    quick = ours.get("quick") or ours.get("device") != "cuda"
    print("targets (issue 5)" + (": not checked, a --quick or CPU run" if quick else ":"))
    if quick:
        return
    for what, n, field, bound, sense in TARGETS:
        v = ours_by.get(n, {}).get(field)
        ok = v is not None and (v <= bound if sense == "le" else v >= bound)
        shown = "n/a" if v is None else (f"{v / GIB:.2f} GiB" if field == "peak_bytes" else f"{v:,.1f}")
        print(f"  {'met   ' if ok else 'MISSED'} {what}: ours {shown}")
    ok = po is not None and po <= PAINTER_TARGET_MS
    print(f"  {'met   ' if ok else 'MISSED'} painter fwd+bwd alone (B 20, C 3, S 64, T 64) <= {PAINTER_TARGET_MS} ms:"
          f" ours {cell(po, '.4f')} ms")


if __name__ == "__main__":
    main()
