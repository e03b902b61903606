"""`PlatformPlugin`: how one platform is configured, described and built.

Each platform package declares one in its `plugin.py`; `integrations.registry`
lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from pydantic import BaseModel, SecretStr

from integrations.capabilities import PlatformCapabilities

if TYPE_CHECKING:
    import httpx

    from integrations.base import SocialPlatform

S = TypeVar("S", bound=BaseModel)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class PlatformPlugin(Generic[S]):
    """How to configure, describe and build one platform.

    `settings_type` is a pydantic model whose field names are the environment
    variables (GOOGLE_CLIENT_ID -> google_client_id); `bot.settings` reads them.
    `required` lists alternatives of settings that together switch it on.
    `build` is called only when `enabled`, and imports the platform's client then,
    so an unconfigured platform costs no import.
    """

    name: str
    display_name: str
    settings_type: type[S]
    required: tuple[tuple[str, ...], ...]
    capabilities: Callable[[S], PlatformCapabilities]
    build: Callable[[S, PlatformCapabilities, httpx.AsyncClient], SocialPlatform]

    def settings_from(self, values: BaseModel) -> S:
        """This platform's settings out of a larger settings object (absent fields: defaults)."""
        return self.settings_type.model_validate(
            values.model_dump(include=set(self.settings_type.model_fields))
        )

    def enabled(self, settings: S) -> bool:
        """Some alternative in `required` is fully set."""
        return any(all(_is_set(settings, name) for name in alt) for alt in self.required)

    def missing(self, settings: S) -> list[str]:
        """The settings still needed by the closest alternative (for `doctor`)."""
        best = min(self.required, key=lambda alt: sum(not _is_set(settings, n) for n in alt))
        return [n for n in best if not _is_set(settings, n)]


def _is_set(settings: BaseModel, name: str) -> bool:
    value = getattr(settings, name)  # a declared field of the settings model
    return value is not None and not (isinstance(value, SecretStr) and not value.get_secret_value())


def configured(value: V | None) -> V:
    """A setting named in `required`, in `build`: it runs only once they are all set."""
    assert value is not None
    return value


def configured_secret(value: SecretStr | None) -> str:
    """The plain value of a secret named in `required`, in `build` (see `configured`)."""
    return configured(value).get_secret_value()
