"""Stimulus sets imported from MATLAB files: a struct array of images with their classes and tags.

Kriegeskorte et al. (2008)'s supplemental file holds ``stimuli_92objs(1, 92)`` with fields
``image`` (175 x 175 x 3 uint8), ``category`` ('human face', ...) and the 0/1 flags ``human``,
``face``, ``animal``, ``natural``. Any .mat (v5 or v7.3) with such a struct array is accepted:

- images: the field ``image`` (else ``img``/``stimulus``): H x W x 3 RGB or H x W gray, uint8
  (0-255) or floating point in [0, 1]. They are kept at their own size (all of one size) and
  resized only as image folders are (mixed sizes, or the set's ``size`` option);
- classes: the text field ``category`` (else ``class``/``label``, else the only text field);
- tags: every other field holding one number (or one short text) per image.

The images are written as PNGs in the file's order beside a stimulus list
(:mod:`compute.sources.stimulus_manifest`), in ``<upload_dir>/stimuli/<sha256 of the file>``:
the set ``upload:<sha256>``, whose order is the file's, so RDMs made over that order (the
92-image brain RDMs) line up with it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from compute.sources.matfiles import StructArray, Unsupported, read_struct, variables
from compute.sources.stimulus_manifest import MAX_TAG_TEXT, Manifest, write_manifest
from compute.sources.uploads import (MAX_ZIP_MEMBERS, UploadError, accept_stimulus_zip, check_filename, store_stimulus_set,
                                     display_name)

IMAGE_FIELDS = ("image", "img", "stimulus")
CLASS_FIELDS = ("category", "class", "label")
MAX_SIDE = 4096


def _field(struct: StructArray, preferred, kind: str) -> str | None:
    found = [f for f in preferred if f in struct.fields]
    if found:
        return found[0]
    if kind == "text":
        texts = [f for f in struct.fields if all(isinstance(e[f], str) for e in struct.elements)]
        return texts[0] if len(texts) == 1 else None
    return None


def find_stimulus_struct(path: str | Path) -> StructArray:
    """The struct array of images in the .mat file at ``path`` (the first with an image field)."""
    names = [v.name for v in variables(path) if v.kind == "struct"]
    for name in names:
        struct = read_struct(path, name)
        if _field(struct, IMAGE_FIELDS, "array"):
            return struct
    raise ValueError("the .mat file holds no struct array of images: it needs a struct array with an 'image' "
                     f"field (H x W x 3 per element) and a 'category' text field; struct arrays found: "
                     f"{', '.join(names) or 'none'}")


def _image(value, where: str) -> np.ndarray:
    """An element's image as H x W x C uint8 (C 1 or 3)."""
    if isinstance(value, (str, Unsupported)) or value.dtype.kind not in "biuf":
        shown = "text" if isinstance(value, str) else value.what if isinstance(value, Unsupported) else value.dtype
        raise ValueError(f"{where}: the image holds {shown}, not pixel values")
    if value.ndim == 2:
        value = value[:, :, None]
    if value.ndim != 3 or value.shape[2] not in (1, 3) or min(value.shape[:2]) < 1:
        raise ValueError(f"{where}: the image has shape {value.shape}; an image is H x W x 3 (RGB) or H x W (gray)")
    if max(value.shape[:2]) > MAX_SIDE:
        raise ValueError(f"{where}: the image is {value.shape[0]} x {value.shape[1]}; at most {MAX_SIDE} pixels a side")
    if not np.isfinite(value).all():
        raise ValueError(f"{where}: the image has NaN or infinite pixel values")
    if value.dtype == np.uint8:
        return value
    if value.dtype.kind == "f" and value.min() >= 0 and value.max() <= 1:
        return np.round(value * 255).astype(np.uint8)
    if value.min() >= 0 and value.max() <= 255:
        return np.round(value).astype(np.uint8)
    raise ValueError(f"{where}: pixel values run from {value.min()} to {value.max()}; use uint8 (0-255) or "
                     "floating point in [0, 1]")


def _tag(value):
    """One number or short text, or None when ``value`` is not a tag."""
    if isinstance(value, str):
        return value if len(value) <= MAX_TAG_TEXT else None
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "biuf":
        number = value.reshape(()).item()
        if isinstance(number, float) and number.is_integer():
            return int(number)
        return number if np.isfinite(number) else None
    return None


def stimulus_arrays(struct: StructArray) -> tuple[list[np.ndarray], list[str], dict[str, list]]:
    """(images H x W x C uint8, one class name per image, tags) of a struct array of images, in order."""
    image_field = _field(struct, IMAGE_FIELDS, "array")
    class_field = _field(struct, CLASS_FIELDS, "text")
    if image_field is None:
        raise ValueError(f"the struct array {struct.name!r} has no image field ({', '.join(IMAGE_FIELDS)})")
    if class_field is None:
        raise ValueError(f"the struct array {struct.name!r} has no text field naming each image's class "
                         f"({', '.join(CLASS_FIELDS)}); its fields: {', '.join(struct.fields)}")
    if len(struct.elements) > MAX_ZIP_MEMBERS:
        raise ValueError(f"the struct array {struct.name!r} holds {len(struct.elements):,} images; at most "
                         f"{MAX_ZIP_MEMBERS:,} are accepted")
    images, classes = [], []
    for index, element in zip(struct.indices(), struct.elements):
        where = struct.where(index)
        images.append(_image(element[image_field], where))
        name = element[class_field]
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{where}: its {class_field} is not a class name (text)")
        classes.append(name.strip())
    if len({image.shape[2] for image in images}) > 1:
        raise ValueError(f"the struct array {struct.name!r} mixes RGB and gray images; use one kind")
    tags = {}
    for field in struct.fields:
        if field not in (image_field, class_field):
            values = [_tag(element[field]) for element in struct.elements]
            if all(v is not None for v in values):
                tags[field] = values
    return images, classes, tags


def import_stimulus_mat(path: str | Path, target: Path) -> Manifest:
    """Write the images of the .mat file at ``path`` as PNGs, in order, with their stimulus list,
    into the new folder ``target``; return the list."""
    from PIL import Image

    images, classes, tags = stimulus_arrays(find_stimulus_struct(path))
    names = list(dict.fromkeys(classes))
    if len(names) < 2:
        raise ValueError(f"every image is of the class {names[0]!r}; a stimulus set needs at least two classes")
    width = len(str(len(images)))
    files = [f"{i + 1:0{width}d}.png" for i in range(len(images))]
    for file, image in zip(files, images):
        picture = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
        with os.fdopen(os.open(target / file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
            picture.save(handle, format="PNG")
    manifest = Manifest(files, [names.index(c) for c in classes], names, tags)
    write_manifest(target, manifest)
    return manifest


def import_stimulus_set(path: str | Path):
    """The stimulus set of the .mat file of images at ``path``, imported once into the upload
    folder as ``upload:<sha256 of the file>`` (the same file gives the same set); ValueError
    naming the problem when the file holds no usable struct array of images."""
    return store_stimulus_set(path, lambda folder: import_stimulus_mat(path, folder))


def accept_stimulus_mat(path: str | Path, filename: str) -> dict:
    """Import an uploaded .mat of images (:func:`import_stimulus_set`); runs in the worker.
    Returns ``{"stimulus_set", "num_classes", "images", "tags"}``."""
    check_filename("stimuli", filename)
    try:
        stimuli = import_stimulus_set(path)
    except UploadError:
        raise
    except ValueError as error:
        raise UploadError(f"{display_name(filename)!r}: {error}") from None
    return {"stimulus_set": stimuli.name, "num_classes": stimuli.num_classes, "images": len(stimuli),
            "tags": sorted(stimuli.tags or {})}


def accept_stimuli(path: str | Path, filename: str) -> dict:
    """The "stimuli" upload kind: a zip of class folders, or a .mat struct array of images."""
    if check_filename("stimuli", filename) == ".mat":
        return accept_stimulus_mat(path, filename)
    return accept_stimulus_zip(path, filename)
