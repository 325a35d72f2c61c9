"""S3 blob backend (AWS S3, MinIO, R2 and other S3-compatible stores) on aioboto3.

aioboto3 is the optional extra ``vibetuner[s3]`` and is imported when the backend
starts, never at module import. One client is opened at startup and shared by every
call. Large uploads are multipart with a bounded queue of parts, so memory stays at
about ``(S3_MAX_CONCURRENCY + S3_MAX_IO_QUEUE + 2) * S3_PART_SIZE`` whatever the size
of the file.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any

from vibetuner.blobs.backend import KEY_PATTERN, check_key
from vibetuner.config import Settings
from vibetuner.errors import BlobNotFound, ConfigurationError

logger = logging.getLogger("vibetuner.blobs")

INSTALL_HINT = 'pip install "vibetuner[s3]"'
_MISSING = ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


def require_aioboto3() -> Any:
    """Import aioboto3, or fail with the command that installs it."""
    try:
        import aioboto3
    except ImportError:
        raise ConfigurationError(
            f"BLOB_BACKEND=s3 needs the aioboto3 package; install it with: {INSTALL_HINT}"
        ) from None
    return aioboto3


class S3Backend:
    """Stores blobs as objects in one bucket."""

    name = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        create_bucket: bool = False,
        part_size: int = 8 * 1024 * 1024,
        max_concurrency: int = 2,
        max_io_queue: int = 2,
        chunk_size: int = 1024 * 1024,
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self.create_bucket = create_bucket
        self.part_size = part_size
        self.max_concurrency = max_concurrency
        self.max_io_queue = max_io_queue
        self.chunk_size = chunk_size
        self._stack: AsyncExitStack | None = None
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The shared aioboto3 S3 client (opened by ``start``)."""
        if self._client is None:
            raise RuntimeError("the S3 blob backend is not started")
        return self._client

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Backend:
        """The bucket of the ``S3_*`` settings; needs the ``s3`` extra (aioboto3)."""
        require_aioboto3()
        if not settings.s3_bucket:
            raise ConfigurationError("BLOB_BACKEND=s3 needs S3_BUCKET (the bucket name)")
        secret = settings.s3_secret_access_key
        return cls(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
            create_bucket=settings.s3_create_bucket,
            part_size=settings.s3_part_size,
            max_concurrency=settings.s3_max_concurrency,
            max_io_queue=settings.s3_max_io_queue,
            chunk_size=settings.blob_chunk_size,
        )

    async def start(self) -> None:
        """Open the client; create the bucket when ``S3_CREATE_BUCKET`` is set."""
        aioboto3 = require_aioboto3()
        from botocore.config import Config

        options: dict[str, Any] = {
            "signature_version": "s3v4",
            "retries": {"max_attempts": 3, "mode": "standard"},
            "max_pool_connections": max(10, self.max_concurrency * 2),
        }
        if self.endpoint_url:
            # MinIO and most S3-compatible stores want path-style bucket addressing.
            options["s3"] = {"addressing_style": "path"}
        try:
            # Checksums only where S3 requires them: S3-compatible stores differ on the rest.
            config = Config(
                **options,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
        except TypeError:  # botocore before 1.36 has neither option
            config = Config(**options)
        session = aioboto3.Session()
        stack = AsyncExitStack()
        self._client = await stack.enter_async_context(
            session.client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id=self._access_key_id,
                aws_secret_access_key=self._secret_access_key,
                config=config,
            )
        )
        self._stack = stack
        if self.create_bucket:
            try:
                await self._ensure_bucket()
            except BaseException:
                await self.close()
                raise

    async def close(self) -> None:
        """Close the client."""
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            await self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _error_code(exc) not in _MISSING:
                raise
        extra: dict[str, Any] = {}
        if self.region and self.region != "us-east-1":
            extra["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        await self.client.create_bucket(Bucket=self.bucket, **extra)
        logger.info("created S3 bucket %s", self.bucket)

    async def write(self, key: str, chunks: AsyncIterator[bytes], *, content_type: str) -> None:
        """One ``put_object`` for files up to a part; a bounded multipart upload above."""
        check_key(key)
        parts = _parts(chunks, self.part_size)
        head = [part async for part in _take(parts, 2)]
        if len(head) < 2:
            body = bytes(head[0]) if head else b""
            await self.client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type
            )
            return
        upload = await self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=content_type
        )
        upload_id = upload["UploadId"]
        try:
            etags = await self._upload_parts(key, upload_id, _chain(head, parts))
            await self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]
                },
            )
        except BaseException:
            try:
                await self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id
                )
            except Exception:
                logger.exception("could not abort the multipart upload of %s", key)
            raise

    async def _upload_parts(
        self, key: str, upload_id: str, parts: AsyncIterator[bytearray]
    ) -> dict[int, str]:
        # Parts wait in a queue of S3_MAX_IO_QUEUE for one of S3_MAX_CONCURRENCY uploaders;
        # the reader blocks when the queue is full, which is what bounds memory.
        queue: asyncio.Queue[tuple[int, bytearray] | None] = asyncio.Queue(
            maxsize=self.max_io_queue
        )
        etags: dict[int, str] = {}

        async def uploader() -> None:
            while (item := await queue.get()) is not None:
                number, part = item
                response = await self.client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=_PartBody(part),
                    ContentLength=len(part),
                )
                del item, part
                etags[number] = response["ETag"]

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self.max_concurrency):
                    group.create_task(uploader())
                number = 0
                async for part in parts:
                    number += 1
                    await queue.put((number, part))
                for _ in range(self.max_concurrency):
                    await queue.put(None)
        except BaseExceptionGroup as group_error:
            raise _first_error(group_error) from None
        return etags

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream the object (or a byte range of it) in chunks."""
        from botocore.exceptions import ClientError

        extra: dict[str, Any] = {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            response = await self.client.get_object(Bucket=self.bucket, Key=check_key(key), **extra)
        except ClientError as exc:
            if _error_code(exc) in _MISSING:
                raise BlobNotFound(f"no object under {key!r} in bucket {self.bucket!r}") from None
            raise
        body = response["Body"]
        try:
            async for chunk in body.iter_chunks(self.chunk_size):
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        """Delete the object (S3 answers success for a missing key too)."""
        await self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    async def exists(self, key: str) -> bool:
        """True when ``head_object`` finds the key."""
        from botocore.exceptions import ClientError

        try:
            await self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if _error_code(exc) in _MISSING:
                return False
            raise
        return True

    async def keys(self) -> AsyncIterator[str]:
        """Every object key in the bucket that has the blob-key form."""
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                if KEY_PATTERN.fullmatch(item["Key"]):
                    yield item["Key"]

    async def presigned_url(
        self, key: str, *, expires_in: int, content_type: str, content_disposition: str
    ) -> str | None:
        """A presigned GET URL that answers with the blob's type and download name."""
        url: str = await self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": check_key(key),
                "ResponseContentType": content_type,
                "ResponseContentDisposition": content_disposition,
            },
            ExpiresIn=expires_in,
        )
        return url

    async def stale_uploads(self, older_than: datetime) -> list[str]:
        """Multipart uploads begun before ``older_than`` and never completed or aborted."""
        found: list[str] = []
        paginator = self.client.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=self.bucket):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < older_than and KEY_PATTERN.fullmatch(upload["Key"]):
                    found.append(f"{upload['Key']}?uploadId={upload['UploadId']}")
        return found

    async def remove_stale_upload(self, ref: str) -> None:
        """Abort one multipart upload named by ``stale_uploads``."""
        key, _, upload_id = ref.partition("?uploadId=")
        await self.client.abort_multipart_upload(
            Bucket=self.bucket, Key=check_key(key), UploadId=upload_id
        )


async def _parts(chunks: AsyncIterator[bytes], part_size: int) -> AsyncIterator[bytearray]:
    """Regroup ``chunks`` into parts of exactly ``part_size`` bytes (the last may be shorter).

    Each part is filled in place, so building it costs one part of memory, not two.
    """
    part = bytearray(part_size)
    filled = 0
    async for chunk in chunks:
        view = memoryview(chunk)
        while view:
            take = min(len(view), part_size - filled)
            part[filled : filled + take] = view[:take]
            filled += take
            view = view[take:]
            if filled == part_size:
                yield part
                part, filled = bytearray(part_size), 0
    if filled:
        del part[filled:]
        yield part


class _PartBody(io.RawIOBase):
    """A read-only file over one part, so the HTTP client streams it in small reads.

    Given bytes, the client hands the whole part to the socket transport, which copies
    what the socket does not take at once: a second part-sized buffer per upload.
    """

    def __init__(self, data: bytearray) -> None:
        super().__init__()
        self._view = memoryview(data)
        self._position = 0

    def read(self, size: int | None = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else self._position + size
        data = bytes(self._view[self._position : end])
        self._position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._position, len(self._view))[whence]
        self._position = min(max(base + offset, 0), len(self._view))
        return self._position

    def tell(self) -> int:
        return self._position

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self._view)


async def _take(parts: AsyncIterator[bytearray], count: int) -> AsyncIterator[bytearray]:
    for _ in range(count):
        part = await anext(parts, None)
        if part is None:
            return
        yield part


async def _chain(head: list[bytearray], rest: AsyncIterator[bytearray]) -> AsyncIterator[bytearray]:
    # Pop the parts so this generator does not keep them alive while they upload.
    while head:
        yield head.pop(0)
    async for part in rest:
        yield part


def _first_error(group: BaseExceptionGroup) -> BaseException:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return _first_error(error)
        if not isinstance(error, asyncio.CancelledError):
            return error
    return group.exceptions[0]


def _error_code(exc: Any) -> str:
    error = getattr(exc, "response", {}).get("Error", {})
    return str(error.get("Code", ""))
