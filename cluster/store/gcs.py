"""`gs://bucket/prefix` through google-cloud-storage with application-default credentials.

The client is built exactly as in production; pointing STORAGE_EMULATOR_HOST at a server is the only
thing that differs in tests (the library then uses anonymous credentials itself). Every call carries
a per-request timeout and the library's retry policy bounded by a deadline; files above the
library's multipart limit (8 MiB) go up resumably in `chunk_size` pieces. Every transfer passes
checksum="crc32c", so the library checks it against the crc32c Cloud Storage holds for the object.
"""

from __future__ import annotations

import os
from typing import Optional

# google-auth probes for a GCE metadata server 3 times with 3 s timeouts (13 s measured here) before it
# reports missing credentials; one probe keeps that error under about 4 s. A user's setting wins.
os.environ.setdefault("GCE_METADATA_DETECT_RETRIES", "1")

from cluster.store.base import ObjectInfo, Store, check_key, checksum_bytes, checksum_file  # noqa: E402
from cluster.store.errors import BucketMissing, IntegrityError, PreconditionFailed, StorageError  # noqa: E402
from cluster.store.uri import StorageURI  # noqa: E402

MiB = 1 << 20
CREDENTIALS_HELP = (
    "Cloud Storage needs application-default credentials: run `gcloud auth application-default login`, "
    "or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file; on GCE/GKE the VM's service "
    "account is used."
)


def denial_reason(error) -> str:
    """Cloud Storage's own sentence for a refusal (which account lacks which permission), without the request URL
    and JSON body api_core puts around it."""
    errors = getattr(error, "errors", None) or []
    if errors and isinstance(errors[0], dict) and errors[0].get("message"):
        return str(errors[0]["message"])[:400]
    try:  # media requests (object reads and uploads) carry the body only in the response
        return str(error.response.json()["error"]["message"])[:400]
    except Exception:  # noqa: BLE001 - no JSON error body: the exception's own words
        return str(getattr(error, "message", error))[:400]


def permission_help(bucket: str, writing: bool) -> str:
    """How to get the access a 403 says is missing (`writing`: the caller writes there too, as a results store
    does): a role on the bucket for the account in use, or other credentials."""
    role = "roles/storage.objectAdmin" if writing else "roles/storage.objectViewer"
    need = "read and write" if writing else "read"
    return (f"The account these credentials belong to needs to {need} gs://{bucket}: grant it {role} on the bucket "
            f"(`gcloud storage buckets add-iam-policy-binding gs://{bucket} --member=serviceAccount:ACCOUNT "
            f"--role={role}`; user:EMAIL for a person), or use credentials that have it "
            "(`gcloud auth application-default login`, GOOGLE_APPLICATION_CREDENTIALS).")


def make_client():
    """A storage client on application-default credentials. The project is not needed for object
    operations, so none is required (ADC from `gcloud auth` often carries none)."""
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import storage

    try:
        return storage.Client(project=None)
    except DefaultCredentialsError as error:
        raise StorageError(f"No Google Cloud credentials found. {CREDENTIALS_HELP} (google-auth: {error})") from error


class GCSStore(Store):
    def __init__(
        self,
        uri: StorageURI,
        *,
        request_timeout: float = 60.0,
        retry_deadline: float = 300.0,
        chunk_size: int = 16 * MiB,
        read_only: bool = False,
    ):
        """`read_only`: the caller only reads the bucket (a job's input data), so a refusal asks for read access;
        else for write access (results, pushed data), whichever request was refused."""
        from google.cloud.storage.retry import DEFAULT_RETRY

        if chunk_size % (256 * 1024):
            raise StorageError(f"chunk_size={chunk_size} must be a multiple of 256 KiB (Cloud Storage's rule).")
        self.uri = uri
        self.read_only = read_only
        self.request_timeout = request_timeout
        self.chunk_size = chunk_size
        # Uploads here are either conditional or whole-object overwrites of the same content, so
        # retrying them is safe; the deadline bounds the time spent on one object.
        self.retry = DEFAULT_RETRY.with_timeout(retry_deadline)
        self._client = make_client()
        self._bucket = self._client.bucket(uri.bucket)

    # ------------------------------------------------------------ helpers
    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.uri.prefix}/{key}" if self.uri.prefix else key

    def _key(self, name: str) -> str:
        return name[len(self.uri.prefix) + 1:] if self.uri.prefix else name

    def _info(self, blob) -> ObjectInfo:
        return ObjectInfo(self._key(blob.name), int(blob.size or 0), blob.crc32c, blob.md5_hash,
                          int(blob.generation or 0))

    def _error(self, action: str, key: str, error: Exception) -> StorageError:
        from google.api_core import exceptions as api
        from google.auth import exceptions as auth

        where = f"{self.uri}/{key}" if key else str(self.uri)
        if isinstance(error, api.PreconditionFailed):
            return PreconditionFailed(f"{action} {where}: the object changed since it was read (generation mismatch).")
        if isinstance(error, api.NotFound) and self._bucket_missing():
            return BucketMissing(
                f"{action} {where}: bucket {self.uri.bucket!r} does not exist. Create it "
                f"(`gcloud storage buckets create gs://{self.uri.bucket}`) or fix storage.uri."
            )
        if isinstance(error, api.Forbidden):
            return StorageError(f"{action} {where}: permission denied ({denial_reason(error)}). "
                                f"{permission_help(self.uri.bucket, writing=not self.read_only)}")
        if isinstance(error, api.Unauthorized):
            return StorageError(f"{action} {where}: not authorised ({denial_reason(error)}). {CREDENTIALS_HELP}")
        if isinstance(error, (auth.DefaultCredentialsError, auth.RefreshError)):
            return StorageError(f"{action} {where}: credentials failed ({error}). {CREDENTIALS_HELP}")
        if type(error).__name__ == "DataCorruption":
            return IntegrityError(f"{action} {where}: checksum mismatch, the bytes are corrupt: {str(error)[:300]}")
        return StorageError(f"{action} {where} failed after retries: {type(error).__name__}: {str(error)[:300]}")

    def _bucket_missing(self) -> bool:
        """Asked only after a 404: a missing object and a missing bucket answer alike (and a message naming
        "bucket" proves nothing: bucket and object names contain the word)."""
        try:
            return not self._bucket.exists(timeout=self.request_timeout, retry=self.retry)
        except Exception:  # noqa: BLE001 - cannot tell: report the 404 as it came
            return False

    def _call(self, action: str, key: str, fn):
        from google.api_core.exceptions import GoogleAPIError
        from google.auth.exceptions import GoogleAuthError
        from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
        from requests.exceptions import RequestException

        try:
            return fn()
        except (GoogleAPIError, GoogleAuthError, DataCorruption, InvalidResponse, RequestException, OSError) as error:
            raise self._error(action, key, error) from error

    def _upload(self, key: str, local_checksums, send, if_generation_match: Optional[int]) -> ObjectInfo:
        """`send(blob)` uploads with checksum="crc32c": the library sends the crc32c it computes, which Cloud
        Storage checks (a multipart upload) or the library compares with the stored object's at the end (a
        resumable one, DataCorruption on a mismatch); so the info of the stored object is the verified one."""
        from google.api_core.exceptions import PreconditionFailed as Api412

        blob = self._bucket.blob(self._name(key), chunk_size=self.chunk_size)
        try:
            self._call("Uploading", key, lambda: send(blob))
        except PreconditionFailed as error:
            # A retried request whose first attempt did land also answers 412: that is our object.
            current = self.stat(key)
            if current and isinstance(error.__cause__, Api412):
                expected = local_checksums()
                if (current.size, current.crc32c) == (expected.size, expected.crc32c):
                    return current
            raise
        return self._info(blob)

    # ------------------------------------------------------------ Store
    def check_writable(self) -> None:
        # A short deadline: an unreachable endpoint must fail before training, not after 5 minutes.
        saved, self.retry = self.retry, self.retry.with_timeout(min(30.0, self.retry.timeout or 30.0))
        try:
            super().check_writable()
        finally:
            self.retry = saved

    def upload_file(self, path, key, *, if_generation_match=None) -> ObjectInfo:
        def send(blob):
            blob.upload_from_filename(
                str(path),
                checksum="crc32c",
                if_generation_match=if_generation_match,
                timeout=self.request_timeout,
                retry=self.retry,
            )

        return self._upload(key, lambda: checksum_file(path), send, if_generation_match)

    def write_bytes(self, key, data, *, if_generation_match=None) -> ObjectInfo:
        def send(blob):
            blob.upload_from_string(
                data,
                checksum="crc32c",
                if_generation_match=if_generation_match,
                timeout=self.request_timeout,
                retry=self.retry,
            )

        return self._upload(key, lambda: checksum_bytes(data), send, if_generation_match)

    def read_bytes(self, key):
        from google.api_core.exceptions import NotFound

        blob = self._bucket.blob(self._name(key))
        try:
            # One request: the media download answers with the object's generation and hashes, and the
            # library checks the bytes against its crc32c (DataCorruption otherwise).
            data = blob.download_as_bytes(checksum="crc32c", timeout=self.request_timeout, retry=self.retry)
        except NotFound as error:
            if self._bucket_missing():
                raise self._error("Reading", key, error) from error
            return None
        except Exception as error:  # noqa: BLE001 - mapped to a StorageError with the object's name
            raise self._error("Reading", key, error) from error
        return data, ObjectInfo(key, len(data), blob.crc32c, blob.md5_hash, int(blob.generation or 0))

    def download_file(self, key, path) -> ObjectInfo:
        from google.api_core.exceptions import NotFound

        # One request, not a stat and then a download: the bytes, their generation and the crc32c the library
        # checks them against all come from the one response (and its retries stay on that generation), so a
        # replacement meanwhile (a trial's state, every epoch) can neither mix two versions nor leave a pinned
        # generation that a bucket without versioning has already deleted. Chunked downloads are not checked
        # by the library: this one has no chunk_size.
        blob = self._bucket.blob(self._name(key))

        def fetch():
            try:
                blob.download_to_filename(str(path), checksum="crc32c", timeout=self.request_timeout, retry=self.retry)
            except NotFound as missing:
                return missing
            return None

        missing = self._call("Downloading", key, fetch)
        if missing is not None:
            if self._bucket_missing():
                raise self._error("Downloading", key, missing) from missing
            raise StorageError(f"Object {self.uri}/{key} does not exist.") from missing
        # The response's X-Goog-Hash: the checksum the bytes were verified against (computed here if it sent none).
        crc32c, md5 = blob.crc32c, blob.md5_hash
        if crc32c is None:
            local = checksum_file(path)
            crc32c, md5 = local.crc32c, local.md5
        return ObjectInfo(key, os.path.getsize(path), crc32c, md5, int(blob.generation or 0))

    def stat(self, key) -> Optional[ObjectInfo]:
        blob = self._call("Reading", key, lambda: self._bucket.get_blob(self._name(key), timeout=self.request_timeout,
                                                                        retry=self.retry))
        return self._info(blob) if blob is not None else None

    def list(self, prefix=""):
        full = (self.uri.prefix + "/" if self.uri.prefix else "") + prefix
        blobs = self._call("Listing", prefix, lambda: list(self._client.list_blobs(
            self._bucket, prefix=full, timeout=self.request_timeout, retry=self.retry)))
        return sorted((self._info(b) for b in blobs), key=lambda info: info.key)

    def list_dirs(self, prefix=""):
        base = (self.uri.prefix + "/" if self.uri.prefix else "") + prefix

        def run():
            pages = self._client.list_blobs(self._bucket, prefix=base, delimiter="/", timeout=self.request_timeout,
                                            retry=self.retry)
            for _ in pages:  # prefixes fill in as the pages are read
                pass
            return pages.prefixes

        prefixes = self._call("Listing", prefix, run)
        return sorted(p[len(base):].rstrip("/") for p in prefixes)

    def delete(self, key, *, if_generation_match=None) -> None:
        from google.api_core.exceptions import NotFound

        blob = self._bucket.blob(self._name(key))
        try:
            self._call("Deleting", key, lambda: blob.delete(if_generation_match=if_generation_match,
                                                            timeout=self.request_timeout, retry=self.retry))
        except StorageError as error:
            if not isinstance(error.__cause__, NotFound) or self._bucket_missing():
                raise
