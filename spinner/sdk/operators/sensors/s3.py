"""S3KeySensor: waits until one or more keys (or keys matching a wildcard) exist in S3."""

from __future__ import annotations

import asyncio
import fnmatch
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from spinner.sdk.exceptions import DagDefinitionError
from spinner.sdk.operators.sensors._log import say
from spinner.sdk.operators.sensors.base import BaseSensorOperator

_WILDCARD = re.compile(r"[*?\[]")


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/key` -> ("bucket", "some/key")."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"{url!r} is not an s3://bucket/key URL")
    return parts.netloc, parts.path.lstrip("/")


class S3KeySensor(BaseSensorOperator):
    """Succeeds once every key in `bucket_key` exists. Each is an `s3://bucket/key` URL, or a key in
    `bucket_name`; with `wildcard_match=True` each is a Unix shell pattern (`*`, `?`, `[...]`) and
    needs one matching object. Credentials and region come from the task's environment (the AWS
    variables or files, as boto3 reads them); `endpoint_url` points at a non-AWS S3. Templated."""

    template_fields = ("bucket_key", "bucket_name")

    def __init__(
        self,
        task_id: str,
        bucket_key: str | Sequence[str],
        bucket_name: str | None = None,
        wildcard_match: bool = False,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id, **kwargs)
        where = f"DAG '{self.dag.dag_id if self.dag else '?'}', task '{task_id}'"
        keys = [bucket_key] if isinstance(bucket_key, str) else list(bucket_key)
        if not keys or not all(isinstance(k, str) and k for k in keys):
            raise DagDefinitionError(f"{where}: bucket_key must be a key or a list of keys")
        for key in keys:
            if key.startswith("s3://"):
                if bucket_name:
                    raise DagDefinitionError(f"{where}: {key!r} is an s3:// URL; do not give bucket_name too")
                try:
                    parse_s3_url(key)
                except ValueError as e:
                    raise DagDefinitionError(f"{where}: {e}") from None
            elif not bucket_name and "{{" not in key:
                raise DagDefinitionError(f"{where}: {key!r} is not an s3:// URL, so bucket_name is required")
        self.bucket_key: str | list[str] = bucket_key if isinstance(bucket_key, str) else keys
        self.bucket_name = bucket_name
        self.wildcard_match = bool(wildcard_match)
        self.endpoint_url = endpoint_url
        self.region_name = region_name

    def _targets(self) -> list[tuple[str, str]]:
        keys = [self.bucket_key] if isinstance(self.bucket_key, str) else list(self.bucket_key)
        out = []
        for key in keys:
            if key.startswith("s3://"):
                out.append(parse_s3_url(key))
            elif self.bucket_name:
                out.append((self.bucket_name, key))
            else:
                raise ValueError(f"S3KeySensor {self.task_id}: {key!r} needs bucket_name or an s3:// URL")
        return out

    def poke(self, context: dict[str, Any]) -> bool:
        return asyncio.run(self.apoke())

    async def apoke(self) -> bool:
        import aioboto3
        from botocore.exceptions import ClientError  # type: ignore[import-untyped]

        session = aioboto3.Session()
        async with session.client("s3", endpoint_url=self.endpoint_url, region_name=self.region_name) as s3:
            for bucket, key in self._targets():
                if self.wildcard_match:
                    prefix = _WILDCARD.split(key, maxsplit=1)[0]
                    found = False
                    paginator = s3.get_paginator("list_objects_v2")
                    async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                        if any(fnmatch.fnmatchcase(o["Key"], key) for o in page.get("Contents", [])):
                            found = True
                            break
                    if not found:
                        say(f"no object in s3://{bucket} matches {key} yet")
                        return False
                else:
                    try:
                        await s3.head_object(Bucket=bucket, Key=key)
                    except ClientError as e:
                        code = str(e.response.get("Error", {}).get("Code", ""))
                        if code in ("404", "NoSuchKey", "NotFound"):
                            say(f"s3://{bucket}/{key} does not exist yet")
                            return False
                        raise
            return True
