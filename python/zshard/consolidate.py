"""Exports a zshard checkpoint as one plain PyTorch state dict.

    python3 -m zshard.consolidate CKPT_DIR OUT [--tag TAG] [--dtype fp32|bf16]
                                               [--format torch|safetensors]

CKPT_DIR is the save_dir given to save_checkpoint (its `latest` names the
tag) or a tag directory itself. OUT ending in .safetensors gets the
safetensors format, anything else torch.save's (load it with torch.load and
model.load_state_dict(..., strict=True)). Tensors are read (only their byte
ranges, verified block by block) and written one at a time, so host memory
stays bounded by the largest tensor, not the model. The model's buffers and
frozen parameters saved beside the weights are included.
"""
import argparse
import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile

import torch
import torch._utils

from zshard import _C
from zshard.engine import _from_bytes as _load_bytes

_SAFETENSORS_DTYPE = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16",
                      torch.int64: "I64", torch.int32: "I32", torch.bool: "BOOL", torch.uint8: "U8"}


def _open_reader(ckpt_dir, tag):
    """A CheckpointReader for save_dir (+ tag or latest) or a tag directory."""
    if tag is None and os.path.exists(os.path.join(ckpt_dir, "manifest.zshard")):
        parent, name = os.path.split(os.path.normpath(ckpt_dir))
        return _C.CheckpointReader(parent, name)
    return _C.CheckpointReader(ckpt_dir, tag or "")


def _entries(reader, dtype):
    """(name, shape, dtype, producer) for every tensor, weights first; producer()
    returns the tensor, reading it only then."""
    def weight(i):
        return lambda: torch.from_numpy(reader.read(i)).to(dtype)

    out = [(reader.name(i), tuple(reader.shape(i)), dtype, weight(i)) for i in range(reader.num_params)]
    state = reader.client_state
    if state:  # buffers and frozen parameters, in their own dtypes
        extra = _load_bytes(state).get("module_state", {})
        out += [(name, tuple(t.shape), t.dtype, (lambda t=t: t)) for name, t in extra.items()]
    return out


def _raw(tensor):
    """The tensor's bytes without a copy (bf16 through an int16 view)."""
    tensor = tensor.contiguous()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.view(torch.int16)
    return memoryview(tensor.numpy()).cast("B")


def write_safetensors(entries, out):
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape, dtype, _ in entries:
        size = torch.Size(shape).numel() * torch.tensor([], dtype=dtype).element_size()
        header[name] = {"dtype": _SAFETENSORS_DTYPE[dtype], "shape": list(shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, produce in entries:
            f.write(_raw(produce()))


class _StorageRef:
    """Stands for one tensor's storage in the pickle (torch's persistent id)."""

    def __init__(self, key, dtype, numel):
        self.key, self.dtype, self.numel = key, dtype, numel


class _TensorRef:
    def __init__(self, storage, shape):
        self.storage, self.shape = storage, shape

    def __reduce__(self):
        stride, acc = [], 1
        for d in reversed(self.shape):
            stride.insert(0, acc)
            acc *= d
        return (torch._utils._rebuild_tensor_v2,
                (self.storage, 0, tuple(self.shape), tuple(stride), False, collections.OrderedDict()))


_STORAGE_TYPES = {torch.float32: "FloatStorage", torch.bfloat16: "BFloat16Storage", torch.float16: "HalfStorage",
                  torch.int64: "LongStorage", torch.int32: "IntStorage", torch.bool: "BoolStorage",
                  torch.uint8: "ByteStorage"}


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _StorageRef):
            return ("storage", getattr(torch, _STORAGE_TYPES[obj.dtype]), obj.key, "cpu", obj.numel)
        return None


def _aligned_entry(zf, name, size):
    """A stored zip entry whose data starts on a 64-byte boundary (as torch
    aligns its records), padded through the local header's extra field."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    zip64 = size >= zipfile.ZIP64_LIMIT
    base = zf.fp.tell() + 30 + len(name.encode()) + (20 if zip64 else 0) + 4
    pad = -base % 64
    info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
    return zf.open(info, "w", force_zip64=zip64)


def write_torch(entries, out):
    """torch.save's zip format, written tensor by tensor."""
    root = "archive"
    state = collections.OrderedDict()
    for key, (name, shape, dtype, _) in enumerate(entries):
        numel = torch.Size(shape).numel()
        state[name] = _TensorRef(_StorageRef(str(key), dtype, numel), shape)
    data = io.BytesIO()
    _Pickler(data, protocol=2).dump(state)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        with _aligned_entry(zf, f"{root}/data.pkl", len(data.getvalue())) as f:
            f.write(data.getvalue())
        with _aligned_entry(zf, f"{root}/byteorder", 6) as f:
            f.write(b"little")
        for key, (_, shape, dtype, produce) in enumerate(entries):
            raw = _raw(produce())
            with _aligned_entry(zf, f"{root}/data/{key}", len(raw)) as f:
                f.write(raw)
        with _aligned_entry(zf, f"{root}/version", 2) as f:
            f.write(b"3\n")


def consolidate(ckpt_dir, out, tag=None, dtype="fp32", fmt=None):
    """Writes the checkpoint's full state dict to `out`; returns the bytes of
    shard data read."""
    reader = _open_reader(ckpt_dir, tag)
    entries = _entries(reader, {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype])
    fmt = fmt or ("safetensors" if out.endswith(".safetensors") else "torch")
    tmp = out + ".tmp"
    entries, progress = _with_progress(entries, out)
    (write_safetensors if fmt == "safetensors" else write_torch)(entries, tmp)
    os.replace(tmp, out)
    progress.finish()
    return reader.bytes_read


def _with_progress(entries, out):
    """The entries, each producer counting its bytes into a progress line
    (bytes, rate, ETA on a terminal; one summary line otherwise)."""
    sizes = [torch.Size(shape).numel() * torch.tensor([], dtype=dtype).element_size()
             for _, shape, dtype, _ in entries]
    progress = _C.Progress(f"consolidate {out}", sum(sizes), True)

    def counted(produce, size):
        def run():
            tensor = produce()
            progress.advance(size)
            return tensor
        return run
    return [(n, s, d, counted(p, size)) for (n, s, d, p), size in zip(entries, sizes)], progress


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m zshard.consolidate", description=__doc__.split("\n\n")[0])
    p.add_argument("ckpt_dir", help="save_dir of save_checkpoint, or one tag directory in it")
    p.add_argument("out", help="output file (.safetensors for safetensors, else torch.save format)")
    p.add_argument("--tag", default=None, help="tag to export (default: the one `latest` names)")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--format", choices=["torch", "safetensors"], default=None)
    args = p.parse_args(argv)
    try:
        read = consolidate(args.ckpt_dir, args.out, args.tag, args.dtype, args.format)
    except _C.ZshardError as e:
        print(f"zshard.consolidate: {e}", file=sys.stderr)
        return 1
    print(f"zshard.consolidate: wrote {args.out} ({read / 1e6:.1f} MB of shards read)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
