"""The annotation project store: images, human labels, predictions, pseudo-labels, prompts, model versions
and training rounds, with provenance. The only package of napari-amvlm that imports zarr (in :mod:`.arrays`).

On disk a project is a folder::

    <project>/amvlm-project.json   the manifest: every record, and the names of the arrays that hold data
    <project>/arrays/<name>/        one zarr array (zarr format 2) per image or mask; never changed once named
    <project>/.lock                 advisory lock taken by writers

**Commit protocol.** A change writes its new arrays under fresh names, fsyncs them, then replaces the
manifest atomically (temporary file, fsync, ``os.replace``, fsync of the folder). The manifest is the commit
point: readers trust only what it names, so a writer killed at any moment (even by SIGKILL) leaves the last
committed state; arrays it had half written are unreferenced and removed by the next writer. Superseded
predictions and pseudo-labels stay on disk for ``trash_grace_s`` seconds (lazy views held by a viewer keep
working) and are then deleted. Human labels are never deleted: a newer correction moves the older one to the
image's history.

**A project from anyone.** Projects travel between colleagues, so everything read from one is data: the manifest
is checked field by field when read (:mod:`.schema`: types, names that must match the store's own patterns, one
owner per array, at most 64 MiB), ``arrays/``, the lock file and arrays may not be links, and each array's metadata
and chunk headers pass an allow-list and size limits before zarr opens it (:mod:`.arrays`). A project that breaks a
rule is refused as corrupt, naming the rule, before anything is written or deleted.

Modules, each depending only on those above it:

- :mod:`.records`: typed records and errors (plain data); :mod:`.names`: the patterns names must match;
- :mod:`.files`: image and mask files (hashing, planes, mask values); :mod:`.arrays`: the zarr arrays;
  :mod:`.schema` and :mod:`.manifest`: reading, checking and atomically replacing the manifest;
- :mod:`.store`: :class:`~.store.ProjectStore`, the writer lock, transactions, commits and crash recovery;
- :mod:`.catalog`: :class:`~.catalog.ProjectCatalog`, images, statuses, prompts, models and rounds;
  :mod:`.transfer`: mask import/export and weight files, over any object with a project's public methods;
- :mod:`.project`: :class:`Project`, the mask slots with the human-label guard, and import/export.
"""

from .manifest import FORMAT_VERSION, MANIFEST_NAME, is_project
from .project import Project
from .records import (
    CorruptProjectError,
    ImageRecord,
    MaskKind,
    MaskRecord,
    ModelRecord,
    NotAProjectError,
    ProjectError,
    ProjectVersionError,
    PromptRecord,
    Provenance,
    RoundRecord,
    Status,
)
from .transfer import MaskImport

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "CorruptProjectError",
    "ImageRecord",
    "MaskImport",
    "MaskKind",
    "MaskRecord",
    "ModelRecord",
    "NotAProjectError",
    "Project",
    "ProjectError",
    "ProjectVersionError",
    "PromptRecord",
    "Provenance",
    "RoundRecord",
    "Status",
    "is_project",
]  # fmt: skip
