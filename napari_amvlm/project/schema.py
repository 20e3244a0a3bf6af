"""The manifest's schema, checked every time a manifest is read: a project may come from anyone, so every field
must have its type, every name its pattern (:mod:`.names`), and every array one owner, before the store uses any
of it. A manifest that breaks a rule is refused as corrupt, naming the field and the rule, before anything is
written or deleted."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ..io.limits import MAX_IMAGE_PIXELS
from .names import ARRAY_NAME_RULE, FILE_NAME_RULE, SHA256, is_array_name, is_file_name, shown
from .records import ImageRecord, MaskKind, MaskRecord, ModelRecord, PromptRecord, Provenance, RoundRecord

PIXEL_DTYPES = {"uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float16", "float32",
                "float64"}  # fmt: skip
MASK_DTYPES = {"uint8", "uint16", "uint32"}
MAX_JSON_DEPTH = 32  # nesting of the free-form values (round settings); the records themselves are flat
TOP_KEYS = {"format", "format_version", "generation", "name", "created", "updated", "images", "models", "rounds",
            "trash"}  # fmt: skip


class SchemaError(ValueError):
    """A field of the manifest breaks a rule (turned into a CorruptProjectError naming the manifest)."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field} {rule}")


Check = Callable[[Any, str], None]


# ------------------------------------------------------------------------------------------ value checks
def _type(kinds: tuple[type, ...], label: str) -> Check:
    def check(v: Any, field: str) -> None:
        if not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds):  # JSON true is no number
            raise SchemaError(field, f"must be {label}, not {shown(v)}")
    return check


_str, _bool, _num = _type((str,), "a string"), _type((bool,), "true or false"), _type((int, float), "a number")
_dict, _list = _type((dict,), "an object"), _type((list,), "a list")


def _int(lo: int = 0, hi: int | None = None) -> Check:
    def check(v: Any, field: str) -> None:
        if not isinstance(v, int) or isinstance(v, bool) or v < lo or (hi is not None and v > hi):
            raise SchemaError(field, f"must be an integer from {lo}" + (f" to {hi}" if hi is not None else "")
                              + f", not {shown(v)}")
    return check


def _optional(check: Check) -> Check:
    return lambda v, field: None if v is None else check(v, field)


def _one_of(*values: Any) -> Check:
    def check(v: Any, field: str) -> None:
        if v not in values or isinstance(v, bool):
            raise SchemaError(field, f"must be one of {', '.join(map(repr, values))}, not {shown(v)}")
    return check


def _sha(v: Any, field: str) -> None:
    if not isinstance(v, str) or not SHA256.fullmatch(v):
        raise SchemaError(field, f"must be a sha256 (64 lowercase hex digits), not {shown(v)}")


def _file_name(v: Any, field: str) -> None:
    if not is_file_name(v):
        raise SchemaError(field, f"must be usable as a file name ({FILE_NAME_RULE}), not {shown(v)}")


def _array(kind: str | None) -> Check:
    def check(v: Any, field: str) -> None:
        if not is_array_name(v, kind):
            rule = ARRAY_NAME_RULE if kind is None else ARRAY_NAME_RULE.split(" with")[0].replace("<kind>", kind)
            raise SchemaError(field, f"must name an array of this project ({rule}), not {shown(v)}")
    return check


def _json_depth(v: Any, field: str) -> None:
    """Free-form JSON, nested at most MAX_JSON_DEPTH deep (checked without recursion)."""
    todo = [(v, 0)]
    while todo:
        x, depth = todo.pop()
        if depth > MAX_JSON_DEPTH:
            raise SchemaError(field, f"is nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(x, dict):
            todo.extend((y, depth + 1) for y in x.values())
        elif isinstance(x, list):
            todo.extend((y, depth + 1) for y in x)


def _record(cls: type, checks: dict[str, Check], extra: tuple[str, ...] = ()) -> Check:
    """A JSON object holding the fields of dataclass ``cls`` (those with no default are required)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    required = {n for n, f in fields.items() if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING} | set(extra)  # fmt: skip
    allowed = set(fields) | set(extra)

    uncovered = sorted(allowed - set(checks))
    if uncovered:  # a field added to a record needs its rule here
        raise TypeError(f"no schema rule for {cls.__name__}.{uncovered[0]}")

    def check(v: Any, field: str) -> None:
        _dict(v, field)
        missing, unknown = sorted(required - set(v)), sorted(set(v) - allowed)
        if missing:
            raise SchemaError(field, f"lacks the field {missing[0]!r}")
        if unknown:
            raise SchemaError(field, f"has an unknown field {shown(unknown[0])}")
        for name, value in v.items():
            checks[name](value, f"{field}.{name}")
    return check


# ------------------------------------------------------------------------------------------- records
_provenance = _record(Provenance, {
    "author": _str, "author_kind": _one_of("person", "model"), "time": _str, "prompt": _optional(_str),
    "model": _optional(_str), "round": _optional(_int()), "note": _str,
    "sides": _optional(_one_of("image", "patient")), "changed": _optional(_num),
})  # fmt: skip
_prompt = _record(PromptRecord, {"text": _str, "author": _str, "time": _str, "sides": _one_of("image", "patient")})


_MASK = {kind.value: _record(MaskRecord, {
    "kind": _one_of(kind.value), "array": _array(kind.value), "dtype": _one_of(*sorted(MASK_DTYPES)),
    "foreground": _optional(_int(1)), "provenance": _provenance,
    "source_dtype": _optional(_one_of(*sorted(MASK_DTYPES | {"uint64"}))),
}) for kind in MaskKind}  # fmt: skip


def _shape(v: Any, field: str) -> None:
    ok = isinstance(v, list) and len(v) in (2, 3) and all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                                                          for s in v)  # fmt: skip
    if not ok:
        raise SchemaError(field, f"must be [height, width] or [height, width, channels] (positive integers), not "
                                 f"{shown(v)}")
    if v[0] * v[1] > MAX_IMAGE_PIXELS or (len(v) == 3 and v[2] not in (3, 4)):
        raise SchemaError(field, f"{v} is not an image this store holds (at most {MAX_IMAGE_PIXELS:,} pixels, 3 or "
                                 "4 colour channels)")


def _list_of(check: Check) -> Check:
    def run(v: Any, field: str) -> None:
        _list(v, field)
        for i, x in enumerate(v):
            check(x, f"{field}[{i}]")
    return run


def _masks(v: Any, field: str) -> None:
    _dict(v, field)
    for kind, mask in v.items():
        _one_of(*_MASK)(kind, f"{field} key")
        _MASK[kind](mask, f"{field}[{kind!r}]")


_image = _record(ImageRecord, {
    "id": _file_name, "name": _file_name, "source": _optional(_str), "slice": _optional(_int()),
    "n_slices": _int(1), "sha256": _sha, "file_sha256": _optional(_sha), "shape": _shape,
    "dtype": _one_of(*sorted(PIXEL_DTYPES)), "rgb": _bool, "vmin": _num, "vmax": _num, "array": _array("img"),
    "added": _str, "masks": _masks, "human_history": _list_of(_MASK[MaskKind.HUMAN.value]),
    "prompts": _list_of(_prompt),
}, extra=("masks", "human_history", "prompts"))  # fmt: skip
_model = _record(ModelRecord, {"sha256": _sha, "name": _str, "source": _str, "size": _int(), "added": _str})


def _metrics(v: Any, field: str) -> None:
    _dict(v, field)
    for k, x in v.items():
        _num(x, f"{field}[{shown(k)}]")


def _image_lists(v: Any, field: str) -> None:
    _dict(v, field)
    for k, ids in v.items():
        _list_of(_str)(ids, f"{field}[{shown(k)}]")


def _settings(v: Any, field: str) -> None:
    _dict(v, field)
    _json_depth(v, field)


_round = _record(RoundRecord, {
    "index": _int(1), "model": _sha, "base_model": _optional(_sha), "settings": _settings,
    "seed": _int(-(2**63), 2**64), "metrics": _metrics, "time": _str, "images": _image_lists, "installed": _bool,
})  # fmt: skip


# --------------------------------------------------------------------------------------------- manifest
def check_manifest(m: dict[str, Any]) -> None:
    """Check every field of a manifest (already parsed JSON); raises :class:`SchemaError` for the first problem."""
    unknown = sorted(set(m) - TOP_KEYS)
    if unknown:
        raise SchemaError("the manifest", f"has an unknown field {shown(unknown[0])}")
    _int()(m.get("generation"), "generation")
    for key in ("name", "created", "updated"):
        _str(m.get(key), key)
    for key in ("images", "models", "trash"):
        _dict(m[key], key)
    _list(m["rounds"], "rounds")
    names: dict[str, str] = {}
    for key, entry in m["images"].items():
        field = f"images[{shown(key)}]"
        _image(entry, field)
        if entry["id"] != key:
            raise SchemaError(f"{field}.id", f"must equal its key, not {shown(entry['id'])}")
        if entry["name"] in names:
            raise SchemaError(f"{field}.name", f"{entry['name']!r} is also the name of {names[entry['name']]!r}")
        names[entry["name"]] = key
    for key, rec in m["models"].items():
        _model(rec, f"models[{shown(key)}]")
        if rec["sha256"] != key:
            raise SchemaError(f"models[{shown(key)}].sha256", "must equal its key")
    for i, rnd in enumerate(m["rounds"]):
        _round(rnd, f"rounds[{i}]")
        for which in ("model", "base_model"):
            if rnd[which] is not None and rnd[which] not in m["models"]:
                raise SchemaError(f"rounds[{i}].{which}", "names no model of the project")
    for name, when in m["trash"].items():
        _array(None)(name, "trash key")
        _num(when, f"trash[{name!r}]")
    _check_owners(m)


def _check_owners(m: dict[str, Any]) -> None:
    """Every array has one owner: one record, or the trash (which the store deletes)."""
    owner: dict[str, str] = {}
    for key, entry in m["images"].items():
        field = f"images[{shown(key)}]"
        named = [(f"{field}.array", entry["array"])]
        named += [(f"{field}.masks[{k!r}].array", mask["array"]) for k, mask in entry["masks"].items()]
        named += [(f"{field}.human_history[{i}].array", h["array"]) for i, h in enumerate(entry["human_history"])]
        for where, name in named:
            if name in owner:
                raise SchemaError(where, f"names the array {name} that {owner[name]} also names")
            owner[name] = where
    for name in m["trash"]:
        if name in owner:
            raise SchemaError(f"trash[{name!r}]", f"would delete the array of {owner[name]}")
