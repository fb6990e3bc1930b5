"""
The remote store API as the core will use it: type-checked, never run.
"""

from __future__ import annotations

from jobstamps.remote import RemoteLeases, RemoteStore, open_remote
from jobstamps.remote._fsspec import FsspecStore
from jobstamps.remote._guard import GuardedStore
from jobstamps.remote._redis import RedisStore
from jobstamps.remote._sealed import SealedStore, seal, unseal

redis_store: RemoteStore = RedisStore(
    "redis://localhost:6379/0", prefix="ci:", expire=86400
)
fsspec_store: RemoteStore = FsspecStore("s3://bucket/jobstamps", anon=False)
guarded: RemoteStore = GuardedStore(redis_store, deadline=5.0, cooldown=60.0)
sealed: RemoteStore = SealedStore(guarded, b"0123456789abcdef")
remote: RemoteStore = open_remote(
    "redis://localhost", secret="0123456789abcdef", trust_store=False
)

data: bytes | None = remote.get("module.f-0123/abcd")
remote.put("module.f-0123/abcd", b"stamp")
remote.delete("module.f-0123/abcd")
where: str = remote.url
remote.close()

blob: bytes = seal(None, "k", b"data")
opened: bytes | None = unseal(b"0123456789abcdef", "k", blob)

if not remote.exists("blobs/0123abcd"):
    remote.put_file("blobs/0123abcd", "build/out.bin")
restored: bool = remote.get_file("blobs/0123abcd", "build/out.bin")

leasing: RemoteLeases = RedisStore("redis://localhost:6379/0")
if leasing.acquire_lease("module.f-0123/abcd", "host:123:ab", 30.0):
    still_held: bool = leasing.renew_lease("module.f-0123/abcd", "host:123:ab", 30.0)
    leasing.release_lease("module.f-0123/abcd", "host:123:ab")
holder: str | None = leasing.lease_holder("module.f-0123/abcd")
