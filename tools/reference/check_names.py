"""check_names.py: the reference models' parameter names and shapes against the official lists.

Builds the full-size configurations and compares `G.*` / `D.*` names, shapes and order with
/work/shared/spec/params-*.txt (the `G.mod_dict.*` aliases of the U-Net list are skipped: they
are the same tensors again), then the parameter totals. Exit status 0 when everything matches.
Run: python3 tools/reference/check_names.py [SPEC_DIR]
"""
import os
import re
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fpa_reference as ref  # noqa: E402

SPEC = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/spec"


def read_list(path):
    rows = []
    for line in open(path):
        line = line.strip()
        if not line:
            continue
        m = re.match(r"^(\S+) \(([\d, ]*)\)$", line)
        assert m, f"{path}: cannot parse {line!r}"
        shape = tuple(int(x) for x in m.group(2).split(",") if x.strip())
        rows.append((m.group(1), shape))
    return rows


def ours(prefix, module):
    return [(prefix + n, tuple(p.shape)) for n, p in module.named_parameters()]


def compare(title, want, got):
    ok = True
    wn, gn = [n for n, _ in want], [n for n, _ in got]
    missing = sorted(set(wn) - set(gn))
    extra = sorted(set(gn) - set(wn))
    if missing or extra:
        ok = False
        print(f"  {title}: missing {missing[:10]}{'...' if len(missing) > 10 else ''}")
        print(f"  {title}: extra   {extra[:10]}{'...' if len(extra) > 10 else ''}")
    ws, gs = dict(want), dict(got)
    bad = [(n, ws[n], gs[n]) for n in wn if n in gs and ws[n] != gs[n]]
    if bad:
        ok = False
        for n, a, b in bad[:10]:
            print(f"  {title}: {n} shape {b}, expected {a}")
    if not missing and not extra and wn != gn:
        print(f"  {title}: same names, different order (not an error for a state dict)")
    total = sum(_numel(s) for _, s in got)
    return ok, total


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def main():
    torch.set_default_dtype(torch.float32)
    all_ok = True
    cases = [
        ("paper-rgb64-T64", "params-fpa-rgb64-T64.txt", 6437891, 12326632),
        ("grey32-T32", "params-fpa-grey32-T32.txt", None, 11094384),
        ("paper-rgb64-T64+unet", "params-fpa-unet-rgb64-generator.txt", 14423366, None),
    ]
    for preset, fname, want_g, want_d in cases:
        cfg = ref.preset_config(preset)
        rows = [r for r in read_list(os.path.join(SPEC, fname)) if not r[0].startswith("G.mod_dict.")]
        want_G = [r for r in rows if r[0].startswith("G.")]
        want_D = [r for r in rows if r[0].startswith("D.")]
        G = ref.Generator(cfg)
        ok, tg = compare(f"{preset} G", want_G, ours("G.", G))
        lst_g = sum(_numel(s) for _, s in want_G)
        line = f"{preset:22s} G: {len(want_G)} tensors, ours {tg:,} params, list {lst_g:,}"
        if want_g is not None:
            ok = ok and tg == want_g
            line += f", expected {want_g:,}"
        if want_D:
            D = ref.Discriminator(cfg)
            okd, td = compare(f"{preset} D", want_D, ours("D.", D))
            lst_d = sum(_numel(s) for _, s in want_D)
            ok = ok and okd and td == lst_d and (want_d is None or td == want_d)
            line += f"; D: {len(want_D)} tensors, ours {td:,}, list {lst_d:,}"
            if want_d is not None:
                line += f", expected {want_d:,}"
        print(("OK   " if ok else "FAIL ") + line)
        all_ok = all_ok and ok
    print("all parameter names, shapes and totals match" if all_ok else "MISMATCH")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
