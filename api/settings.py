"""The service's settings: one frozen object, read once from the environment.

``recommender serve`` passes its options to the server's worker processes through
these environment variables (each worker builds its app with
``uvicorn api.app:create_app --factory``); code that builds an app itself passes
:func:`~api.app.create_app` keyword arguments, which override the environment.
Nothing else in ``api/`` reads the environment.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from recommender.core import DEFAULT_INDEX

INDEX_ENV = "RECOMMENDER_INDEX"
ADMIN_TOKEN_ENV = "RECOMMENDER_ADMIN_TOKEN"
WATCH_ENV = "RECOMMENDER_WATCH_SECONDS"
FRAME_ANCESTORS_ENV = "RECOMMENDER_EMBED_FRAME_ANCESTORS"
PAGE_FRAME_ANCESTORS_ENV = "RECOMMENDER_PAGE_FRAME_ANCESTORS"
CORS_ENV = "RECOMMENDER_CORS_ORIGINS"
REQUEST_LOG_ENV = "RECOMMENDER_REQUEST_LOG"
CACHE_SECONDS_ENV = "RECOMMENDER_CACHE_SECONDS"

DEFAULT_CACHE_SECONDS = 300
# How often each process checks the served path for a new build: one stat() of the
# link's meta.json, so a build or an update is served within seconds, with no
# restart and no admin call. 0 turns it off.
DEFAULT_WATCH_SECONDS = 2.0
DEFAULT_MAX_BODY_BYTES = 64 * 1024
_OFF = {"0", "off", "false", "no"}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything an app is built with (see :func:`~api.app.create_app` for each).

    Attributes
    ----------
    index_path : Path
        ``$RECOMMENDER_INDEX``, else ``models/index``.
    reload_token : str or None
        ``$RECOMMENDER_ADMIN_TOKEN``; None turns ``POST /admin/reload`` off.
    watch_seconds : float
        ``$RECOMMENDER_WATCH_SECONDS``, else 2; 0 turns the change check off.
    embed_frame_ancestors : str or None
        ``$RECOMMENDER_EMBED_FRAME_ANCESTORS``; None means any site.
    page_frame_ancestors : str or None
        ``$RECOMMENDER_PAGE_FRAME_ANCESTORS``: who may frame the other HTML pages;
        None means this site only (``'self'``).
    cache_seconds : int
        ``$RECOMMENDER_CACHE_SECONDS``, else 300.
    cors_origins : tuple of str
        ``$RECOMMENDER_CORS_ORIGINS``, comma-separated; none by default.
    log_requests : bool
        ``$RECOMMENDER_REQUEST_LOG`` (``0``, ``off``, ``false`` or ``no`` turn it off).
    max_body_bytes : int
        64 KiB.
    """

    index_path: Path = DEFAULT_INDEX
    reload_token: str | None = None
    watch_seconds: float = DEFAULT_WATCH_SECONDS
    embed_frame_ancestors: str | None = None
    page_frame_ancestors: str | None = None
    cache_seconds: int = DEFAULT_CACHE_SECONDS
    cors_origins: tuple[str, ...] = ()
    log_requests: bool = True
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings the environment gives (``os.environ`` unless ``environ``).

        Raises
        ------
        ValueError
            A variable holds a value of the wrong kind, named in the message.
        """
        env = os.environ if environ is None else environ
        origins = env.get(CORS_ENV, "").split(",")
        return cls(
            index_path=Path(env.get(INDEX_ENV) or DEFAULT_INDEX),
            reload_token=env.get(ADMIN_TOKEN_ENV) or None,
            watch_seconds=_seconds(env, WATCH_ENV, DEFAULT_WATCH_SECONDS),
            embed_frame_ancestors=env.get(FRAME_ANCESTORS_ENV),
            page_frame_ancestors=env.get(PAGE_FRAME_ANCESTORS_ENV),
            cache_seconds=_whole_seconds(env, CACHE_SECONDS_ENV, DEFAULT_CACHE_SECONDS),
            cors_origins=tuple(o.strip() for o in origins if o.strip()),
            log_requests=env.get(REQUEST_LOG_ENV, "").strip().lower() not in _OFF,
        )

    def replace(self, **changes: object) -> Settings:
        """These settings with ``changes``; a change of None keeps the setting as it is."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name, "").strip()
    try:
        return max(float(value), 0.0) if value else default
    except ValueError:
        raise ValueError(f"${name} must be a number of seconds, got {value!r}") from None


def _whole_seconds(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        seconds = int(value)
    except ValueError:
        raise ValueError(f"${name} must be whole seconds, got {value!r}") from None
    return max(seconds, 0)
