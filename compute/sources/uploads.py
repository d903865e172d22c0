"""Uploaded checkpoints and stimulus sets, checked in a separate, limited worker process.

Nothing a user uploads is parsed by the web process: :func:`run_in_worker` starts
``python -m compute.sources.uploads`` with an address-space limit (``RLIMIT_AS``, the budget
``REPSCOPE_UPLOAD_MEMORY_BYTES`` above what its imports take), a CPU limit and a wall-clock
limit (``REPSCOPE_UPLOAD_TIME_LIMIT``). The worker

- reads a checkpoint (``.safetensors``, its header checked by :func:`check_safetensors_header`
  first; or a ``.pt``/``.pth`` state_dict through weights-only loading), validates it against
  the chosen architecture (:func:`resolve_architecture`), keeps it as
  ``<upload_dir>/checkpoints/<sha256>.<ext>`` and registers it (:func:`accept_checkpoint`);
- or unpacks a zip of class folders of images into ``<upload_dir>/stimuli/<sha256>/`` with caps
  against zip bombs and path escapes, the stimulus set ``"upload:<sha256>"`` (:func:`accept_stimulus_zip`);
- or reads a reference RDM (``.npy``, ``.csv``, ``.mat``, rsatoolbox ``.hdf5``; never unpickled)
  for a stimulus set and stores it by content hash (:func:`accept_reference`).

Stored names are content hashes, never the user's file names.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import stat
import struct
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from compute.errors import listed
from compute.settings import format_bytes, private_dir, upload_dir
from compute.sources.models import aliases, list_models, register_model
from compute.sources.references import FORMATS, SUFFIXES, read_named_reference, save_reference
from compute.sources.stimuli import image_folder, stimulus_set_named
from compute.sources.stimulus_names import upload_sets
from compute.sources.architectures import (architecture_name, build_module, list_architectures,
                                          split_architecture, upload_hparams)
from compute.sources.weights import ACCEPTED_FORMATS, load_state_dict_file

CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit
MAX_ZIP_MEMBERS = 50_000
MAX_UNZIPPED_BYTES = 4 * 2**30
MAX_COMPRESSION_RATIO = 100
MAX_NUM_CLASSES = 100_000  # ImageNet-21k has 21,843; a model's last layer is num_classes wide
_ZIP_JUNK = ("__MACOSX/",)
# Upload kind -> (accepted suffixes, the formats in words); the worker's tasks are in upload_worker.py.
ACCEPTED = {
    "checkpoint": (CHECKPOINT_SUFFIXES, ACCEPTED_FORMATS),
    "stimuli": ((".zip", ".mat"), "a .zip of one folder of images per class, or a .mat struct array of images "
                "with a category field (compute.sources.matlab_stimuli)"),
    "reference": (SUFFIXES, FORMATS),
    "activations": ((".npz", ".h5", ".hdf5", ".safetensors"),
                    "an .npz, .h5/.hdf5 or .safetensors file of one array per layer (see the README)"),
    "onnx": ((".onnx",), "an .onnx model with its weights inside (no external data, no custom operators)"),
}

# safetensors dtype name -> bytes per element
SAFETENSORS_DTYPES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2,
                      "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


class UploadError(ValueError):
    """An upload refused, with a message for the person who sent it."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- checkpoints ----------------------------------------------------------------------------

def check_safetensors_header(path: Path, filename: str | None = None) -> dict:
    """Parse and check a safetensors header without trusting it; return it. Messages name the
    file ``filename`` (the name the user gave it; default: the name of ``path``).

    Checks: the 8-byte length fits the file and ``MAX_HEADER_BYTES``; the header is a JSON
    object; every tensor has a known dtype, a shape of non-negative ints and ``data_offsets``
    inside the data area, of the size its shape and dtype imply, not overlapping another's.
    """
    path = Path(path)
    shown = display_name(filename) if filename is not None else path.name
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise UploadError(f"{shown}: too short to be a safetensors file ({format_bytes(size)})")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(size - 8, MAX_HEADER_BYTES):
            raise UploadError(f"{shown}: safetensors header length {length} is larger than the file "
                              f"({format_bytes(size)}) or the {format_bytes(MAX_HEADER_BYTES)} limit")
        raw = handle.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UploadError(f"{shown}: safetensors header is not valid JSON ({error})") from None
    if not isinstance(header, dict):
        raise UploadError(f"{shown}: safetensors header is not a JSON object")
    data_size = size - 8 - length
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict):
            raise UploadError(f"{shown}: tensor {name!r} has no description in the header")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in SAFETENSORS_DTYPES:
            raise UploadError(f"{shown}: tensor {name!r} has an unknown dtype {dtype!r}")
        if (not isinstance(shape, list)
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            raise UploadError(f"{shown}: tensor {name!r} has a malformed shape {shape!r}")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1]):
            raise UploadError(f"{shown}: tensor {name!r} has malformed data_offsets {offsets!r}")
        if offsets[1] > data_size:
            raise UploadError(f"{shown}: tensor {name!r} has data_offsets {offsets} past the end of "
                              f"the file (its data area holds {data_size} bytes)")
        if offsets[1] - offsets[0] != math.prod(shape) * SAFETENSORS_DTYPES[dtype]:
            raise UploadError(f"{shown}: tensor {name!r} has {offsets[1] - offsets[0]} bytes of data, "
                              f"but shape {shape} of {dtype} needs {math.prod(shape) * SAFETENSORS_DTYPES[dtype]}")
        spans.append((offsets[0], offsets[1], name))
    spans.sort()
    for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
        if start < end:
            raise UploadError(f"{shown}: tensors {first!r} and {second!r} overlap in the file")
    return header


def read_checkpoint(path: Path, suffix: str, filename: str) -> dict:
    """{name: tensor} from a stored upload whose accepted ``suffix`` was taken from its name
    ``filename``, which the messages name (never the stored file's)."""
    if suffix == ".safetensors":
        check_safetensors_header(path, filename)
    # load_state_dict_file judges the format by the name's suffix; give it one we chose.
    with tempfile.TemporaryDirectory(dir=path.parent) as directory:
        named = Path(directory) / f"checkpoint{suffix}"
        os.link(path, named)
        return load_state_dict_file(named, display_name(filename))


def architecture_choices() -> list[str]:
    """What an upload may declare: zoo families at their widths (``"cnn-w16"``), torchvision names,
    then the lab's, timm's and Hugging Face's prefixed names (:mod:`compute.sources.architectures`)."""
    from compute.sources.zoo_training import WIDTHS

    return [f"{family}-w{width}" for family, widths in WIDTHS.items() for width in widths] \
        + [name.removeprefix("torchvision:") for name in list_architectures("torchvision")] \
        + list_architectures("lab", "timm", "hf")


def resolve_architecture(architecture: str, num_classes: int, image_shape: tuple[int, int, int]) -> tuple[str, dict]:
    """(architecture, hparams) for register_model: ``"cnn-w16"`` -> the zoo family at width 16 for
    images of ``image_shape`` (C, H, W) and ``num_classes``; a torchvision name as it is; a
    ``lab:``, ``timm:`` or ``hf:`` name with what it takes from ``image_shape``."""
    from compute.sources.zoo_architectures import ARCHITECTURES, family_hparams

    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise UploadError(f"num_classes must be an integer of at least 2, got {num_classes!r}")
    if num_classes > MAX_NUM_CLASSES:
        raise UploadError(f"num_classes must be at most {MAX_NUM_CLASSES:,} (the width of the model's last "
                          f"layer), got {num_classes:,}")
    found = re.fullmatch(r"([a-z]+)-w(\d+)", architecture or "")
    if found and found.group(1) in ARCHITECTURES and int(found.group(2)) > 0:
        return found.group(1), family_hparams(found.group(1), int(found.group(2)), image_shape, num_classes)
    try:
        family, name = split_architecture(architecture or "")
    except ValueError as error:
        raise UploadError(f"{error}; a zoo family is named with its width (e.g. "
                          f"{', '.join(sorted(ARCHITECTURES))} as 'cnn-w16')") from None
    if family == "zoo":
        raise UploadError(f"the zoo architecture {name!r} needs its width, e.g. '{name}-w16'")
    if family == "torchvision":
        return name, {}
    return f"{family}:{name}", upload_hparams(family, name, image_shape)


def _suffix(filename: str, accepted: tuple[str, ...], formats: str) -> str:
    suffix = PurePosixPath((filename or "").replace("\\", "/")).suffix.lower()
    if suffix not in accepted:
        shown = suffix or "(no extension)"
        raise UploadError(f"the format {shown!r} of {filename!r} is not accepted"
                          + (" (pickles can run code)" if suffix in (".pkl", ".pickle") else "")
                          + f". Accepted formats: {formats}")
    return suffix


def check_filename(kind: str, filename: str) -> str:
    """The accepted suffix of ``filename`` for an upload of ``kind`` (a row of ``ACCEPTED``);
    cheap, so the web process may call it before starting a worker. Raises :class:`UploadError`
    listing the accepted formats."""
    try:
        suffixes, formats = ACCEPTED[kind]
    except KeyError:
        raise UploadError(f"unknown upload kind {kind!r}; use one of {sorted(ACCEPTED)}") from None
    return _suffix(filename, suffixes, formats)


def display_name(filename: str) -> str:
    """The last part of the user's file name, as messages show it (never a path of ours)."""
    return PurePosixPath((filename or "").replace("\\", "/")).name or "the upload"


def model_name(filename: str, requested: str | None = None) -> str:
    """A display name from ``requested`` or the file's stem: word characters, '-' and '.' only."""
    stem = PurePosixPath((filename or "").replace("\\", "/")).name
    stem = stem[: -len(PurePosixPath(stem).suffix)] if PurePosixPath(stem).suffix else stem
    name = re.sub(r"[^\w.-]+", "-", (requested or stem).strip()).strip("-.")[:80]
    return name or "upload"


def _keep(path: Path, kind: str, name: str) -> Path:
    """Move an accepted upload to ``<upload_dir>/<kind>/<name>`` (0600), a content-hash name."""
    directory = private_dir(upload_dir() / kind)
    final = directory / name
    if final.exists():
        path.unlink()
    else:
        path.chmod(0o600)
        os.replace(path, final)
    return final


def accept_checkpoint(path: str | Path, filename: str, architecture: str, num_classes: int,
                      stimulus_set: str = "digits", name: str | None = None, twin_of: str | None = None) -> dict:
    """Check an uploaded checkpoint against ``architecture`` and register it; runs in the worker.

    ``path`` is the received file (moved under a content-hash name); ``filename`` only chooses
    the format and the default model name. Content uploaded before under another name keeps
    both names (an alias of the same key). ``twin_of``: the name of an uploaded model of the same
    architecture whose initial weights these are (tagged ``epochs=0``, ``twin_of=<its key>``:
    its untrained twin). Nothing is kept unless every check passes. Returns ``{"model", "key",
    "architecture", "accuracy", "aliases", "stored"}``.
    """
    suffix = check_filename("checkpoint", filename)
    stimuli = stimulus_set_named(stimulus_set)
    arch, hparams = resolve_architecture(architecture, num_classes, tuple(stimuli.images.shape[1:]))
    path = Path(path)
    digest = file_sha256(path)
    tags = {"uploaded": digest[:12]}
    if twin_of is not None:
        trained = next((m for m in list_models(None) if m.name == twin_of and m.source == "upload"), None)
        if trained is None:
            raise UploadError(f"initial weights need an uploaded model to be the twin of; "
                              f"there is none named {str(twin_of)[:80]!r}")
        declared = (architecture_name(*split_architecture(arch)), {**hparams, "num_classes": num_classes})
        if (trained.architecture, trained.hparams) != declared:
            raise UploadError(f"the initial weights must be of {trained.name!r}'s architecture "
                              f"({trained.architecture}), with the same classes and stimulus set")
        tags.update(epochs=0, twin_of=trained.key)
    state = read_checkpoint(path, suffix, filename)
    display = model_name(filename, name)
    if display in {m.name for m in list_models(None)}:
        display = f"{display}-{digest[:8]}"
    info = register_model(display, arch, weights=state, hparams=hparams, num_classes=num_classes,
                          stimulus_set=stimulus_set, tags=tags)
    stored = _keep(path, "checkpoints", digest + suffix)
    return {"model": info.name, "key": info.key, "architecture": info.architecture,
            "accuracy": info.accuracy, "aliases": [n for n in aliases(info.key) if n != info.name],
            "stored": str(stored)}


def expected_state(architecture: str, num_classes: int, image_shape: tuple[int, int, int]) -> list[tuple[str, list]]:
    """(key, shape) of every tensor a checkpoint of ``architecture`` (an upload's choice, as
    :func:`resolve_architecture` reads it) must hold, in the module's order; built on torch's
    meta device, so no memory goes to weights."""
    import torch

    arch, hparams = resolve_architecture(architecture, num_classes, image_shape)
    with torch.device("meta"):
        module = build_module(*split_architecture(arch), hparams)
    return [(key, list(tensor.shape)) for key, tensor in module.state_dict().items()]


# --- stimulus zips --------------------------------------------------------------------------

def _member_path(info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The member's relative path, None for folders and OS junk; refuses escapes and links."""
    name = info.filename
    if stat.S_ISLNK(info.external_attr >> 16):
        raise UploadError(f"the zip holds a symbolic link {name!r}; only image files are accepted")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or "\\" in name or "\0" in name:
        raise UploadError(f"the zip member {name!r} has an absolute or non-portable path")
    parts = PurePosixPath(name).parts
    if ".." in parts:
        raise UploadError(f"the zip member {name!r} points outside the archive ('..')")
    if info.is_dir() or name.startswith(_ZIP_JUNK) or parts[-1].startswith("."):
        return None
    return PurePosixPath(*parts)


def _plan_zip(archive: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """(member, "<class>/<file>") for every image, checked against the caps before any is read."""
    infos = archive.infolist()
    if len(infos) > MAX_ZIP_MEMBERS:
        raise UploadError(f"the zip has {len(infos)} members; at most {MAX_ZIP_MEMBERS} are accepted")
    total = sum(i.file_size for i in infos)
    if total > MAX_UNZIPPED_BYTES:
        raise UploadError(f"the zip unpacks to {format_bytes(total)}; at most {format_bytes(MAX_UNZIPPED_BYTES)} "
                          "are accepted")
    members = []
    for info in infos:
        relative = _member_path(info)
        if relative is None:
            continue
        if info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise UploadError(f"the zip member {info.filename!r} is compressed more than "
                              f"{MAX_COMPRESSION_RATIO}:1, which images never are (a zip bomb?)")
        if relative.suffix.lower() not in IMAGE_SUFFIXES:
            raise UploadError(f"the zip member {info.filename!r} is not an image; accepted: "
                              f"{', '.join(IMAGE_SUFFIXES)} files in one folder per class")
        members.append((info, relative))
    if not members:
        raise UploadError("the zip holds no images; it needs one folder of images per class")
    depths = {len(r.parts) for _, r in members}
    roots = {r.parts[0] for _, r in members}
    if depths == {3} and len(roots) == 1:  # one enclosing folder: strip it
        members = [(i, PurePosixPath(*r.parts[1:])) for i, r in members]
    elif depths != {2}:
        raise UploadError("the zip must hold one folder per class with the images directly inside "
                          "(class/image.png, optionally inside one enclosing folder)")
    classes = sorted({r.parts[0] for _, r in members})
    if len(classes) < 2:
        raise UploadError(f"the zip holds one class folder ({classes[0]!r}); a stimulus set needs at least two")
    return members


def _unzip(archive: zipfile.ZipFile, members, target: Path) -> None:
    """Extract ``members`` into ``target`` (files 0600), counting bytes as they come, not as
    declared; refuse images that do not decode, named as in the zip."""
    from PIL import Image, UnidentifiedImageError

    budget, unreadable = MAX_UNZIPPED_BYTES, []
    for info, relative in members:
        out = target / relative
        private_dir(out.parent)
        with archive.open(info) as source, os.fdopen(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600),
                                                     "wb") as sink:
            written = 0
            for block in iter(lambda: source.read(2**20), b""):
                written += len(block)
                if written > info.file_size or written > budget:
                    raise UploadError(f"the zip member {info.filename!r} unpacks to more than it declares")
                sink.write(block)
            budget -= written
        try:
            with Image.open(out) as image:
                image.load()
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
            unreadable.append(f"{info.filename!r} ({type(error).__name__})")
    if unreadable:
        raise UploadError(f"the zip holds {len(unreadable)} unreadable image file{'s' if len(unreadable) > 1 else ''}: "
                          f"{listed(unreadable)}; every file in a class folder must be an image")


def accept_stimulus_zip(path: str | Path, filename: str) -> dict:
    """Unpack a zip of class folders of images into ``<upload_dir>/stimuli/<sha256>``; runs in
    the worker. Returns ``{"stimulus_set": "upload:<sha256>", "num_classes", "images"}``."""
    check_filename("stimuli", filename)

    def unpack(partial: Path) -> None:
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as error:
            raise UploadError(f"{filename!r} is not a readable zip file ({error})") from None
        with archive:
            _unzip(archive, _plan_zip(archive), partial)
        image_folder(partial)  # every image decodes, at least two classes

    stimuli = store_stimulus_set(path, unpack)
    return {"stimulus_set": stimuli.name, "num_classes": stimuli.num_classes, "images": len(stimuli)}


def store_stimulus_set(path: str | Path, unpack):
    """The stimulus set ``upload:<sha256 of the file at path>``, made once: ``unpack(folder)``
    fills a private temporary folder, which then replaces ``<upload_dir>/stimuli/<sha256>``
    atomically (the same file gives the same set; a failure leaves nothing)."""
    digest = file_sha256(Path(path))
    target = upload_dir() / "stimuli" / digest
    if not target.exists():
        private_dir(target.parent)
        partial = Path(tempfile.mkdtemp(prefix=f".{digest}.", dir=target.parent))
        try:
            unpack(partial)
            partial.chmod(0o700)
            os.replace(partial, target)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return stimulus_set_named(f"upload:{digest}")


def uploaded_stimulus_sets() -> list[str]:
    """``"upload:<sha256>"`` names of the stimulus sets unpacked from uploads."""
    return list(upload_sets())


# --- reference RDMs -------------------------------------------------------------------------

def accept_reference(path: str | Path, filename: str, stimulus_set: str = "digits", name: str | None = None) -> dict:
    """Read an uploaded reference RDM for ``stimulus_set`` and store it (with its subjects'
    names when the file has them); runs in the worker. Returns ``{"reference": key, "name",
    "subjects", "stimuli", "stimulus_set", "subject_names"}``."""
    suffix = check_filename("reference", filename)
    stimuli = stimulus_set_named(stimulus_set)
    rdms, names = read_named_reference(path, suffix, len(stimuli), f"stimulus set {stimuli.name!r}")
    info = save_reference(rdms, model_name(filename, name), stimuli, names)
    return {"reference": info.key, "name": info.name, "subjects": info.subjects, "stimuli": info.stimuli,
            "stimulus_set": info.stimulus_set,
            "subject_names": list(info.subject_names) if info.subject_names else None}
