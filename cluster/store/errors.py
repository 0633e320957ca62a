"""Errors of the storage layer: each message names the URI or object and says how to fix it."""


class StorageError(RuntimeError):
    """Storage is unusable or an operation failed after its retries."""


class BucketMissing(StorageError):
    """The bucket named by the URI does not exist."""


class PreconditionFailed(StorageError):
    """A conditional write lost: the object changed (or exists) since its generation was read."""


class IntegrityError(StorageError):
    """Bytes do not match their recorded checksum (corrupt or partial object)."""


class UnsafePath(StorageError):
    """An object name would land outside the target folder."""
